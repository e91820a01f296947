"""SMTP client submission (smtp.office365.com:587) on aiosmtpd, deciding AUTH from the shared tenant state.

aiosmtpd speaks the protocol (STARTTLS, AUTH LOGIN/PLAIN and its SASL plumbing); this module adds what
Exchange Online says: its greeting and EHLO keywords, the XOAUTH2 mechanism, and the 5.7.x replies that
this project exists to diagnose. The decisions are plain functions (``evaluate_basic``, ``evaluate_oauth``,
``may_send_as``) so they can be tested without sockets; the server only wires them to the protocol.

Every decision reads ``emulator.store`` afresh under ``store.lock``: a reset of the emulator or a change made
through Graph or Exchange applies to the very next AUTH.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime
import email.parser
import email.policy
import email.utils
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax

from .state import ServicePrincipal, Tenant, TenantStore, User

LOG = logging.getLogger("m365_emulator.smtp")

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


# -- decisions -----------------------------------------------------------------------------------------------

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
        if store.behaviour.get("basic_auth_retired"):
            return Decision(*BASIC_RETIRED, blocker="basic_auth_retired")
        tenant, user = find_login(store, login)
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


def verify_bearer(emulator: Any, token: str) -> Any:
    """Check an Exchange access token the way the HTTPS side does; the claims, or None when it is rejected."""
    from . import tokens
    from .server import HttpError, Request

    request = Request("AUTH", "/smtp/xoauth2", headers={"Authorization": f"Bearer {token}"})
    try:
        return tokens.authorize(emulator, request, "exchange")
    except HttpError:
        return None


# -- the server ----------------------------------------------------------------------------------------------

def _suffix(frontend: str) -> str:
    """What newer Exchange servers append to a refusal: front end, UTC time and a request id."""
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return f"[{frontend} {stamp} {secrets.token_hex(8).upper()}]"


class ExchangeSMTP(SMTP):
    """aiosmtpd's protocol with Exchange Online's wording where it differs."""

    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"
    # An XOAUTH2 initial response carries a whole JWT (1-3 KB); aiosmtpd's defaults (512-byte commands,
    # 1001-byte lines) would refuse it as "too long" before any AUTH logic ran.
    line_length_limit = 16384
    AUTH_COMMAND_LIMIT = 16384

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Per connection: aiosmtpd's class-level mapping would be shared by, and grow across, all connections.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.command_size_limits["AUTH"] = self.AUTH_COMMAND_LIMIT

    async def push(self, status: Any) -> None:
        if status == "220 Ready to start TLS":
            status = "220 2.0.0 SMTP server ready"
        await super().push(status)

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        # Exchange offers no AUTH before STARTTLS and treats an attempt as an unknown mechanism.
        if self.session is not None and self.session.host_name and self.session.ssl is None:
            await self.push(f"{UNRECOGNIZED_MECHANISM[0]} {UNRECOGNIZED_MECHANISM[1]}")
            return
        await super().smtp_AUTH(arg)


class SubmissionHandler:
    """aiosmtpd hooks: EHLO keywords, the AUTH decisions, sender checks and the record of accepted mail."""

    def __init__(self, emulator: Any, frontend: str = FRONTEND,
                 verify: Callable[[str], Any] | None = None):
        self.emulator = emulator
        self.frontend = frontend
        self.verify = verify or (lambda token: verify_bearer(emulator, token))

    def refusal(self, code: int, text: str) -> str:
        return f"{code} {text} {_suffix(self.frontend)}"

    def answer(self, session: Any, decision: Decision, mechanism: str, login: str) -> AuthResult:
        if decision.succeeded:
            session.refused_auth = None
            who = Authenticated(tenant_id=decision.tenant.id, user_id=decision.user.id, login=login,
                                mechanism=mechanism,
                                principal_identity=decision.principal.identity if decision.principal else None)
            return AuthResult(success=True, auth_data=who, message=decision.reply)
        LOG.info("AUTH %s for %s refused by %s: %s", mechanism, login, decision.blocker, decision.reply)
        return self.refuse(session, decision.code, decision.text)

    def refuse(self, session: Any, code: int, text: str) -> AuthResult:
        # Kept for MAIL FROM, which may name it (behaviour switch auth_failure_at_mail_from).
        session.refused_auth = f"{code} {text}"
        return AuthResult(success=False, handled=False, message=self.refusal(code, text))

    async def handle_EHLO(self, server: SMTP, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        peer = session.peer[0] if session.peer else "127.0.0.1"
        keywords = [f"SIZE {MAX_MESSAGE_SIZE}", "PIPELINING", "ENHANCEDSTATUSCODES"]
        keywords.append("AUTH LOGIN XOAUTH2" if session.ssl is not None else "STARTTLS")
        keywords += ["8BITMIME", "SMTPUTF8"]
        lines = [f"250-{server.hostname} Hello [{peer}]"] + [f"250-{keyword}" for keyword in keywords]
        lines[-1] = "250 " + lines[-1][4:]
        return lines

    def authenticate_basic(self, server: SMTP, session: Any, envelope: Any, mechanism: str,
                           auth_data: Any) -> AuthResult:
        """aiosmtpd's authenticator for LOGIN and PLAIN (PLAIN works though Exchange does not offer it)."""
        assert isinstance(auth_data, LoginPassword)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        return self.answer(session, evaluate_basic(self.emulator.store, login, password), mechanism, login)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob = args[1].encode()
        else:
            challenge = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(challenge, bytes):
                return AuthResult(success=False, handled=True)
            # challenge_auth already decoded it; re-encode so both paths decode below.
            blob = base64.b64encode(challenge)
        try:
            login, token = parse_xoauth2(base64.b64decode(blob, validate=True))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return self.refuse(server.session, *OAUTH_REJECTED)
        claims = self.verify(token)
        return self.answer(server.session, evaluate_oauth(self.emulator.store, login, claims), "XOAUTH2", login)

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        who = session.auth_data if session.authenticated else None
        if not isinstance(who, Authenticated):
            refused = getattr(session, "refused_auth", None)
            with self.emulator.store.lock:
                name_it = bool(self.emulator.store.behaviour.get("auth_failure_at_mail_from"))
            if refused and name_it:
                return self.refusal(NOT_AUTHENTICATED[0], f"{NOT_AUTHENTICATED[1]} Error: {refused}")
            return self.refusal(*NOT_AUTHENTICATED)
        if not may_send_as(self.emulator.store, who, address):
            return self.refusal(*SEND_AS_DENIED)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        who: Authenticated = session.auth_data
        content = envelope.original_content or b""
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(content)
        message_id = f"<{secrets.token_hex(16).upper()}@{self.frontend.lower()}>"
        record = {
            "tenant": who.tenant_id,
            "mailbox": who.login,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(headers.get("Subject") or ""),
            "size": len(content),
            "auth_mechanism": who.mechanism,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "message_id": message_id,
        }
        messages = getattr(self.emulator, "messages", None)
        if messages is None:
            messages = self.emulator.messages = []
        messages.append(record)
        if len(messages) > MAX_MESSAGES:
            del messages[: len(messages) - MAX_MESSAGES]
        return f"250 2.6.0 {message_id} [Hostname={self.frontend}] Queued mail for delivery"


