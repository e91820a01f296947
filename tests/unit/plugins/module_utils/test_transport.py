# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import socket

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
)
from conftest import make_settings


def answers(*replies):
    """Answer the requests, in turn, with ``replies``; the last one repeats."""
    queue = list(replies)

    def answer(method, path, body, headers):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def test_throttled_post_is_retried_after_retry_after(serve, sleeps):
    server = serve(answers((429, {"error": {}}, {"Retry-After": "7"}), (200, {"ok": True}, None)))
    events = transport.RetryEvents()
    session = transport.build_session(make_settings(server.url), events)
    response = transport.send(session, "POST", server.url + "/adminapi/beta/t/InvokeCommand", json={"a": 1})
    assert response.status_code == 200
    assert [request["body"] for request in server.requests] == [{"a": 1}, {"a": 1}]
    assert 7 in sleeps
    assert events.as_list() == [{"method": "POST", "url": server.url + "/adminapi/beta/t/InvokeCommand",
                                 "status": 429, "wait": 7.0}]
    assert events.summary()["throttled"] == 1 and events.summary()["unavailable"] == 0


def test_retries_are_bounded_and_the_last_answer_is_returned(serve, sleeps):
    server = serve(answers((503, "busy", None)))
    events = transport.RetryEvents()
    session = transport.build_session(make_settings(server.url, max_retries=2), events)
    response = transport.send(session, "GET", server.url + "/v1.0/x")
    assert response.status_code == 503
    assert len(server.requests) == 3
    assert len(events) == 2


def test_gateway_timeout_backs_off_without_retry_after(serve, sleeps):
    server = serve(answers((504, "", None), (504, "", None), (200, {}, None)))
    events = transport.RetryEvents()
    session = transport.build_session(make_settings(server.url), events)
    assert transport.send(session, "GET", server.url + "/v1.0/x").status_code == 200
    waits = [event["wait"] for event in events.as_list()]
    assert waits[1] > waits[0]  # exponential backoff
    summary = events.summary()
    assert summary["throttled"] == 0 and summary["unavailable"] == 2  # 504 is unavailability, not throttling


def test_a_retry_after_longer_than_max_retry_wait_fails_at_once_saying_how_long(serve, sleeps):
    server = serve(answers((429, "", {"Retry-After": "86400"}), (200, {}, None)))
    events = transport.RetryEvents()
    session = transport.build_session(make_settings(server.url), events)
    with pytest.raises(ThrottledError) as caught:
        transport.send(session, "GET", server.url + "/x")
    assert not isinstance(caught.value, ServiceUnavailableError)
    assert "throttled and asked to wait 86400 seconds" in str(caught.value)
    assert "longer than max_retry_wait (300 s); not waiting" in str(caught.value)
    assert caught.value.retry_after == 86400 and caught.value.status == 429
    assert len(server.requests) == 1 and sleeps == [] and events.as_list() == []


def test_a_long_503_wait_is_unavailable_and_a_wait_within_the_limit_is_waited(serve, sleeps):
    server = serve(answers((503, "", {"Retry-After": "40"}), (200, {}, None)))
    with pytest.raises(ServiceUnavailableError, match="was unavailable and asked to wait 40 seconds"):
        transport.send(transport.build_session(make_settings(server.url, max_retry_wait=30)), "GET", server.url + "/x")
    server = serve(answers((503, "", {"Retry-After": "40"}), (200, {}, None)))
    response = transport.send(transport.build_session(make_settings(server.url, max_retry_wait=40)), "GET",
                              server.url + "/x")
    assert response.status_code == 200 and 40 in sleeps


def test_each_wait_is_announced_as_it_starts_and_summed_up(serve, sleeps):
    server = serve(answers((429, "", {"Retry-After": "3"}), (503, "", {"Retry-After": "5"}), (200, {}, None)))
    heard = []
    events = transport.RetryEvents(announce=heard.append)
    transport.send(transport.build_session(make_settings(server.url), events), "GET", server.url + "/v1.0/x")
    assert [(event["status"], event["wait"]) for event in heard] == [(429, 3.0), (503, 5.0)]
    summary = events.summary()
    assert (summary["throttled"], summary["unavailable"], summary["waited"]) == (1, 1, 8.0)
    assert summary["longest"]["wait"] == 5.0 and summary["longest"]["url"] == server.url + "/v1.0/x"


def test_session_ignores_environment_ca_bundle(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    session = transport.build_session(make_settings("https://example.invalid", ca_path=str(tmp_path / "ca.pem")))
    assert session.trust_env is False
    settings = session.merge_environment_settings("https://example.invalid", {}, None, session.verify, None)
    assert settings["verify"] == str(tmp_path / "ca.pem")


def test_validate_certs_false_turns_verification_off():
    assert transport.build_session(make_settings("https://x", validate_certs=False, ca_path="/ca.pem")).verify is False


def test_refused_connection_fails_at_once_without_retries_naming_the_url(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = "http://127.0.0.1:%d/v1.0/x" % port
    events = transport.RetryEvents()
    session = transport.build_session(make_settings("http://127.0.0.1:%d" % port, max_retries=4), events)
    with pytest.raises(TransportError) as caught:
        transport.send(session, "GET", url)
    assert caught.value.url == url
    assert "Could not connect to %s: the connection was refused" % url in str(caught.value)
    assert "Not retried." in str(caught.value)
    # urllib3 used to back off and try again max_retries times: no wait, no retry now.
    assert sleeps == [] and events.as_list() == []


def test_every_request_carries_a_client_request_id(serve):
    server = serve(answers((200, {}, None)))
    transport.send(transport.build_session(make_settings(server.url)), "GET", server.url + "/x")
    assert server.requests[0]["headers"].get("client-request-id")


def test_fractional_retry_after_is_rounded_up_not_a_crash(serve, sleeps):
    # Microsoft's Exchange module reads Retry-After as a double; urllib3 refuses "1.5" as a header.
    server = serve(answers((429, {"error": {}}, {"Retry-After": "1.5"}), (200, {"ok": True}, None)))
    events = transport.RetryEvents()
    session = transport.build_session(make_settings(server.url), events)
    response = transport.send(session, "POST", server.url + "/adminapi/beta/t/InvokeCommand", json={})
    assert response.status_code == 200
    assert 2 in sleeps
    assert [event["wait"] for event in events.as_list()] == [2.0]
