"""SMTP client submission on the wire (smtp.office365.com:587), on aiosmtpd.

aiosmtpd speaks the protocol (STARTTLS, AUTH LOGIN/PLAIN and its SASL plumbing); this module adds what
Exchange Online says: its greeting and EHLO keywords, the XOAUTH2 mechanism, and the 5.7.x replies that this
project exists to diagnose, as ``models.py`` decides them.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime
import email.parser
import email.policy
import logging
import secrets
from typing import Any, Callable

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax

from ..core import HttpError, make_request
from ..identity import Claims, authorize
from .models import (CONNECTION_LIMIT_REPLIES, FRONTEND, MAX_MESSAGE_SIZE, MESSAGE_RATE_REPLIES, NOT_AUTHENTICATED,
                     OAUTH_REJECTED, RESTRICTED_SENDER, SEND_AS_DENIED, SEND_AS_DENIED_AT_DATA,
                     UNRECOGNIZED_MECHANISM, Authenticated, Decision, OpenSessions, evaluate_basic, evaluate_oauth,
                     is_restricted_sender, may_send_as, over_message_rate, parse_xoauth2, record_message,
                     record_sign_in)

LOG = logging.getLogger("m365_emulator.smtp")


def verify_bearer(emulator: Any, token: str) -> Claims | None:
    """Check an Exchange access token the way the HTTPS side does; the claims, or None when it is rejected."""
    request = make_request("AUTH", "/smtp/xoauth2", headers={"Authorization": f"Bearer {token}"})
    try:
        return authorize(emulator, request, "exchange")
    except HttpError:
        return None


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

    def connection_lost(self, error: Exception | None) -> None:
        # The session's place under the concurrent connection limit ends with its connection.
        self.event_handler.release(self.session)
        super().connection_lost(error)


class SubmissionHandler:
    """aiosmtpd hooks: EHLO keywords, the AUTH decisions, sender checks and the record of accepted mail."""

    def __init__(self, emulator: Any, frontend: str = FRONTEND, verify: Callable[[str], Any] | None = None):
        self.emulator = emulator
        self.frontend = frontend
        self.verify = verify or (lambda token: verify_bearer(emulator, token))
        self.open_sessions = OpenSessions()

    def refusal(self, code: int, text: str) -> str:
        return f"{code} {text} {_suffix(self.frontend)}"

    def answer(self, session: Any, decision: Decision, mechanism: str, login: str,
               claims: Claims | None = None) -> AuthResult:
        # Every attempt, accepted or refused, shows in the tenant's sign-in logs.
        peer = session.peer[0] if session.peer else ""
        record_sign_in(self.emulator.store, login, decision, peer, getattr(claims, "app", None))
        if decision.succeeded:
            session.refused_auth = None
            who = Authenticated(tenant_id=decision.tenant.id, user_id=decision.user.id, login=login,
                                mechanism=mechanism,
                                principal_identity=decision.principal.identity if decision.principal else None)
            # Admitted now, refused at the end of DATA (where the field captures show the 432) when over the limit.
            with self.emulator.store.lock:
                limit = int(self.emulator.store.behaviour["smtp_connection_limit"])
            session.within_connection_limit = self.open_sessions.admit(who, id(session), limit)
            return AuthResult(success=True, auth_data=who, message=decision.reply)
        LOG.info("AUTH %s for %s refused by %s: %s", mechanism, login, decision.blocker, decision.reply)
        return self.refuse(session, decision.code, decision.text)

    def release(self, session: Any) -> None:
        who = getattr(session, "auth_data", None) if session is not None else None
        if isinstance(who, Authenticated):
            self.open_sessions.release(who, id(session))

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
        return self.answer(server.session, evaluate_oauth(self.emulator.store, login, claims), "XOAUTH2", login,
                           claims)

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        who = session.auth_data if session.authenticated else None
        if not isinstance(who, Authenticated):
            refused = getattr(session, "refused_auth", None)
            if refused and self._switch("auth_failure_at_mail_from"):
                return self.refusal(NOT_AUTHENTICATED[0], f"{NOT_AUTHENTICATED[1]} Error: {refused}")
            return self.refusal(*NOT_AUTHENTICATED)
        if is_restricted_sender(self.emulator.store, who):
            return self.refusal(*RESTRICTED_SENDER)
        envelope.send_as_denied = not may_send_as(self.emulator.store, who, address)
        if envelope.send_as_denied and self._switch("send_as_denied_at") == "mail_from":
            return self.refusal(*SEND_AS_DENIED)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    def _switch(self, name: str) -> Any:
        with self.emulator.store.lock:
            return self.emulator.store.behaviour[name]

    def after_data_refusal(self, session: Any, envelope: Any, now: datetime.datetime) -> str | None:
        """The refusal of a whole message, if any: the connection limit, Send As, the message rate, in that order."""
        who: Authenticated = session.auth_data
        connection_reply = self._switch("smtp_connection_limit_reply")
        if connection_reply != "off" and not getattr(session, "within_connection_limit", True):
            return self.refusal(*CONNECTION_LIMIT_REPLIES[connection_reply])
        if getattr(envelope, "send_as_denied", False):
            code, text = SEND_AS_DENIED_AT_DATA
            return self.refusal(code, text.format(login=who.login, sender=envelope.mail_from))
        rate_reply = self._switch("smtp_message_rate_reply")
        if rate_reply != "off" and over_message_rate(self.emulator.messages, who,
                                                     int(self._switch("smtp_message_rate_limit")), now):
            return self.refusal(*MESSAGE_RATE_REPLIES[rate_reply])
        return None

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        who: Authenticated = session.auth_data
        now = datetime.datetime.now(datetime.timezone.utc)
        refused = self.after_data_refusal(session, envelope, now)
        if refused is not None:
            LOG.info("DATA for %s refused: %s", who.login, refused)
            return refused
        content = envelope.original_content or b""
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(content)
        message_id = f"<{secrets.token_hex(16).upper()}@{self.frontend.lower()}>"
        record = {
            "tenant": who.tenant_id,
            "user_id": who.user_id,
            "mailbox": who.login,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(headers.get("Subject") or ""),
            "size": len(content),
            "auth_mechanism": who.mechanism,
            "time": now.isoformat(),
            "message_id": message_id,
        }
        record_message(self.emulator.messages, record)
        return f"250 2.6.0 {message_id} [Hostname={self.frontend}] Queued mail for delivery"
