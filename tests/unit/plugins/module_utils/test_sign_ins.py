# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Sign-in logs: the query sent, the pages followed, the refusals told apart, and the sums per account."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _sign_ins as sign_ins
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import PermissionDeniedError

SINCE = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
COMBINED = ("(clientAppUsed eq 'Authenticated SMTP' or clientAppUsed eq 'SMTP') and createdDateTime ge "
            "2026-11-01T00:00:00Z")
RELAY_APP = "d4c3b2a1-6e5f-4a7b-8c9d-0e1f2a3b4c5d"


def sign_in(upn, when, code=0, reason="Other.", ip="203.0.113.10", app=sign_ins.EXCHANGE_ONLINE_APP_ID,
            client_app="Authenticated SMTP", details=None):
    return {"id": "%s-%s" % (upn, when), "userPrincipalName": upn, "createdDateTime": when, "ipAddress": ip,
            "appId": app, "clientAppUsed": client_app, "status": {"errorCode": code, "failureReason": reason},
            "authenticationDetails": details or []}


def query(request):
    """The decoded ``$filter`` and ``$top`` of a recorded request."""
    values = parse_qs(urlsplit(request["path"]).query)
    return values.get("$filter", [None])[0], values.get("$top", [None])[0]


def test_the_filter_asks_for_both_client_app_names_since_the_start_of_the_window():
    assert sign_ins.sign_ins_filter(SINCE) == COMBINED
    assert sign_ins.sign_ins_filter(SINCE, ("SMTP",)) == "clientAppUsed eq 'SMTP' and createdDateTime ge 2026-11-01T00:00:00Z"


def test_the_window_is_the_last_days_to_the_second_in_utc():
    now = datetime.datetime(2026, 12, 1, 8, 30, 15, 999, tzinfo=datetime.timezone.utc)
    since, until = sign_ins.window(30, now)
    assert (sign_ins.iso(since), sign_ins.iso(until)) == ("2026-11-01T08:30:15Z", "2026-12-01T08:30:15Z")


def test_pages_are_followed_and_the_query_is_encoded_with_the_page_size(serve, clients):
    def answer(method, path, body, headers):
        if "skiptoken" in path:
            return 200, {"value": [sign_in("b@contoso.com", "2026-11-02T00:00:00Z")]}, None
        return 200, {"value": [sign_in("a@contoso.com", "2026-11-03T00:00:00Z")],
                     "@odata.nextLink": server.url + "/v1.0/auditLogs/signIns?$skiptoken=page2"}, None

    server = serve(answer)
    graph, _exchange, _events = clients(server.url)
    found = list(sign_ins.smtp_sign_ins(graph, SINCE))

    assert [item["userPrincipalName"] for item in found] == ["a@contoso.com", "b@contoso.com"]
    first, second = server.requests
    assert first["path"].startswith("/v1.0/auditLogs/signIns?$filter=%28clientAppUsed%20eq%20")
    assert query(first) == (COMBINED, "1000")
    assert second["path"] == "/v1.0/auditLogs/signIns?$skiptoken=page2"


def test_a_refused_combined_filter_falls_back_to_one_query_per_client_app_name(serve, clients):
    def answer(method, path, body, headers):
        text, _top = query({"path": path})
        if " or " in text:
            return 400, {"error": {"code": "BadRequest", "message": "Invalid filter clause"}}, None
        name = "SMTP" if "'SMTP'" in text else "Authenticated SMTP"
        return 200, {"value": [sign_in(name.lower().replace(" ", "-") + "@contoso.com", "2026-11-02T00:00:00Z",
                                       client_app=name)]}, None

    server = serve(answer)
    graph, _exchange, _events = clients(server.url)
    found = list(sign_ins.smtp_sign_ins(graph, SINCE))

    assert [query(request)[0] for request in server.requests] == [
        COMBINED, "clientAppUsed eq 'Authenticated SMTP' and createdDateTime ge 2026-11-01T00:00:00Z",
        "clientAppUsed eq 'SMTP' and createdDateTime ge 2026-11-01T00:00:00Z"]
    assert sorted(item["clientAppUsed"] for item in found) == ["Authenticated SMTP", "SMTP"]


