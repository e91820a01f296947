# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The probe against a plain aiosmtpd server that answers each of Microsoft's reply lines."""

from __future__ import annotations

import base64
import socket

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import smtp_diagnosis as diagnosis
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_probe import (
    MASK,
    ProbeSettings,
    TranscriptSMTP,
    run_probe,
)
from smtp_reply_server import ReplyServer

PASSWORD = "Printer-Pass-2026!"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJl"
SUFFIX = "[AM0PR02CA0001.eurprd02.prod.outlook.com 2026-02-03T10:11:12.345Z 08DE3A1B2C3D4E5F]"

# Where each reply line is answered, and what the probe must call it.
AUTH_LINES = [
    (diagnosis.REPLY_TENANT_DISABLED, "tenant_smtp_auth_disabled", ["org_smtp_auth_disabled"]),
    (diagnosis.REPLY_MAILBOX_DISABLED, "mailbox_smtp_auth_disabled", ["mailbox_smtp_auth_disabled"]),
    (diagnosis.REPLY_SECURITY_DEFAULTS, "security_defaults", ["security_defaults_enabled"]),
    (diagnosis.REPLY_CRITERIA, "criteria_not_met", ["per_user_mfa", "conditional_access", "no_exchange_license"]),
    (diagnosis.REPLY_BASIC_DISABLED, "basic_auth_disabled_by_policy", ["authentication_policy"]),
    (diagnosis.REPLY_CREDENTIALS, "credentials_incorrect", ["mailbox_not_found", "no_exchange_license"]),
    (diagnosis.REPLY_UNSUCCESSFUL, "authentication_unsuccessful",
     ["no_smtp_send_as_app", "service_principal_not_registered", "service_principal_wrong_object_id", "no_full_access"]),
    (diagnosis.REPLY_BASIC_RETIRED, "basic_auth_retired", []),
]


def settings_for(server, certificates, **overrides):
    values = dict(host="127.0.0.1", port=server.port, username="printer@contoso.com", password=PASSWORD,
                  ca_path=certificates[0], timeout=10)
    values.update(overrides)
    return ProbeSettings(**values)


def assert_no_secret(transcript, *secrets):
    joined = "\n".join(transcript)
    for secret in secrets:
        assert secret not in joined
        assert base64.b64encode(secret.encode()).decode() not in joined


@pytest.mark.parametrize("suffix", ["", " " + SUFFIX], ids=["plain", "with-server-suffix"])
@pytest.mark.parametrize("line, key, blockers", AUTH_LINES, ids=[item[1] for item in AUTH_LINES])
def test_each_auth_reply_line_is_diagnosed(server, certificates, line, key, blockers, suffix):
    server.handler.auth_reply = line + suffix

    result = run_probe(settings_for(server, certificates, recipient="it@contoso.com"))

    assert result["status"] == "refused"
    assert result["ok"] is False
    assert result["stage"] == "auth"
    assert result["authenticated"] is False
    assert result["reply_line"] == line
    assert result["reply_code"] == int(line[:3])
    assert result["enhanced_status_code"] == line.split()[1]
    assert result["server_suffix"] == (SUFFIX if suffix else None)
    assert result["diagnosis"]["key"] == key
    assert result["diagnosis"]["matches_known_reply"] is True
    assert result["diagnosis"]["blockers"] == blockers
    # Refused at AUTH: the probe must not go on to submit anything.
    assert server.handler.messages == []
    assert result["message_sent"] is False


def test_xoauth2_refusal_is_diagnosed_and_token_masked(server, certificates):
    server.handler.auth_reply = diagnosis.REPLY_UNSUCCESSFUL

    result = run_probe(settings_for(server, certificates, auth_mode="oauth", password=None, access_token=TOKEN))

    assert server.handler.credentials == [("XOAUTH2", "printer@contoso.com", TOKEN)]
    assert result["diagnosis"]["key"] == "authentication_unsuccessful"
    assert "C: AUTH XOAUTH2 %s" % MASK in result["transcript"]
    assert_no_secret(result["transcript"], TOKEN,
                     "user=printer@contoso.com\x01auth=Bearer %s\x01\x01" % TOKEN)


