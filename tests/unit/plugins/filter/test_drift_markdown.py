# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_markdown import drift_markdown
from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_report import drift_report


def row(mailbox, setting, status, message=None, fix="Set-CASMailbox -Identity x | y"):
    return {"tenant": "contoso", "mailbox": mailbox, "auth": "basic" if mailbox else None, "setting": setting,
            "desired": "enabled", "actual": "disabled", "status": status, "message": message,
            "fix": None if status == "compliant" else fix}


ROWS = [row(None, "security_defaults", "drift"),
        row("scanner@contoso.com", "mailbox_smtp_auth", "compliant"),
        row("backup@contoso.com", "license", "error", message="no mailbox\nlicence | at all")]
ENTRIES = [{"upn": "scanner@contoso.com", "state": "present", "auth": "basic"},
           {"upn": "copier@contoso.com", "state": "present", "auth": "connector", "source_ip": "203.0.113.7"}]


def report(rows=None, **options):
    rows = ROWS if rows is None else rows
    return drift_report(rows, tenant="contoso", mode="check", generated_at="2026-12-06T10:00:00Z", **options)


def test_one_table_row_per_report_row_with_cells_that_cannot_break_it():
    lines = drift_markdown(report()).splitlines()
    assert lines[0] == "## SMTP AUTH drift report: contoso"
    assert lines[2] == ("Not clean: 1 compliant, 1 drift, 0 changed, 1 error (3 checks), 2026-12-06T10:00:00Z, "
                        "check mode.")
    table = lines[lines.index("| Mailbox | Auth | Setting | Desired | Actual | Status | Fix |") + 2:]
    assert table == [
        "| (tenant-wide) |  | security_defaults | enabled | disabled | **drift** | Set-CASMailbox -Identity x \\| y |",
        "| scanner@contoso.com | basic | mailbox_smtp_auth | enabled | disabled | compliant |  |",
        "| backup@contoso.com | basic | license | enabled | disabled | **error**: no mailbox licence \\| at all "
        "| Set-CASMailbox -Identity x \\| y |",
    ]


def test_drift_tells_how_to_fix_it_and_a_clean_report_does_not():
    assert "Run `ansible-playbook m365ops.smtp_auth.enable`" in drift_markdown(report())
    clean = drift_markdown(report(ROWS[1:2]))
    assert clean.splitlines()[2].startswith("Clean: 1 compliant")
    assert "ansible-playbook" not in clean


def test_sections_for_basic_auth_retirement_connector_devices_and_usage():
    usage = {"status": "read", "window": {"days": 30},
             "accounts": [{"user_principal_name": "old-printer@contoso.com", "sign_ins": 4,
                           "last_sign_in": "2026-12-01T08:00:00Z", "source_ips": ["198.51.100.4", "198.51.100.5"]}]}
    text = drift_markdown(report(entries=ENTRIES, connector={"name": "Scanners"}, usage=usage))
    assert "Microsoft turns Basic auth for SMTP AUTH off by default on 2026-12-31" in text
    assert "| scanner@contoso.com | `- {upn: scanner@contoso.com, auth: oauth}` |" in text
    assert "### Devices that relay through the inbound connector (Scanners)" in text
    assert ("| copier@contoso.com | 203.0.113.7 | contoso-com.mail.protection.outlook.com | 25 | none |"
            in text)
    assert "### Who uses SMTP AUTH (last 30 days)" in text
    assert ("| old-printer@contoso.com | 4 | 2026-12-01T08:00:00Z | 198.51.100.4, 198.51.100.5 |" in text)
    assert "Declared but not used: copier@contoso.com, scanner@contoso.com." in text
    assert text.endswith(".\n")


def test_usage_that_could_not_be_read_says_why():
    text = drift_markdown(report(usage={"status": "unknown", "reason": "AuditLog.Read.All is missing"}))
    assert text.endswith("### Who uses SMTP AUTH\n\nUnknown: AuditLog.Read.All is missing\n")


def test_anything_but_a_report_is_refused():
    with pytest.raises(AnsibleFilterError, match="expects a report made by drift_report"):
        drift_markdown(ROWS)
