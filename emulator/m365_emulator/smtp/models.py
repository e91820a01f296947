"""SMTP submission's decisions from the tenant state: who may AUTH (and which refusal Exchange Online gives
otherwise), who may send as whom, and the record of accepted messages. Plain functions, testable without
sockets; ``responses.py`` wires them to the protocol.

Every decision reads the store afresh under ``store.lock``: a reset of the emulator or a change made through
Graph or Exchange applies to the very next AUTH.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Any

from ..state import App, ServicePrincipal, Tenant, TenantStore, User, sign_in_record

SEND_AS_APP = "SMTP.SendAsApp"
MAX_MESSAGE_SIZE = 157286400
# Accepted messages kept for tests and demos; the oldest go first.
MAX_MESSAGES = 10_000
# The front-end name Exchange puts in its greeting and at the end of its refusals.
FRONTEND = "LO4P265CA0101.GBRP265.PROD.OUTLOOK.COM"

AUTH_OK = (235, "2.7.0 Authentication successful")
CREDENTIALS = (535, "5.7.139 Authentication unsuccessful, the user credentials were incorrect.")
TENANT_DISABLED = (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
                        "Visit https://aka.ms/smtp_auth_disabled for more information.")
MAILBOX_DISABLED = (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. "
                         "Visit https://aka.ms/smtp_auth_disabled for more information.")
SECURITY_DEFAULTS = (535, "5.7.139 Authentication unsuccessful, user is locked by your organization's security "
                          "defaults policy. Contact your administrator.")
CRITERIA = (535, "5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated "
                 "successfully. Contact your administrator.")
BASIC_DISABLED = (535, "5.7.139 Authentication unsuccessful, basic authentication is disabled.")
OAUTH_REJECTED = (535, "5.7.3 Authentication unsuccessful")
BASIC_RETIRED = (550, "5.7.30 Basic authentication is not supported for Client Submission.")
NOT_AUTHENTICATED = (530, "5.7.57 Client not authenticated to send mail.")
SEND_AS_DENIED = (550, "5.7.60 SMTP; Client does not have permissions to send as this sender")
UNRECOGNIZED_MECHANISM = (504, "5.7.4 Unrecognized authentication type")
# After AUTH (see the behaviour switches in state.py for where each wording comes from).
CONNECTION_LIMIT_REPLIES = {
    "sender_thread": (432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
    "concurrent_connections": (432, "4.3.2 Concurrent connections limit exceeded. Visit "
                                    "https://aka.ms/concurrent_sending for more information."),
}
MESSAGE_RATE_REPLIES = {
    # What follows the exception's name is modelled on the SendAsDenied capture; unconfirmed.
    "quota": (554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message "
                   "due to a permanent exception with message Cannot submit message."),
    "rate": (421, "4.4.2 Message submission rate for this client has exceeded the configured limit"),
}
RESTRICTED_SENDER = (550, "5.1.8 Access denied, bad outbound sender")
SEND_AS_DENIED_AT_DATA = (554, "5.2.252 SendAsDenied; {login} not allowed to send as {sender}; "
                               "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied")
RATE_WINDOW_SECONDS = 60

BLOCKERS = ("credentials", "org_switch", "mailbox_switch", "authentication_policy", "security_defaults",
            "per_user_mfa", "conditional_access", "license")
# SMTP AUTH is one of the "Other clients" of Conditional Access; a policy for Exchange ActiveSync alone does not
# cover it, one for all client apps does.
SMTP_CLIENT_APP_TYPES = {"other", "all"}


@dataclass
class Decision:
    """The answer to one AUTH: the reply, which blocker gave it (None on success) and whom it was about."""

    code: int
    text: str
    blocker: str | None = None
    tenant: Tenant | None = None
    user: User | None = None
    principal: ServicePrincipal | None = None

    @property
    def succeeded(self) -> bool:
        return self.code == 235

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


@dataclass
class Authenticated:
    """What an authenticated SMTP session is allowed to send as (kept in ``session.auth_data``)."""

    tenant_id: str
    user_id: str
    login: str
    mechanism: str
    principal_identity: str | None = None


def find_login(store: TenantStore, login: str) -> tuple[Tenant, User] | tuple[None, None]:
    """The user whose UPN (or primary SMTP address) is ``login``, in any tenant; the caller holds the lock."""
    wanted = login.strip().lower()
    if "@" not in wanted:
        return None, None
    for tenant in store.tenants:
        user = tenant.find_user(wanted)
        if user is not None and wanted in (user.user_principal_name.lower(), user.primary_smtp_address.lower()):
            return tenant, user
    return None, None


def _lowered(values: Any) -> set[str]:
    return {str(value).lower() for value in values or []}


def blocking_policy(tenant: Tenant, user: User) -> dict[str, Any] | None:
    """The enabled Conditional Access policy that blocks legacy authentication for ``user``, if any.

    Users are matched by object id (or All), and by directory role: ``includeRoles``/``excludeRoles`` hold role
    template ids.
    """
    roles = set(user.role_template_ids)
    for policy in tenant.conditional_access_policies:
        if policy.get("state") != "enabled":
            continue
        conditions = policy.get("conditions") or {}
        if not _lowered(conditions.get("clientAppTypes")) & SMTP_CLIENT_APP_TYPES:
            continue
        users = conditions.get("users") or {}
        included = user.id.lower() in _lowered(users.get("includeUsers")) \
            or "all" in _lowered(users.get("includeUsers")) or bool(roles & _lowered(users.get("includeRoles")))
        excluded = user.id.lower() in _lowered(users.get("excludeUsers")) \
            or bool(roles & _lowered(users.get("excludeRoles")))
        if excluded or not included:
            continue
        if "block" in _lowered((policy.get("grantControls") or {}).get("builtInControls")):
            return policy
    return None


def _switch_blocker(name: str, tenant: Tenant, user: User) -> tuple[int, str] | None:
    if name == "org_switch":
        # The mailbox switch, when set either way, overrides the organisation's.
        if tenant.transport_smtp_auth_disabled and user.smtp_client_authentication_disabled is None:
            return TENANT_DISABLED
    elif name == "mailbox_switch":
        if user.smtp_client_authentication_disabled is True:
            return MAILBOX_DISABLED
    return None


def _basic_blocker(name: str, store: TenantStore, tenant: Tenant, user: User, password: str) -> tuple[int, str] | None:
    if name == "credentials":
        if user.password is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            return CREDENTIALS
    elif name in ("org_switch", "mailbox_switch"):
        return _switch_blocker(name, tenant, user)
    elif name == "authentication_policy":
        policy_name = user.authentication_policy or tenant.default_authentication_policy
        policy = tenant.authentication_policies.get(policy_name) if policy_name else None
        # A policy allows nothing it does not say it allows (Exchange creates them with every protocol off).
        if policy is not None and not policy.get("AllowBasicAuthSmtp", False):
            return BASIC_DISABLED
    elif name == "security_defaults":
        if tenant.security_defaults_enabled:
            return SECURITY_DEFAULTS
    elif name == "per_user_mfa":
        if user.per_user_mfa_state in ("enabled", "enforced"):
            return CRITERIA
    elif name == "conditional_access":
        if blocking_policy(tenant, user) is not None:
            return CRITERIA
    elif name == "license":
        if not user.has_mailbox or not user.has_mailbox_license:
            return CRITERIA if store.behaviour.get("unlicensed_reply") == "criteria" else CREDENTIALS
    else:
        raise ValueError(f"behaviour blocker_order: unknown blocker {name!r}; known: {', '.join(BLOCKERS)}")
    return None


def evaluate_basic(store: TenantStore, login: str, password: str) -> Decision:
    """AUTH LOGIN/PLAIN: the first blocker in ``behaviour["blocker_order"]`` that applies answers."""
    with store.lock:
        tenant, user = find_login(store, login)
        if store.behaviour.get("basic_auth_retired"):
            return Decision(*BASIC_RETIRED, blocker="basic_auth_retired", tenant=tenant, user=user)
        if tenant is None or user is None:
            return Decision(*CREDENTIALS, blocker="credentials")
        configured = store.behaviour.get("blocker_order")
        # A blocker left out of the order is not evaluated (so tests can switch one off).
        order = list(BLOCKERS if configured is None else configured)
        # The password is always checked, even when an order leaves it out: nobody signs in with a wrong one.
        if "credentials" not in order:
            order.append("credentials")
        for name in order:
            reply = _basic_blocker(name, store, tenant, user, password)
            if reply is not None:
                return Decision(*reply, blocker=name, tenant=tenant, user=user)
        return Decision(*AUTH_OK, tenant=tenant, user=user)


def _principal_for(tenant: Tenant, client_id: str) -> ServicePrincipal | None:
    return next((sp for sp in tenant.service_principals if sp.app_id.lower() == client_id.lower()), None)


def _names_principal(tenant: Tenant, entry: str, principal: ServicePrincipal) -> bool:
    wanted = str(entry).lower()
    if wanted in (principal.identity.lower(), principal.app_id.lower(), principal.object_id.lower()):
        return True
    return tenant.find_service_principal(entry) is principal


def has_full_access(tenant: Tenant, user: User, principal: ServicePrincipal) -> bool:
    return any(_names_principal(tenant, entry.get("user", ""), principal)
               and "fullaccess" in {str(right).lower() for right in entry.get("access_rights") or []}
               for entry in user.mailbox_permissions)


def names_other_object(tenant: Tenant, app: App, principal: ServicePrincipal) -> bool:
    """Whether an Exchange service principal was made from another directory object than the app's enterprise
    application, typically the app registration's object id (Exchange accepts any object id at
    New-ServicePrincipal and only the sign-in fails).

    An object id that names nothing in the directory is let through: hand-built test tenants use made-up ids.
    """
    wanted = principal.object_id.lower()
    return wanted != app.service_principal_id.lower() and wanted in tenant.directory_object_ids()


def evaluate_oauth(store: TenantStore, login: str, claims: Any) -> Decision:
    """AUTH XOAUTH2 with an app-only token whose checked claims are ``claims`` (None: the token was rejected).

    Security defaults, per-user MFA and authentication policies concern basic authentication only; the SMTP
    AUTH switches of the organisation and the mailbox still apply, after the token itself is accepted.
    """
    with store.lock:
        if claims is None:
            return Decision(*OAUTH_REJECTED, blocker="token")
        if SEND_AS_APP not in (getattr(claims, "roles", None) or []):
            return Decision(*OAUTH_REJECTED, blocker="permission")
        tenant = store.find_tenant(claims.tenant.id)
        user = tenant.find_user(login) if tenant is not None and "@" in login else None
        if tenant is None or user is None or not user.has_mailbox:
            return Decision(*OAUTH_REJECTED, blocker="mailbox", tenant=tenant)
        principal = _principal_for(tenant, claims.app.client_id)
        if principal is None:
            return Decision(*OAUTH_REJECTED, blocker="service_principal", tenant=tenant, user=user)
        if names_other_object(tenant, claims.app, principal):
            return Decision(*OAUTH_REJECTED, blocker="service_principal_object_id", tenant=tenant, user=user,
                            principal=principal)
        if not has_full_access(tenant, user, principal):
            return Decision(*OAUTH_REJECTED, blocker="full_access", tenant=tenant, user=user, principal=principal)
        configured = store.behaviour.get("blocker_order")
        order = [name for name in (BLOCKERS if configured is None else configured)
                 if name in ("org_switch", "mailbox_switch")]
        for name in order:
            reply = _switch_blocker(name, tenant, user)
            if reply is not None:
                return Decision(*reply, blocker=name, tenant=tenant, user=user, principal=principal)
        return Decision(*AUTH_OK, tenant=tenant, user=user, principal=principal)


def record_sign_in(store: TenantStore, login: str, decision: Decision, address: str, app: App | None = None) -> None:
    """Write the Entra sign-in log entry of one AUTH attempt (``app``: the app of an XOAUTH2 token) in the tenant
    of the mailbox, or of the login's domain when no such user exists; an unknown domain is nobody's log."""
    with store.lock:
        tenant = decision.tenant or next((candidate for candidate in store.tenants
                                          if candidate.owns_domain_of(login)), None)
        if tenant is None:
            return
        user = decision.user or tenant.find_user(login)
        blocker = decision.blocker
        if blocker == "credentials" and user is None:
            blocker = "unknown_user"
        tenant.add_sign_in(sign_in_record(login, user=user, app=app, ip_address=address, blocker=blocker,
                                          client_app_used=str(store.behaviour.get("sign_in_client_app"))))


def parse_xoauth2(blob: bytes) -> tuple[str, str]:
    """``user=<upn>\\x01auth=Bearer <token>\\x01\\x01`` -> (upn, token); ValueError when it is not that."""
    fields = {}
    for part in blob.decode("utf-8").split("\x01"):
        if part:
            key, separator, value = part.partition("=")
            if not separator:
                raise ValueError(f"XOAUTH2 field without '=': {key!r}")
            fields[key.lower()] = value
    scheme, _, token = fields.get("auth", "").partition(" ")
    if not fields.get("user") or scheme.lower() != "bearer" or not token.strip():
        raise ValueError("XOAUTH2 needs user=<upn> and auth=Bearer <token>")
    return fields["user"], token.strip()


def may_send_as(store: TenantStore, who: Authenticated, sender: str) -> bool:
    """Whether an authenticated session may use ``sender`` as MAIL FROM: its own mailbox, or one with SendAs."""
    with store.lock:
        tenant = store.find_tenant(who.tenant_id)
        user = tenant.users.get(who.user_id) if tenant else None
        if tenant is None or user is None or "@" not in sender:
            return False
        target = tenant.find_user(sender)
        if target is None:
            return False
        if target is user:
            return True
        principal = tenant.find_service_principal(who.principal_identity) if who.principal_identity else None
        for entry in target.send_as:
            if tenant.find_user(entry) is user:
                return True
            if principal is not None and _names_principal(tenant, entry, principal):
                return True
        return False


def is_restricted_sender(store: TenantStore, who: Authenticated) -> bool:
    with store.lock:
        tenant = store.find_tenant(who.tenant_id)
        user = tenant.users.get(who.user_id) if tenant else None
        return bool(user is not None and user.restricted_sender)


class OpenSessions:
    """The authenticated SMTP sessions of each mailbox that are still connected, for the concurrent connection
    limit. A session is admitted (counted) at AUTH when fewer than the limit are open for its mailbox; one that is
    not stays connected but uncounted, so closing it frees nothing. All calls come from the SMTP server's one
    event loop thread."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], set[int]] = {}

    def admit(self, who: Authenticated, session_id: int, limit: int) -> bool:
        sessions = self._open.setdefault((who.tenant_id, who.user_id), set())
        if len(sessions) >= limit:
            return False
        sessions.add(session_id)
        return True

    def release(self, who: Authenticated, session_id: int) -> None:
        sessions = self._open.get((who.tenant_id, who.user_id))
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._open[(who.tenant_id, who.user_id)]

    def count(self, who: Authenticated) -> int:
        return len(self._open.get((who.tenant_id, who.user_id), ()))


def over_message_rate(messages: list[Any], who: Authenticated, limit: int, now: datetime.datetime) -> bool:
    """Whether ``who`` already had ``limit`` messages accepted in the last RATE_WINDOW_SECONDS. Read from the
    record of accepted messages, so a reset of the emulator (which forgets them) also resets the window."""
    since = now - datetime.timedelta(seconds=RATE_WINDOW_SECONDS)
    recent = 0
    for record in reversed(messages):
        if datetime.datetime.fromisoformat(record["time"]) < since:
            break
        if record["tenant"] == who.tenant_id and record.get("user_id") == who.user_id:
            recent += 1
    return recent >= limit


def record_message(messages: list[Any], record: dict[str, Any]) -> None:
    """Keep an accepted message; past MAX_MESSAGES the oldest go."""
    messages.append(record)
    if len(messages) > MAX_MESSAGES:
        del messages[: len(messages) - MAX_MESSAGES]
