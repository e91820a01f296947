"""Microsoft Graph's view of the tenant: users and their licences, directory roles, security defaults, per-user
MFA, and the application permissions each operation needs. No HTTP here."""

from __future__ import annotations

from typing import Any

from ..state import MFA_STATES, Tenant, User, directory_role_object_id, role_display_name

SECURITY_DEFAULTS_ID = "00000000-0000-0000-0000-000000000005"
SECURITY_DEFAULTS_TYPE = "#microsoft.graph.identitySecurityDefaultsEnforcementPolicy"
SECURITY_DEFAULTS_DESCRIPTION = (
    "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, "
    "these recommendations will be automatically enforced in your organization. Administrators and users will "
    "be better protected from common identity related attacks.")
MFA_REQUIREMENTS_TYPE = "#microsoft.graph.strongAuthenticationRequirements"
DIRECTORY_ROLE_TYPE = "#microsoft.graph.directoryRole"

# Read permissions imply nothing about writes; a ReadWrite permission of the same family also allows reads.
USER_READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
POLICY_READ = ("Policy.Read.All",)
# Writing security defaults: the least privileged permission Microsoft documents, or the older pair that also works.
SECURITY_DEFAULTS_WRITE = (("Policy.ReadWrite.SecurityDefaults",),
                           ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"))
MFA_WRITE = ("Policy.ReadWrite.AuthenticationMethod",)
# transitiveMemberOf: Microsoft documents User.Read.All as the least privileged application permission (higher:
# Directory.Read.All, Directory.ReadWrite.All, Group.Read.All, GroupMember.Read.All). Members of a type the app
# may not read come back with limited information: @odata.type and id, every other property null. Directory
# roles are read with RoleManagement.Read.Directory (least privileged for directoryRole) or Directory.Read.All,
# so with User.Read.All alone a role's roleTemplateId is null.
MEMBERSHIP_READ = USER_READ + ("Group.Read.All", "GroupMember.Read.All")
ROLE_READ = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory",
             "Directory.Read.All", "Directory.ReadWrite.All")

DEFAULT_USER_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                           "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
DIRECTORY_ROLE_PROPERTIES = ("id", "deletedDateTime", "description", "displayName", "roleTemplateId")


def user_properties(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "mail": user.primary_smtp_address if user.has_mailbox else None,
        "mailNickname": user.alias,
        "accountEnabled": True,
        "userType": "Member",
        "givenName": None,
        "surname": None,
        "jobTitle": None,
        "businessPhones": [],
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "usageLocation": "US" if user.licenses else None,
        "proxyAddresses": [f"SMTP:{user.primary_smtp_address}"] if user.has_mailbox else [],
        "assignedPlans": user.assigned_plans(),
    }


USER_PROPERTIES = tuple(user_properties(User(user_principal_name="probe@example.invalid")))


def find_user(tenant: Tenant, identity: str) -> User | None:
    """A user by object id or userPrincipalName: what Graph accepts in ``/users/{id}``."""
    user = tenant.find_user(identity)
    if user is None or identity.lower() not in (user.id.lower(), user.user_principal_name.lower()):
        return None
    return user


def directory_roles(tenant: Tenant, user: User, readable: bool) -> list[dict[str, Any]]:
    """The user's directory roles as Graph lists them among directory objects; limited information (only the
    id) when the app may not read directory roles."""
    roles = []
    for template_id in dict.fromkeys(user.role_template_ids):
        name = role_display_name(template_id)
        roles.append({
            "id": directory_role_object_id(tenant.id, template_id),
            "deletedDateTime": None,
            "description": f"Members of {name}." if readable else None,
            "displayName": name if readable else None,
            "roleTemplateId": template_id if readable else None,
        })
    return roles


def security_defaults(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": SECURITY_DEFAULTS_ID,
        "displayName": "Security Defaults",
        "description": SECURITY_DEFAULTS_DESCRIPTION,
        "isEnabled": tenant.security_defaults_enabled,
    }


def set_per_user_mfa(user: User, state: str) -> None:
    if state not in MFA_STATES:
        raise ValueError(state)
    # Entra promotes "enabled" to "enforced" as soon as the user has a method registered.
    user.per_user_mfa_state = "enforced" if state == "enabled" and user.mfa_method_registered else state
