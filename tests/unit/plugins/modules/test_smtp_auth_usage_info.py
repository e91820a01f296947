# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""smtp_auth_usage_info: who used SMTP AUTH, compared with inventory; unreadable logs are unknown, never nobody."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from module_harness import ModuleFailed

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error

from ansible_collections.m365ops.smtp_auth.plugins.modules import smtp_auth_usage_info

EXCHANGE_ONLINE = "00000002-0000-0ff1-ce00-000000000000"


def recent(hours):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


LOG = [
    {"userPrincipalName": "legacy-relay@contoso.com", "createdDateTime": recent(2), "ipAddress": "203.0.113.10",
     "appId": EXCHANGE_ONLINE, "clientAppUsed": "Authenticated SMTP", "status": {"errorCode": 0}},
    {"userPrincipalName": "scanner@contoso.com", "createdDateTime": recent(30), "ipAddress": "203.0.113.25",
     "appId": EXCHANGE_ONLINE, "clientAppUsed": "SMTP",
     "status": {"errorCode": 50000, "failureReason": "SMTP client authentication is disabled for the mailbox."}},
]


def sign_in_log(method, path, body, headers):
    """The log, filtered by client app name the way Graph would (both names, or one of them)."""
    text = parse_qs(urlsplit(path).query)["$filter"][0]
    return 200, {"value": [item for item in LOG if "'%s'" % item["clientAppUsed"] in text]}, None


def run(scripted_module, answer, **params):
    params = dict({"days": 30, "declared": None, "include_failures": True}, **params)
    module, server = scripted_module(answer, **params)
    return smtp_auth_usage_info.report(module), server, module


def test_both_client_app_names_are_read_and_compared_with_the_role_entries(scripted_module):
    declared = ["Scanner@Contoso.com", {"upn": "backup@contoso.com", "auth": "basic"},
                {"upn": "legacy-relay@contoso.com", "state": "absent"}]
    result, server, _module = run(scripted_module, sign_in_log, declared=declared, days=7)

    assert result["status"] == "read" and result["reason"] is None and result["changed"] is False
    assert [(item["user_principal_name"], item["declared"], item["auth"]) for item in result["accounts"]] == [
        ("legacy-relay@contoso.com", False, "basic"), ("scanner@contoso.com", True, "basic")]
    # A retired (absent) entry that still signs in is not declared as a relay any more.
    assert result["undeclared"] == ["legacy-relay@contoso.com"]
    assert result["unused"] == ["backup@contoso.com"]
    assert result["client_app_names"] == ["Authenticated SMTP", "SMTP"]
    scanner = result["accounts"][1]
    assert scanner["last_error"] == {"code": 50000,
                                     "reason": "SMTP client authentication is disabled for the mailbox."}
    assert scanner["last_success"] is None

    window = result["window"]
    assert window["days"] == 7
    (request,) = server.requests
    assert parse_qs(urlsplit(request["path"]).query)["$filter"][0].endswith(
        "and createdDateTime ge %s" % window["from"])
    start, end = (datetime.datetime.fromisoformat(window[key].replace("Z", "+00:00")) for key in ("from", "to"))
    assert end - start == datetime.timedelta(days=7)


def test_without_declared_nothing_is_compared(scripted_module):
    result, _server, _module = run(scripted_module, sign_in_log)
    assert result["undeclared"] is None and result["unused"] is None
    assert {item["declared"] for item in result["accounts"]} == {None}


@pytest.mark.parametrize("code, message, named", [
    ("Authentication_RequestFromNonPremiumTenantOrB2CTenant",
     "Neither tenant is B2C or tenant doesn't have premium license", "an Entra ID P1 or P2 licence"),
    ("Authorization_RequestDenied", "Insufficient privileges to complete the operation.", "AuditLog.Read.All"),
])
def test_an_unreadable_log_is_unknown_naming_what_is_missing_never_nobody(scripted_module, code, message, named):
    refusal = (403, {"error": {"code": code, "message": message}}, None)
    result, _server, module = run(scripted_module, lambda *args: refusal, declared=["scanner@contoso.com"])

    assert result["status"] == "unknown" and named in result["reason"]
    assert result["accounts"] is None and result["undeclared"] is None and result["unused"] is None
    assert "failed" not in result
    assert len(module.warnings) == 1 and named in module.warnings[0]


@pytest.mark.parametrize("days", [0, 31])
def test_days_outside_what_the_log_keeps_are_refused_before_any_request(scripted_module, days):
    module, server = scripted_module(sign_in_log, days=days, declared=None, include_failures=True)
    with pytest.raises(ModuleFailed) as failed:
        smtp_auth_usage_info.report(module)
    assert "from 1 to 30" in failed.value.msg
    assert server.requests == []


def test_a_bad_declared_entry_is_named_before_any_request(scripted_module):
    module, server = scripted_module(sign_in_log, days=30, declared=["scanner@contoso.com", "printer"],
                                     include_failures=True)
    with pytest.raises(ModuleFailed) as failed:
        smtp_auth_usage_info.report(module)
    assert "declared[1] (printer)" in failed.value.msg
    assert server.requests == []


def test_any_other_error_still_fails_the_task(scripted_module):
    broken = (500, {"error": {"code": "UnknownError", "message": "Something went wrong"}}, None)
    with pytest.raises(M365Error) as failed:
        run(scripted_module, lambda *args: broken)
    assert failed.value.status == 500
