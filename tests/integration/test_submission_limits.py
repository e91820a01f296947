# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a relay device meets after AUTH, through smtp_submission_test against the emulator: the 3-connection
limit, the per-minute limit, the restricted sender, Send As at the end of DATA; and an unknown reply, from a
server that knows nothing of Microsoft, classified by its family."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import contoso
from test_troubleshoot_tools import PASSWORD, RECIPIENT, RELAY, make_clean, probe_task as single_probe_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "plugins" / "module_utils"))
from smtp_reply_server import ReplyServer, make_certificates  # noqa: E402  (a test helper shared with the unit tests)


@pytest.fixture(scope="module")
def emulator(smtp_emulator):
    return smtp_emulator


@pytest.fixture
def clean(tenant):
    """Nothing blocks SMTP AUTH for the relay mailbox, no message counts towards its rate."""
    make_clean(tenant)
    tenant.messages.clear()
    return tenant


def probe_task(emulator, **options):
    return single_probe_task(emulator, **dict(dict(recipient=RECIPIENT), **options))


def refused(probe):
    return [message for message in probe["load"]["messages"] if message["status"] == "refused"]


def test_a_fourth_parallel_connection_gets_4_3_2_and_the_diagnosis_names_the_limit(run_play, clean):
    probe = run_play([probe_task(clean, messages=4, connections=4)])[0]

    assert probe["status"] == "limited" and probe["ok"] is False
    assert probe["changed"] is True and probe["load"]["messages_sent"] == 3
    (fourth,) = refused(probe)
    assert fourth["reply_line"] == "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
    assert fourth["stage"] == "data" and fourth["server_suffix"].startswith("[")
    assert fourth["diagnosis"]["key"] == "concurrent_connection_limit"
    assert probe["load"]["first_limit"]["limit"] == "concurrent_connections"
    assert probe["load"]["first_limit"]["connection"] == fourth["connection"]
    assert probe["diagnosis"]["key"] == "concurrent_connection_limit"
    assert "the limit met first: 3 concurrent connections per mailbox" in probe["summary"]
    assert probe["load"]["connections_authenticated"] == 4
    assert [message["mailbox"] for message in clean.messages] == [RELAY] * 3


def test_three_parallel_connections_stay_under_the_limit(run_play, clean):
    probe = run_play([probe_task(clean, messages=6, connections=3)])[0]

    assert (probe["status"], probe["ok"], probe["load"]["first_limit"]) == ("sent", True, None)
    assert len(clean.messages) == 6


def test_the_31st_message_in_a_minute_meets_the_submission_quota(run_play, clean):
    probe = run_play([probe_task(clean, messages=31, connections=1)])[0]

    assert probe["status"] == "limited"
    assert probe["load"]["messages_sent"] == 30
    (last,) = refused(probe)
    assert last["message"] == 31
    assert last["reply_line"].startswith("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException")
    assert last["diagnosis"]["key"] == "submission_quota_exceeded"
    assert probe["load"]["first_limit"]["limit"] == "submission_quota"
    assert "30 messages a minute" in probe["summary"]


def test_the_rate_wording_is_diagnosed_as_the_message_rate(run_play, clean):
    with clean.store.lock:
        clean.store.behaviour.update(smtp_message_rate_reply="rate", smtp_message_rate_limit=2)
    try:
        probe = run_play([probe_task(clean, messages=3, connections=1)])[0]
    finally:
        with clean.store.lock:
            clean.store.behaviour.update(smtp_message_rate_reply="quota", smtp_message_rate_limit=30)

    assert probe["load"]["first_limit"]["limit"] == "message_rate"
    assert refused(probe)[0]["reply_line"] == ("421 4.4.2 Message submission rate for this client has exceeded the "
                                               "configured limit")


def test_restricted_sender_and_send_as_at_the_end_of_data(run_play, clean):
    with clean.store.lock:
        contoso(clean).find_user(RELAY).restricted_sender = True
    restricted = run_play([probe_task(clean)])[0]
    with clean.store.lock:
        contoso(clean).find_user(RELAY).restricted_sender = False
        clean.store.behaviour["send_as_denied_at"] = "data"
    try:
        send_as = run_play([probe_task(clean, sender="admin@contoso.com")])[0]
    finally:
        with clean.store.lock:
            clean.store.behaviour["send_as_denied_at"] = "mail_from"

    assert (restricted["stage"], restricted["diagnosis"]["key"]) == ("mail", "restricted_sender")
    assert restricted["reply_line"] == "550 5.1.8 Access denied, bad outbound sender"
    assert "Restricted entities" in restricted["diagnosis"]["fix"]
    assert (send_as["stage"], send_as["diagnosis"]["key"]) == ("data", "send_as_denied_at_data")
    assert send_as["reply_line"].startswith("554 5.2.252 SendAsDenied; printer@contoso.com not allowed to send as "
                                            "admin@contoso.com;")


def test_check_mode_opens_every_connection_and_sends_nothing(run_play, clean):
    probe = run_play([probe_task(clean, messages=4, connections=4)], check=True)[0]

    assert (probe["status"], probe["changed"], probe["load"]["connections_authenticated"]) == ("authenticated",
                                                                                               False, 4)
    assert clean.messages == []


@pytest.mark.parametrize("options, words", [
    (dict(messages=101), "messages must be between 1 and 100, not 101"),
    (dict(messages=20, connections=11), "connections must be between 1 and 10, not 11"),
    (dict(messages=2, time_limit=0), "time_limit must be between 1 and 600 seconds, not 0"),
    (dict(messages=2, host="mail.example.org"), "host mail.example.org: more than one message or connection"),
    (dict(messages=2, recipient=None), "give recipient"),
])
def test_bounds_are_checked_before_anything_is_sent(run_play, clean, options, words):
    probe = run_play([probe_task(clean, **options)])[0]

    assert probe["failed"] is True and words in probe["msg"]
    assert clean.messages == []


def test_an_unknown_reply_gets_the_family_fallback(run_play, tenant, tmp_path):
    ca, cert, key = make_certificates(tmp_path)
    with ReplyServer(cert, key) as server:
        server.handler.data_reply = "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains"
        probe = run_play([{"m365ops.smtp_auth.smtp_submission_test": dict(
            host="127.0.0.1", port=server.port, username=RELAY, password=PASSWORD, recipient=RECIPIENT,
            ca_path=ca, timeout=10, messages=2, connections=2)}])[0]

    assert probe["status"] == "refused" and probe["load"]["first_limit"] is None
    diagnosis = probe["diagnosis"]
    assert diagnosis["key"] == "unrecognised_reply" and diagnosis["fallback"] is True
    assert diagnosis["family"]["subject_meaning"] == "security or policy"
    assert "fallback" in diagnosis["cause"]
    assert "no sending limit was met" in probe["summary"]
