"""Exchange Online's cmdlets against the tenant: what each one reads or changes, and the server-side paging
cursors of the admin API. No HTTP here (see ``responses.py``).

Adding a cmdlet is one ``Invocation`` method and its ``@cmdlet`` registration (name, parameters, whether it
writes). Cmdlets run under ``store.lock``, held by the caller from parameter binding to the reply, so a
read-compare-write by a client never sees half of another client's change.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from ..state import ServicePrincipal, Tenant, TenantStore, User
from .errors import (ALREADY_EXISTS_TYPE, COMMAND_NOT_FOUND_TYPE, ERR_ALREADY_EXISTS, VALIDATION_TYPE, CmdletError,
                     binding_error, not_found)
from .objects import (authentication_policy_object, cas_mailbox_object, directory_server, mailbox_object,
                      mailbox_permission_object, organization_config_object, recipient_permission_object,
                      service_principal_object, transport_config_object, user_object)
from .parameters import Parameter, bind

DEFAULT_RESULT_SIZE = 1000
MORE_RESULTS_WARNING = ("There are more results available than are currently displayed. To view them, increase "
                        "the value for the ResultSize parameter.")
PAGINATION_EXPIRED = "Expired or Invalid pagination request"
CURSOR_LIFETIME_SECONDS = 30 * 60
MAX_CURSORS = 512

MAILBOX_RIGHTS = ("FullAccess", "ExternalAccount", "DeleteItem", "ReadPermission", "ChangePermission", "ChangeOwner")
RECIPIENT_RIGHTS = ("SendAs",)
INHERITANCE_TYPES = ("None", "All", "Descendents", "SelfAndChildren", "Children")
SELF_TRUSTEE = "NT AUTHORITY\\SELF"

IDENTITY = Parameter("Identity", "string")
RESULT_SIZE = Parameter("ResultSize", "result_size")
CONFIRM = Parameter("Confirm", "bool")


# -- paging --------------------------------------------------------------------------------------------------

@dataclass
class Cursor:
    tenant_id: str
    fingerprint: str
    keys: list[Any]  # shared between the cursors of one listing, never copied per page
    render: Callable[[Tenant, Any], dict[str, Any] | None]
    offset: int
    created: float
    # The listing's own warnings (a ResultSize cut), sent again on its last page.
    warnings: list[str] = field(default_factory=list)


class PageCursors:
    """Server-side ``$skiptoken`` cursors: bounded in number, each valid for 30 minutes after it was made.

    ``clock`` is replaceable so tests can move time forward instead of waiting.
    """

    def __init__(self, lifetime: float = CURSOR_LIFETIME_SECONDS, capacity: int = MAX_CURSORS,
                 clock: Callable[[], float] = time.monotonic):
        self.lifetime = lifetime
        self.capacity = capacity
        self.clock = clock
        self._cursors: collections.OrderedDict[str, Cursor] = collections.OrderedDict()
        self._lock = threading.Lock()

    def issue(self, cursor: Cursor) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._cursors[token] = cursor
            while len(self._cursors) > self.capacity:
                self._cursors.popitem(last=False)
        return token

    def take(self, token: str, tenant_id: str, fingerprint: str) -> Cursor | None:
        with self._lock:
            cursor = self._cursors.get(token)
            if cursor is None:
                return None
            if self.clock() - cursor.created > self.lifetime:
                del self._cursors[token]
                return None
        if cursor.tenant_id != tenant_id or cursor.fingerprint != fingerprint:
            return None
        return cursor

    def __len__(self) -> int:
        with self._lock:
            return len(self._cursors)


# -- cmdlets -------------------------------------------------------------------------------------------------

class Cmdlet(NamedTuple):
    parameters: list[Parameter]
    method: Callable[[Invocation], Outcome]
    writes: bool


CMDLETS: dict[str, Cmdlet] = {}
_CMDLETS_BY_LOWER: dict[str, str] = {}


def cmdlet(name: str, *parameters: Parameter, writes: bool = False) -> Callable[[Callable[..., Outcome]],
                                                                                  Callable[..., Outcome]]:
    """Register an ``Invocation`` method as the cmdlet ``name`` with its parameters."""
    def register(method: Callable[..., Outcome]) -> Callable[..., Outcome]:
        CMDLETS[name] = Cmdlet(list(parameters), method, writes)
        _CMDLETS_BY_LOWER[name.lower()] = name
        return method
    return register


def canonical_name(name: str) -> str | None:
    """A cmdlet name as registered (PowerShell matches names case-insensitively); None for an unknown one."""
    return _CMDLETS_BY_LOWER.get(name.lower())


@dataclass
class Listing:
    """What a Get-* cmdlet found: keys in order, and how to turn one key into the object sent."""

    keys: list[Any]
    # Turns a key back into an object from the tenant as it is now: a later page shows current state, and a
    # mailbox removed in between is skipped.
    render: Callable[[Tenant, Any], dict[str, Any] | None]
    warnings: list[str]


@dataclass
class Outcome:
    value: list[dict[str, Any]] | Listing
    wrote: bool = False


class Invocation:
    """One cmdlet run against one tenant (the caller holds ``store.lock``)."""

    def __init__(self, store: TenantStore, tenant: Tenant, bound: dict[str, Any]):
        self.store = store
        self.tenant = tenant
        self.bound = bound
        self.server = directory_server(tenant)

    # helpers
    def mailbox(self, identity: str) -> User:
        user = self.tenant.find_user(identity)
        if user is None or not user.has_mailbox:
            raise not_found(identity, self.server)
        return user

    def trustee(self, identity: str) -> str:
        """The stored name of a permission trustee: a user's UPN or an Exchange service principal's identity."""
        principal = self.tenant.find_service_principal(identity)
        if principal is not None:
            return principal.identity
        user = self.tenant.find_user(identity)
        if user is not None:
            return user.user_principal_name
        raise not_found(identity, self.server)

    def trustee_matches(self, stored: str, wanted: str) -> bool:
        if stored.lower() == wanted.lower():
            return True
        principal = self.tenant.find_service_principal(stored)
        if principal is not None:
            return principal is self.tenant.find_service_principal(wanted)
        user = self.tenant.find_user(stored)
        return user is not None and user is self.tenant.find_user(wanted)

    def set_reply(self, obj: dict[str, Any], wrote: bool) -> Outcome:
        return Outcome([obj] if self.store.behaviour.get("set_response") == "object" else [], wrote)

    def recipients(self, render: Callable[[Tenant, User], dict[str, Any]], mailboxes_only: bool,
                   match: Callable[[User], bool] = lambda user: True) -> Listing:
        """Users (or mailboxes) matching ``match``, honouring Identity and ResultSize like Exchange does."""
        limit = self.bound.get("ResultSize", DEFAULT_RESULT_SIZE)
        identity = self.bound.get("Identity")
        users = self.tenant.users
        if identity is not None:
            user = self.mailbox(identity) if mailboxes_only else self.tenant.find_user(identity)
            if user is None:
                raise not_found(identity, self.server)
            candidates: Any = [user] if match(user) else []
        else:
            candidates = users.values()
        keys: list[str] = []
        warnings: list[str] = []
        for user in candidates:
            if mailboxes_only and not user.has_mailbox:
                continue
            if not match(user):
                continue
            if limit is not None and len(keys) >= limit:
                warnings.append(MORE_RESULTS_WARNING)
                break
            keys.append(user.id)

        def render_key(tenant: Tenant, user_id: str) -> dict[str, Any] | None:
            user = tenant.users.get(user_id)
            return render(tenant, user) if user is not None else None

        return Listing(keys, render_key, warnings)

    @cmdlet("Get-CASMailbox", IDENTITY, RESULT_SIZE)
    def get_cas_mailbox(self) -> Outcome:
        return Outcome(self.recipients(cas_mailbox_object, mailboxes_only=True))

    @cmdlet("Set-CASMailbox", Parameter("Identity", "string", mandatory=True),
            Parameter("SmtpClientAuthenticationDisabled", "bool", nullable=True), CONFIRM, writes=True)
    def set_cas_mailbox(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        wrote = False
        if "SmtpClientAuthenticationDisabled" in self.bound:
            value = self.bound["SmtpClientAuthenticationDisabled"]
            if value is None and not self.store.behaviour.get("null_clears_mailbox_switch", True):
                raise binding_error("Cannot validate argument on parameter 'SmtpClientAuthenticationDisabled'. The "
                                    "argument is null. Provide a valid value for the argument, and then try running "
                                    "the command again.", VALIDATION_TYPE)
            wrote = user.smtp_client_authentication_disabled is not value
            user.smtp_client_authentication_disabled = value
        return self.set_reply(cas_mailbox_object(self.tenant, user), wrote)

    @cmdlet("Get-TransportConfig")
    def get_transport_config(self) -> Outcome:
        return Outcome([transport_config_object(self.tenant)])

    @cmdlet("Set-TransportConfig", Parameter("SmtpClientAuthenticationDisabled", "bool"), CONFIRM, writes=True)
    def set_transport_config(self) -> Outcome:
        wrote = False
        if "SmtpClientAuthenticationDisabled" in self.bound:
            value = self.bound["SmtpClientAuthenticationDisabled"]
            wrote = self.tenant.transport_smtp_auth_disabled != value
            self.tenant.transport_smtp_auth_disabled = value
        return self.set_reply(transport_config_object(self.tenant), wrote)

    @cmdlet("Get-Mailbox", IDENTITY, RESULT_SIZE, Parameter("RecipientTypeDetails", "string"),
            Parameter("PrimarySmtpAddress", "string"), Parameter("UserPrincipalName", "string"),
            Parameter("ExternalDirectoryObjectId", "string"))
    def get_mailbox(self) -> Outcome:
        kinds = self.bound.get("RecipientTypeDetails")
        wanted_kinds = {kind.strip().lower() for kind in kinds.split(",")} if kinds else None
        filters = [(field, self.bound[name].lower()) for name, field in (
            ("PrimarySmtpAddress", "primary_smtp_address"), ("UserPrincipalName", "user_principal_name"),
            ("ExternalDirectoryObjectId", "id")) if name in self.bound]

        def match(user: User) -> bool:
            if wanted_kinds is not None and user.recipient_type_details.lower() not in wanted_kinds:
                return False
            return all(getattr(user, field).lower() == value for field, value in filters)

        return Outcome(self.recipients(mailbox_object, mailboxes_only=True, match=match))

    @cmdlet("Get-User", IDENTITY, RESULT_SIZE)
    def get_user(self) -> Outcome:
        return Outcome(self.recipients(user_object, mailboxes_only=False))

    @cmdlet("Set-User", Parameter("Identity", "string", mandatory=True),
            Parameter("AuthenticationPolicy", "string", nullable=True), CONFIRM, writes=True)
    def set_user(self) -> Outcome:
        identity = self.bound["Identity"]
        user = self.tenant.find_user(identity)
        if user is None:
            raise not_found(identity, self.server)
        wrote = False
        if "AuthenticationPolicy" in self.bound:
            policy = self.resolve_policy(self.bound["AuthenticationPolicy"])
            wrote = user.authentication_policy != policy
            user.authentication_policy = policy
        return self.set_reply(user_object(self.tenant, user), wrote)

    def resolve_policy(self, name: str | None) -> str | None:
        if name is None or name == "":
            return None
        for known in self.tenant.authentication_policies:
            if known.lower() == name.lower():
                return known
        raise not_found(name, self.server)

    @cmdlet("Get-OrganizationConfig")
    def get_organization_config(self) -> Outcome:
        return Outcome([organization_config_object(self.tenant)])

    @cmdlet("Set-OrganizationConfig", Parameter("DefaultAuthenticationPolicy", "string", nullable=True), CONFIRM,
            writes=True)
    def set_organization_config(self) -> Outcome:
        wrote = False
        if "DefaultAuthenticationPolicy" in self.bound:
            policy = self.resolve_policy(self.bound["DefaultAuthenticationPolicy"])
            wrote = self.tenant.default_authentication_policy != policy
            self.tenant.default_authentication_policy = policy
        return self.set_reply(organization_config_object(self.tenant), wrote)

    @cmdlet("Get-AuthenticationPolicy", IDENTITY)
    def get_authentication_policy(self) -> Outcome:
        policies = self.tenant.authentication_policies
        if "Identity" in self.bound:
            names = [self.resolve_policy(self.bound["Identity"])]
        else:
            names = list(policies)
        return Outcome([authentication_policy_object(self.tenant, name, policies[name]) for name in names])

    @cmdlet("New-ServicePrincipal", Parameter("AppId", "guid", mandatory=True),
            Parameter("ObjectId", "guid", mandatory=True), Parameter("DisplayName", "string"), CONFIRM, writes=True)
    def new_service_principal(self) -> Outcome:
        app_id, object_id = self.bound["AppId"], self.bound["ObjectId"]
        for principal in self.tenant.service_principals:
            if principal.app_id.lower() == app_id.lower() or principal.object_id.lower() == object_id.lower():
                raise CmdletError(ALREADY_EXISTS_TYPE,
                                  f"The service principal with AppId '{principal.app_id}' and ObjectId "
                                  f"'{principal.object_id}' already exists in '{self.tenant.domains[0]}'.",
                                  ERR_ALREADY_EXISTS)
        principal = ServicePrincipal(app_id=app_id, object_id=object_id,
                                     display_name=self.bound.get("DisplayName") or app_id, identity=object_id)
        self.tenant.service_principals.append(principal)
        # New-* prints the object it made, unlike Set-*.
        return Outcome([service_principal_object(principal)], wrote=True)

    @cmdlet("Get-ServicePrincipal", IDENTITY)
    def get_service_principal(self) -> Outcome:
        if "Identity" in self.bound:
            principal = self.tenant.find_service_principal(self.bound["Identity"])
            if principal is None:
                raise not_found(self.bound["Identity"], self.server)
            return Outcome([service_principal_object(principal)])
        return Outcome([service_principal_object(p) for p in self.tenant.service_principals])

    @cmdlet("Add-MailboxPermission", Parameter("Identity", "string", mandatory=True),
            Parameter("User", "string", mandatory=True),
            Parameter("AccessRights", "rights", mandatory=True, choices=MAILBOX_RIGHTS),
            Parameter("InheritanceType", "string", choices=INHERITANCE_TYPES), Parameter("AutoMapping", "bool"),
            CONFIRM, writes=True)
    def add_mailbox_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        trustee = self.trustee(self.bound["User"])
        rights = self.bound["AccessRights"]
        inheritance = self.bound.get("InheritanceType", "All")
        entry = next((e for e in user.mailbox_permissions if self.trustee_matches(e.get("user", ""), trustee)), None)
        wrote = False
        if entry is None:
            entry = {"user": trustee, "access_rights": [], "inheritance_type": inheritance}
            user.mailbox_permissions.append(entry)
            wrote = True
        for right in rights:
            if right not in entry["access_rights"]:
                entry["access_rights"].append(right)
                wrote = True
        # Add-MailboxPermission prints the permission it granted.
        return Outcome([mailbox_permission_object(user, trustee, rights, inheritance)], wrote)

    @cmdlet("Get-MailboxPermission", Parameter("Identity", "string", mandatory=True), Parameter("User", "string"),
            RESULT_SIZE)
    def get_mailbox_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        rows = [mailbox_permission_object(user, SELF_TRUSTEE, ["FullAccess, ReadPermission"])]
        for entry in user.mailbox_permissions:
            rows.append(mailbox_permission_object(user, entry["user"], entry.get("access_rights", []),
                                                  entry.get("inheritance_type", "All")))
        if "User" in self.bound:
            wanted = self.bound["User"]
            rows = [row for row in rows if row["User"] != SELF_TRUSTEE and self.trustee_matches(row["User"], wanted)]
        return Outcome(rows)

    @cmdlet("Add-RecipientPermission", Parameter("Identity", "string", mandatory=True),
            Parameter("Trustee", "string", mandatory=True),
            Parameter("AccessRights", "rights", mandatory=True, choices=RECIPIENT_RIGHTS), CONFIRM, writes=True)
    def add_recipient_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        trustee = self.trustee(self.bound["Trustee"])
        wrote = not any(self.trustee_matches(existing, trustee) for existing in user.send_as)
        if wrote:
            user.send_as.append(trustee)
        return Outcome([recipient_permission_object(user, trustee)], wrote)

    @cmdlet("Get-RecipientPermission", IDENTITY, Parameter("Trustee", "string"),
            Parameter("AccessRights", "rights", choices=RECIPIENT_RIGHTS), RESULT_SIZE)
    def get_recipient_permission(self) -> Outcome:
        wanted = self.bound.get("Trustee")
        if "AccessRights" in self.bound and "SendAs" not in self.bound["AccessRights"]:
            return Outcome([])

        def grants(user: User) -> list[tuple[str, str]]:
            return [(user.id, trustee) for trustee in [SELF_TRUSTEE, *user.send_as]
                    if wanted is None or (trustee != SELF_TRUSTEE and self.trustee_matches(trustee, wanted))]

        def render(tenant: Tenant, key: tuple[str, str]) -> dict[str, Any] | None:
            user = tenant.users.get(key[0])
            return recipient_permission_object(user, key[1]) if user is not None else None

        if "Identity" in self.bound:
            keys = grants(self.mailbox(self.bound["Identity"]))
        else:
            keys = [key for user in self.tenant.users.values() if user.has_mailbox for key in grants(user)]
        limit = self.bound.get("ResultSize", DEFAULT_RESULT_SIZE)
        warnings = []
        if limit is not None and len(keys) > limit:
            keys, warnings = keys[:limit], [MORE_RESULTS_WARNING]
        return Outcome(Listing(keys, render, warnings))


def run_cmdlet(store: TenantStore, tenant: Tenant, name: str, parameters: dict[str, Any]) -> Outcome:
    """Bind and run one cmdlet; raises ``CmdletError`` in Exchange's terms. The caller holds ``store.lock``."""
    canonical = canonical_name(name)
    if canonical is None:
        raise CmdletError(COMMAND_NOT_FOUND_TYPE,
                          f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or "
                          f"executable program. Check the spelling of the name, or if a path was included, verify "
                          f"that the path is correct and try again.", code="BadRequest")
    registered = CMDLETS[canonical]
    bound = bind(canonical, registered.parameters, parameters)
    return registered.method(Invocation(store, tenant, bound))
