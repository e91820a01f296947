# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The load test (N messages over M parallel connections) against a plain aiosmtpd server that answers what each
test gives it."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import CLOUDS
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_probe import (
    LOAD_HOSTS,
    LoadConnection,
    ProbeSettings,
    load_errors,
    run_load,
)
# The probe tests' settings serve the load tests too (the server and its certificates are conftest fixtures).
from test_smtp_probe import settings_for

ACCEPTED = "250 2.0.0 OK <test@probe> [Hostname=TESTFRONTEND]"
QUOTA = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException [Hostname=TESTFRONTEND]"


def load_settings(server, certificates, **overrides):
    return settings_for(server, certificates, **dict(dict(recipient="ops@contoso.com"), **overrides))


def test_messages_are_shared_over_the_connections_and_each_has_its_result(server, certificates):
    result = run_load(load_settings(server, certificates), messages=6, connections=3, time_limit=60)

    load = result["load"]
    assert (result["ok"], result["status"]) == (True, "sent")
    assert [message["message"] for message in load["messages"]] == [1, 2, 3, 4, 5, 6]
    assert all(message["status"] == "sent" and message["reply_code"] == 250 for message in load["messages"])
    assert [connection["messages"] for connection in load["connections"]] == [[1, 4], [2, 5], [3, 6]]
    assert all(connection["authenticated"] for connection in load["connections"])
    assert (load["messages_sent"], load["connections_authenticated"], load["first_limit"]) == (6, 3, None)
    assert len(server.handler.messages) == 6
    assert b"Subject: SMTP AUTH test (4/6)" in b"".join(content for _f, _t, content in server.handler.messages)
    assert result["summary"].endswith("6 of 6 messages accepted over 3 connections at 127.0.0.1:%d; no limit was "
                                      "met." % server.port)


def test_the_limit_met_first_is_named_and_the_connection_goes_on(server, certificates):
    server.handler.data_reply = lambda count: ACCEPTED if count <= 2 else QUOTA

    result = run_load(load_settings(server, certificates), messages=4, connections=1, time_limit=60)

    load = result["load"]
    assert [message["status"] for message in load["messages"]] == ["sent", "sent", "refused", "refused"]
    assert (result["ok"], result["status"]) == (False, "limited")
    assert load["first_limit"]["limit"] == "submission_quota"
    assert load["first_limit"]["message"] == 3 and load["first_limit"]["connection"] == 1
    assert load["limits_met"] == ["submission_quota"]
    assert result["diagnosis"]["key"] == "submission_quota_exceeded"
    assert result["reply_line"] == "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
    assert result["server_suffix"] == "[Hostname=TESTFRONTEND]"
    assert "the limit met first: 30 messages a minute or 10,000 recipients a day per mailbox" in result["summary"]
    assert "for message 3 on connection 1" in result["summary"]


def test_a_421_ends_the_connections_sending(server, certificates):
    server.handler.data_reply = lambda count: ACCEPTED if count == 1 else (
        "421 4.4.2 Message submission rate for this client has exceeded the configured limit")

    result = run_load(load_settings(server, certificates), messages=4, connections=1, time_limit=60)

    statuses = [(message["status"], message["error"]) for message in result["load"]["messages"]]
    assert statuses[:2] == [("sent", None), ("refused", None)]
    assert statuses[2:] == [("not_sent", "the connection ended after message 2")] * 2
    assert result["load"]["first_limit"]["limit"] == "message_rate"


def test_an_unknown_reply_in_a_load_gets_the_family_fallback(server, certificates):
    server.handler.data_reply = "554 5.6.0 Something new about the content"

    result = run_load(load_settings(server, certificates), messages=2, connections=2, time_limit=60)

    assert result["status"] == "refused" and result["load"]["first_limit"] is None
    first = result["load"]["messages"][0]["diagnosis"]
    assert first["fallback"] is True and first["family"]["subject_meaning"] == "message content or media"
    assert "no sending limit was met" in result["summary"]


def test_check_mode_authenticates_every_connection_and_sends_nothing(server, certificates):
    result = run_load(load_settings(server, certificates, send_message=False), messages=3, connections=3,
                      time_limit=60)

    assert (result["ok"], result["status"], result["message_sent"]) == (True, "authenticated", False)
    assert len(server.handler.credentials) == 3 and server.handler.messages == []
    assert {message["error"] for message in result["load"]["messages"]} == {"check mode sends no message"}


def test_a_refused_login_speaks_for_the_test(server, certificates):
    server.handler.auth_reply = "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect."

    result = run_load(load_settings(server, certificates), messages=2, connections=2, time_limit=60)

    assert (result["ok"], result["status"], result["stage"]) == (False, "refused", "auth")
    assert result["diagnosis"]["key"] == "credentials_incorrect"
    assert result["load"]["connections_authenticated"] == 0
    assert "did not authenticate" in result["summary"]
    assert server.handler.messages == []


def test_past_the_time_limit_nothing_more_is_sent(server, certificates):
    # A deadline already passed: deterministic, no clock is raced.
    connection = LoadConnection(load_settings(server, certificates), 1, time.monotonic() - 1, itertools.count())

    result = connection.run_share([1, 2], 2, threading.Barrier(1))

    assert result["authenticated"] is True
    assert [(sent["status"], sent["error"]) for sent in connection.sent] == [("not_sent", "time_limit reached")] * 2
    assert server.handler.messages == []


@pytest.mark.parametrize("arguments, fragment", [
    ((0, 1, 60, "127.0.0.1"), "messages must be between 1 and 100, not 0"),
    ((101, 1, 60, "127.0.0.1"), "messages must be between 1 and 100, not 101"),
    ((20, 11, 60, "127.0.0.1"), "connections must be between 1 and 10, not 11"),
    ((2, 3, 60, "127.0.0.1"), "connections (3) must not be more than messages (2)"),
    ((5, 2, 0, "127.0.0.1"), "time_limit must be between 1 and 600 seconds, not 0"),
    ((5, 2, 601, "::1"), "time_limit must be between 1 and 600 seconds, not 601"),
    ((5, 2, 60, "mail.example.org"), "host mail.example.org: more than one message or connection"),
])
def test_load_bounds_are_checked_and_named(arguments, fragment):
    errors = load_errors(*arguments)

    assert any(fragment in error for error in errors), errors
    with pytest.raises(ValueError, match=fragment.split(":")[0].replace("(", r"\(").replace(")", r"\)")):
        run_load(ProbeSettings(host=arguments[3], username="printer@contoso.com", recipient="ops@contoso.com"),
                 *arguments[:3])


@pytest.mark.parametrize("host", ["smtp.office365.com", "SMTP.office365.us", "127.0.0.1", "::1", "localhost"])
def test_load_goes_to_microsoft_or_loopback(host):
    assert load_errors(10, 4, 60, host) == []


def test_one_message_on_one_connection_may_go_anywhere_and_anonymous_load_is_refused():
    assert load_errors(1, 1, 60, "mail.example.org") == []
    assert "need auth_mode basic or oauth" in load_errors(2, 1, 60, "127.0.0.1", "none")[0]


def test_every_clouds_submission_host_may_be_load_tested():
    assert {cloud.smtp_host for cloud in CLOUDS.values()} <= set(LOAD_HOSTS)
