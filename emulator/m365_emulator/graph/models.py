"""Microsoft Graph's view of the tenant: users and their licences, directory roles, security defaults, per-user
MFA, service principals and their app role assignments (consent), sign-in logs, ``$filter`` expressions, and
the application permissions each operation needs. No HTTP here."""

from __future__ import annotations

import base64
import datetime
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from ..state import (MFA_STATES, MICROSOFT_SERVICES_TENANT, RESOURCE_APPLICATIONS, App, AppRole, ResourceApplication,
                     Tenant, User, directory_role_object_id, iso_utc, resource_service_principal_id,
                     role_display_name)

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

# Service principals and app registrations: Microsoft documents Application.Read.All as the least privileged.
APPLICATION_READ = ("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                    "Directory.ReadWrite.All")
APP_ROLE_ASSIGNMENT_READ = APPLICATION_READ + ("AppRoleAssignment.ReadWrite.All",)
APP_ROLE_ASSIGNMENT_WRITE = ("AppRoleAssignment.ReadWrite.All",)
SIGN_IN_READ = ("AuditLog.Read.All",)

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


# -- service principals and app role assignments ----------------------------------------------------------

SERVICE_PRINCIPAL_PROPERTIES = ("id", "appId", "displayName", "appDisplayName", "appRoles", "servicePrincipalType",
                                "servicePrincipalNames", "appOwnerOrganizationId", "accountEnabled", "tags",
                                "deletedDateTime", "signInAudience")
APPLICATION_PROPERTIES = ("id", "appId", "displayName", "signInAudience", "publisherDomain", "createdDateTime",
                          "deletedDateTime")
# Seeded grants have no recorded time: they show the day the sample tenant was set up.
SEEDED_AT = "2024-01-15T09:00:00Z"


@dataclass
class Principal:
    """A service principal as Graph shows it: an app's enterprise application, or a first-party resource."""

    id: str
    app_id: str
    display_name: str
    app: App | None = None
    resource: ResourceApplication | None = None

    def properties(self, tenant: Tenant) -> dict[str, Any]:
        return {
            "id": self.id,
            "deletedDateTime": None,
            "accountEnabled": True,
            "appId": self.app_id,
            "appDisplayName": self.display_name,
            "appOwnerOrganizationId": MICROSOFT_SERVICES_TENANT if self.resource else tenant.id,
            "appRoles": [app_role(role) for role in (self.resource.app_roles if self.resource else ())],
            "displayName": self.display_name,
            "servicePrincipalNames": [self.app_id],
            "servicePrincipalType": "Application",
            "signInAudience": "AzureADMultipleOrgs" if self.resource else "AzureADMyOrg",
            "tags": [] if self.resource else ["WindowsAzureActiveDirectoryIntegratedApp"],
        }


def app_role(role: AppRole) -> dict[str, Any]:
    return {"id": role.id, "value": role.value, "displayName": role.display_name, "description": role.display_name,
            "allowedMemberTypes": ["Application"], "isEnabled": True, "origin": "Application"}


def service_principals(tenant: Tenant) -> list[Principal]:
    """Every service principal of the tenant: one per app registration, and the first-party resources."""
    principals = [Principal(app.service_principal_id, app.client_id, app.display_name, app=app)
                  for app in tenant.apps.values()]
    principals += [Principal(resource_service_principal_id(tenant, resource), resource.app_id, resource.display_name,
                             resource=resource) for resource in RESOURCE_APPLICATIONS]
    return principals


def find_service_principal(tenant: Tenant, object_id: str) -> Principal | None:
    return next((principal for principal in service_principals(tenant)
                 if principal.id.lower() == object_id.strip().lower()), None)


def service_principal_by_app_id(tenant: Tenant, app_id: str) -> Principal | None:
    return next((principal for principal in service_principals(tenant)
                 if principal.app_id.lower() == app_id.strip().lower()), None)


def service_principal_listing(tenant: Tenant) -> list[dict[str, Any]]:
    return [principal.properties(tenant) for principal in service_principals(tenant)]


def service_principal_properties(tenant: Tenant, object_id: str | None = None,
                                 app_id: str | None = None) -> dict[str, Any] | None:
    """The service principal with that object id, or of that app id; None when there is none."""
    principal = (find_service_principal(tenant, object_id) if object_id is not None
                 else service_principal_by_app_id(tenant, app_id or ""))
    return principal.properties(tenant) if principal is not None else None


def application_properties(tenant: Tenant, app: App) -> dict[str, Any]:
    """The app registration (``/applications``): its own object id, not the enterprise application's."""
    return {"id": app.object_id, "deletedDateTime": None, "appId": app.client_id, "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg", "publisherDomain": tenant.domains[0], "createdDateTime": SEEDED_AT}


def application_listing(tenant: Tenant) -> list[dict[str, Any]]:
    return [application_properties(tenant, app) for app in tenant.apps.values()]


def application_by_app_id(tenant: Tenant, app_id: str) -> dict[str, Any] | None:
    app = next((app for app in tenant.apps.values() if app.client_id.lower() == app_id.strip().lower()), None)
    return application_properties(tenant, app) if app is not None else None


@dataclass
class Assignment:
    """One app role an app holds on a resource: an entry of the app's permission list for that resource."""

    principal: Principal
    resource: Principal
    role: AppRole

    @property
    def id(self) -> str:
        return assignment_id(self.principal.id, self.role.id)

    def properties(self, tenant: Tenant) -> dict[str, Any]:
        return {
            "id": self.id,
            "deletedDateTime": None,
            "appRoleId": self.role.id,
            "createdDateTime": tenant.app_role_assigned_at.get(self.id, SEEDED_AT),
            "principalDisplayName": self.principal.display_name,
            "principalId": self.principal.id,
            "principalType": "ServicePrincipal",
            "resourceDisplayName": self.resource.display_name,
            "resourceId": self.resource.id,
        }


def assignment_id(principal_id: str, role_id: str) -> str:
    """Graph's assignment ids are opaque 43-character strings; the emulator makes one that stays the same for the
    same principal and role, so a read after a write finds it."""
    principal = uuid.UUID(principal_id).bytes_le
    detail = uuid.uuid5(uuid.UUID(principal_id), role_id.lower()).bytes
    return base64.urlsafe_b64encode(principal + detail).decode().rstrip("=")


def assignments(tenant: Tenant) -> list[Assignment]:
    """Every app role assignment held by an app of the tenant, derived from the apps' permission lists."""
    found = []
    principals = service_principals(tenant)
    for resource in (principal for principal in principals if principal.resource is not None):
        assert resource.resource is not None
        for principal in (candidate for candidate in principals if candidate.app is not None):
            assert principal.app is not None
            for value in dict.fromkeys(resource.resource.granted(principal.app)):
                role = resource.resource.role_named(value)
                if role is not None:
                    found.append(Assignment(principal, resource, role))
    return found


def grant(tenant: Tenant, assignment: Assignment) -> None:
    assert assignment.principal.app is not None and assignment.resource.resource is not None
    granted = assignment.resource.resource.granted(assignment.principal.app)
    if assignment.role.value not in granted:
        granted.append(assignment.role.value)
    tenant.app_role_assigned_at[assignment.id] = iso_utc(datetime.datetime.now(datetime.timezone.utc))


def revoke(tenant: Tenant, assignment: Assignment) -> None:
    assert assignment.principal.app is not None and assignment.resource.resource is not None
    granted = assignment.resource.resource.granted(assignment.principal.app)
    granted[:] = [value for value in granted if value.lower() != assignment.role.value.lower()]
    tenant.app_role_assigned_at.pop(assignment.id, None)


# -- $filter ---------------------------------------------------------------------------------------------------

class FilterError(ValueError):
    """A ``$filter`` Graph refuses: ``code`` is BadRequest (syntax, types) or Request_UnsupportedQuery."""

    def __init__(self, message: str, code: str = "BadRequest"):
        super().__init__(message)
        self.code = code


# OData operators and the names Graph uses for them in its type errors.
OPERATORS = {"eq": "Equal", "ne": "NotEqual", "ge": "GreaterThanOrEqual", "gt": "GreaterThan",
             "le": "LessThanOrEqual", "lt": "LessThan"}
EDM_TYPES = {"string": "Edm.String", "datetime": "Edm.DateTimeOffset", "int": "Edm.Int32"}
_FILTER_TOKEN = re.compile(r"\s*(?:(?P<open>\()|(?P<close>\))|'(?P<string>(?:[^']|'')*)'|(?P<word>[^\s()']+))")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class FilterField:
    """A property a ``$filter`` may name: its path in the object, its type and the operators Graph allows."""

    path: tuple[str, ...]
    kind: str  # "string", "datetime", "int"
    operators: tuple[str, ...] = ("eq", "ne")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _FILTER_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"Invalid filter clause: syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append((kind, value.replace("''", "'") if kind == "string" else value))
        position = match.end()
    return tokens


def parse_datetime(text: str) -> datetime.datetime | None:
    if not _DATETIME.match(text):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _FilterParser:
    """``expr := and ('or' and)*``, ``and := factor ('and' factor)*``, ``factor := '(' expr ')' | field op value``."""

    def __init__(self, text: str, fields: dict[str, FilterField], type_name: str):
        self.tokens = _tokens(text)
        self.position = 0
        self.fields = {name.lower(): (name, field) for name, field in fields.items()}
        self.type_name = type_name

    def peek_word(self) -> str | None:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "word":
            return self.tokens[self.position][1].lower()
        return None

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise FilterError("Invalid filter clause: the expression ends too early.")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        if not self.tokens:
            raise FilterError("Invalid filter clause: the expression is empty.")
        predicate = self.disjunction()
        if self.position != len(self.tokens):
            raise FilterError(f"Invalid filter clause: unexpected '{self.tokens[self.position][1]}'.")
        return predicate

    def disjunction(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self.conjunction()]
        while self.peek_word() == "or":
            self.position += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda item: any(part(item) for part in parts))

    def conjunction(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self.factor()]
        while self.peek_word() == "and":
            self.position += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda item: all(part(item) for part in parts))

    def factor(self) -> Callable[[dict[str, Any]], bool]:
        kind, value = self.take()
        if kind == "open":
            inner = self.disjunction()
            if self.take()[0] != "close":
                raise FilterError("Invalid filter clause: a parenthesis is not closed.")
            return inner
        if kind != "word":
            raise FilterError(f"Invalid filter clause: expected a property name, found '{value}'.")
        return self.comparison(value)

    def comparison(self, name: str) -> Callable[[dict[str, Any]], bool]:
        known = self.fields.get(name.lower())
        if known is None:
            raise FilterError(f"Could not find a property named '{name}' on type '{self.type_name}'.",
                              "Request_UnsupportedQuery")
        name, field = known
        operator_kind, operator = self.take()
        operator = operator.lower()
        if operator_kind != "word" or operator not in OPERATORS:
            raise FilterError(f"Invalid filter clause: '{operator}' after '{name}' is not a comparison operator.")
        if operator not in field.operators:
            raise FilterError(f"Unsupported or invalid query filter clause specified for property '{name}' of "
                              f"resource '{self.type_name}': operator '{operator}'.", "Request_UnsupportedQuery")
        literal_kind, literal = self.take()
        wanted = self.literal(field, operator, literal_kind, literal)
        compare = _COMPARISONS[operator]

        def predicate(item: dict[str, Any]) -> bool:
            value: Any = item
            for step in field.path:
                value = value.get(step) if isinstance(value, dict) else None
            if field.kind == "datetime":
                value = parse_datetime(value) if isinstance(value, str) else None
            elif field.kind == "string":
                value = value.lower() if isinstance(value, str) else None
            return value is not None and compare(value, wanted)

        return predicate

    def literal(self, field: FilterField, operator: str, kind: str, text: str) -> Any:
        found = "Edm.String" if kind == "string" else None
        if kind == "word":
            if field.kind == "datetime" and parse_datetime(text) is not None:
                return parse_datetime(text)
            if field.kind == "int" and re.fullmatch(r"-?\d+", text):
                return int(text)
            found = "Edm.DateTimeOffset" if parse_datetime(text) else "Edm.Int32" if text.isdigit() else None
            if found is None:
                raise FilterError(f"Invalid filter clause: '{text}' is not a valid literal.")
        elif kind == "string" and field.kind == "string":
            return text.lower()
        elif kind != "string":
            raise FilterError("Invalid filter clause: a comparison needs a value.")
        raise FilterError(f"A binary operator with incompatible types was detected. Found operand types "
                          f"'{EDM_TYPES[field.kind]}' and '{found}' for operator kind '{OPERATORS[operator]}'.")


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda value, wanted: value == wanted, "ne": lambda value, wanted: value != wanted,
    "ge": lambda value, wanted: value >= wanted, "gt": lambda value, wanted: value > wanted,
    "le": lambda value, wanted: value <= wanted, "lt": lambda value, wanted: value < wanted,
}


