# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``make demo`` (scripts/demo.sh) end to end: it starts its own emulator, so it is run once, as a user runs it,
and each test reads one step of its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEPS = ["Before:", "1. Drift report", "2. Apply", "3. Drift report again", "4. After:", "5. Troubleshoot"]


@pytest.fixture(scope="module")
def demo():
    """(returncode, {step heading: the lines printed under it}, the whole output) of one run of the demo."""
    environment = dict(os.environ)
    environment.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
    environment.update({
        # ansible and ansible-playbook of the Python that runs the tests, as the Makefile's virtualenv does.
        "PATH": str(Path(sys.executable).parent) + os.pathsep + environment.get("PATH", ""),
        "PYTHON": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    })
    environment.pop("M365_EMULATOR_CONNECTION_FILE", None)
    completed = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=environment,
                               capture_output=True, text=True, timeout=900, check=False)
    output = ANSI.sub("", completed.stdout)
    steps, current = {}, None
    for line in output.splitlines():
        if line.startswith("==> "):
            current = next((step for step in STEPS if line[4:].startswith(step)), line[4:])
            steps[current] = []
        elif current is not None:
            steps[current].append(line)
    return completed.returncode, steps, completed.stdout + completed.stderr


def step(demo, name):
    return demo[1][name]


def section(lines, heading):
    """The lines of one '### ' section of the Markdown report the demo prints."""
    start = lines.index(heading)
    end = next((index for index in range(start + 1, len(lines)) if lines[index].startswith("### ")), len(lines))
    return lines[start:end]


def test_the_demo_exits_0_after_every_step(demo):
    returncode, steps, output = demo
    assert returncode == 0, output
    assert [name for name in steps if name in STEPS] == STEPS


def test_before_the_oauth_mailbox_is_refused_at_xoauth2_like_the_basic_ones_at_their_switches(demo):
    lines = step(demo, "Before:")
    assert "  notify@contoso.com     REFUSED 535 5.7.3 Authentication unsuccessful" in lines
    assert any(line.startswith("  scanner@contoso.com    REFUSED 535 5.7.139") for line in lines)


def test_the_first_report_has_the_oauth_mailbox_with_its_relay_app_rows(demo):
    lines = step(demo, "1. Drift report")
    rows = [line for line in lines if line.startswith("| ")]
    notify_rows = [line.split(" | ")[:6] for line in rows if line.startswith("| notify@contoso.com |")]
    assert ["| notify@contoso.com", "oauth", "mailbox_permission", "FullAccess", "none", "**drift**"] in notify_rows
    assert ["| notify@contoso.com", "oauth", "mailbox_smtp_auth", "enabled", "inherit", "**drift**"] in notify_rows
    # Security defaults and per-user MFA are never an oauth mailbox's business.
    assert not [row for row in notify_rows if row[2] in ("per_user_mfa", "security_defaults")]
    tenant_wide = {line.split(" | ")[2]: line.split(" | ")[5] for line in rows if line.startswith("| (tenant-wide) |")}
    assert tenant_wide["smtp_app_consent"] == "**drift**"
    assert tenant_wide["exchange_service_principal"] == "**drift**"
    assert any(line.startswith("| printer@contoso.com | basic | per_user_mfa | disabled | enforced | **drift**")
               for line in rows)


def test_each_basic_mailbox_is_listed_with_its_change_to_oauth_and_the_oauth_one_is_not(demo):
    retirement = section(step(demo, "1. Drift report"), "### Basic auth for SMTP AUTH ends")
    changes = [line for line in retirement if line.startswith("| ") and "@" in line]
    assert changes == [
        "| scanner@contoso.com | `- {upn: scanner@contoso.com, auth: oauth}` | `- {upn: scanner@contoso.com, auth: connector, "
        "source_ip: <the device's public IPv4 address>}` |",
        "| printer@contoso.com | `- {upn: printer@contoso.com, auth: oauth}` | `- {upn: printer@contoso.com, auth: connector, "
        "source_ip: <the device's public IPv4 address>}` |",
        "| erp@contoso.com | `- {upn: erp@contoso.com, auth: oauth}` | `- {upn: erp@contoso.com, auth: connector, "
        "source_ip: <the device's public IPv4 address>}` |",
    ]
    assert "2026" in " ".join(retirement)


def test_the_usage_section_names_the_undeclared_account_that_uses_smtp_auth(demo):
    lines = step(demo, "1. Drift report")
    usage = section(lines, next(line for line in lines if line.startswith("### Who uses SMTP AUTH")))
    undeclared = [line.split(" | ")[0] for line in usage if line.startswith("| ") and "@" in line]
    assert undeclared == ["| legacy-relay@contoso.com"]


def test_the_enable_step_consents_registers_and_grants_the_relay_app(demo):
    lines = step(demo, "2. Apply")
    changed_tasks = [task for task, result in zip(lines, lines[1:]) if result == "changed: [contoso]"]
    for task in ("Grant the relay app SMTP.SendAsApp", "Register the relay app in Exchange Online",
                 "Give the relay app FullAccess on each oauth relay mailbox"):
        assert any(task in line for line in changed_tasks), lines
    assert any('"msg": "contoso: CLEAN' in line for line in lines)


def test_after_enable_the_report_is_clean_and_every_relay_mailbox_sends(demo):
    summary = next(line for line in step(demo, "3. Drift report again") if '"msg": "contoso:' in line)
    assert "contoso: CLEAN - " in summary and " 0 drift, 0 changed, 0 error" in summary
    lines = step(demo, "4. After:")
    assert ("  notify@contoso.com     AUTH XOAUTH2 235 2.7.0 Authentication successful (token of the relay app);"
            " message accepted") in lines
    for upn in ("scanner@contoso.com", "printer@contoso.com", "erp@contoso.com"):
        assert "  %-22s AUTH LOGIN 235 2.7.0 Authentication successful; message accepted" % upn in lines


def test_the_scanner_that_cannot_sign_in_relays_through_the_connector_the_role_made(demo):
    before, after = step(demo, "Before:"), step(demo, "4. After:")
    assert any(line.startswith("  scan-2f@contoso.com") and "REFUSED 550 5.7.64 TenantAttribution" in line
               for line in before)
    assert any(line.startswith("  scan-2f@contoso.com") and line.endswith("message relayed") for line in after)
    report = step(demo, "1. Drift report")
    devices = section(report, "### Devices that relay through the inbound connector (Office scanners)")
    assert any("scan-2f@contoso.com | 127.0.0.2 | contoso-com.mail.protection.outlook.com | 25 | none" in line
               for line in devices)
