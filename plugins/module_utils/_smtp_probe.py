# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An SMTP submission test the way a printer does it, with a transcript and a diagnosis.

``smtplib`` speaks the protocol; this module only records what was said (with every authentication
payload masked), classifies how it ended, and asks ``smtp_diagnosis`` what the ending means. Every way
the test can end is a result, never an exception: DNS, a closed port, a timeout and a TLS failure each
have their own ``status``.

Plain Python, no Ansible imports, so it can be unit-tested against a local server and run delegated to
a host in a device's network.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import errno
import ipaddress
import itertools
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import is_user_principal_name
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.smtp_diagnosis import (
    LIMITS,
    diagnose_reply,
    diagnose_transport_failure,
    parse_reply,
    parse_reply_line,
)

MASK = "********"
# The options that end up in SMTP command lines or message headers: a line break there would start a command or
# a header of its own (a second RCPT TO, a Bcc), so it is refused instead of sent.
LINE_OPTIONS = ("host", "username", "sender", "recipient", "subject", "ehlo_name", "relay_domain")
ADDRESS_OPTIONS = ("sender", "recipient")
# RFC 5321 caps a path at 256 octets; a longer value is a mistake in the inventory, not an address.
MAX_LINE_VALUE = 256


def input_problems(params):
    """One message per option the probe cannot send as given, naming the option, before it connects."""
    problems = []
    for option in LINE_OPTIONS:
        value = params.get(option)
        if value is None:
            continue
        if any(character in value for character in "\r\n\x00"):
            problems.append("%s must be one line, but %r holds a line break or NUL" % (option, value))
        elif option != "subject" and len(value) > MAX_LINE_VALUE:
            problems.append("%s is %d characters long (%s...), more than the %d an SMTP address or host can have"
                            % (option, len(value), value[:40], MAX_LINE_VALUE))
        elif option in ADDRESS_OPTIONS and not is_user_principal_name(value):
            problems.append("%s must be an email address such as it-team@contoso.com, not %r" % (option, value))
        elif option == "relay_domain" and not _DOMAIN.match(value):
            problems.append("relay_domain must be a domain such as contoso.com, not %r" % value)
    source = params.get("source_address")
    if source is not None:
        try:
            ipaddress.ip_address(source)
        except ValueError:
            problems.append("source_address must be an IP address of this host such as 192.0.2.10, not %r" % source)
    return problems


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$",
                     re.IGNORECASE)
# The tenant's MX endpoint, where devices relaying through an inbound connector send, on port 25: the domain with
# its dots replaced by dashes under mail.protection.outlook.com (inbound connectors, section 5 of the wire notes).
# Only the global cloud's form is known here.
MX_SUFFIX = ".mail.protection.outlook.com"
MX_PORT = 25
SUBMISSION_PORT = 587


def relay_domain_of(sender, relay_domain=None):
    """The accepted domain whose MX endpoint connector relay goes to: ``relay_domain``, else the sender's domain."""
    domain = relay_domain or (sender or "").rpartition("@")[2]
    return domain.strip().rstrip(".").lower() or None


def mx_host(domain):
    """``contoso.com`` -> ``contoso-com.mail.protection.outlook.com``."""
    return domain.strip().rstrip(".").lower().replace(".", "-") + MX_SUFFIX


AUTH_MECHANISMS = {"basic": "LOGIN", "oauth": "XOAUTH2"}
# The modes that send no AUTH: an anonymous device at the submission endpoint, or a device relaying through an
# inbound connector at the MX endpoint.
UNAUTHENTICATED_MODES = ("none", "connector")
_UNREACHABLE_ERRNOS = (errno.ENETUNREACH, errno.EHOSTUNREACH)


def xoauth2_initial_response(username, access_token):
    """The XOAUTH2 client response before base64 (smtplib encodes it)."""
    return "user=%s\x01auth=Bearer %s\x01\x01" % (username, access_token)


class TranscriptSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that keeps a transcript of every line sent and received.

    Hooks ``send`` and ``getreply``, the two places every byte passes through, instead of parsing the
    debug output. Authentication payloads never reach the transcript: the arguments of ``AUTH`` and
    every client line answering a ``334`` challenge are replaced by a mask, and the secrets given in
    ``secrets`` (and their base64 forms) are masked wherever else they might appear.
    """

    def __init__(self, secrets=(), **kwargs):
        self.transcript = []
        self._secrets = self._secret_forms(secrets)
        self._last_reply_code = None
        super().__init__(**kwargs)

    @staticmethod
    def _secret_forms(secrets):
        forms = set()
        for secret in secrets:
            if not secret:
                continue
            forms.add(secret)
            forms.add(base64.b64encode(secret.encode("utf-8")).decode("ascii"))
        # Longest first, so a secret that contains another is masked whole.
        return sorted(forms, key=len, reverse=True)

    def _mask_secrets(self, text):
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _record(self, direction, text):
        self.transcript.append("%s: %s" % (direction, self._mask_secrets(text)))

    def send(self, s):
        if self.sock is None:
            # Nothing is sent without a connection (smtplib raises below), so nothing is recorded.
            pass
        elif self._last_reply_code == 354:
            # The message itself: its size says enough, and its content is not the transcript's business.
            self._record("C", "<message: %d bytes>" % len(s))
            self._record("C", ".")
        elif self._last_reply_code == 334:
            # smtplib answers every 334 challenge with the next credential.
            self._record("C", MASK)
        else:
            text = s.decode("utf-8", errors="replace") if isinstance(s, bytes) else s
            line = text.rstrip("\r\n")
            words = line.split(" ", 2)
            if words[0].upper() == "AUTH" and len(words) > 2:
                line = "AUTH %s %s" % (words[1], MASK)
            self._record("C", line)
        # A line sent is no longer an answer to the reply before it.
        self._last_reply_code = None
        super().send(s)

    def getreply(self):
        code, message = super().getreply()
        lines = message.decode("utf-8", errors="replace").split("\n") if message else [""]
        for index, line in enumerate(lines):
            separator = " " if index == len(lines) - 1 else "-"
            self._record("S", ("%s%s%s" % (code, separator, line)).rstrip())
        self._last_reply_code = code
        return code, message


@dataclass
class ProbeSettings:
    """What to test. ``access_token`` is used for ``auth_mode: oauth``, ``password`` for ``basic``;
    ``auth_mode: none`` submits without authenticating, the way a device set up for anonymous mail does;
    ``auth_mode: connector`` does the same towards the MX endpoint, the way a device relaying through an inbound
    connector does (STARTTLS only when offered). ``source_address`` is the local address to connect from."""

    host: str = "smtp.office365.com"
    port: int = 587
    username: str | None = None
    auth_mode: str = "basic"
    password: str | None = None
    access_token: str | None = None
    sender: str | None = None
    recipient: str | None = None
    subject: str = "SMTP AUTH test"
    body: str | None = None
    send_message: bool = True
    timeout: float = 30
    ca_path: str | None = None
    validate_certs: bool = True
    local_hostname: str | None = None
    source_address: str | None = None

    def __post_init__(self):
        self.sender = self.sender or self.username


class _Stop(Exception):
    """Ends the probe early with a result already filled in."""


class Probe(object):
    def __init__(self, settings):
        self.settings = settings
        self.result = {
            "ok": False,
            "status": None,
            "stage": "connect",
            "host": settings.host,
            "port": settings.port,
            "auth_mode": settings.auth_mode,
            "authenticated": False,
            "message_sent": False,
            "message_id": None,
            "tls_version": None,
            "starttls_offered": None,
            "starttls_used": False,
            "source_address": None,
            "reply_code": None,
            "enhanced_status_code": None,
            "reply_text": None,
            "reply_line": None,
            "server_suffix": None,
            "error": None,
            "diagnosis": None,
            "transcript": [],
        }
        self.smtp = None

    # --- outcomes -------------------------------------------------------------------------------------

    def _reply_outcome(self, code, message, status):
        reply = parse_reply(code, message)
        self.result.update({
            "status": status,
            "reply_code": reply.code,
            "enhanced_status_code": reply.enhanced_status_code,
            "reply_text": reply.text,
            "reply_line": reply.line,
            "server_suffix": reply.server_suffix,
            "diagnosis": diagnose_reply(reply, None, mailbox=self.settings.username),
        })
        self.result["ok"] = bool(self.result["diagnosis"]["ok"]) and status != "refused"

    def _refused(self, code, message):
        self._reply_outcome(code, message, "refused")
        raise _Stop()

    def _transport_failure(self, kind, error):
        detail = str(error) or type(error).__name__
        self.result.update({
            "status": kind,
            "ok": False,
            "error": "%s during %s with %s:%s: %s" % (
                kind.replace("_", " "), self.result["stage"], self.settings.host, self.settings.port, detail),
            "diagnosis": diagnose_transport_failure(kind, detail),
        })

    def _stop_with(self, kind, detail):
        self._transport_failure(kind, detail)
        raise _Stop()

    @staticmethod
    def classify_error(error):
        """The distinct status for an exception raised below the SMTP dialogue."""
        # smtplib turns a read that fails (timeout, reset) into SMTPServerDisconnected; the real cause is
        # the exception it was raised from.
        if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, OSError):
            error = error.__context__
        if isinstance(error, socket.gaierror):
            return "dns_failure"
        if isinstance(error, ssl.SSLCertVerificationError):
            return "tls_certificate"
        if isinstance(error, ssl.SSLError):
            return "tls_failure"
        if isinstance(error, (socket.timeout, TimeoutError)):
            return "timeout"
        if isinstance(error, ConnectionRefusedError):
            return "connection_refused"
        if getattr(error, "errno", None) == errno.EADDRNOTAVAIL:
            return "source_address_unavailable"
        if getattr(error, "errno", None) in _UNREACHABLE_ERRNOS:
            return "network_unreachable"
        if isinstance(error, (smtplib.SMTPServerDisconnected, ConnectionError)):
            return "connection_closed"
        if isinstance(error, smtplib.SMTPException):
            return "protocol_error"
        return "connection_closed"

    # --- steps ----------------------------------------------------------------------------------------

    def _connect(self):
        settings = self.settings
        secrets = [value for value in (settings.password, settings.access_token) if value]
        source = (settings.source_address, 0) if settings.source_address else None
        self.smtp = TranscriptSMTP(secrets=secrets, local_hostname=settings.local_hostname,
                                   timeout=settings.timeout, source_address=source)
        # smtplib takes the name STARTTLS validates the certificate against from the constructor, which
        # would also connect; set it here so connecting stays a step of its own.
        self.smtp._host = settings.host
        code, message = self.smtp.connect(settings.host, settings.port)
        # What the server sees before any NAT: the address a connector must list is the public one it leaves by.
        self.result["source_address"] = self.smtp.sock.getsockname()[0]
        if code != 220:
            self._refused(code, message)

    def _ehlo(self):
        self.result["stage"] = "ehlo"
        code, message = self.smtp.ehlo()
        if code != 250:
            self._refused(code, message)

    def _starttls(self):
        self.result["stage"] = "starttls"
        self.result["starttls_offered"] = self.smtp.has_extn("starttls")
        if not self.result["starttls_offered"] and self.settings.auth_mode == "connector":
            # No credential travels on the relay path, and a connector that matches by IP address does not
            # require TLS (RequireTls is for certificate and Partner connectors, section 5 of the wire notes).
            return
        if not self.result["starttls_offered"]:
            self._stop_with("starttls_not_offered", "EHLO did not list STARTTLS")
        # create_default_context validates the chain and the host name; a CA file replaces the system
        # store (TLS inspection, private test servers), it never turns validation off.
        context = ssl.create_default_context(cafile=self.settings.ca_path)
        if not self.settings.validate_certs:
            # Only on the operator's explicit request (a throwaway lab); the module warns about it.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            code, message = self.smtp.starttls(context=context)
        except smtplib.SMTPResponseException as error:
            self._refused(error.smtp_code, error.smtp_error)
        if code != 220:
            self._refused(code, message)
        self.result["tls_version"] = self.smtp.sock.version()
        self.result["starttls_used"] = True
        self._ehlo()

    def _authenticate(self):
        settings = self.settings
        if settings.auth_mode in UNAUTHENTICATED_MODES:
            return
        self.result["stage"] = "auth"
        mechanism = AUTH_MECHANISMS[settings.auth_mode]
        offered = self.smtp.esmtp_features.get("auth", "").upper().split()
        if mechanism not in offered:
            self._stop_with("auth_not_offered", "AUTH %s not in the offered mechanisms %s"
                            % (mechanism, " ".join(offered) or "(none)"))
        try:
            if mechanism == "LOGIN":
                # smtplib's own LOGIN exchange reads these two attributes.
                self.smtp.user, self.smtp.password = settings.username, settings.password or ""
                code, message = self.smtp.auth("LOGIN", self.smtp.auth_login)
            else:
                token_response = xoauth2_initial_response(settings.username, settings.access_token)

                def xoauth2(challenge=None):
                    # After a failed token the server may send an error challenge; an empty answer asks
                    # it for the final reply, which is what the diagnosis needs.
                    return token_response if challenge is None else ""

                code, message = self.smtp.auth("XOAUTH2", xoauth2)
        except smtplib.SMTPResponseException as error:
            self._refused(error.smtp_code, error.smtp_error)
        self.result["authenticated"] = True
        self._reply_outcome(code, message, "authenticated")

    def _build_message(self):
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.sender
        message["To"] = settings.recipient
        message["Subject"] = settings.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = (settings.sender or "localhost").rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        if settings.auth_mode == "connector":
            purpose = "check relay through an inbound connector for %s" % settings.sender
        else:
            purpose = "check SMTP AUTH submission for %s" % settings.username
        message.set_content(settings.body or "Test message sent by m365ops.smtp_auth.smtp_submission_test to "
                                             "%s.\n" % purpose)
        return message

    def _send(self):
        settings = self.settings
        if settings.recipient and not settings.send_message and settings.auth_mode == "connector":
            self._check_relay()
        if not settings.recipient or not settings.send_message:
            return
        message = self._build_message()
        self._envelope()
        self.result["stage"] = "data"
        code, reply = self.smtp.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        if code != 250:
            self._refused(code, reply)
        self.result["message_sent"] = True
        self.result["message_id"] = message["Message-ID"]
        self._reply_outcome(code, reply, "sent")

    def _check_relay(self):
        """Check mode on the relay path: the MX endpoint decides at RCPT TO, so the envelope is tried and reset
        before DATA; no message is sent."""
        code, reply = self._envelope()
        self.smtp.rset()
        self._reply_outcome(code, reply, "recipient_accepted")

    def _envelope(self):
        """MAIL FROM and RCPT TO, each refusal ending the test; returns the reply to RCPT TO."""
        self.result["stage"] = "mail"
        code, reply = self.smtp.mail(self.settings.sender)
        if code != 250:
            self._refused(code, reply)
        self.result["stage"] = "rcpt"
        code, reply = self.smtp.rcpt(self.settings.recipient)
        if code not in (250, 251):
            self._refused(code, reply)
        return code, reply

    def _quit(self):
        if self.smtp is None or self.smtp.sock is None:
            return
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            # The verdict is already made; a server that drops the connection at QUIT changes nothing.
            self.smtp.close()

    def run(self):
        try:
            self._connect()
            self._ehlo()
            self._starttls()
            self._authenticate()
            self._send()
            if self.result["status"] is None:
                # auth_mode none without a message to send: reaching an authenticated-capable session is all
                # that was asked.
                self.result.update({"status": "connected", "ok": True,
                                    "diagnosis": diagnose_reply(250, b"OK", mailbox=self.settings.username)})
        except _Stop:
            pass
        except smtplib.SMTPResponseException as error:
            self._reply_outcome(error.smtp_code, error.smtp_error, "refused")
        except (OSError, smtplib.SMTPException) as error:
            self._transport_failure(self.classify_error(error), error)
        finally:
            self._quit()
            if self.smtp is not None:
                self.result["transcript"] = list(self.smtp.transcript)
        self.result["summary"] = summarise(self.settings, self.result)
        return self.result


STAGE_WORDS = {
    "connect": "connecting", "ehlo": "EHLO", "starttls": "STARTTLS", "auth": "AUTH", "mail": "MAIL FROM",
    "rcpt": "RCPT TO", "data": "DATA", "token": "getting the OAuth token",
}


def summarise(settings, result):
    """One paragraph: what happened, why, what to do."""
    where = "%s:%s" % (settings.host, settings.port)
    who = settings.username or "(no user)"
    diagnosis = result.get("diagnosis") or {}
    if settings.auth_mode == "connector":
        who = "%s from %s" % (settings.sender, result.get("source_address") or settings.source_address or "this host")
        tls = "over %s" % result["tls_version"] if result.get("starttls_used") else "without TLS (STARTTLS not offered)"
        if result.get("ok") and result.get("message_sent"):
            return "%s: %s relayed the test message to %s without AUTH, %s (%s)." % (
                who, where, settings.recipient, tls, result.get("reply_line"))
        if result.get("ok"):
            return "%s: %s accepted %s as a recipient without AUTH, %s (%s); check mode sent no message." % (
                who, where, settings.recipient, tls, result.get("reply_line"))
    if result.get("ok"):
        if result.get("message_sent"):
            return "%s: %s accepted SMTP AUTH and the test message to %s (%s)." % (
                who, where, settings.recipient, result.get("reply_line"))
        if result.get("authenticated"):
            return "%s: %s accepted SMTP AUTH (%s); no message was sent." % (who, where, result.get("reply_line"))
        return "%s: %s answered and offered STARTTLS; nothing else was tried." % (who, where)
    stage = STAGE_WORDS.get(result.get("stage"), result.get("stage"))
    if result.get("reply_line"):
        happened = "%s refused it at %s with \"%s\"." % (where, stage, result["reply_line"])
    else:
        happened = "the test failed while %s with %s: %s." % (stage, where, result.get("status"))
    return "%s: %s Cause: %s Fix: %s" % (who, happened, diagnosis.get("cause"), diagnosis.get("fix"))


def failure_before_smtp(settings, stage, kind, error):
    """The result when the test could not start the SMTP dialogue (no OAuth token, ...): the same keys as a
    probe's, with the failure's diagnosis."""
    result = Probe(settings).result
    result.update(stage=stage, status=kind, error=str(error), diagnosis=diagnose_transport_failure(kind, str(error)))
    result["summary"] = summarise(settings, result)
    return result


def run_probe(settings):
    """Run the submission test described by ``settings`` (a ``ProbeSettings``); returns the result dict."""
    return Probe(settings).run()


# --- load: N messages over M parallel connections -----------------------------------------------------------------

MAX_LOAD_MESSAGES = 100
MAX_LOAD_CONNECTIONS = 10
MAX_LOAD_SECONDS = 600
# Microsoft's submission hosts (those of connection.CLOUDS, and smtp-legacy, the same service) besides loopback: a
# load test aims only at the service whose limits it shows, never at a third party's server.
LOAD_HOSTS = ("smtp.office365.com", "smtp-legacy.office365.com", "smtp.office365.us", "smtp.partner.outlook.cn")


def _is_loopback(host):
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_errors(messages, connections, time_limit, host, auth_mode="basic"):
    """What is wrong with a load test's bounds (one sentence each, naming the option); empty when it may run."""
    errors = []
    if auth_mode in UNAUTHENTICATED_MODES and (messages > 1 or connections > 1):
        errors.append("messages and connections above 1 need auth_mode basic or oauth: the sending limits they "
                      "show are those of an authenticated mailbox")
    if not 1 <= messages <= MAX_LOAD_MESSAGES:
        errors.append("messages must be between 1 and %d, not %s" % (MAX_LOAD_MESSAGES, messages))
    if not 1 <= connections <= MAX_LOAD_CONNECTIONS:
        errors.append("connections must be between 1 and %d, not %s" % (MAX_LOAD_CONNECTIONS, connections))
    elif connections > messages:
        errors.append("connections (%s) must not be more than messages (%s): every connection sends at least one"
                      % (connections, messages))
    if not 1 <= time_limit <= MAX_LOAD_SECONDS:
        errors.append("time_limit must be between 1 and %d seconds, not %s" % (MAX_LOAD_SECONDS, time_limit))
    if (messages > 1 or connections > 1) and host.lower() not in LOAD_HOSTS and not _is_loopback(host):
        errors.append("host %s: more than one message or connection is sent only to Microsoft's submission "
                      "endpoint (%s) or to a loopback address" % (host, ", ".join(LOAD_HOSTS)))
    return errors