def test_success_sends_the_message_and_masks_the_password(server, certificates):
    result = run_probe(settings_for(server, certificates, recipient="it@contoso.com"))

    assert result["ok"] is True
    assert result["status"] == "sent"
    assert result["authenticated"] is True
    assert result["message_sent"] is True
    assert result["reply_code"] == 250
    assert result["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert server.handler.credentials == [("LOGIN", "printer@contoso.com", PASSWORD)]
    (mail_from, recipients, content), = server.handler.messages
    assert (mail_from, recipients) == ("printer@contoso.com", ["it@contoso.com"])
    assert result["message_id"].encode() in content
    transcript = result["transcript"]
    assert transcript[0].startswith("S: 220 probe-test.example")
    assert "C: STARTTLS" in transcript
    assert "C: AUTH LOGIN %s" % MASK in transcript
    assert "S: 235 2.7.0 Authentication successful" in transcript
    assert any(line.startswith("C: <message: ") for line in transcript)
    assert_no_secret(transcript, PASSWORD, "printer@contoso.com\x00")


def test_without_sending_it_stops_after_authentication(server, certificates):
    result = run_probe(settings_for(server, certificates, recipient="it@contoso.com", send_message=False))

    assert result["ok"] is True
    assert result["status"] == "authenticated"
    assert result["diagnosis"]["key"] == "authenticated"
    assert result["message_sent"] is False
    assert server.handler.messages == []
    assert not any(line.startswith("C: MAIL FROM") for line in result["transcript"])


@pytest.mark.parametrize("line", [diagnosis.REPLY_NOT_AUTHENTICATED, diagnosis.REPLY_NOT_AUTHENTICATED_OLD])
def test_anonymous_submission_gets_5_7_57(server, certificates, line):
    server.handler.anonymous_mail_reply = line + " " + SUFFIX

    result = run_probe(settings_for(server, certificates, auth_mode="none", password=None,
                                    recipient="it@contoso.com"))

    assert result["stage"] == "mail"
    assert result["reply_line"] == line
    assert result["diagnosis"]["key"] == "client_not_authenticated"
    assert result["diagnosis"]["matches_known_reply"] is True


def test_send_as_refusal_at_mail_from(server, certificates):
    server.handler.mail_reply = diagnosis.REPLY_SEND_AS

    result = run_probe(settings_for(server, certificates, sender="ceo@contoso.com", recipient="it@contoso.com"))

    assert result["authenticated"] is True
    assert result["stage"] == "mail"
    assert result["diagnosis"]["key"] == "send_as_denied"
    assert result["ok"] is False


def test_untrusted_certificate_is_a_tls_result(server):
    result = run_probe(ProbeSettings(host="127.0.0.1", port=server.port, username="printer@contoso.com",
                                     password=PASSWORD, timeout=10))

    assert result["status"] == "tls_certificate"
    assert result["stage"] == "starttls"
    assert result["diagnosis"]["key"] == "tls_certificate"
    assert "certificate" in result["error"].lower()
    assert result["authenticated"] is False
    assert server.handler.credentials == []


def test_server_without_starttls_is_never_sent_the_password(certificates):
    with ReplyServer(starttls=False) as plain:
        result = run_probe(ProbeSettings(host="127.0.0.1", port=plain.port, username="printer@contoso.com",
                                         password=PASSWORD, ca_path=certificates[0], timeout=10))
        assert plain.handler.credentials == []

    assert result["status"] == "starttls_not_offered"
    assert not any("AUTH" in line for line in result["transcript"] if line.startswith("C:"))


def test_closed_port_is_connection_refused():
    probe_socket = socket.socket()
    probe_socket.bind(("127.0.0.1", 0))
    port = probe_socket.getsockname()[1]
    probe_socket.close()

    result = run_probe(ProbeSettings(host="127.0.0.1", port=port, username="u@contoso.com", password="x",
                                     timeout=5))

    assert result["status"] == "connection_refused"
    assert result["diagnosis"]["key"] == "connection_refused"
    assert result["stage"] == "connect"
    assert result["transcript"] == []


def test_silent_server_is_a_timeout():
    # The kernel completes the handshake for a listening socket nobody accepts from, so the greeting
    # simply never comes: what a firewall that blackholes port 587 looks like from the client.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        result = run_probe(ProbeSettings(host="127.0.0.1", port=silent.getsockname()[1], username="u@contoso.com",
                                         password="x", timeout=0.5))
    finally:
        silent.close()

    assert result["status"] == "timeout"
    assert result["diagnosis"]["key"] == "timeout"


def test_unresolvable_host_is_a_dns_failure(monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # No resolver is asked: the test must not leave the machine.
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)

    result = run_probe(ProbeSettings(host="smtp.office365.invalid", username="u@contoso.com", password="x",
                                     timeout=5))

    assert result["status"] == "dns_failure"
    assert result["diagnosis"]["key"] == "dns_failure"
    assert "smtp.office365.invalid:587" in result["error"]


def test_transcript_masks_login_challenge_answers():
    client = TranscriptSMTP(secrets=["hunter2"])
    sent = []
    client.sock = type("Sink", (), {"sendall": lambda self, data: sent.append(data)})()

    client.send("AUTH LOGIN %s\r\n" % base64.b64encode(b"printer@contoso.com").decode())
    client._last_reply_code = 334
    client.send(base64.b64encode(b"hunter2").decode() + "\r\n")
    client.send("QUIT\r\n")

    assert client.transcript == ["C: AUTH LOGIN %s" % MASK, "C: %s" % MASK, "C: QUIT"]
    # Masking changes the record only, never what goes on the wire.
    assert sent[1] == base64.b64encode(b"hunter2") + b"\r\n"
