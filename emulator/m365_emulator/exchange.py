"""Exchange Online admin API: ``POST /adminapi/beta/{tenant}/InvokeCommand`` and the cmdlets it runs.

The REST transport behind ExchangeOnlineManagement v3 is undocumented; the shapes here follow what
production callers of it parse (see docs/architecture.md). Facts that are not confirmed live are behaviour
switches in ``TenantStore.behaviour``: ``set_response``, ``null_clears_mailbox_switch``, ``exchange_paging``
and ``exchange_page_size``.

Cmdlets run under ``store.lock`` from parameter binding to the reply, so a read-compare-write by a client
never sees half of another client's change.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .state import ServicePrincipal, Tenant, TenantStore, User

INVOKE_PATH = re.compile(r"^/adminapi/beta/(?P<tenant>[^/]+)/InvokeCommand$")

MANAGE_AS_APP = "Exchange.ManageAsApp"
# Directory roles that carry the Exchange RBAC needed for these cmdlets, by name and by template id (wids).
ADMIN_ROLES = {
    "exchange administrator", "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "global administrator", "62e90394-69f5-4237-9190-012177145e10",
}

DEFAULT_RESULT_SIZE = 1000
MORE_RESULTS_WARNING = ("There are more results available than are currently displayed. To view them, increase "
                        "the value for the ResultSize parameter.")
PAGINATION_EXPIRED = "Expired or Invalid pagination request"
CURSOR_LIFETIME_SECONDS = 30 * 60
MAX_CURSORS = 512

COLLECTION_OF_STRING = "#Collection(String)"
EXCHANGE_OBJECT_GUID_NAMESPACE = uuid.UUID("5b0b9c4e-2f1d-4a57-9f0e-6c3a1d2e7b88")
SEEN_AT = "2024-01-15T09:00:00Z"

# Error ids as Exchange prints them before the exception type. Ex6F9304 (object not found) is the one seen in
# public reports; the others are placeholders of the same shape so that clients never depend on their value.
ERR_NOT_FOUND = "Ex6F9304"
ERR_ALREADY_EXISTS = "ExB9E1C4"
ERR_INVALID = "Ex2A7D11"

NOT_FOUND_TYPE = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
ALREADY_EXISTS_TYPE = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
INVALID_ARGUMENT_TYPE = "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException"
BINDING_TYPE = "System.Management.Automation.ParameterBindingException"
TRANSFORMATION_TYPE = "System.Management.Automation.ParameterBindingArgumentTransformationException"
VALIDATION_TYPE = "System.Management.Automation.ParameterBindingValidationException"
COMMAND_NOT_FOUND_TYPE = "System.Management.Automation.CommandNotFoundException"
# What the REST layer wraps a parameter binding failure in (an unknown or ambiguous parameter).
PARAMETER_SET_TYPE = "Microsoft.Exchange.Admin.OData.Core.AmbiguousParameterSetException"
CMDLET_EXECUTION_TYPE = "Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdletExecutionException"
# What a captured not-found (HTTP 404) is wrapped in: the OData layer's exception around the cmdlet execution one.
ODATA_SERVICE_TYPE = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"

MAILBOX_RIGHTS = ("FullAccess", "ExternalAccount", "DeleteItem", "ReadPermission", "ChangePermission", "ChangeOwner")
RECIPIENT_RIGHTS = ("SendAs",)
INHERITANCE_TYPES = ("None", "All", "Descendents", "SelfAndChildren", "Children")
SELF_TRUSTEE = "NT AUTHORITY\\SELF"


class CmdletError(Exception):
    """A cmdlet failure, answered as Exchange's error envelope with ``ErrId|ExceptionType|Text`` details."""

    def __init__(self, exception_type: str, text: str, error_id: str = "", code: str = "InternalServerError",
                 wrapper_type: str = CMDLET_EXECUTION_TYPE, status: int = 400, detail_code: str = "Context",
                 internal_type: str | None = None):
        super().__init__(text)
        self.exception_type = exception_type
        self.text = text
        self.error_id = error_id
        self.code = code
        self.wrapper_type = wrapper_type
        self.status = status
        self.detail_code = detail_code
        # The exception inside the wrapper; None: the cmdlet's own exception, with its text.
        self.internal_type = internal_type