class LoadConnection(Probe):
    """One connection of a load test: opened and authenticated like the single test, then sends its share of the
    messages, each with its own reply and diagnosis."""

    def __init__(self, settings, number, deadline, sequence):
        super().__init__(settings)
        self.number = number
        self.deadline = deadline
        self._sequence = sequence
        self.sent = []

    def open(self):
        """Connect, STARTTLS and AUTH; True when the connection may send."""
        try:
            self._connect()
            self._ehlo()
            self._starttls()
            self._authenticate()
        except _Stop:
            return False
        except smtplib.SMTPResponseException as error:
            self._reply_outcome(error.smtp_code, error.smtp_error, "refused")
            return False
        except (OSError, smtplib.SMTPException) as error:
            self._transport_failure(self.classify_error(error), error)
            return False
        return self.result["ok"]

    def _message_result(self, number, status, stage, code=None, reply=None, error=None):
        outcome = {"message": number, "connection": self.number, "status": status, "stage": stage,
                   "reply_code": None, "enhanced_status_code": None, "reply_line": None, "server_suffix": None,
                   "message_id": None, "error": error, "diagnosis": None, "order": next(self._sequence)}
        if code is not None:
            parsed = parse_reply(code, reply)
            outcome.update(reply_code=parsed.code, enhanced_status_code=parsed.enhanced_status_code,
                           reply_line=parsed.line, server_suffix=parsed.server_suffix,
                           diagnosis=diagnose_reply(parsed, None, mailbox=self.settings.username))
        elif status != "not_sent":
            outcome["diagnosis"] = diagnose_transport_failure(status, error)
        self.sent.append(outcome)
        return outcome

    def send_numbered(self, number, total):
        """Send test message ``number`` of ``total``; a refusal is the message's result and the connection goes on
        (RSET), a failure below SMTP ends the connection's sending."""
        settings = self.settings
        message = self._build_message()
        message.replace_header("Subject", "%s (%d/%d)" % (settings.subject, number, total))
        stage = "mail"
        try:
            code, reply = self.smtp.mail(settings.sender)
            if code == 250:
                stage = "rcpt"
                code, reply = self.smtp.rcpt(settings.recipient)
            if code in (250, 251):
                stage = "data"
                code, reply = self.smtp.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
            if code == 250:
                outcome = self._message_result(number, "sent", stage, code, reply)
                outcome["message_id"] = message["Message-ID"]
                return True
            self._message_result(number, "refused", stage, code, reply)
            # 421 closes the session; any other refusal leaves it usable once the transaction is reset.
            if code == 421:
                return False
            self.smtp.rset()
            return True
        except smtplib.SMTPResponseException as error:
            self._message_result(number, "refused", stage, error.smtp_code, error.smtp_error)
        except (OSError, smtplib.SMTPException) as error:
            self._message_result(number, self.classify_error(error), stage, error=str(error) or type(error).__name__)
        return False

    def not_sent(self, numbers, reason):
        for number in numbers:
            self._message_result(number, "not_sent", None, error=reason)

    def run_share(self, numbers, total, barrier):
        """Open, wait for the other connections (so they are all open at once, as devices sharing a mailbox are),
        send ``numbers``, close. Returns the connection's result."""
        opened = self.open()
        try:
            barrier.wait(max(0.0, self.deadline - time.monotonic()))
        except threading.BrokenBarrierError:
            # Another connection never arrived in time; this one still sends its share.
            pass
        pending = list(numbers)
        try:
            if not opened:
                self.not_sent(pending, "the connection did not authenticate")
                pending = []
            elif not self.settings.send_message:
                self.not_sent(pending, "check mode sends no message")
                pending = []
            while pending:
                if time.monotonic() >= self.deadline:
                    self.not_sent(pending, "time_limit reached")
                    break
                number = pending.pop(0)
                if not self.send_numbered(number, total):
                    self.not_sent(pending, "the connection ended after message %d" % number)
                    break
        finally:
            self._quit()
            if self.smtp is not None:
                self.result["transcript"] = list(self.smtp.transcript)
        self.result["connection"] = self.number
        self.result["messages"] = [outcome["message"] for outcome in self.sent]
        self.result["summary"] = summarise(self.settings, self.result)
        return self.result


