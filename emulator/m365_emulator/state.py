"""Tenant state: the single source of truth that tokens, Graph, Exchange and SMTP all read and write.

Everything is held in memory behind one re-entrant lock (``TenantStore.lock``); request handlers take
the lock for the whole of a read-compare-write so that concurrent clients see consistent state.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import ipaddress
import re
import threading
import uuid
from dataclasses import dataclass, field, asdict
from typing import Any

# Service plans that appear in a user's assignedPlans, as (servicePlanId, service). Many plans carry service
# "exchange" without giving a mailbox (Defender for Office 365, MyAnalytics, Bookings, the foundation plan):
# only the ids in MAILBOX_PLAN_IDS make a licensed mailbox.
SERVICE_PLANS = {
    "EXCHANGE_S_STANDARD": ("9aaf7827-d63c-4b61-89c3-182f06f82e5c", "exchange"),
    "EXCHANGE_S_ENTERPRISE": ("efb87545-963c-4e0d-99df-69c6916d9eb0", "exchange"),
    "EXCHANGE_S_DESKLESS": ("4a82b400-a79f-41a4-b4e2-e94f5787b113", "exchange"),
    "EXCHANGE_S_ESSENTIALS": ("1126bef5-da20-4f07-b45e-ad25d2581aa8", "exchange"),
    "EXCHANGE_S_STANDARD_GOV": ("e9b4930a-925f-45e2-ac2a-3f7788ca6fdd", "exchange"),
    "EXCHANGE_S_ENTERPRISE_GOV": ("8c3069c0-ccdb-44be-ab77-986203a67df2", "exchange"),
    "EXCHANGE_S_FOUNDATION": ("113feb6c-3fe4-4440-bddc-54d774bf0318", "exchange"),
    "ATP_ENTERPRISE": ("f20fedf3-f3c3-43c3-8267-2bfdd51c0939", "exchange"),
    "EXCHANGE_ANALYTICS": ("34c0d7a0-a70f-4668-9238-47f9fc208882", "exchange"),
    "MICROSOFTBOOKINGS": ("199a5c09-e0ca-4e37-8f7c-b05d533e1ea2", "exchange"),
    "SHAREPOINTSTANDARD": ("c7699d2e-19aa-44de-8edf-1736da088ca1", "SharePoint"),
    "TEAMS1": ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TeamspaceAPI"),
}
MAILBOX_PLAN_IDS = {
    SERVICE_PLANS[name][0] for name in ("EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_DESKLESS",
                                        "EXCHANGE_S_ESSENTIALS", "EXCHANGE_S_STANDARD_GOV",
                                        "EXCHANGE_S_ENTERPRISE_GOV")
}
MFA_STATES = ("disabled", "enabled", "enforced")

# Directory role names -> role template ids: the ``wids`` claim of app tokens, the ``roleTemplateId`` of a user's
# directory roles, and what Conditional Access ``includeRoles``/``excludeRoles`` hold.
DIRECTORY_ROLE_TEMPLATES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Compliance Administrator": "17315797-102d-40b4-93e0-432062caca18",
    "Exchange Recipient Administrator": "31392ffb-586c-42d1-9346-e59415a2cc4e",
}
_ROLE_NAMES = {template: name for name, template in DIRECTORY_ROLE_TEMPLATES.items()}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Activated directory roles have an object id of their own in each tenant, unlike the template id.
_DIRECTORY_ROLE_NAMESPACE = uuid.UUID("8f0c2d4e-6a1b-4c3d-9e5f-7a8b9c0d1e2f")


def role_template_id(role: str) -> str:
    """The template id of a role given by name or by template id; ValueError for an unknown name."""
    if _GUID.match(role):
        return role.lower()
    try:
        return DIRECTORY_ROLE_TEMPLATES[role]
    except KeyError:
        raise ValueError(f"unknown directory role {role!r}; known: {sorted(DIRECTORY_ROLE_TEMPLATES)}") from None


def role_display_name(template_id: str) -> str:
    return _ROLE_NAMES.get(template_id, template_id)


def directory_role_object_id(tenant_id: str, template_id: str) -> str:
    return str(uuid.uuid5(_DIRECTORY_ROLE_NAMESPACE, f"{tenant_id.lower()}/{template_id.lower()}"))

# Behaviour switches for facts that are not confirmed against the live service (see README).
DEFAULT_BEHAVIOUR = {
    # Body of a successful Set-*/Add-*/New-* through InvokeCommand: "empty" -> value: [], "object" -> the object.
    "set_response": "empty",
    # Whether JSON null for SmtpClientAuthenticationDisabled clears the mailbox switch (True) or is refused (False).
    "null_clears_mailbox_switch": True,
    # Exchange paging: "follow" (nextLink works), "expire" (replaying nextLink gives 400), "warning"
    # (no nextLink; a truncated page carries a non-empty @adminapi.warnings).
    "exchange_paging": "follow",
    "exchange_page_size": 1000,
    # Order in which SMTP AUTH blockers are evaluated for basic authentication; the first that applies answers.
    "blocker_order": [
        "credentials",
        "org_switch",
        "mailbox_switch",
        "authentication_policy",
        "security_defaults",
        "per_user_mfa",
        "conditional_access",
        "license",
    ],
    # What an unlicensed user (no mailbox plan) gets at AUTH: "credentials" (535 5.7.139 ... credentials were
    # incorrect) or "criteria" (535 5.7.139 ... did not meet the criteria).
    "unlicensed_reply": "credentials",
    # After the Basic auth retirement: basic AUTH LOGIN/PLAIN answers 550 5.7.30 for every mailbox.
    "basic_auth_retired": False,
    # After a refused AUTH, MAIL FROM's "530 5.7.57 Client not authenticated to send mail." carries the AUTH
    # refusal ("... Error: 535 5.7.139 ..."), as some field captures show.
    "auth_failure_at_mail_from": False,
    # The clientAppUsed that sign-in log entries of SMTP AUTH carry: the portal and Log Analytics say
    # "Authenticated SMTP", some callers of the API filter on "SMTP".
    "sign_in_client_app": "Authenticated SMTP",
    # What Get-MailboxPermission shows as User for a service principal: "display_name", "identity" (the
    # Exchange service principal's Identity) or "app_id".
    "mailbox_permission_user": "display_name",
    # What Get-User and Get-OrganizationConfig show for an authentication policy: "name" or
    # "distinguished_name".
    "authentication_policy_shows": "name",
    # How Get-InboundConnector shows SenderDomains: "address_space" (smtp:*;1, the form field reports show) or
    # "domain" (* as it was given); not confirmed which the REST transport prints.
    "inbound_connector_sender_domains": "address_space",
    # Whether app-only tokens carry the wids claim (directory role template ids). Field captures show it on
    # app-only Graph tokens; Microsoft's claims reference says not to depend on any claim being present.
    "app_token_wids": True,
    # Concurrent authenticated SMTP sessions per mailbox (3: Exchange Team blog, 2018); a session past the limit
    # is refused at the end of DATA with smtp_connection_limit_reply: "sender_thread" (432 4.3.2
    # STOREDRV.ClientSubmit; sender thread limit exceeded), "concurrent_connections" (432 4.3.2 Concurrent
    # connections limit exceeded. ...), both field captures, or "off".
    "smtp_connection_limit": 3,
    "smtp_connection_limit_reply": "sender_thread",
    # Messages a mailbox may submit in any 60 seconds (30: Exchange Online limits page); the next gets
    # smtp_message_rate_reply: "quota" (554 5.2.0 ...SubmissionQuotaExceededException, the limits page),
    # "rate" (421 4.4.2 Message submission rate ..., Exchange's throttling wording) or "off" (accepted: the
    # service description says the excess is delayed rather than refused).
    "smtp_message_rate_limit": 30,
    "smtp_message_rate_reply": "quota",
    # Where a MAIL FROM the mailbox may not send as is refused: "mail_from" (550 5.7.60, documented) or "data"
    # (accepted, then 554 5.2.252 SendAsDenied at the end of DATA, as field captures show).
    "send_as_denied_at": "mail_from",
    # Exchange's cmdlet budgets per app (remote-PowerShell throttling policies; unconfirmed for the REST
    # transport): "off", "destructive" (Set-/New-/Add-/Remove-/Enable-/Disable-, exchange_destructive_budget:
    # [cmdlets, seconds]), "cmdlets" (every cmdlet, exchange_cmdlets_budget) or "both". A cmdlet past the budget
    # is not run: 429 with Retry-After.
    "exchange_cmdlet_budget": "off",
    # The admin API's JSON batch (POST /adminapi/beta/{tenant}/$batch, items that are InvokeCommand POSTs): used
    # in production by CIPP in chunks of 10, absent from Microsoft's module and its documentation. False answers
    # 404, as a service without it would; exchange_batch_limit is the most items one batch may carry (the real
    # limit is not published).
    "exchange_batch": True,
    "exchange_batch_limit": 10,
    "exchange_destructive_budget": [120, 60],
    "exchange_cmdlets_budget": [25, 5],
}


def new_guid() -> str:
    return str(uuid.uuid4())


# Object ids the emulator derives (stable across restarts): an app's enterprise application when the seed gives
# none, the resource applications' service principals in each tenant, app role ids of Microsoft Graph.
_DERIVED_ID_NAMESPACE = uuid.UUID("1d7f3b52-9c4e-4a8d-b6f1-2e0a5c9d8b74")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_DERIVED_ID_NAMESPACE, "/".join(part.lower() for part in parts)))


@dataclass
class App:
    """An app registration (``object_id``) and its enterprise application in the same tenant
    (``service_principal_id``, the object New-ServicePrincipal must name). Permissions are the app roles it
    holds on each resource: every consent (app role assignment) is an entry of these lists."""

    client_id: str
    display_name: str = "automation"
    object_id: str = field(default_factory=new_guid)
    service_principal_id: str = ""
    secrets: list[str] = field(default_factory=list)
    # PEM-encoded public certificates whose private keys may sign client assertions.
    certificates: list[str] = field(default_factory=list)
    graph_permissions: list[str] = field(default_factory=list)
    exchange_permissions: list[str] = field(default_factory=list)
    directory_roles: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.service_principal_id:
            self.service_principal_id = derived_id("service-principal", self.client_id)
        if self.service_principal_id.lower() == self.object_id.lower():
            raise ValueError(f"app {self.client_id}: the service principal id must differ from the app "
                             "registration's object id")


@dataclass(frozen=True)
class AppRole:
    id: str
    value: str
    display_name: str


@dataclass(frozen=True)
class ResourceApplication:
    """A first-party application whose service principal exists in every tenant and exposes app roles;
    ``permissions_field`` is the ``App`` list that holds the roles an app was granted on it."""

    app_id: str
    display_name: str
    permissions_field: str
    app_roles: tuple[AppRole, ...]

    def role(self, role_id: str) -> AppRole | None:
        return next((role for role in self.app_roles if role.id.lower() == str(role_id).lower()), None)

    def role_named(self, value: str) -> AppRole | None:
        return next((role for role in self.app_roles if role.value.lower() == str(value).lower()), None)

    def granted(self, app: App) -> list[str]:
        return getattr(app, self.permissions_field)


# Role ids of Office 365 Exchange Online as public app manifests name them.
EXCHANGE_ONLINE = ResourceApplication(
    "00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", "exchange_permissions", (
        AppRole("dc50a0fb-09a3-484d-be87-e023b12c6440", "Exchange.ManageAsApp", "Manage Exchange As Application"),
        AppRole("7146a1f0-8703-45b3-9eae-527a64c00995", "SMTP.SendAsApp", "Send emails from mailboxes using SMTP AUTH"),
        AppRole("dc890d15-9560-4a4c-9b7f-a736ec74ec40", "full_access_as_app",
                "Use Exchange Web Services with full access to all mailboxes"),
        AppRole("5e5addcd-3e8d-4e90-baf5-964efab2b20a", "IMAP.AccessAsApp", "IMAP.AccessAsApp"),
        AppRole("cb842b43-da6e-4506-86fe-bb12199c656d", "POP.AccessAsApp", "POP.AccessAsApp"),
    ))
# The Graph permissions the emulator knows; their role ids are the emulator's own (clients find a role by value).
_GRAPH_PERMISSIONS = (
    "Application.Read.All", "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "AuditLog.Read.All",
    "Directory.Read.All", "Directory.ReadWrite.All", "Group.Read.All", "GroupMember.Read.All", "Policy.Read.All",
    "Policy.ReadWrite.AuthenticationMethod", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.SecurityDefaults",
    "RoleManagement.Read.All", "RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory",
    "User.Read.All", "User.ReadWrite.All",
)
MICROSOFT_GRAPH = ResourceApplication(
    "00000003-0000-0000-c000-000000000000", "Microsoft Graph", "graph_permissions",
    tuple(AppRole(derived_id("graph-app-role", name), name, name) for name in _GRAPH_PERMISSIONS))
RESOURCE_APPLICATIONS = (EXCHANGE_ONLINE, MICROSOFT_GRAPH)
# The tenant that owns Microsoft's first-party applications.
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# Sign-in log entries as Entra ID writes them for SMTP AUTH. The codes per refusal are the emulator's choice
# (Microsoft documents the codes, not which one each Exchange refusal produces): the ones Entra ID itself decides
# carry their AADSTS code; refusals that Exchange Online decides (SMTP AUTH switches, authentication policies,
# the retirement of Basic auth, the service principal and mailbox checks of XOAUTH2) carry the generic 50000 and
# name the refusal in failureReason.
SIGN_IN_SUCCESS = (0, "Other.")
EXCHANGE_REFUSAL_CODE = 50000
SIGN_IN_FAILURES = {
    "credentials": (50126, "Error validating credentials due to invalid username or password."),
    "unknown_user": (50034, "The user account does not exist in the directory. To sign into this application, the "
                            "account must be added to the directory."),
    "security_defaults": (50053, "Sign-in was blocked because legacy authentication is blocked by the security "
                                 "defaults policy."),
    "per_user_mfa": (50076, "Due to a configuration change made by your administrator, or because you moved to a "
                            "new location, you must use multi-factor authentication to access "
                            "'00000002-0000-0ff1-ce00-000000000000'."),
    "conditional_access": (53003, "Access has been blocked by Conditional Access policies. The access policy does "
                                  "not allow token issuance."),
    "org_switch": (EXCHANGE_REFUSAL_CODE, "SMTP client authentication is disabled for the tenant."),
    "mailbox_switch": (EXCHANGE_REFUSAL_CODE, "SMTP client authentication is disabled for the mailbox."),
    "authentication_policy": (EXCHANGE_REFUSAL_CODE, "Basic authentication is disabled by an authentication "
                                                     "policy."),
    "license": (EXCHANGE_REFUSAL_CODE, "The user has no Exchange Online mailbox licence."),
    "basic_auth_retired": (EXCHANGE_REFUSAL_CODE, "Basic authentication is not supported for Client Submission."),
    "token": (EXCHANGE_REFUSAL_CODE, "The access token was rejected."),
    "permission": (EXCHANGE_REFUSAL_CODE, "The application has no SMTP.SendAsApp permission."),
    "mailbox": (EXCHANGE_REFUSAL_CODE, "The mailbox does not exist."),
    "service_principal": (EXCHANGE_REFUSAL_CODE, "The application is not registered in Exchange Online."),
    "service_principal_object_id": (EXCHANGE_REFUSAL_CODE, "The Exchange service principal of the application "
                                                           "names another object than its enterprise application."),
    "full_access": (EXCHANGE_REFUSAL_CODE, "The application has no FullAccess on the mailbox."),
}
# Entra ID keeps sign-ins for 30 days; the emulator keeps a bounded number per tenant instead, oldest dropped.
MAX_SIGN_INS = 50_000


def iso_utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_in_record(user_principal_name: str, *, user: User | None = None, app: App | None = None,
                   ip_address: str = "", client_app_used: str = "Authenticated SMTP", blocker: str | None = None,
                   created: datetime.datetime | None = None) -> dict[str, Any]:
    """One Graph ``signIn`` object; ``blocker`` None is a success, otherwise a key of ``SIGN_IN_FAILURES``.

    ``app`` is the app of an OAuth sign-in; basic authentication signs in to Exchange Online itself.
    """
    code, reason = SIGN_IN_SUCCESS if blocker is None else SIGN_IN_FAILURES[blocker]
    app_id, app_display_name = (app.client_id, app.display_name) if app else (EXCHANGE_ONLINE.app_id,
                                                                               EXCHANGE_ONLINE.display_name)
    return {
        "id": new_guid(),
        "createdDateTime": iso_utc(created or datetime.datetime.now(datetime.timezone.utc)),
        "userDisplayName": user.display_name if user else "",
        "userPrincipalName": user.user_principal_name if user else user_principal_name,
        "userId": user.id if user else "",
        "appId": app_id,
        "appDisplayName": app_display_name,
        "ipAddress": ip_address,
        "clientAppUsed": client_app_used,
        "correlationId": new_guid(),
        "conditionalAccessStatus": "failure" if blocker == "conditional_access" else "notApplied",
        "isInteractive": False,
        "resourceDisplayName": EXCHANGE_ONLINE.display_name,
        "resourceId": EXCHANGE_ONLINE.app_id,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "status": {"errorCode": code, "failureReason": reason, "additionalDetails": None},
        "authenticationDetails": [],
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "", "browser": "",
                         "isCompliant": False, "isManaged": False, "trustType": ""},
        "location": {"city": "", "state": "", "countryOrRegion": "", "geoCoordinates": {}},
        "appliedConditionalAccessPolicies": [],
    }


@dataclass
class User:
    user_principal_name: str
    id: str = field(default_factory=new_guid)
    display_name: str = ""
    password: str | None = None
    licenses: list[str] = field(default_factory=list)
    per_user_mfa_state: str = "disabled"
    mfa_method_registered: bool = False
    has_mailbox: bool = True
    recipient_type_details: str = "UserMailbox"
    primary_smtp_address: str = ""
    # None: follow the organisation's transport setting.
    smtp_client_authentication_disabled: bool | None = None
    authentication_policy: str | None = None
    # [{"user": identity of the trustee, "access_rights": ["FullAccess"]}]
    mailbox_permissions: list[dict[str, Any]] = field(default_factory=list)
    # [trustee identity, ...] holding SendAs on this recipient
    send_as: list[str] = field(default_factory=list)
    # Directory roles the user holds, by name or role template id.
    directory_roles: list[str] = field(default_factory=list)
    # On the Restricted entities list (blocked from sending after spam): MAIL FROM gets 550 5.1.8.
    restricted_sender: bool = False

    def __post_init__(self):
        if not self.display_name:
            self.display_name = self.user_principal_name.split("@")[0]
        if not self.primary_smtp_address:
            self.primary_smtp_address = self.user_principal_name
        if self.per_user_mfa_state not in MFA_STATES:
            raise ValueError(f"user {self.user_principal_name}: per_user_mfa_state must be one of {MFA_STATES}")
        unknown = [name for name in self.licenses if name not in SERVICE_PLANS]
        if unknown:
            raise ValueError(f"user {self.user_principal_name}: unknown service plans {unknown}")
        try:
            for role in self.directory_roles:
                role_template_id(str(role))
        except ValueError as exc:
            raise ValueError(f"user {self.user_principal_name}: {exc}") from None

    @property
    def alias(self) -> str:
        return self.user_principal_name.split("@")[0]

    def assigned_plans(self) -> list[dict[str, Any]]:
        return [
            {
                "assignedDateTime": "2024-01-15T09:00:00Z",
                "capabilityStatus": "Enabled",
                "service": SERVICE_PLANS[name][1],
                "servicePlanId": SERVICE_PLANS[name][0],
            }
            for name in self.licenses
        ]

    @property
    def role_template_ids(self) -> list[str]:
        return [role_template_id(str(role)) for role in self.directory_roles]

    @property
    def has_mailbox_license(self) -> bool:
        return any(SERVICE_PLANS[name][0] in MAILBOX_PLAN_IDS for name in self.licenses)


# Every protocol switch of an Exchange Online authentication policy; a new policy has each one off.
BASIC_AUTH_SWITCHES = tuple(f"AllowBasicAuth{protocol}" for protocol in (
    "ActiveSync", "Autodiscover", "Imap", "Mapi", "OfflineAddressBook", "OutlookService", "Pop", "Powershell",
    "ReportingWebServices", "Rpc", "Smtp", "WebServices"))


def authentication_policy_settings(given: dict[str, Any] | None = None) -> dict[str, bool]:
    """The full switch set of a policy: what ``given`` allows, every other protocol blocked."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(BASIC_AUTH_SWITCHES))
    if unknown:
        raise ValueError(f"unknown authentication policy switches {unknown}; known: {list(BASIC_AUTH_SWITCHES)}")
    return {name: bool(given.get(name, False)) for name in BASIC_AUTH_SWITCHES}