def binding_error(text: str, exception_type: str = BINDING_TYPE) -> CmdletError:
    return CmdletError(exception_type, text, code="BadRequest", wrapper_type=PARAMETER_SET_TYPE)


def not_found(identity: Any, server: str) -> CmdletError:
    """The captured shape: HTTP 404, code NotFound, details[0].code Client, the cmdlet exception only in details."""
    return CmdletError(NOT_FOUND_TYPE, f"The operation couldn't be performed because object '{identity}' couldn't be "
                                       f"found on '{server}'.", ERR_NOT_FOUND, code="NotFound",
                       wrapper_type=ODATA_SERVICE_TYPE, status=404, detail_code="Client",
                       internal_type=CMDLET_EXECUTION_TYPE)


# -- parameters ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    """One cmdlet parameter: ``kind`` decides which JSON values bind; ``choices`` limits string values."""

    name: str
    kind: str  # "string", "bool", "result_size", "rights", "guid"
    mandatory: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()


def _type_name(value: Any) -> str:
    return {str: "System.String", bool: "System.Boolean", int: "System.Int32", float: "System.Double",
            list: "System.Object[]", dict: "System.Collections.Hashtable"}.get(type(value), "System.Object")


def _convert(parameter: Parameter, value: Any) -> Any:
    name = parameter.name
    if value is None:
        if parameter.nullable:
            return None
        raise binding_error(f"Cannot validate argument on parameter '{name}'. The argument is null. Provide a valid "
                            f"value for the argument, and then try running the command again.", VALIDATION_TYPE)
    if parameter.kind == "bool":
        # PowerShell binds booleans from booleans and numbers only; "true" as a string is refused.
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                            f"\"{_type_name(value)}\" to type \"System.Boolean\". Boolean parameters accept only "
                            f"Boolean values and numbers, such as $True, $False, 1 or 0.", TRANSFORMATION_TYPE)
    if parameter.kind == "result_size":
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return None
        number = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                                f"\"{value}\" to type \"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\". "
                                f"Use a positive number or 'Unlimited'.", TRANSFORMATION_TYPE)
        return number
    if parameter.kind == "rights":
        items = value if isinstance(value, list) else [value]
        rights = []
        for item in items:
            words = item.split(",") if isinstance(item, str) else [item]
            for word in words:
                match = next((c for c in parameter.choices if isinstance(word, str) and c.lower() == word.strip().lower()),
                             None)
                if match is None:
                    raise binding_error(f"Cannot bind parameter '{name}'. Cannot convert value \"{word}\" to type "
                                        f"\"Microsoft.Exchange.Management.RecipientTasks.MailboxRights\". Error: "
                                        f"\"The valid values are: {', '.join(parameter.choices)}.\"",
                                        TRANSFORMATION_TYPE)
                if match not in rights:
                    rights.append(match)
        return rights
    if not isinstance(value, str):
        raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert the "
                            f"\"{_type_name(value)}\" value to type \"System.String\".", TRANSFORMATION_TYPE)
    if parameter.kind == "guid":
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                                f"\"{value}\" to type \"System.Guid\". Error: \"Guid should contain 32 digits with "
                                f"4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).\"", TRANSFORMATION_TYPE) from None
    if parameter.choices:
        match = next((choice for choice in parameter.choices if choice.lower() == value.lower()), None)
        if match is None:
            raise binding_error(f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
                                f"\"{name}\". Error: \"The valid values are: {', '.join(parameter.choices)}.\"",
                                TRANSFORMATION_TYPE)
        return match
    return value


