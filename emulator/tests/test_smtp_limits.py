"""SMTP submission after AUTH: the concurrent connection limit, the message rate, the restricted sender and Send As
at the end of DATA, each behind its switch or user flag."""

from __future__ import annotations

import contextlib
import datetime
import smtplib
import time

import pytest
from conftest import CONTOSO_ID
from m365_emulator.seed import store_from_document
from m365_emulator.smtp import models as smtp

SCANNER = "scanner@contoso.com"
SCANNER_PASSWORD = "Scanner-Pass-2026!"
MESSAGE = b"From: scanner@contoso.com\r\nTo: ops@example.org\r\nSubject: scan\r\n\r\nscanned\r\n"


def ready(emulator) -> None:
    """Let the scanner authenticate (its own switch on, security defaults off)."""
    with emulator.store.lock:
        tenant = emulator.store.find_tenant(CONTOSO_ID)
        tenant.security_defaults_enabled = False
        tenant.find_user(SCANNER).smtp_client_authentication_disabled = False


def switch(emulator, **switches) -> None:
    with emulator.store.lock:
        emulator.store.behaviour.update(switches)


def session(emulator) -> smtplib.SMTP:
    client = smtplib.SMTP(emulator.smtp_host, emulator.smtp_port, timeout=10)
    client.ehlo("client.example")
    client.starttls(context=emulator.client_ssl_context())
    client.ehlo("client.example")
    assert client.login(SCANNER, SCANNER_PASSWORD)[0] == 235
    return client


def submit(client: smtplib.SMTP, sender: str = SCANNER) -> tuple[int, str]:
    """MAIL, RCPT and DATA; the first reply that is not a success, or DATA's."""
    code, text = client.mail(sender)
    if code != 250:
        return code, text.decode()
    assert client.rcpt("ops@example.org")[0] == 250
    code, text = client.data(MESSAGE)
    return code, text.decode()


# -- concurrent connections -------------------------------------------------------------------------------------

def test_a_fourth_concurrent_session_of_a_mailbox_gets_432_at_the_end_of_data(emulator):
    ready(emulator)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(session(emulator)) for _ in range(4)]

        replies = [submit(client) for client in clients]

    assert [code for code, _ in replies[:3]] == [250, 250, 250]
    code, text = replies[3]
    assert code == 432
    assert text.startswith("4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [")
    assert [message["mailbox"] for message in emulator.messages] == [SCANNER] * 3


def test_a_closed_session_frees_its_place(emulator):
    ready(emulator)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(session(emulator)) for _ in range(3)]
        clients[0].quit()
        # The server learns of the close asynchronously; a bounded wait for the place to be free.
        for _ in range(50):
            with session(emulator) as late:
                code, _ = submit(late)
            if code == 250:
                break
            time.sleep(0.05)
        assert code == 250
        assert submit(clients[1])[0] == 250


def test_each_mailbox_has_its_own_places():
    first = smtp.Authenticated(tenant_id="t", user_id="u1", login="a@t", mechanism="LOGIN")
    second = smtp.Authenticated(tenant_id="t", user_id="u2", login="b@t", mechanism="LOGIN")
    sessions = smtp.OpenSessions()

    assert [sessions.admit(first, number, 3) for number in range(4)] == [True, True, True, False]
    assert sessions.admit(second, 10, 3) is True
    sessions.release(first, 3)  # never admitted: frees nothing
    assert sessions.count(first) == 3
    sessions.release(first, 0)
    assert sessions.admit(first, 4, 3) is True


@pytest.mark.parametrize("wording, limit, expected", [
    ("concurrent_connections", 3, (250, 250, 250, 432)),
    ("sender_thread", 1, (250, 432, 432, 432)),
    ("off", 3, (250, 250, 250, 250)),
])
def test_connection_limit_switches(emulator, wording, limit, expected):
    ready(emulator)
    switch(emulator, smtp_connection_limit_reply=wording, smtp_connection_limit=limit)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(session(emulator)) for _ in range(4)]
        replies = [submit(client) for client in clients]

    assert tuple(code for code, _ in replies) == expected
    if wording == "concurrent_connections":
        assert replies[3][1].startswith("4.3.2 Concurrent connections limit exceeded. Visit "
                                        "https://aka.ms/concurrent_sending for more information. [")


