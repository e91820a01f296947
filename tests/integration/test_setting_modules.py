# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The setting modules against the emulator's sample tenant, judged by tenant state and request log."""

from __future__ import annotations

from conftest import contoso, writes, writing_requests

RELAYS = ["scanner@contoso.com", "printer@contoso.com"]


def mailbox_switch(emulator, upn):
    with emulator.store.lock:
        return contoso(emulator).find_user(upn).smtp_client_authentication_disabled


def test_mailbox_smtp_auth_check_mode_writes_nothing_then_converges_once(run_play, tenant):
    task = {"m365ops.smtp_auth.mailbox_smtp_auth": {"mailboxes": RELAYS, "state": "enabled"}}
    run = run_play([dict(task, check_mode=True, diff=True), task, task])
    checked, applied, again = run.results

    assert checked["changed"] is True
    assert writing_requests(run.requests[0]) == []
    assert checked["diff"] == {"before": {"scanner@contoso.com": "disabled", "printer@contoso.com": "inherit"},
                               "after": {"scanner@contoso.com": "enabled", "printer@contoso.com": "enabled"}}

    assert applied["changed"] is True
    assert [item["before"] for item in applied["results"]] == ["disabled", "inherit"]
    assert sorted(entry["cmdlet"] for entry in writes(run.requests[1])) == ["Set-CASMailbox", "Set-CASMailbox"]
    assert mailbox_switch(tenant, "scanner@contoso.com") is False
    assert mailbox_switch(tenant, "printer@contoso.com") is False

    assert again["changed"] is False
    assert writing_requests(run.requests[2]) == []


def test_a_mailbox_listed_twice_in_other_case_is_written_once_with_a_warning(run_play, tenant):
    run = run_play([{"m365ops.smtp_auth.mailbox_smtp_auth": {
        "mailboxes": ["scanner@contoso.com", "Scanner@Contoso.com"], "state": "enabled"}}])
    assert run[0]["changed"] is True
    assert [item["identity"] for item in run[0]["results"]] == ["scanner@contoso.com"]
    assert [entry["cmdlet"] for entry in writes(run.requests[0])] == ["Set-CASMailbox"]
    assert any("mailboxes[1] Scanner@Contoso.com repeats mailboxes[0] scanner@contoso.com" in warning
               for warning in run[0]["warnings"])


def test_bulk_modules_name_unknown_items_and_still_handle_the_others(run_play, tenant):
    run = run_play([
        {"m365ops.smtp_auth.mailbox_smtp_auth": {"mailboxes": ["scanner@contoso.com", "ghost@contoso.com"],
                                                 "state": "enabled"}},
        {"m365ops.smtp_auth.per_user_mfa": {"users": ["printer@contoso.com", "ghost@contoso.com"], "state": "disabled"}},
        {"m365ops.smtp_auth.mailbox_license_info": {
            "mailboxes": ["scanner@contoso.com", "backup@contoso.com", "nobody@contoso.com"]}},
    ])
    mailboxes, mfa, licences = run.results

    assert mailboxes["failed"] is True and "ghost@contoso.com" in mailboxes["msg"]
    scanner, ghost = mailboxes["results"]
    assert scanner["changed"] is True and scanner["after"] == "enabled"
    assert ghost["found"] is False and ghost["failed"] is True
    assert mailbox_switch(tenant, "scanner@contoso.com") is False

    assert mfa["failed"] is True and "ghost@contoso.com" in mfa["msg"]
    assert [item["changed"] for item in mfa["results"]] == [True, False]
    with tenant.store.lock:
        assert contoso(tenant).find_user("printer@contoso.com").per_user_mfa_state == "disabled"

    assert licences["failed"] is True and "nobody@contoso.com" in licences["msg"]
    scanner, backup, nobody = licences["mailboxes"]
    assert scanner["licensed"] is True and scanner["mailbox_plans"][0]["name"] == "EXCHANGE_S_STANDARD"
    assert backup["licensed"] is False and backup["found"] is True
    assert nobody["found"] is False
    assert licences["unlicensed"] == ["backup@contoso.com", "nobody@contoso.com"]
    assert writing_requests(run.requests[2]) == []