def parse_filter(text: str, fields: dict[str, FilterField], type_name: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate over Graph objects for an OData ``$filter``; ``FilterError`` for what Graph would refuse."""
    return _FilterParser(text, fields, type_name).parse()


ORDERED = ("eq", "ne", "ge", "gt", "le", "lt")
SERVICE_PRINCIPAL_FILTER = {"appId": FilterField(("appId",), "string", ("eq",)),
                            "displayName": FilterField(("displayName",), "string", ("eq",))}
SIGN_IN_FILTER = {
    "clientAppUsed": FilterField(("clientAppUsed",), "string"),
    "userPrincipalName": FilterField(("userPrincipalName",), "string"),
    "userId": FilterField(("userId",), "string"),
    "appId": FilterField(("appId",), "string"),
    "ipAddress": FilterField(("ipAddress",), "string"),
    "createdDateTime": FilterField(("createdDateTime",), "datetime", ORDERED),
    "status/errorCode": FilterField(("status", "errorCode"), "int"),
}


# -- sign-in logs ----------------------------------------------------------------------------------------------

def sign_in_order(record: dict[str, Any]) -> tuple[str, str]:
    """Newest first, ties broken by id: also the position a paging cursor names."""
    return record["createdDateTime"], record["id"]


def sign_ins_newest_first(tenant: Tenant, predicate: Callable[[dict[str, Any]], bool] | None,
                          before: tuple[str, str] | None) -> list[dict[str, Any]]:
    """The tenant's sign-ins matching ``predicate``, newest first, only those after ``before`` in that order."""
    records = sorted(tenant.sign_ins, key=sign_in_order, reverse=True)
    return [record for record in records
            if (before is None or sign_in_order(record) < before) and (predicate is None or predicate(record))]