def bind(cmdlet: str, parameters: list[Parameter], given: dict[str, Any]) -> dict[str, Any]:
    """Bind JSON parameters the way PowerShell does: case-insensitive names, unique prefixes, typed values."""
    bound: dict[str, Any] = {}
    for raw_name, value in given.items():
        wanted = raw_name.lstrip("-").lower()
        exact = [p for p in parameters if p.name.lower() == wanted]
        candidates = exact or [p for p in parameters if p.name.lower().startswith(wanted)] if wanted else []
        if not candidates:
            raise binding_error(f"A parameter cannot be found that matches parameter name '{raw_name}'.")
        if len(candidates) > 1:
            names = " ".join(f"-{p.name}" for p in candidates)
            raise binding_error(f"Parameter cannot be processed because the parameter name '{raw_name}' is ambiguous. "
                                f"Possible matches include: {names}.")
        parameter = candidates[0]
        if parameter.name in bound:
            raise binding_error(f"Cannot bind parameter because parameter '{parameter.name}' is specified more than "
                                f"once.")
        bound[parameter.name] = _convert(parameter, value)
    missing = [p.name for p in parameters if p.mandatory and p.name not in bound]
    if missing:
        raise binding_error(f"Cannot process command because of one or more missing mandatory parameters: "
                            f"{' '.join(missing)}.")
    return bound


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


# -- objects -------------------------------------------------------------------------------------------------

def annotate(properties: dict[str, Any]) -> dict[str, Any]:
    """Add the OData type annotation that Exchange puts before every collection-valued property."""
    result: dict[str, Any] = {}
    for key, value in properties.items():
        if isinstance(value, list):
            result[f"{key}@odata.type"] = COLLECTION_OF_STRING
        result[key] = value
    return result


def exchange_guid(*parts: str) -> str:
    return str(uuid.uuid5(EXCHANGE_OBJECT_GUID_NAMESPACE, "/".join(parts)))


def directory_server(tenant: Tenant) -> str:
    """A stable domain-controller-like name that Exchange names in not-found errors."""
    number = int(hashlib.sha256(tenant.id.encode()).hexdigest()[:6], 16)
    return f"AM{number % 9 + 1}PR{number % 90 + 10:02d}A{number % 900 + 100:03d}DC{number % 9 + 1:03d}.EURPRD{number % 90 + 10:02d}.PROD.OUTLOOK.COM"


def _distinguished_name(tenant: Tenant, name: str) -> str:
    return f"CN={name},OU={tenant.domains[0]},OU=Microsoft Exchange Hosted Organizations,DC=EURPRD10,DC=PROD,DC=OUTLOOK,DC=COM"


def _email_addresses(tenant: Tenant, user: User) -> list[str]:
    addresses = [f"SMTP:{user.primary_smtp_address}"]
    for address in (user.user_principal_name, f"{user.alias}@{tenant.domains[0]}"):
        if address.lower() != user.primary_smtp_address.lower() and f"smtp:{address}" not in addresses:
            addresses.append(f"smtp:{address}")
    return addresses


def _recipient_base(tenant: Tenant, user: User) -> dict[str, Any]:
    return {
        "Identity": user.alias,
        "Name": user.alias,
        "DisplayName": user.display_name,
        "DistinguishedName": _distinguished_name(tenant, user.alias),
        "ExternalDirectoryObjectId": user.id,
        "Guid": exchange_guid(tenant.id, user.id),
        "ExchangeObjectId": exchange_guid(tenant.id, user.id),
        "OrganizationId": f"{tenant.domains[0]} - {tenant.domains[0]}",
    }


def cas_mailbox_object(tenant: Tenant, user: User) -> dict[str, Any]:
    return annotate({
        **_recipient_base(tenant, user),
        "PrimarySmtpAddress": user.primary_smtp_address,
        "EmailAddresses": _email_addresses(tenant, user),
        "SmtpClientAuthenticationDisabled": user.smtp_client_authentication_disabled,
        "ActiveSyncEnabled": True,
        "OWAEnabled": True,
        "OWAforDevicesEnabled": True,
        "ECPEnabled": True,
        "PopEnabled": True,
        "ImapEnabled": True,
        "MAPIEnabled": True,
        "EwsEnabled": True,
        "UniversalOutlookEnabled": True,
        "OutlookMobileEnabled": True,
        "MacOutlookEnabled": True,
        "ActiveSyncAllowedDeviceIDs": [],
        "ActiveSyncBlockedDeviceIDs": [],
        "ServerName": "am9pr10mb1234",
        "IsValid": True,
        "ObjectState": "Unchanged",
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })


