# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drift reports the drift_report playbook writes: JSON against the schema, JUnit, Markdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from xml.etree import ElementTree
from pathlib import Path

import jsonschema
import pytest

from m365_emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "playbooks" / "inventory" / "emulator"
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())


def drift_report(tmp_path, connection_file, *arguments):
    environment = dict(os.environ)
    environment.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
    environment.update({"M365_EMULATOR_CONNECTION_FILE": str(connection_file), "ANSIBLE_NOCOLOR": "1"})
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
               "m365ops.smtp_auth.drift_report", "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"),
               *arguments]
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True,
                               timeout=600, check=False)
    return completed.returncode, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Drift reports of both sample tenants, as seeded (everything blocked), made once for this module."""
    tmp_path = tmp_path_factory.mktemp("drift")
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as emulator:
        connection_file = tmp_path / "connection.json"
        connection_file.write_text(json.dumps(emulator.connection_info()))
        code, output = drift_report(tmp_path, connection_file)
        assert code == 0, output
        assert not [entry for entry in emulator.request_log if entry.get("wrote")]
    return tmp_path / "reports", output


@pytest.mark.parametrize("tenant", ["contoso", "fabrikam"])
def test_json_report_validates_against_the_schema(reports, tenant):
    document = json.loads((reports[0] / f"{tenant}.json").read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["tenant"] == tenant and document["mode"] == "check"
    assert document["summary"]["clean"] is False


def test_each_blocked_relay_mailbox_is_drift_with_its_fix(reports):
    rows = json.loads((reports[0] / "contoso.json").read_text())["rows"]
    by_key = {(row["mailbox"], row["setting"]): row for row in rows}
    scanner = by_key[("scanner@contoso.com", "mailbox_smtp_auth")]
    assert (scanner["actual"], scanner["desired"], scanner["status"]) == ("disabled", "enabled", "drift")
    assert scanner["fix"] == "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false"
    assert by_key[("printer@contoso.com", "per_user_mfa")]["actual"] == "enforced"
    assert by_key[(None, "security_defaults")]["status"] == "drift"
    assert by_key[("scanner@contoso.com", "license")]["status"] == "compliant"


def test_junit_has_a_case_per_mailbox_and_setting_and_drift_fails(reports):
    document = json.loads((reports[0] / "contoso.json").read_text())
    root = ElementTree.parse(reports[0] / "contoso.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(document["rows"])
    failed = {case.get("name") for case in cases if case.find("failure") is not None}
    drifted = {f"{row['mailbox'] or 'tenant-wide'}: {row['setting']}" for row in document["rows"]
               if row["status"] == "drift"}
    assert failed == drifted and "scanner@contoso.com: mailbox_smtp_auth" in failed
    assert int(root.get("failures")) == document["summary"]["drift"]


def test_markdown_has_a_table_row_per_report_row(reports):
    markdown = (reports[0] / "contoso.md").read_text()
    document = json.loads((reports[0] / "contoso.json").read_text())
    main_table = markdown.split("| Mailbox | Auth |", 1)[1].split("\n\n", 1)[0]
    table_rows = [line for line in main_table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table_rows) == len(document["rows"])
    assert any(line.startswith("| scanner@contoso.com | basic | mailbox_smtp_auth | enabled | disabled | **drift**")
               for line in table_rows)


def test_every_basic_mailbox_is_flagged_with_the_change_to_oauth(reports):
    document = json.loads((reports[0] / "contoso.json").read_text())
    retirement = document["basic_auth_retirement"]
    assert retirement["date"] == "2026-12-31" and "5.7.30" in retirement["reply"]
    basic = sorted({row["mailbox"] for row in document["rows"] if row["auth"] == "basic"})
    assert sorted(item["mailbox"] for item in retirement["mailboxes"]) == basic
    assert {"mailbox": "scanner@contoso.com", "inventory_change": "- {upn: scanner@contoso.com, auth: oauth}",
            "connector_change": "- {upn: scanner@contoso.com, auth: connector, source_ip: <the device's public "
                                "IPv4 address>}"} in retirement["mailboxes"]
    markdown = (reports[0] / "contoso.md").read_text()
    assert "Microsoft turns Basic auth for SMTP AUTH off by default on 2026-12-31" in markdown
    assert "| scanner@contoso.com | `- {upn: scanner@contoso.com, auth: oauth}` |" in markdown


def test_summary_line_per_tenant(reports):
    output = reports[1]
    assert "contoso: NOT CLEAN" in output and "fabrikam: NOT CLEAN" in output


def test_unlicensed_mailbox_is_an_error_row_and_fails_the_tenant(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as emulator:
        connection_file = tmp_path / "connection.json"
        connection_file.write_text(json.dumps(emulator.connection_info()))
        mailboxes = json.dumps({"relay_accounts_mailboxes": ["scanner@contoso.com", "backup@contoso.com"]})
        code, output = drift_report(tmp_path, connection_file, "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    document = json.loads((tmp_path / "reports" / "contoso.json").read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    errors = [row for row in document["rows"] if row["status"] == "error"]
    assert [(row["mailbox"], row["setting"], row["actual"]) for row in errors] == [
        ("backup@contoso.com", "license", "unlicensed")]
    assert "backup@contoso.com" in output
