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
import errno
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import is_user_principal_name
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.smtp_diagnosis import (
    diagnose_reply,
    diagnose_transport_failure,
    parse_reply,
)

MASK = "********"
# The options that end up in SMTP command lines or message headers: a line break there would start a command or
# a header of its own (a second RCPT TO, a Bcc), so it is refused instead of sent.
LINE_OPTIONS = ("host", "username", "sender", "recipient", "subject", "ehlo_name")
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
    return problems

AUTH_MECHANISMS = {"basic": "LOGIN", "oauth": "XOAUTH2"}
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
    ``auth_mode: none`` submits without authenticating, the way a device set up for anonymous mail does."""

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
        self.smtp = TranscriptSMTP(secrets=secrets, local_hostname=settings.local_hostname,
                                   timeout=settings.timeout)
        # smtplib takes the name STARTTLS validates the certificate against from the constructor, which
        # would also connect; set it here so connecting stays a step of its own.
        self.smtp._host = settings.host
        code, message = self.smtp.connect(settings.host, settings.port)
        if code != 220:
            self._refused(code, message)

    def _ehlo(self):
        self.result["stage"] = "ehlo"
        code, message = self.smtp.ehlo()
        if code != 250:
            self._refused(code, message)

    def _starttls(self):
        self.result["stage"] = "starttls"
        if not self.smtp.has_extn("starttls"):
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
        self._ehlo()

    def _authenticate(self):
        settings = self.settings
        if settings.auth_mode == "none":
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
        message.set_content(settings.body or "Test message sent by m365ops.smtp_auth.smtp_submission_test to "
                                             "check SMTP AUTH submission for %s.\n" % settings.username)
        return message

    def _send(self):
        settings = self.settings
        if not settings.recipient or not settings.send_message:
            return
        message = self._build_message()
        self.result["stage"] = "mail"
        code, reply = self.smtp.mail(settings.sender)
        if code != 250:
            self._refused(code, reply)
        self.result["stage"] = "rcpt"
        code, reply = self.smtp.rcpt(settings.recipient)
        if code not in (250, 251):
            self._refused(code, reply)
        self.result["stage"] = "data"
        code, reply = self.smtp.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        if code != 250:
            self._refused(code, reply)
        self.result["message_sent"] = True
        self.result["message_id"] = message["Message-ID"]
        self._reply_outcome(code, reply, "sent")

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