def mailbox_object(tenant: Tenant, user: User) -> dict[str, Any]:
    return annotate({
        **_recipient_base(tenant, user),
        "Alias": user.alias,
        "UserPrincipalName": user.user_principal_name,
        "PrimarySmtpAddress": user.primary_smtp_address,
        "WindowsEmailAddress": user.primary_smtp_address,
        "EmailAddresses": _email_addresses(tenant, user),
        "RecipientType": "UserMailbox",
        "RecipientTypeDetails": user.recipient_type_details,
        "ExchangeGuid": exchange_guid(tenant.id, user.id, "mailbox"),
        "IsMailboxEnabled": True,
        "AccountDisabled": False,
        "HiddenFromAddressListsEnabled": False,
        "LitigationHoldEnabled": False,
        "ArchiveStatus": "None",
        "ProhibitSendQuota": "99 GB (106,300,440,576 bytes)",
        "SKUAssigned": user.has_mailbox_license,
        "IsDirSynced": False,
        "WhenMailboxCreated": SEEN_AT,
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })


def user_object(tenant: Tenant, user: User) -> dict[str, Any]:
    recipient_type = "UserMailbox" if user.has_mailbox else "User"
    return annotate({
        **_recipient_base(tenant, user),
        "UserPrincipalName": user.user_principal_name,
        "WindowsEmailAddress": user.primary_smtp_address if user.has_mailbox else "",
        "RecipientType": recipient_type,
        "RecipientTypeDetails": user.recipient_type_details if user.has_mailbox else "User",
        "AuthenticationPolicy": user.authentication_policy,
        "AccountDisabled": False,
        "IsDirSynced": False,
        "SKUAssigned": user.has_mailbox_license,
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })


def authentication_policy_object(tenant: Tenant, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Identity": name,
        "Name": name,
        "DistinguishedName": _distinguished_name(tenant, name),
        "Guid": exchange_guid(tenant.id, "authentication-policy", name),
    }
    for protocol in ("ActiveSync", "Autodiscover", "Imap", "Mapi", "OfflineAddressBook", "OutlookService", "Pop",
                     "Reporting", "Rest", "Rpc", "Smtp", "Web", "WebServices", "Powershell"):
        key = f"AllowBasicAuth{protocol}"
        # Exchange creates policies with every protocol blocked; the seed only lists what it allows.
        properties[key] = bool(settings.get(key, False))
    properties["WhenChanged"] = SEEN_AT
    properties["WhenCreated"] = SEEN_AT
    return annotate(properties)


def service_principal_object(principal: ServicePrincipal) -> dict[str, Any]:
    return annotate({
        "Identity": principal.identity,
        "Name": principal.identity,
        "DisplayName": principal.display_name,
        "AppId": principal.app_id,
        "ObjectId": principal.object_id,
        "ServiceId": principal.object_id,
        "Organization": None,
        "IsValid": True,
        "ObjectState": "Unchanged",
    })


def mailbox_permission_object(user: User, trustee: str, rights: list[str], inheritance: str = "All") -> dict[str, Any]:
    return annotate({
        "Identity": user.alias,
        "User": trustee,
        "AccessRights": list(rights),
        "IsInherited": False,
        "Deny": False,
        "InheritanceType": inheritance,
        "IsValid": True,
        "ObjectState": "Unchanged",
    })


def recipient_permission_object(user: User, trustee: str) -> dict[str, Any]:
    return annotate({
        "Identity": user.alias,
        "Trustee": trustee,
        "AccessControlType": "Allow",
        "AccessRights": ["SendAs"],
        "IsInherited": False,
        "InheritanceType": "None",
        "IsValid": True,
        "ObjectState": "Unchanged",
    })


