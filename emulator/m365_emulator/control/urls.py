"""The control API, under /_emulator/."""

URLS = (
    ("GET", "/_emulator/state", "get_state"),
    ("GET", "/_emulator/requests", "get_requests"),
    ("DELETE", "/_emulator/requests", "delete_requests"),
    ("POST", "/_emulator/reset", "reset"),
    ("GET", "/_emulator/faults", "get_faults"),
    ("POST", "/_emulator/faults", "add_faults"),
    ("DELETE", "/_emulator/faults", "delete_faults"),
    ("DELETE", "/_emulator/faults/<int:fault_id>", "delete_fault"),
    ("POST", "/_emulator/latency", "latency"),
    ("GET", "/_emulator/tokens", "get_tokens"),
    ("POST", "/_emulator/tokens/expire", "expire_tokens"),
    ("GET", "/_emulator/behaviour", "get_behaviour"),
    ("PATCH", "/_emulator/behaviour", "patch_behaviour"),
    ("PATCH", "/_emulator/tenants/<tenant_ref>", "patch_tenant"),
    ("POST", "/_emulator/tenants/<tenant_ref>/users", "add_user"),
    ("PATCH", "/_emulator/tenants/<tenant_ref>/users/<identity>", "patch_user"),
    ("PATCH", "/_emulator/tenants/<tenant_ref>/apps/<client_id>", "patch_app"),
    ("GET", "/_emulator/messages", "get_messages"),
    ("DELETE", "/_emulator/messages", "delete_messages"),
)
