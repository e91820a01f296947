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

from ..state import (BASIC_AUTH_SWITCHES, ServicePrincipal, Tenant, TenantStore, User, authentication_policy_settings,
                     orphaned_sid, sender_ip_network)
from .errors import (ALREADY_EXISTS_TYPE, COMMAND_NOT_FOUND_TYPE, ERR_ALREADY_EXISTS, ERR_INVALID,
                     INVALID_ARGUMENT_TYPE, VALIDATION_TYPE, CmdletError, binding_error, not_found)
from .objects import (authentication_policy_dn, authentication_policy_object, cas_mailbox_object, directory_server,
                      exchange_guid, inbound_connector_object, mailbox_object, mailbox_permission_object, organization_config_object,
                      recipient_permission_object, service_principal_object, transport_config_object, user_object)
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
MANDATORY_IDENTITY = Parameter("Identity", "string", mandatory=True)
RESULT_SIZE = Parameter("ResultSize", "result_size")
# Accepted and not acted on: through the REST transport nothing prompts, whatever Confirm says.
CONFIRM = Parameter("Confirm", "bool")
POLICY_SWITCHES = tuple(Parameter(name, "bool") for name in BASIC_AUTH_SWITCHES)
MAILBOX_PERMISSION_USER = Parameter("User", "string", mandatory=True)
MAILBOX_ACCESS_RIGHTS = Parameter("AccessRights", "rights", mandatory=True, choices=MAILBOX_RIGHTS)
INHERITANCE_TYPE = Parameter("InheritanceType", "string", choices=INHERITANCE_TYPES)
TRUSTEE = Parameter("Trustee", "string", mandatory=True)
RECIPIENT_ACCESS_RIGHTS = Parameter("AccessRights", "rights", mandatory=True, choices=RECIPIENT_RIGHTS)
DENY = Parameter("Deny", "bool")
CONNECTOR_TYPES = ("OnPremises", "Partner")
# The inbound connector parameters the emulator acts on (New-InboundConnector / Set-InboundConnector in Microsoft's
# cmdlet reference); the others are refused as unknown, which is what a client that sent them would need to know.
CONNECTOR_SETTINGS = (
    Parameter("ConnectorType", "string", choices=CONNECTOR_TYPES),
    Parameter("SenderIPAddresses", "multi", nullable=True),
    Parameter("TlsSenderCertificateName", "string", nullable=True),
    Parameter("Enabled", "bool"),
    Parameter("RequireTls", "bool"),
    Parameter("Comment", "string", nullable=True),
)
CONNECTOR_FIELDS = {"ConnectorType": "connector_type", "SenderIPAddresses": "sender_ip_addresses",
                    "TlsSenderCertificateName": "tls_sender_certificate_name", "Enabled": "enabled",
                    "RequireTls": "require_tls", "Comment": "comment", "SenderDomains": "sender_domains"}