# -- cmdlets -------------------------------------------------------------------------------------------------

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

    # Get-CASMailbox / Set-CASMailbox
    def get_cas_mailbox(self) -> Outcome:
        return Outcome(self.recipients(cas_mailbox_object, mailboxes_only=True))

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

    # Get-TransportConfig / Set-TransportConfig
    def transport_config(self) -> dict[str, Any]:
        return annotate({
            "Identity": "Transport Settings",
            "Name": "Transport Settings",
            "SmtpClientAuthenticationDisabled": self.tenant.transport_smtp_auth_disabled,
            "MaxSendSize": "35 MB (36,700,160 bytes)",
            "MaxReceiveSize": "36 MB (37,748,736 bytes)",
            "MaxRecipientEnvelopeLimit": "500",
            "ExternalPostmasterAddress": None,
            "InternalSMTPServers": [],
            "TLSReceiveDomainSecureList": [],
            "TLSSendDomainSecureList": [],
            "Guid": exchange_guid(self.tenant.id, "transport-config"),
            "WhenChanged": SEEN_AT,
        })

    def get_transport_config(self) -> Outcome:
        return Outcome([self.transport_config()])

    def set_transport_config(self) -> Outcome:
        wrote = False
        if "SmtpClientAuthenticationDisabled" in self.bound:
            value = self.bound["SmtpClientAuthenticationDisabled"]
            wrote = self.tenant.transport_smtp_auth_disabled != value
            self.tenant.transport_smtp_auth_disabled = value
        return self.set_reply(self.transport_config(), wrote)

    # Get-Mailbox
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

    # Get-User / Set-User
    def get_user(self) -> Outcome:
        return Outcome(self.recipients(user_object, mailboxes_only=False))

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

    # Get-OrganizationConfig / Set-OrganizationConfig
    def organization_config(self) -> dict[str, Any]:
        return annotate({
            "Identity": self.tenant.domains[0],
            "Name": self.tenant.domains[0],
            "DisplayName": self.tenant.name,
            "DefaultAuthenticationPolicy": self.tenant.default_authentication_policy,
            "OAuth2ClientProfileEnabled": True,
            "IsDehydrated": False,
            "AcceptedDomains": list(self.tenant.domains),
            "Guid": exchange_guid(self.tenant.id, "organization"),
            "WhenChanged": SEEN_AT,
        })

    def get_organization_config(self) -> Outcome:
        return Outcome([self.organization_config()])

    def set_organization_config(self) -> Outcome:
        wrote = False
        if "DefaultAuthenticationPolicy" in self.bound:
            policy = self.resolve_policy(self.bound["DefaultAuthenticationPolicy"])
            wrote = self.tenant.default_authentication_policy != policy
            self.tenant.default_authentication_policy = policy
        return self.set_reply(self.organization_config(), wrote)

    # Get-AuthenticationPolicy
    def get_authentication_policy(self) -> Outcome:
        policies = self.tenant.authentication_policies
        if "Identity" in self.bound:
            names = [self.resolve_policy(self.bound["Identity"])]
        else:
            names = list(policies)
        return Outcome([authentication_policy_object(self.tenant, name, policies[name]) for name in names])

    # New-ServicePrincipal / Get-ServicePrincipal
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

    def get_service_principal(self) -> Outcome:
        if "Identity" in self.bound:
            principal = self.tenant.find_service_principal(self.bound["Identity"])
            if principal is None:
                raise not_found(self.bound["Identity"], self.server)
            return Outcome([service_principal_object(principal)])
        return Outcome([service_principal_object(p) for p in self.tenant.service_principals])

    # Add-MailboxPermission / Get-MailboxPermission
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

    # Add-RecipientPermission / Get-RecipientPermission
    def add_recipient_permission(self) -> Outcome:
        user = self.mailbox(self.bound["Identity"])
        trustee = self.trustee(self.bound["Trustee"])
        wrote = not any(self.trustee_matches(existing, trustee) for existing in user.send_as)
        if wrote:
            user.send_as.append(trustee)
        return Outcome([recipient_permission_object(user, trustee)], wrote)

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


_IDENTITY = Parameter("Identity", "string")
_RESULT_SIZE = Parameter("ResultSize", "result_size")
_CONFIRM = Parameter("Confirm", "bool")