def test_exclusive_sends_undeclared_mailboxes_back_to_inherit(run_play, tenant):
    result = run_play([{"m365ops.smtp_auth.mailbox_smtp_auth": {
        "mailboxes": RELAYS, "state": "enabled", "exclusive": True}}])[0]
    undeclared = [item for item in result["results"] if item.get("undeclared")]
    assert [item["identity"] for item in undeclared] == ["legacy-relay@contoso.com"]
    assert undeclared[0]["before"] == "enabled" and undeclared[0]["after"] == "inherit"
    assert mailbox_switch(tenant, "legacy-relay@contoso.com") is None
    assert mailbox_switch(tenant, "scanner@contoso.com") is False


def test_inherit_refused_by_the_tenant_fails_clearly(run_play, tenant):
    with tenant.store.lock:
        tenant.store.behaviour["null_clears_mailbox_switch"] = False
    result = run_play([{"m365ops.smtp_auth.mailbox_smtp_auth": {
        "mailboxes": ["legacy-relay@contoso.com"], "state": "inherit"}}])[0]
    assert result["failed"] is True
    assert "legacy-relay@contoso.com" in result["msg"] and "inherit" in result["msg"]
    assert result["results"][0]["changed"] is False
    assert mailbox_switch(tenant, "legacy-relay@contoso.com") is False


def test_tenant_settings_check_mode_then_apply(run_play, tenant):
    tasks = [
        {"m365ops.smtp_auth.security_defaults": {"state": "disabled"}},
        {"m365ops.smtp_auth.org_smtp_auth": {"state": "enabled"}},
    ]
    run = run_play([dict(task, check_mode=True, diff=True) for task in tasks] + tasks + tasks)
    checked, applied, again = run.results[0:2], run.results[2:4], run.results[4:6]

    assert [result["changed"] for result in checked] == [True, True]
    assert checked[0]["diff"] == {"before": {"security_defaults": "enabled"}, "after": {"security_defaults": "disabled"}}
    assert writing_requests(run.requests[0] + run.requests[1]) == []

    assert [(result["before"], result["after"]) for result in applied] == [
        ("enabled", "disabled"), ("disabled", "enabled")]
    with tenant.store.lock:
        assert contoso(tenant).security_defaults_enabled is False
        assert contoso(tenant).transport_smtp_auth_disabled is False

    assert [result["changed"] for result in again] == [False, False]
    assert writing_requests(run.requests[4] + run.requests[5]) == []


def test_per_user_mfa_enabled_is_satisfied_by_enforced(run_play, tenant):
    result = run_play([{"m365ops.smtp_auth.per_user_mfa": {
        "users": ["admin@contoso.com", "erp@contoso.com"], "state": "enabled"}}])[0]
    assert result["changed"] is False
    assert [item["after"] for item in result["results"]] == ["enforced", "enabled"]
    assert writes(tenant) == []


def test_missing_permissions_are_named(run_play, tenant):
    runs = run_play([
        {"m365ops.smtp_auth.security_defaults": {"state": "disabled"}},
        {"m365ops.smtp_auth.org_smtp_auth": {"state": "enabled"}},
    ], app_name="read-only auditor")
    graph_denied, exchange_denied = runs.results
    assert graph_denied["failed"] is True
    assert "Policy.Read.All" in graph_denied["msg"]
    assert graph_denied["error"]["permission"] == "Policy.Read.All"
    assert exchange_denied["failed"] is True
    assert "Exchange Administrator" in exchange_denied["msg"]
    assert writes(tenant) == []


def test_throttling_is_retried_and_reported(run_play, tenant):
    tenant.add_fault({"path": "InvokeCommand", "cmdlet": "Get-TransportConfig", "status": 429, "retry_after": 1,
                      "count": 1})
    tenant.add_fault({"path": "authentication/requirements", "method": "GET", "status": 429, "retry_after": 1,
                      "count": 1})
    runs = run_play([
        {"m365ops.smtp_auth.org_smtp_auth": {"state": "disabled"}},
        {"m365ops.smtp_auth.per_user_mfa": {"users": ["scanner@contoso.com"], "state": "disabled"}},
    ])
    org, mfa = runs.results
    assert org.get("failed") is not True and org["changed"] is False
    assert [event["status"] for event in org["retries"]] == [429]
    assert any("throttled" in warning for warning in org["warnings"])
    assert mfa.get("failed") is not True
    assert [event["status"] for event in mfa["retries"]] == [429]