def _first(outcomes, wanted):
    return next((outcome for outcome in sorted(outcomes, key=lambda item: item["order"]) if wanted(outcome)), None)


def _load_summary(settings, load):
    who = settings.username or "(no user)"
    where = "%s:%s" % (settings.host, settings.port)
    counts = "%d of %d messages accepted over %d connections" % (
        load["messages_sent"], load["messages_requested"], load["connections_requested"])
    failed = [result for result in load["connections"] if not result["authenticated"]]
    if failed:
        counts += " (%d of them did not authenticate; connection %d: %s)" % (
            len(failed), failed[0]["connection"], failed[0]["summary"])
    first_limit = load["first_limit"]
    if first_limit:
        return ("%s: %s; the limit met first: %s (\"%s\" for message %d on connection %d). Fix: %s" % (
            who, counts, first_limit["description"], first_limit["reply_line"], first_limit["message"],
            first_limit["connection"], first_limit["fix"]))
    refusal = load["first_refusal"]
    if refusal:
        return "%s: %s at %s; no sending limit was met, but message %d got \"%s\". Cause: %s Fix: %s" % (
            who, counts, where, refusal["message"], refusal["reply_line"] or refusal["status"],
            refusal["cause"], refusal["fix"])
    return "%s: %s at %s; no limit was met." % (who, counts, where)