def orphaned_sid(identity: str) -> str:
    """What a permission entry shows once the principal it named is gone: a SID nothing resolves."""
    digest = hashlib.sha256(identity.lower().encode()).digest()
    parts = [int.from_bytes(digest[index:index + 4], "big") for index in range(0, 16, 4)]
    return "S-1-5-21-" + "-".join(str(part) for part in parts)


@dataclass
class ServicePrincipal:
    """An Exchange service principal (New-ServicePrincipal), the link between an Entra app and a mailbox."""

    app_id: str
    object_id: str
    display_name: str = ""
    identity: str = field(default_factory=new_guid)


@dataclass
class Tenant:
    name: str
    id: str = field(default_factory=new_guid)
    domains: list[str] = field(default_factory=list)
    security_defaults_enabled: bool = True
    transport_smtp_auth_disabled: bool = True
    default_authentication_policy: str | None = None
    # name -> {"AllowBasicAuthSmtp": bool, ...}
    authentication_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Inbound connectors (Get-InboundConnector's fields in snake case, see exchange.models): the relay path of
    # devices that cannot authenticate.
    inbound_connectors: list[dict[str, Any]] = field(default_factory=list)
    # Graph-shaped conditionalAccessPolicy objects
    conditional_access_policies: list[dict[str, Any]] = field(default_factory=list)
    apps: dict[str, App] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # keyed by object id, in insertion order
    service_principals: list[ServicePrincipal] = field(default_factory=list)
    # Entra ID P1 or P2: without it the sign-in log API refuses.
    entra_id_premium: bool = True
    # Graph signIn objects, oldest first (see sign_in_record).
    sign_ins: list[dict[str, Any]] = field(default_factory=list)
    # When each app role assignment was made (assignment id -> createdDateTime); seeded grants have none.
    app_role_assigned_at: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.domains:
            self.domains = [f"{self.name}.onmicrosoft.com"]
        self._by_name: dict[str, str] = {}
        for user in self.users.values():
            self._index(user)

    def _index(self, user: User) -> None:
        for key in (user.id, user.user_principal_name, user.primary_smtp_address, user.alias):
            self._by_name.setdefault(key.lower(), user.id)

    def reindex(self) -> None:
        """Rebuild the name index after a user's names changed in place."""
        self._by_name = {}
        for user in self.users.values():
            self._index(user)

    def add_user(self, user: User) -> User:
        if user.user_principal_name.lower() in self._by_name:
            raise ValueError(f"tenant {self.name}: duplicate user {user.user_principal_name}")
        self.users[user.id] = user
        self._index(user)
        return user

    def find_user(self, identity: str | None) -> User | None:
        """Resolve an object id, UPN, primary SMTP address or alias (case-insensitive)."""
        if not identity:
            return None
        user_id = self._by_name.get(str(identity).strip().lower())
        return self.users.get(user_id) if user_id else None

    def find_service_principal(self, identity: str | None) -> ServicePrincipal | None:
        if not identity:
            return None
        wanted = str(identity).lower()
        for principal in self.service_principals:
            if wanted in (principal.app_id.lower(), principal.object_id.lower(), principal.identity.lower(),
                          principal.display_name.lower()):
                return principal
        return None

    def add_sign_in(self, record: dict[str, Any]) -> None:
        self.sign_ins.append(record)
        if len(self.sign_ins) > MAX_SIGN_INS:
            del self.sign_ins[: len(self.sign_ins) - MAX_SIGN_INS]

    def owns_domain_of(self, address: str) -> bool:
        domain = address.rpartition("@")[2].strip().lower()
        return bool(domain) and domain in (name.lower() for name in self.domains)

    def directory_object_ids(self) -> set[str]:
        """Every object id Entra ID knows in this tenant: users, app registrations, service principals."""
        ids = {user.id.lower() for user in self.users.values()}
        for app in self.apps.values():
            ids.update((app.object_id.lower(), app.service_principal_id.lower()))
        ids.update(resource_service_principal_id(self, resource).lower() for resource in RESOURCE_APPLICATIONS)
        return ids

    def matches(self, tenant_ref: str) -> bool:
        ref = tenant_ref.lower()
        return ref == self.id.lower() or ref in (domain.lower() for domain in self.domains)

    def find_inbound_connector(self, name: str | None) -> dict[str, Any] | None:
        wanted = str(name or "").strip().lower()
        return next((connector for connector in self.inbound_connectors if connector["name"].lower() == wanted), None)

    def relay_connector(self, source_address: str) -> dict[str, Any] | None:
        """The enabled OnPremises connector that lists ``source_address`` (the relay's only test by IP)."""
        for connector in self.inbound_connectors:
            if not connector.get("enabled", True) or connector.get("connector_type", "OnPremises") != "OnPremises":
                continue
            if any(address_in(source_address, entry) for entry in connector.get("sender_ip_addresses") or []):
                return connector
        return None

    def snapshot(self) -> dict[str, Any]:
        data = {key: copy.deepcopy(value) for key, value in self.__dict__.items() if not key.startswith("_")}
        data["apps"] = {key: asdict(app) for key, app in self.apps.items()}
        data["users"] = [asdict(user) for user in self.users.values()]
        data["service_principals"] = [asdict(sp) for sp in self.service_principals]
        return data


def sender_ip_network(text: str) -> ipaddress.IPv4Network:
    """One SenderIPAddresses entry as New-InboundConnector documents them: an IPv4 address or a CIDR range from /24
    to /32, IPv6 not supported. ValueError otherwise."""
    network = ipaddress.ip_network(str(text).strip(), strict=False)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"'{text}': IPv6 addresses aren't supported")
    if network.prefixlen < 24:
        raise ValueError(f"'{text}': valid subnet mask values are /24 through /32")
    return network