def ace_absent_warning(identity: str, trustee: str) -> str:
    """What Exchange writes when asked to remove a permission that is not there (a warning, not an error)."""
    return (f"Can't remove the access control entry on the object \"{identity}\" for account \"{trustee}\" because "
            "the ACE doesn't exist on the object.")


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
    # Warnings of a cmdlet that answers a plain list (a Listing carries its own).
    warnings: list[str] = field(default_factory=list)


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

    @property
    def policy_shows(self) -> str:
        return str(self.store.behaviour.get("authentication_policy_shows", "name"))

    @cmdlet("Get-User", IDENTITY, RESULT_SIZE)
    def get_user(self) -> Outcome:
        shows = self.policy_shows
        return Outcome(self.recipients(lambda tenant, user: user_object(tenant, user, shows), mailboxes_only=False))

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
        return self.set_reply(user_object(self.tenant, user, self.policy_shows), wrote)

    def resolve_policy(self, name: str | None) -> str | None:
        """An authentication policy by name, distinguished name or Guid; None clears an assignment."""
        if name is None or name == "":
            return None
        wanted = name.strip().lower()
        for known in self.tenant.authentication_policies:
            if wanted in (known.lower(), authentication_policy_dn(self.tenant, known).lower(),
                          exchange_guid(self.tenant.id, "authentication-policy", known)):
                return known
        raise not_found(name, self.server)

    @cmdlet("Get-OrganizationConfig")
    def get_organization_config(self) -> Outcome:
        return Outcome([organization_config_object(self.tenant, self.policy_shows)])

    @cmdlet("Set-OrganizationConfig", Parameter("DefaultAuthenticationPolicy", "string", nullable=True), CONFIRM,
            writes=True)
    def set_organization_config(self) -> Outcome:
        wrote = False
        if "DefaultAuthenticationPolicy" in self.bound:
            policy = self.resolve_policy(self.bound["DefaultAuthenticationPolicy"])
            wrote = self.tenant.default_authentication_policy != policy
            self.tenant.default_authentication_policy = policy
        return self.set_reply(organization_config_object(self.tenant, self.policy_shows), wrote)

    def existing_policy(self, identity: str) -> str:
        name = self.resolve_policy(identity)
        if name is None:
            raise not_found(identity, self.server)
        return name

    def policy_object(self, name: str) -> dict[str, Any]:
        return authentication_policy_object(self.tenant, name, self.tenant.authentication_policies[name])

    @cmdlet("Get-AuthenticationPolicy", IDENTITY)
    def get_authentication_policy(self) -> Outcome:
        if "Identity" in self.bound:
            names = [self.existing_policy(self.bound["Identity"])]
        else:
            names = list(self.tenant.authentication_policies)
        return Outcome([self.policy_object(name) for name in names])

    @cmdlet("New-AuthenticationPolicy", Parameter("Name", "string", mandatory=True), *POLICY_SWITCHES, CONFIRM,
            writes=True)
    def new_authentication_policy(self) -> Outcome:
        name = self.bound["Name"].strip()
        if not name:
            raise binding_error("Cannot validate argument on parameter 'Name'. The argument is null or empty. "
                                "Provide an argument that is not null or empty, and then try the command again.",
                                VALIDATION_TYPE)
        if any(known.lower() == name.lower() for known in self.tenant.authentication_policies):
            raise CmdletError(ALREADY_EXISTS_TYPE, f"The authentication policy '{name}' already exists in "
                                                   f"'{self.tenant.domains[0]}'. Choose another name.",
                              ERR_ALREADY_EXISTS)
        # Every protocol is blocked unless the command allows it.
        self.tenant.authentication_policies[name] = authentication_policy_settings(
            {key: value for key, value in self.bound.items() if key in BASIC_AUTH_SWITCHES})
        # New-* prints the object it made, unlike Set-*.
        return Outcome([self.policy_object(name)], wrote=True)

    @cmdlet("Set-AuthenticationPolicy", MANDATORY_IDENTITY, *POLICY_SWITCHES, CONFIRM, writes=True)
    def set_authentication_policy(self) -> Outcome:
        name = self.existing_policy(self.bound["Identity"])
        settings = self.tenant.authentication_policies[name]
        wrote = False
        for key in BASIC_AUTH_SWITCHES:
            if key in self.bound:
                wrote = wrote or settings.get(key, False) != self.bound[key]
                settings[key] = self.bound[key]
        return self.set_reply(self.policy_object(name), wrote)

    @cmdlet("Remove-AuthenticationPolicy", MANDATORY_IDENTITY, CONFIRM, writes=True)
    def remove_authentication_policy(self) -> Outcome:
        name = self.existing_policy(self.bound["Identity"])
        if self.tenant.default_authentication_policy == name:
            raise CmdletError(INVALID_ARGUMENT_TYPE, f"The authentication policy '{name}' is the organization's "
                                                     "default authentication policy and can't be removed. Change "
                                                     "it with Set-OrganizationConfig -DefaultAuthenticationPolicy "
                                                     "first.", ERR_INVALID)
        # The emulator's choice (the service's behaviour is not documented): a policy that users are assigned
        # is not removed, so that no user keeps a policy that no longer exists.
        assigned = [user.user_principal_name for user in self.tenant.users.values()
                    if user.authentication_policy == name]
        if assigned:
            shown = ", ".join(assigned[:5]) + (f" and {len(assigned) - 5} more" if len(assigned) > 5 else "")
            raise CmdletError(INVALID_ARGUMENT_TYPE, f"The authentication policy '{name}' is assigned to "
                                                     f"{len(assigned)} user(s) ({shown}) and can't be removed. "
                                                     "Assign them another policy (Set-User -AuthenticationPolicy) "
                                                     "first.", ERR_INVALID)
        del self.tenant.authentication_policies[name]
        return Outcome([], wrote=True)

    # -- inbound connectors ------------------------------------------------------------------------------------

    def connector(self, identity: str) -> dict[str, Any]:
        found = self.tenant.find_inbound_connector(identity)
        if found is None:
            raise not_found(identity, self.server)
        return found

    def connector_object(self, connector: dict[str, Any]) -> dict[str, Any]:
        shown = str(self.store.behaviour.get("inbound_connector_sender_domains", "address_space"))
        return inbound_connector_object(self.tenant, connector, shown)

    def connector_changes(self) -> dict[str, Any]:
        """The bound settings as stored fields, checked as Exchange checks them (the documented IP rules)."""
        changes = {}
        for parameter, field_name in CONNECTOR_FIELDS.items():
            if parameter not in self.bound:
                continue
            value = self.bound[parameter]
            if parameter == "SenderIPAddresses":
                value = value or []
                for entry in value:
                    try:
                        sender_ip_network(entry)
                    except ValueError as exc:
                        raise CmdletError(INVALID_ARGUMENT_TYPE, f"The value {exc}. SenderIPAddresses accepts IPv4 "
                                                                 "addresses and CIDR ranges.", ERR_INVALID) from None
            if parameter == "SenderDomains" and not value:
                raise binding_error("Cannot validate argument on parameter 'SenderDomains'. The argument is null or "
                                    "empty.", VALIDATION_TYPE)
            if parameter in ("TlsSenderCertificateName", "Comment"):
                value = value or None
            changes[field_name] = value
        return changes

    @cmdlet("Get-InboundConnector", IDENTITY)
    def get_inbound_connector(self) -> Outcome:
        if "Identity" in self.bound:
            return Outcome([self.connector_object(self.connector(self.bound["Identity"]))])
        return Outcome([self.connector_object(connector) for connector in self.tenant.inbound_connectors])

    @cmdlet("New-InboundConnector", Parameter("Name", "string", mandatory=True),
            Parameter("SenderDomains", "multi", mandatory=True), *CONNECTOR_SETTINGS, CONFIRM, writes=True)
    def new_inbound_connector(self) -> Outcome:
        name = self.bound["Name"].strip()
        if self.tenant.find_inbound_connector(name) is not None:
            raise CmdletError(ALREADY_EXISTS_TYPE, f"The inbound connector '{name}' already exists in "
                                                   f"'{self.tenant.domains[0]}'. Choose another name.",
                              ERR_ALREADY_EXISTS)
        connector = {"name": name, "connector_type": "Partner", "enabled": True, "sender_ip_addresses": [],
                     "tls_sender_certificate_name": None, "require_tls": False, "comment": None}
        connector.update(self.connector_changes())
        self.tenant.inbound_connectors.append(connector)
        # New-* prints the object it made, unlike Set-*.
        return Outcome([self.connector_object(connector)], wrote=True)

    @cmdlet("Set-InboundConnector", MANDATORY_IDENTITY, Parameter("SenderDomains", "multi"), *CONNECTOR_SETTINGS,
            CONFIRM, writes=True)
    def set_inbound_connector(self) -> Outcome:
        connector = self.connector(self.bound["Identity"])
        changes = self.connector_changes()
        wrote = any(connector.get(key) != value for key, value in changes.items())
        connector.update(changes)
        return self.set_reply(self.connector_object(connector), wrote)

    @cmdlet("Remove-InboundConnector", MANDATORY_IDENTITY, CONFIRM, writes=True)
    def remove_inbound_connector(self) -> Outcome:
        self.tenant.inbound_connectors.remove(self.connector(self.bound["Identity"]))
        return Outcome([], wrote=True)

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

    def service_principal(self, identity: str) -> ServicePrincipal:
        principal = self.tenant.find_service_principal(identity)
        if principal is None:
            raise not_found(identity, self.server)
        return principal

    @cmdlet("Get-ServicePrincipal", IDENTITY)
    def get_service_principal(self) -> Outcome:
        if "Identity" in self.bound:
            return Outcome([service_principal_object(self.service_principal(self.bound["Identity"]))])
        return Outcome([service_principal_object(p) for p in self.tenant.service_principals])

    @cmdlet("Set-ServicePrincipal", MANDATORY_IDENTITY, Parameter("DisplayName", "string"), CONFIRM, writes=True)
    def set_service_principal(self) -> Outcome:
        principal = self.service_principal(self.bound["Identity"])
        wrote = False
        if "DisplayName" in self.bound:
            wrote = principal.display_name != self.bound["DisplayName"]
            principal.display_name = self.bound["DisplayName"]
        return self.set_reply(service_principal_object(principal), wrote)

    @cmdlet("Remove-ServicePrincipal", MANDATORY_IDENTITY, CONFIRM, writes=True)
    def remove_service_principal(self) -> Outcome:
        principal = self.service_principal(self.bound["Identity"])
        self.tenant.service_principals.remove(principal)
        # As in Exchange, permissions that named the principal stay on the mailboxes as orphaned entries (a SID
        # nothing resolves): they grant nothing, also not to a service principal made again for the same app.
        orphan = orphaned_sid(principal.identity)
        for user in self.tenant.users.values():
            for entry in user.mailbox_permissions:
                if self.names(entry.get("user", ""), principal):
                    entry["user"] = orphan
            user.send_as = [orphan if self.names(trustee, principal) else trustee for trustee in user.send_as]
        return Outcome([], wrote=True)

    @staticmethod
    def names(stored: str, principal: ServicePrincipal) -> bool:
        return stored.lower() in (principal.identity.lower(), principal.app_id.lower(), principal.object_id.lower())

    def shown_trustee(self, stored: str) -> str:
        """A mailbox permission's User as Get-MailboxPermission shows it: a user's UPN, or for a service principal
        what the behaviour switch mailbox_permission_user says (display_name, identity or app_id)."""
        principal = self.tenant.find_service_principal(stored)
        if principal is None:
            return stored
        shows = self.store.behaviour.get("mailbox_permission_user", "display_name")
        if shows == "app_id":
            return principal.app_id
        if shows == "identity":
            return principal.identity
        return principal.display_name or principal.identity

    def removable_trustee(self, identity: str, stored: list[str]) -> str:
        """The trustee a Remove-* names: a known principal, or the text of an entry nothing resolves any more."""
        try:
            return self.trustee(identity)
        except CmdletError:
            match = next((name for name in stored if name.lower() == identity.strip().lower()), None)
            if match is None:
                raise
            return match

    @cmdlet("Add-MailboxPermission", MANDATORY_IDENTITY, MAILBOX_PERMISSION_USER, MAILBOX_ACCESS_RIGHTS,
            INHERITANCE_TYPE, Parameter("AutoMapping", "bool"), CONFIRM, writes=True)
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

    @cmdlet("Get-MailboxPermission", MANDATORY_IDENTITY, Parameter("User", "string"), RESULT_SIZE)
    def get_mailbox_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        entries = user.mailbox_permissions
        rows = []
        if "User" in self.bound:
            entries = [entry for entry in entries if self.trustee_matches(entry.get("user", ""), self.bound["User"])]
        else:
            rows.append(mailbox_permission_object(user, SELF_TRUSTEE, ["FullAccess, ReadPermission"]))
        for entry in entries:
            rows.append(mailbox_permission_object(user, self.shown_trustee(entry["user"]),
                                                  entry.get("access_rights", []), entry.get("inheritance_type", "All")))
        return Outcome(rows)

    @cmdlet("Remove-MailboxPermission", MANDATORY_IDENTITY, MAILBOX_PERMISSION_USER, MAILBOX_ACCESS_RIGHTS,
            INHERITANCE_TYPE, DENY, CONFIRM, writes=True)
    def remove_mailbox_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        trustee = self.removable_trustee(self.bound["User"], [entry.get("user", "") for entry in
                                                               user.mailbox_permissions])
        entry = next((e for e in user.mailbox_permissions if self.trustee_matches(e.get("user", ""), trustee)), None)
        held = [right for right in self.bound["AccessRights"] if entry is not None and right in entry["access_rights"]]
        if not held:
            # Exchange warns and succeeds when the permission is not there; the warning is all a caller sees.
            return Outcome([], warnings=[ace_absent_warning(user.alias, self.bound["User"])])
        assert entry is not None
        entry["access_rights"] = [right for right in entry["access_rights"] if right not in held]
        if not entry["access_rights"]:
            user.mailbox_permissions.remove(entry)
        return Outcome([], wrote=True)

    @cmdlet("Add-RecipientPermission", MANDATORY_IDENTITY, TRUSTEE, RECIPIENT_ACCESS_RIGHTS, CONFIRM, writes=True)
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

    @cmdlet("Remove-RecipientPermission", MANDATORY_IDENTITY, TRUSTEE, RECIPIENT_ACCESS_RIGHTS, DENY, CONFIRM,
            writes=True)
    def remove_recipient_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        trustee = self.removable_trustee(self.bound["Trustee"], user.send_as)
        kept = [existing for existing in user.send_as if not self.trustee_matches(existing, trustee)]
        if len(kept) == len(user.send_as):
            return Outcome([], warnings=[ace_absent_warning(user.alias, self.bound["Trustee"])])
        user.send_as = kept
        return Outcome([], wrote=True)


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
