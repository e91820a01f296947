"""The Exchange Online admin API: InvokeCommand and its JSON batch, by tenant id or any of its domains."""

URLS = (
    ("POST", "/adminapi/beta/<tenant_ref>/InvokeCommand", "invoke"),
    ("POST", "/adminapi/beta/<tenant_ref>/$batch", "batch"),
)