# name -> (parameters, method, writes)
CMDLETS: dict[str, tuple[list[Parameter], Callable[[Invocation], Outcome], bool]] = {
    "Get-CASMailbox": ([_IDENTITY, _RESULT_SIZE], Invocation.get_cas_mailbox, False),
    "Set-CASMailbox": ([Parameter("Identity", "string", mandatory=True),
                        Parameter("SmtpClientAuthenticationDisabled", "bool", nullable=True), _CONFIRM],
                       Invocation.set_cas_mailbox, True),
    "Get-TransportConfig": ([], Invocation.get_transport_config, False),
    "Set-TransportConfig": ([Parameter("SmtpClientAuthenticationDisabled", "bool"), _CONFIRM],
                            Invocation.set_transport_config, True),
    "Get-Mailbox": ([_IDENTITY, _RESULT_SIZE, Parameter("RecipientTypeDetails", "string"),
                     Parameter("PrimarySmtpAddress", "string"), Parameter("UserPrincipalName", "string"),
                     Parameter("ExternalDirectoryObjectId", "string")], Invocation.get_mailbox, False),
    "Get-User": ([_IDENTITY, _RESULT_SIZE], Invocation.get_user, False),
    "Set-User": ([Parameter("Identity", "string", mandatory=True),
                  Parameter("AuthenticationPolicy", "string", nullable=True), _CONFIRM], Invocation.set_user, True),
    "Get-OrganizationConfig": ([], Invocation.get_organization_config, False),
    "Set-OrganizationConfig": ([Parameter("DefaultAuthenticationPolicy", "string", nullable=True), _CONFIRM],
                               Invocation.set_organization_config, True),
    "Get-AuthenticationPolicy": ([_IDENTITY], Invocation.get_authentication_policy, False),
    "New-ServicePrincipal": ([Parameter("AppId", "guid", mandatory=True), Parameter("ObjectId", "guid", mandatory=True),
                              Parameter("DisplayName", "string"), _CONFIRM], Invocation.new_service_principal, True),
    "Get-ServicePrincipal": ([_IDENTITY], Invocation.get_service_principal, False),
    "Add-MailboxPermission": ([Parameter("Identity", "string", mandatory=True),
                               Parameter("User", "string", mandatory=True),
                               Parameter("AccessRights", "rights", mandatory=True, choices=MAILBOX_RIGHTS),
                               Parameter("InheritanceType", "string", choices=INHERITANCE_TYPES),
                               Parameter("AutoMapping", "bool"), _CONFIRM], Invocation.add_mailbox_permission, True),
    "Get-MailboxPermission": ([Parameter("Identity", "string", mandatory=True), Parameter("User", "string"),
                               _RESULT_SIZE], Invocation.get_mailbox_permission, False),
    "Add-RecipientPermission": ([Parameter("Identity", "string", mandatory=True),
                                 Parameter("Trustee", "string", mandatory=True),
                                 Parameter("AccessRights", "rights", mandatory=True, choices=RECIPIENT_RIGHTS),
                                 _CONFIRM], Invocation.add_recipient_permission, True),
    "Get-RecipientPermission": ([_IDENTITY, Parameter("Trustee", "string"),
                                 Parameter("AccessRights", "rights", choices=RECIPIENT_RIGHTS), _RESULT_SIZE],
                                Invocation.get_recipient_permission, False),
}
_CMDLETS_BY_LOWER = {name.lower(): name for name in CMDLETS}


def parse_cmdlet_input(body: Any) -> tuple[str, dict[str, Any]]:
    """``{"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}`` -> (name, parameters); ValueError if malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("CmdletInput"), dict):
        raise ValueError("the body must be an object with a 'CmdletInput' object")
    cmdlet_input = body["CmdletInput"]
    name = cmdlet_input.get("CmdletName")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("'CmdletInput.CmdletName' must be a non-empty string")
    parameters = cmdlet_input.get("Parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValueError("'CmdletInput.Parameters' must be an object")
    return name.strip(), parameters


def run_cmdlet(store: TenantStore, tenant: Tenant, name: str, parameters: dict[str, Any]) -> Outcome:
    """Bind and run one cmdlet; raises ``CmdletError`` in Exchange's terms. The caller holds ``store.lock``."""
    canonical = _CMDLETS_BY_LOWER.get(name.lower())
    if canonical is None:
        raise CmdletError(COMMAND_NOT_FOUND_TYPE,
                          f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or "
                          f"executable program. Check the spelling of the name, or if a path was included, verify "
                          f"that the path is correct and try again.", code="BadRequest")
    spec, method, _ = CMDLETS[canonical]
    bound = bind(canonical, spec, parameters)
    return method(Invocation(store, tenant, bound))


