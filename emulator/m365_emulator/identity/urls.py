"""Entra ID's endpoints, by tenant id or any of its domains."""

URLS = (
    ("POST", "/<tenant_ref>/oauth2/v2.0/token", "token"),
    ("GET", "/<tenant_ref>/v2.0/.well-known/openid-configuration", "openid_configuration"),
    ("GET", "/<tenant_ref>/discovery/v2.0/keys", "keys"),
)