def address_in(address: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(address) in sender_ip_network(entry)
    except ValueError:
        return False


def resource_service_principal_id(tenant: Tenant, resource: ResourceApplication) -> str:
    """The object id of a first-party application's service principal in ``tenant``."""
    return derived_id("resource-service-principal", tenant.id, resource.app_id)


class TenantStore:
    """All tenants, the behaviour switches and the lock that guards them."""

    def __init__(self, tenants: list[Tenant] | None = None, behaviour: dict[str, Any] | None = None):
        self.lock = threading.RLock()
        self.tenants: list[Tenant] = list(tenants or [])
        self.behaviour: dict[str, Any] = copy.deepcopy(DEFAULT_BEHAVIOUR)
        unknown = set(behaviour or {}) - set(DEFAULT_BEHAVIOUR)
        if unknown:
            raise ValueError(f"unknown behaviour switches: {sorted(unknown)}")
        self.behaviour.update(behaviour or {})

    def find_tenant(self, tenant_ref: str) -> Tenant | None:
        for tenant in self.tenants:
            if tenant.matches(tenant_ref):
                return tenant
        return None

    def find_app(self, client_id: str) -> tuple[Tenant, App] | None:
        for tenant in self.tenants:
            app = tenant.apps.get(client_id)
            if app:
                return tenant, app
        return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"behaviour": copy.deepcopy(self.behaviour), "tenants": [t.snapshot() for t in self.tenants]}
