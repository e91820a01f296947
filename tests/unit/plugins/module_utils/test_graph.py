# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    M365Error,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import BatchRequest


def batch_answer(item_status=None):
    """A $batch endpoint answering each item with its own url as body, in reverse order.
    ``item_status(item, call_number) -> (status, headers)`` overrides the status of single items."""
    calls = {"n": 0}

    def answer(method, path, body, headers):
        calls["n"] += 1
        responses = []
        for item in body["requests"]:
            status, item_headers = (item_status(item, calls["n"]) if item_status else None) or (200, {})
            responses.append({"id": item["id"], "status": status, "headers": item_headers,
                              "body": {"url": item["url"], "method": item["method"]}})
        return 200, {"responses": list(reversed(responses))}, None

    return answer


def test_batch_chunks_by_twenty_and_keeps_request_order(serve, clients):
    server = serve(batch_answer())
    graph, _exchange, _events = clients(server.url)
    results = graph.batch([BatchRequest("GET", "users/u%d" % number) for number in range(45)])
    assert [result.body["url"] for result in results] == ["/users/u%d" % number for number in range(45)]
    sizes = sorted(len(request["body"]["requests"]) for request in server.requests)
    assert sizes == [5, 20, 20]
    assert all(request["path"] == "/v1.0/$batch" for request in server.requests)


def test_batch_writes_carry_a_content_type(serve, clients):
    server = serve(batch_answer())
    graph, _exchange, _events = clients(server.url)
    graph.batch([BatchRequest("PATCH", "users/a/authentication/requirements", body={"perUserMfaState": "disabled"})],
                version="beta")
    item = server.requests[0]["body"]["requests"][0]
    assert server.requests[0]["path"] == "/beta/$batch"
    assert item["headers"] == {"Content-Type": "application/json"}
    assert item["body"] == {"perUserMfaState": "disabled"}


def test_throttled_batch_items_alone_are_resent_after_retry_after(serve, clients, sleeps):
    def item_status(item, call_number):
        if item["url"] == "/users/u2" and call_number == 1:
            return 429, {"Retry-After": "5"}
        return None

    server = serve(batch_answer(item_status))
    graph, _exchange, events = clients(server.url)
    results = graph.batch([BatchRequest("GET", "users/u%d" % number) for number in range(4)])
    assert all(result.error is None for result in results)
    assert [item["url"] for item in server.requests[1]["body"]["requests"]] == ["/users/u2"]
    assert sleeps == [5.0]
    assert events.as_list()[0]["status"] == 429 and events.as_list()[0]["wait"] == 5.0


def test_batch_item_throttling_is_bounded(serve, clients, sleeps):
    server = serve(batch_answer(lambda item, call_number: (429, {"Retry-After": "1"})))
    graph, _exchange, _events = clients(server.url, max_retries=2)
    results = graph.batch([BatchRequest("GET", "users/a", operation="reading a")])
    assert len(server.requests) == 3
    assert results[0].status == 429 and "throttling" in str(results[0].error)


def test_batch_item_errors_are_mapped_per_item(serve, clients):
    def item_status(item, call_number):
        return {"/users/gone": (404, {}), "/users/secret": (403, {})}.get(item["url"])

    server = serve(batch_answer(item_status))
    graph, _exchange, _events = clients(server.url)
    ok, gone, secret = graph.batch([
        BatchRequest("GET", "users/ok"),
        BatchRequest("GET", "users/gone", identity="gone@contoso.com"),
        BatchRequest("GET", "users/secret", permission="User.Read.All"),
    ])
    assert ok.error is None
    assert isinstance(gone.error, NotFoundError) and gone.error.identity == "gone@contoso.com"
    assert isinstance(secret.error, PermissionDeniedError) and secret.error.permission == "User.Read.All"


def test_forbidden_names_the_permission_and_tenant(serve, clients):
    server = serve(lambda *args: (403, {"error": {"code": "Authorization_RequestDenied",
                                                  "message": "Insufficient privileges to complete the operation.",
                                                  "innerError": {"request-id": "r-1"}}}, None))
    graph, _exchange, _events = clients(server.url)
    with pytest.raises(PermissionDeniedError) as caught:
        graph.get("policies/x", operation="reading x", permission="Policy.Read.All")
    assert caught.value.permission == "Policy.Read.All"
    assert caught.value.request_id == "r-1"
    assert "Policy.Read.All" in str(caught.value) and "contoso.onmicrosoft.com" in str(caught.value)


