# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_junit import drift_junit
from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_report import drift_report


def row(mailbox, setting, status, actual="disabled", desired="enabled", fix="do it", message=None):
    return {"tenant": "contoso", "mailbox": mailbox, "setting": setting, "desired": desired, "actual": actual,
            "status": status, "fix": None if status == "compliant" else fix, "message": message}


ROWS = [
    row(None, "security_defaults", "drift", "enabled", "disabled", fix='PATCH {"isEnabled": false}'),
    row("scanner@contoso.com", "mailbox_smtp_auth", "drift", fix="Set-CASMailbox <scanner> & co"),
    row("printer@contoso.com", "mailbox_smtp_auth", "compliant", "enabled"),
    row("erp@contoso.com", "per_user_mfa", "changed", "enabled", "disabled"),
    row("backup@contoso.com", "license", "error", "unlicensed", "licensed", message="no mailbox licence"),
]


def test_summary_counts_each_status():
    report = drift_report(ROWS, tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z")
    assert report["schema_version"] == 1
    assert report["summary"] == {"compliant": 1, "drift": 2, "changed": 1, "error": 1, "total": 5, "clean": False}
    assert report["rows"] == ROWS


def test_changed_and_compliant_only_is_clean():
    report = drift_report(ROWS[2:4], tenant="contoso", mode="apply", generated_at="2026-03-01T10:00:00Z")
    assert report["summary"]["clean"] is True


def test_bad_mode_and_status_are_refused():
    with pytest.raises(AnsibleFilterError, match="mode must be check or apply"):
        drift_report([], tenant="contoso", mode="dry", generated_at="x")
    with pytest.raises(AnsibleFilterError, match="unknown status 'weird'"):
        drift_report([row("a@contoso.com", "license", "weird")], tenant="contoso", mode="check", generated_at="x")


def test_junit_has_one_case_per_row_and_drift_as_failures():
    report = drift_report(ROWS, tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z")
    root = ElementTree.fromstring(drift_junit(report).encode())
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "contoso"
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "tenant-wide: security_defaults", "scanner@contoso.com: mailbox_smtp_auth",
        "printer@contoso.com: mailbox_smtp_auth", "erp@contoso.com: per_user_mfa", "backup@contoso.com: license"]
    assert all(case.get("classname") == "contoso" for case in cases)
    failure = cases[1].find("failure")
    assert failure.get("message") == "mailbox_smtp_auth: desired enabled, actual disabled"
    # The fix text survives XML escaping intact.
    assert "Fix: Set-CASMailbox <scanner> & co" in failure.text
    assert cases[2].find("failure") is None and cases[2].find("error") is None
    assert cases[3].find("failure") is None and "changed from enabled to disabled" in cases[3].find("system-out").text
    assert cases[4].find("error").get("message") == "no mailbox licence"


def test_junit_of_several_tenants():
    reports = [drift_report(ROWS[:1], tenant=name, mode="check", generated_at="t") for name in ("contoso", "fabrikam")]
    root = ElementTree.fromstring(drift_junit(reports).encode())
    assert [suite.get("name") for suite in root.findall("testsuite")] == ["contoso", "fabrikam"]
    assert root.get("failures") == "2"


def test_junit_refuses_other_input():
    with pytest.raises(AnsibleFilterError, match="expects a report or a list"):
        drift_junit("contoso")


def test_basic_entries_are_flagged_with_the_inventory_change_to_oauth():
    entries = [{"upn": "scanner@contoso.com", "auth": "basic", "state": "present"},
               {"upn": "old@contoso.com", "auth": "basic", "state": "absent"},
               {"upn": "notify@contoso.com", "auth": "oauth", "state": "present"}]
    report = drift_report(ROWS, tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z", entries=entries)
    assert report["basic_auth_retirement"] == {
        "date": "2026-12-31",
        "reply": "550 5.7.30 Basic authentication is not supported for Client Submission.",
        "mailboxes": [{"mailbox": "scanner@contoso.com",
                       "inventory_change": "- {upn: scanner@contoso.com, auth: oauth}",
                       "connector_change": "- {upn: scanner@contoso.com, auth: connector, source_ip: <the device's "
                                           "public IPv4 address>}"}]}
    oauth_only = drift_report(ROWS, tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z",
                              entries=entries[2:])
    assert "basic_auth_retirement" not in oauth_only


def test_usage_names_undeclared_and_unused_accounts_or_says_unknown():
    entries = [{"upn": "scanner@contoso.com", "auth": "basic", "state": "present"},
               {"upn": "printer@contoso.com", "auth": "basic", "state": "present"}]
    usage = {"status": "read", "window": {"days": 30}, "accounts": [
        {"user_principal_name": "Scanner@contoso.com", "sign_ins": 4, "last_sign_in": "2026-11-20T08:00:00Z",
         "source_ips": ["203.0.113.5"]},
        {"user_principal_name": "legacy-relay@contoso.com", "sign_ins": 3, "last_sign_in": "2026-11-27T08:00:00Z",
         "source_ips": ["203.0.113.10"], "failures": 0}]}
    report = drift_report([], tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z",
                          entries=entries, usage=usage)
    assert report["usage"] == {"status": "read", "days": 30, "unused": ["printer@contoso.com"], "undeclared": [
        {"user_principal_name": "legacy-relay@contoso.com", "sign_ins": 3, "last_sign_in": "2026-11-27T08:00:00Z",
         "source_ips": ["203.0.113.10"]}]}
    unknown = drift_report([], tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z", entries=entries,
                           usage={"status": "unknown", "reason": "needs AuditLog.Read.All", "window": {"days": 30}})
    assert unknown["usage"] == {"status": "unknown", "reason": "needs AuditLog.Read.All", "days": 30}
    skipped = drift_report([], tenant="contoso", mode="check", generated_at="2026-03-01T10:00:00Z",
                           entries=entries, usage={"skipped": True})
    assert "usage" not in skipped
