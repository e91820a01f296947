# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import socket

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import TransportError
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
    assert events.throttled


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
    assert not events.throttled  # 504 is unavailability, not throttling


def test_huge_retry_after_is_capped(serve, sleeps):
    server = serve(answers((429, "", {"Retry-After": "86400"}), (200, {}, None)))
    events = transport.RetryEvents()
    transport.send(transport.build_session(make_settings(server.url), events), "GET", server.url + "/x")
    assert events.as_list()[0]["wait"] == transport.MAX_RETRY_AFTER


def test_session_ignores_environment_ca_bundle(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    session = transport.build_session(make_settings("https://example.invalid", ca_path=str(tmp_path / "ca.pem")))
    assert session.trust_env is False
    settings = session.merge_environment_settings("https://example.invalid", {}, None, session.verify, None)
    assert settings["verify"] == str(tmp_path / "ca.pem")


def test_validate_certs_false_turns_verification_off():
    assert transport.build_session(make_settings("https://x", validate_certs=False, ca_path="/ca.pem")).verify is False


def test_refused_connection_is_a_transport_error_naming_the_url(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = "http://127.0.0.1:%d/v1.0/x" % port
    session = transport.build_session(make_settings("http://127.0.0.1:%d" % port, max_retries=1))
    with pytest.raises(TransportError) as caught:
        transport.send(session, "GET", url)
    assert caught.value.url == url
    assert "Could not connect" in str(caught.value)


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
