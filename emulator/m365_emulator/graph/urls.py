"""Microsoft Graph's paths under /v1.0 and /beta."""

VERSION = '<any("v1.0", beta):version>'
BETA = '<any(beta):version>'

URLS = (
    ("GET", f"/{VERSION}/policies/identitySecurityDefaultsEnforcementPolicy", "get_security_defaults"),
    ("PATCH", f"/{VERSION}/policies/identitySecurityDefaultsEnforcementPolicy", "patch_security_defaults"),
    ("GET", f"/{BETA}/users/<user>/authentication/requirements", "get_mfa"),
    ("PATCH", f"/{BETA}/users/<user>/authentication/requirements", "patch_mfa"),
    ("GET", f"/{VERSION}/users", "list_users"),
    ("GET", f"/{VERSION}/users/<user>", "get_user"),
    ("GET", f"/{VERSION}/users/<user>/transitiveMemberOf", "transitive_member_of"),
    ("GET", f"/{VERSION}/users/<user>/transitiveMemberOf/microsoft.graph.directoryRole", "directory_roles_of"),
    ("GET", f"/{VERSION}/identity/conditionalAccess/policies", "list_ca_policies"),
    ("GET", f"/{VERSION}/identity/conditionalAccess/policies/<policy>", "get_ca_policy"),
    ("POST", f"/{VERSION}/$batch", "batch"),
)
# Any other path under /v1.0 or /beta gets Graph's "Resource not found for the segment".
FALLBACK_URLS = (
    ("*", f"/{VERSION}", "unknown"),
    ("*", f"/{VERSION}/<path:rest>", "unknown"),
)