NO_LICENCE = {"error": {"code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                        "message": "Neither tenant is B2C or tenant doesn't have premium license"}}
NO_PERMISSION = {"error": {"code": "Authorization_RequestDenied",
                           "message": "Insufficient privileges to complete the operation."}}


@pytest.mark.parametrize("body, named, not_named", [
    (NO_LICENCE, "an Entra ID P1 or P2 licence", "AuditLog.Read.All"),
    (NO_PERMISSION, "AuditLog.Read.All", "licence"),
])
def test_the_two_refusals_are_told_apart_by_their_code(serve, clients, body, named, not_named):
    server = serve(lambda *args: (403, body, None))
    graph, _exchange, _events = clients(server.url)
    with pytest.raises(PermissionDeniedError) as refused:
        list(sign_ins.smtp_sign_ins(graph, SINCE))
    reason = sign_ins.unavailable_reason(refused.value)
    assert named in reason and not_named not in reason
    assert len(server.requests) == 1  # a refusal is not a filter problem: no fallback queries


def test_other_errors_have_no_unavailable_reason():
    assert sign_ins.unavailable_reason(PermissionDeniedError("x", status=None)) is None


def test_accounts_are_summed_up_per_user_principal_name():
    accounts, names = sign_ins.summarise([
        sign_in("Legacy-Relay@contoso.com", "2026-11-03T10:00:00Z", ip="203.0.113.10"),
        # Later than the one above although listed after it: times decide, not positions.
        sign_in("legacy-relay@contoso.com", "2026-11-03T10:00:00.5Z", code=50126, reason="Bad password",
                ip="198.51.100.7", client_app="SMTP"),
        sign_in("legacy-relay@contoso.com", "2026-11-01T09:00:00Z", ip="203.0.113.10"),
        sign_in("notify@contoso.com", "2026-11-02T00:00:00Z", app=RELAY_APP.upper()),
    ])
    relay, notify = accounts
    assert relay == {
        "user_principal_name": "legacy-relay@contoso.com", "sign_ins": 3, "successes": 2, "failures": 1,
        "last_sign_in": "2026-11-03T10:00:00.5Z", "last_success": "2026-11-03T10:00:00Z",
        "source_ips": ["198.51.100.7", "203.0.113.10"], "app_ids": [], "auth": "basic",
        "last_error": {"code": 50126, "reason": "Bad password"}}
    assert notify["auth"] == "oauth" and notify["app_ids"] == [RELAY_APP] and notify["last_error"] is None
    assert names == ["Authenticated SMTP", "SMTP"]


@pytest.mark.parametrize("sign_in_made, guess", [
    (sign_in("a@x.com", "t", app=RELAY_APP, details=[{"authenticationMethod": "Password"}]), "basic"),
    (sign_in("a@x.com", "t"), "basic"),
    (sign_in("a@x.com", "t", app=RELAY_APP), "oauth"),
    (sign_in("a@x.com", "t", app=""), "unknown"),
])
def test_how_a_sign_in_authenticated_is_guessed_from_what_it_shows(sign_in_made, guess):
    assert sign_ins.auth_guess(sign_in_made) == guess


def test_an_account_seen_with_both_is_mixed():
    (account,), _names = sign_ins.summarise([sign_in("a@x.com", "2026-11-02T00:00:00Z"),
                                             sign_in("a@x.com", "2026-11-03T00:00:00Z", app=RELAY_APP)])
    assert account["auth"] == "mixed"


def test_without_failures_an_account_that_was_only_refused_is_not_listed():
    accounts, _names = sign_ins.summarise([sign_in("refused@x.com", "2026-11-02T00:00:00Z", code=50053),
                                           sign_in("ok@x.com", "2026-11-02T00:00:00Z"),
                                           sign_in("ok@x.com", "2026-11-03T00:00:00Z", code=50126)],
                                          include_failures=False)
    assert [(item["user_principal_name"], item["sign_ins"], item["last_error"]) for item in accounts] == [
        ("ok@x.com", 1, None)]


def test_declared_accounts_are_compared_with_those_that_signed_in():
    accounts, _names = sign_ins.summarise([sign_in("scanner@contoso.com", "2026-11-02T00:00:00Z"),
                                           sign_in("legacy-relay@contoso.com", "2026-11-02T00:00:00Z")])
    undeclared, unused = sign_ins.compare_declared(accounts, ["Scanner@Contoso.com", "backup@contoso.com"])
    assert undeclared == ["legacy-relay@contoso.com"] and unused == ["backup@contoso.com"]
    assert [item["declared"] for item in accounts] == [False, True]

    assert sign_ins.compare_declared(accounts, None) == (None, None)
    assert [item["declared"] for item in accounts] == [None, None]