class _Controller(Controller):
    def __init__(self, handler: SubmissionHandler, host: str, port: int, tls_context: Any, frontend: str):
        super().__init__(handler, hostname=host, port=port, server_hostname=frontend, tls_context=tls_context,
                         authenticator=handler.authenticate_basic, auth_require_tls=True,
                         data_size_limit=MAX_MESSAGE_SIZE, enable_SMTPUTF8=True, decode_data=False)

    def factory(self) -> SMTP:
        # One protocol object per connection, so the greeting carries the time the client connected.
        when = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc))
        return ExchangeSMTP(self.handler, ident=f"Microsoft ESMTP MAIL Service ready at {when}", **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Port 0 asks the OS for a free port; learn which one before aiosmtpd's start-up probe connects to it.
        if self.port == 0 and self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SubmissionServer:
    """SMTP submission for one emulator: ``start()``, ``stop()``, ``port`` (0 picks a free one)."""

    def __init__(self, emulator: Any, host: str = "127.0.0.1", port: int = 0, frontend: str = FRONTEND,
                 tls_context: Any = None, verify: Callable[[str], Any] | None = None):
        self.emulator = emulator
        self.host = host
        self.port = port
        self.frontend = frontend
        self.tls_context = tls_context
        self.handler = SubmissionHandler(emulator, frontend, verify)
        self._controller: _Controller | None = None

    def start(self) -> SubmissionServer:
        if self._controller is not None:
            return self
        context = self.tls_context or self.emulator.ssl_context()
        controller = _Controller(self.handler, self.host, self.port, context, self.frontend)
        controller.start()
        self._controller = controller
        self.port = controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SubmissionServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