# -- HTTP ----------------------------------------------------------------------------------------------------

def error_body(request: Any, error: CmdletError) -> dict[str, Any]:
    detail = f"{error.error_id}|{error.exception_type}|{error.text}"
    if error.internal_type is None:
        internal = {"message": error.text, "type": error.exception_type, "stacktrace": ""}
    else:
        internal = {"message": f"Exception of type '{error.internal_type}' was thrown.", "type": error.internal_type,
                    "stacktrace": ""}
    body: dict[str, Any] = {
        "code": error.code,
        "message": "Error executing cmdlet",
        "details": [{"code": error.detail_code, "target": "", "message": detail}],
        "innererror": {
            "message": "Error executing cmdlet",
            "type": error.wrapper_type,
            "stacktrace": "",
            "internalexception": internal,
            "request-id": getattr(request, "request_id", ""),
        },
    }
    if error.status == 404:
        # The captured not-found carries the warnings annotation inside the error object.
        body["adminapi.warnings@odata.type"] = COLLECTION_OF_STRING
        body["@adminapi.warnings"] = []
    return {"error": body}


def _unauthorized(reason: str) -> Any:
    """Exchange's 401: a bearer challenge and a diagnostics header, in the same shape as ``tokens.authorize``."""
    from .server import Response
    return Response(401, f"401 Unauthorized: {reason}", {
        "WWW-Authenticate": 'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                            'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                            'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                            'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                            'error="invalid_token"',
        "x-ms-diagnostics": f'2000008;reason="{reason}";error_category="insufficient_claims"',
        "Content-Type": "text/plain; charset=utf-8",
    })


def _forbidden(app_name: str, tenant: Tenant) -> Any:
    from .server import Response
    # Observed live: this 403 is not JSON. Clients must cope with an HTML body.
    html = ("<html><head><title>403 - Forbidden</title></head><body><h1>403 - Forbidden: Access is denied.</h1>"
            f"<p>The application '{app_name}' has {MANAGE_AS_APP} but no Exchange administrator role in "
            f"'{tenant.domains[0]}'.</p></body></html>")
    return Response(403, html, {"Content-Type": "text/html; charset=utf-8"})


def _has_admin_role(claims: Any) -> bool:
    # Exchange evaluates RBAC on its side from the app's current role assignments, not from the token's wids:
    # a role removed after the token was issued stops working at once.
    roles = {str(role).lower() for role in getattr(claims.app, "directory_roles", []) or []}
    return bool(roles & ADMIN_ROLES)


def _fingerprint(name: str, parameters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([name.lower(), parameters], sort_keys=True, default=str).encode()).hexdigest()


