"""Microsoft Graph's paths under /v1.0 and /beta."""

VERSION = '<any("v1.0", beta):version>'
BETA = '<any(beta):version>'
# A resource's app role assignments (who holds its roles) and a client's (the roles it holds).
ASSIGNMENTS = '<any(appRoleAssignedTo, appRoleAssignments):relation>'

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
    ("GET", f"/{VERSION}/servicePrincipals", "list_service_principals"),
    ("GET", f"/{VERSION}/servicePrincipals(appId=<app_ref>)", "get_service_principal_by_app_id"),
    ("GET", f"/{VERSION}/servicePrincipals/<principal>", "get_service_principal"),
    ("GET", f"/{VERSION}/servicePrincipals/<principal>/{ASSIGNMENTS}", "list_assignments"),
    ("POST", f"/{VERSION}/servicePrincipals/<principal>/{ASSIGNMENTS}", "add_assignment"),
    ("DELETE", f"/{VERSION}/servicePrincipals/<principal>/{ASSIGNMENTS}/<assignment>", "remove_assignment"),
    ("GET", f"/{VERSION}/applications", "list_applications"),
    ("GET", f"/{VERSION}/applications(appId=<app_ref>)", "get_application_by_app_id"),
    ("GET", f"/{VERSION}/auditLogs/signIns", "list_sign_ins"),
    ("POST", f"/{VERSION}/$batch", "batch"),
)
# Any other path under /v1.0 or /beta gets Graph's "Resource not found for the segment".
FALLBACK_URLS = (
    ("*", f"/{VERSION}", "unknown"),
    ("*", f"/{VERSION}/<path:rest>", "unknown"),
)