# -- message rate -------------------------------------------------------------------------------------------------

def test_the_31st_message_in_a_minute_gets_the_quota_line(emulator):
    ready(emulator)
    with session(emulator) as client:
        replies = [submit(client) for _ in range(31)]

    assert [code for code, _ in replies[:30]] == [250] * 30
    code, text = replies[30]
    assert code == 554
    assert text.startswith("5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException;")
    assert len(emulator.messages) == 30


@pytest.mark.parametrize("wording, expected", [("rate", 421), ("off", 250)])
def test_message_rate_switches(emulator, wording, expected):
    ready(emulator)
    switch(emulator, smtp_message_rate_reply=wording, smtp_message_rate_limit=2)
    with session(emulator) as client:
        codes = [submit(client)[0] for _ in range(3)]

    assert codes == [250, 250, expected]


def test_the_rate_window_counts_only_the_last_minute_and_a_reset_clears_it(emulator, http):
    ready(emulator)
    switch(emulator, smtp_message_rate_limit=1)
    with session(emulator) as client:
        assert submit(client)[0] == 250
        assert submit(client)[0] == 554
        # An accepted message older than the window no longer counts.
        emulator.messages[-1]["time"] = (datetime.datetime.now(datetime.timezone.utc)
                                         - datetime.timedelta(seconds=61)).isoformat()
        assert submit(client)[0] == 250
        assert http.post(f"{emulator.base_url}/_emulator/reset", timeout=10).status_code == 200
        ready(emulator)
        switch(emulator, smtp_message_rate_limit=1)
        assert submit(client)[0] == 250


def test_over_message_rate_is_per_mailbox():
    who = smtp.Authenticated(tenant_id="t", user_id="u1", login="a@t", mechanism="LOGIN")
    now = datetime.datetime.now(datetime.timezone.utc)
    messages = [{"tenant": "t", "user_id": "u2", "time": now.isoformat()}] * 5
    assert smtp.over_message_rate(messages, who, 1, now) is False
    messages.append({"tenant": "t", "user_id": "u1", "time": now.isoformat()})
    assert smtp.over_message_rate(messages, who, 1, now) is True


# -- restricted sender and Send As at the end of DATA --------------------------------------------------------------

def test_a_restricted_sender_is_refused_at_mail_from(emulator, http):
    ready(emulator)
    response = http.patch(f"{emulator.base_url}/_emulator/tenants/contoso.com/users/{SCANNER}",
                          json={"restricted_sender": True}, timeout=10)
    assert response.status_code == 200
    with session(emulator) as client:
        code, text = client.mail(SCANNER)

    assert code == 550
    assert text.decode().startswith("5.1.8 Access denied, bad outbound sender [")


def test_send_as_denied_at_the_end_of_data(emulator):
    ready(emulator)
    switch(emulator, send_as_denied_at="data")
    with session(emulator) as client:
        code, text = submit(client, "alice@contoso.com")

    assert code == 554
    assert text.startswith("5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as alice@contoso.com; "
                           "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied [")
    assert emulator.messages == []


def test_send_as_denied_stays_at_mail_from_by_default(emulator):
    ready(emulator)
    with session(emulator) as client:
        code, _ = client.mail("alice@contoso.com")
    assert code == 550


def test_new_switches_are_validated(emulator, http):
    url = f"{emulator.base_url}/_emulator/behaviour"
    for bad in ({"smtp_connection_limit": 0}, {"smtp_connection_limit_reply": "maybe"},
                {"smtp_message_rate_limit": "30"}, {"smtp_message_rate_reply": "delay"},
                {"send_as_denied_at": "rcpt"}):
        assert http.patch(url, json=bad, timeout=10).status_code == 400, bad
    good = {"smtp_connection_limit": 5, "smtp_message_rate_reply": "rate", "send_as_denied_at": "data"}
    assert http.patch(url, json=good, timeout=10).status_code == 200


def test_a_seed_can_declare_a_restricted_sender():
    store = store_from_document({"tenants": [{"name": "t", "domains": ["t.example"], "users": [
        {"user_principal_name": "printer@t.example", "restricted_sender": True}]}]})

    assert store.tenants[0].find_user("printer@t.example").restricted_sender is True