class ExchangeService:
    """The InvokeCommand endpoint of one emulator."""

    def __init__(self, emulator: Any, cursors: PageCursors | None = None):
        self.emulator = emulator
        self.cursors = cursors if cursors is not None else PageCursors()

    def invoke(self, request: Any, match: re.Match[str]) -> Any:
        from . import tokens
        from .server import HttpError, Response, error_response

        tenant_ref = match["tenant"]
        claims = tokens.authorize(self.emulator, request, "exchange")
        store: TenantStore = self.emulator.store
        with store.lock:
            tenant = store.find_tenant(tenant_ref)
            if tenant is not None:
                request.log["tenant"] = tenant.id
            if tenant is None or tenant.id != claims.tenant.id:
                return _unauthorized(f"The token's tenant does not match the organization '{tenant_ref}'.")
            roles = set(getattr(claims, "roles", []) or [])
            if MANAGE_AS_APP not in roles:
                return _unauthorized(f"The token has no {MANAGE_AS_APP} application permission.")
            if not _has_admin_role(claims):
                return _forbidden(claims.app.display_name, tenant)
            try:
                name, parameters = parse_cmdlet_input(request.json())
            except ValueError as exc:
                raise HttpError(error_response(request, 400, "BadRequest", f"Invalid CmdletInput: {exc}.")) from None
            request.log["cmdlet"] = _CMDLETS_BY_LOWER.get(name.lower(), name)
            try:
                if "$skiptoken" in request.query:
                    return self.next_page(request, tenant, tenant_ref, name, parameters)
                outcome = run_cmdlet(store, tenant, name, parameters)
            except CmdletError as error:
                return Response(error.status, error_body(request, error))
            request.log["wrote"] = outcome.wrote
            if isinstance(outcome.value, list):
                return Response(200, self.envelope(request, tenant_ref, outcome.value, []))
            return self.first_page(request, tenant, tenant_ref, name, parameters, outcome.value)

    def page_size(self, request: Any) -> int:
        size = int(self.emulator.store.behaviour.get("exchange_page_size") or 1000)
        preference = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", request.headers.get("prefer") or "")
        if preference and int(preference.group(1)) > 0:
            size = min(size, int(preference.group(1)))
        return max(1, size)

    def first_page(self, request: Any, tenant: Tenant, tenant_ref: str, name: str, parameters: dict[str, Any],
                   listing: Listing) -> Any:
        from .server import Response
        size = self.page_size(request)
        keys = listing.keys
        rows = self.render(tenant, listing, 0, size)
        body = self.envelope(request, tenant_ref, rows, listing.warnings)
        if len(keys) > size:
            # Every page with more to come says so, with or without a link to the rest (the "warning" mode
            # has none: the truncated first page is all there is).
            if MORE_RESULTS_WARNING not in body["@adminapi.warnings"]:
                body["@adminapi.warnings"].append(MORE_RESULTS_WARNING)
            if self.emulator.store.behaviour.get("exchange_paging", "follow") != "warning":
                token = self.cursors.issue(Cursor(tenant.id, _fingerprint(name, parameters), keys, listing.render,
                                                  size, self.cursors.clock(), list(listing.warnings)))
                body["@odata.nextLink"] = self.next_link(request, tenant_ref, token)
        return Response(200, body)

    def next_page(self, request: Any, tenant: Tenant, tenant_ref: str, name: str, parameters: dict[str, Any]) -> Any:
        from .server import Response
        mode = self.emulator.store.behaviour.get("exchange_paging", "follow")
        cursor = None
        if mode != "expire":
            cursor = self.cursors.take(request.query["$skiptoken"], tenant.id, _fingerprint(name, parameters))
        if cursor is None:
            return Response(400, {"error": {"code": "BadRequest", "message": PAGINATION_EXPIRED}})
        size = self.page_size(request)
        listing = Listing(cursor.keys, cursor.render, [])
        rows = self.render(tenant, listing, cursor.offset, size)
        following = cursor.offset + size
        if following < len(cursor.keys):
            body = self.envelope(request, tenant_ref, rows, [MORE_RESULTS_WARNING])
            token = self.cursors.issue(Cursor(tenant.id, cursor.fingerprint, cursor.keys, cursor.render, following,
                                              cursor.created, cursor.warnings))
            body["@odata.nextLink"] = self.next_link(request, tenant_ref, token)
        else:
            body = self.envelope(request, tenant_ref, rows, cursor.warnings)
        return Response(200, body)

    @staticmethod
    def render(tenant: Tenant, listing: Listing, start: int, size: int) -> list[dict[str, Any]]:
        rows = (listing.render(tenant, key) for key in listing.keys[start:start + size])
        return [row for row in rows if row is not None]

    @staticmethod
    def next_link(request: Any, tenant_ref: str, token: str) -> str:
        return f"{request.base_url}/adminapi/beta/{tenant_ref}/InvokeCommand?$skiptoken={token}"

    @staticmethod
    def envelope(request: Any, tenant_ref: str, rows: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
        return {
            "@odata.context": f"{request.base_url}/adminapi/beta/{tenant_ref}/$metadata#Collection(Exchange.GenericHashTable)",
            "adminapi.warnings@odata.type": COLLECTION_OF_STRING,
            "@adminapi.warnings": list(warnings),
            "value": rows,
        }


def routes(emulator: Any) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
    # The cursors live on the emulator so that tests (and a restart of the routes) reach the same ones.
    cursors = getattr(emulator, "exchange_cursors", None)
    if cursors is None:
        cursors = PageCursors()
        emulator.exchange_cursors = cursors
    service = ExchangeService(emulator, cursors)
    return [("POST", INVOKE_PATH, service.invoke)]