def test_list_follows_next_links(serve, clients):
    def answer(method, path, body, headers):
        if "skiptoken" in path:
            return 200, {"value": [{"id": 3}]}, None
        return 200, {"value": [{"id": 1}, {"id": 2}], "@odata.nextLink": server.url + "/v1.0/users?$skiptoken=x"}, None

    server = serve(answer)
    graph, _exchange, _events = clients(server.url)
    assert [item["id"] for item in graph.list("users")] == [1, 2, 3]


def test_a_body_that_is_not_json_still_gives_a_clear_error(serve, clients):
    server = serve(lambda *args: (500, "<html>oops</html>", None))
    graph, _exchange, _events = clients(server.url)
    with pytest.raises(M365Error) as caught:
        graph.get("users/x", operation="reading x")
    assert caught.value.status == 500 and "reading x" in str(caught.value)


def test_graph_token_uses_the_cloud_scope_not_the_url_override(serve, clients):
    server = serve(lambda *args: (200, {}, None))
    graph, _exchange, _events = clients(server.url)
    graph.get("x")
    assert graph.tokens.scopes == ["https://graph.microsoft.com/.default"]
    assert server.requests[0]["headers"]["Authorization"] == "Bearer token-for-https://graph.microsoft.com/.default"


@pytest.mark.parametrize("status, error_type, words", [
    (429, "ThrottledError", "kept throttling reading a"),
    (503, "ServiceUnavailableError", "was unavailable (HTTP 503) for reading a"),
])
def test_retries_spent_on_429_is_throttled_and_on_503_unavailable(serve, clients, sleeps, status, error_type, words):
    server = serve(lambda method, path, body, headers: (status, {"error": {"code": "x", "message": "busy"}},
                                                        {"Retry-After": "1"}))
    graph, _exchange, _events = clients(server.url, max_retries=1)
    with pytest.raises(M365Error) as raised:
        graph.get("users/a", operation="reading a")
    assert type(raised.value).__name__ == error_type and words in str(raised.value)
    assert isinstance(raised.value, ThrottledError) and raised.value.status == status
    assert len(server.requests) == 2


def test_a_refused_token_is_renewed_once_and_the_request_sent_again(serve, clients):
    def answer(method, path, body, headers):
        if headers["Authorization"].endswith("-renewed"):
            return 200, {"id": "x"}, None
        return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed"}}, None

    server = serve(answer)
    graph, _exchange, events = clients(server.url)
    assert graph.get("users/x") == {"id": "x"}
    assert len(server.requests) == 2
    assert graph.tokens.refused == [None, "token-for-https://graph.microsoft.com/.default"]
    assert [event["status"] for event in events.as_list()] == [401]


def test_a_token_refused_twice_is_an_authentication_error_after_two_requests(serve, clients):
    server = serve(lambda *args: (401, {"error": {"code": "InvalidAuthenticationToken", "message": "no"}}, None))
    graph, _exchange, _events = clients(server.url)
    with pytest.raises(M365Error) as caught:
        graph.get("users/x", operation="reading x")
    assert caught.value.status == 401 and "reading x" in str(caught.value)
    assert len(server.requests) == 2


def test_batch_items_refused_for_their_token_are_sent_once_more_with_a_new_one(serve, clients):
    def answer(method, path, body, headers):
        status = 200 if headers["Authorization"].endswith("-renewed") else 401
        return 200, {"responses": [{"id": item["id"], "status": status, "headers": {},
                                    "body": {"url": item["url"]} if status == 200 else
                                    {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}}
                                   for item in body["requests"]]}, None

    server = serve(answer)
    graph, _exchange, _events = clients(server.url)
    results = graph.batch([BatchRequest("GET", "users/u%d" % number) for number in range(3)])
    assert [result.body["url"] for result in results] == ["/users/u0", "/users/u1", "/users/u2"]
    assert len(server.requests) == 2
    assert "token-for-https://graph.microsoft.com/.default" in graph.tokens.refused