def run_load(settings, messages, connections, time_limit):
    """Send ``messages`` test messages over ``connections`` parallel connections (one thread each, all opened
    before any sends), within ``time_limit`` seconds; the result has the single test's keys (from the first
    refusal, or the last accepted message) and ``load`` (per connection, per message, the limit met first)."""
    errors = load_errors(messages, connections, time_limit, settings.host, settings.auth_mode)
    if errors:
        raise ValueError("; ".join(errors))
    deadline = time.monotonic() + time_limit
    sequence = itertools.count()
    barrier = threading.Barrier(connections)
    # No single reply may outlast the whole test.
    bounded = dataclasses.replace(settings, timeout=min(settings.timeout, time_limit))
    workers = [LoadConnection(bounded, number, deadline, sequence) for number in range(1, connections + 1)]
    shares = [list(range(number, messages + 1, connections)) for number in range(1, connections + 1)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=connections, thread_name_prefix="smtp-load") as pool:
        results = list(pool.map(lambda pair: pair[0].run_share(pair[1], messages, barrier), zip(workers, shares)))
    outcomes = sorted((outcome for worker in workers for outcome in worker.sent), key=lambda item: item["message"])

    first_limit = _first(outcomes, lambda outcome: (outcome["diagnosis"] or {}).get("limit"))
    first_refusal = _first(outcomes, lambda outcome: outcome["status"] not in ("sent", "not_sent"))
    load = {
        "messages_requested": messages,
        "connections_requested": connections,
        "connections_authenticated": sum(1 for result in results if result["authenticated"]),
        "time_limit": time_limit,
        "messages_sent": sum(1 for outcome in outcomes if outcome["status"] == "sent"),
        "messages_refused": sum(1 for outcome in outcomes if outcome["status"] == "refused"),
        "messages_not_sent": sum(1 for outcome in outcomes if outcome["status"] not in ("sent", "refused")),
        "limits_met": sorted({outcome["diagnosis"]["limit"] for outcome in outcomes
                              if (outcome["diagnosis"] or {}).get("limit")}),
        "first_limit": None,
        "first_refusal": None,
        "connections": results,
        "messages": [dict((key, value) for key, value in outcome.items() if key != "order") for outcome in outcomes],
    }
    if first_limit:
        name = first_limit["diagnosis"]["limit"]
        load["first_limit"] = dict(limit=name, description=LIMITS[name], message=first_limit["message"],
                                   connection=first_limit["connection"], reply_line=first_limit["reply_line"],
                                   fix=first_limit["diagnosis"]["fix"])
    if first_refusal:
        load["first_refusal"] = dict(message=first_refusal["message"], connection=first_refusal["connection"],
                                     status=first_refusal["status"], reply_line=first_refusal["reply_line"],
                                     cause=first_refusal["diagnosis"]["cause"], fix=first_refusal["diagnosis"]["fix"])
    return _load_result(settings, results, outcomes, load, first_limit or first_refusal)


