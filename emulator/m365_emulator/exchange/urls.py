"""The Exchange Online admin API: one endpoint, by tenant id or any of its domains."""

URLS = (
    ("POST", "/adminapi/beta/<tenant_ref>/InvokeCommand", "invoke"),
)