def _load_result(settings, results, outcomes, load, deciding):
    """The single test's keys for a load test: those of the deciding message (the first limit or refusal), else
    of the last accepted one, else the first connection's."""
    # A connection that did not authenticate speaks for the test: nothing it was given was tried.
    opened = next((result for result in results if not result["authenticated"]), results[0])
    result = dict((key, value) for key, value in opened.items() if key not in ("connection", "messages"))
    last_sent = next((outcome for outcome in reversed(outcomes) if outcome["status"] == "sent"), None)
    shown = deciding or last_sent
    if shown is not None:
        result.update((key, shown[key]) for key in ("stage", "reply_code", "enhanced_status_code", "reply_line",
                                                    "server_suffix", "diagnosis", "error"))
        result["reply_text"] = parse_reply_line(shown["reply_line"]).text if shown["reply_line"] else None
    result["message_sent"] = load["messages_sent"] > 0
    result["message_id"] = last_sent["message_id"] if last_sent else None
    every_sent = load["messages_sent"] == load["messages_requested"]
    result["ok"] = opened["authenticated"] and (every_sent or not settings.send_message)
    if not opened["authenticated"]:
        result["status"] = opened["status"]
    elif not settings.send_message:
        result["status"] = "authenticated"
    elif every_sent:
        result["status"] = "sent"
    else:
        result["status"] = "limited" if load["first_limit"] else "refused"
    result["load"] = load
    result["summary"] = _load_summary(settings, load)
    return result
