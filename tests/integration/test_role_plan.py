# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay_accounts role runs and reports the steps of one plan: what is switched off is absent from the
report, what was planned but not reached says so, even when the role ran before in the same play."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from m365_emulator import Emulator
from test_role_relay_accounts import INVENTORY, ROOT, run_playbook


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def run_play(tmp_path, play):
    """ansible-playbook on ``play`` (a list of plays) over the emulator inventory; (returncode, output)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play))
    environment = dict(os.environ)
    environment.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
    environment.update({"M365_EMULATOR_CONNECTION_FILE": str(tmp_path / "connection.json"), "ANSIBLE_NOCOLOR": "1"})
    completed = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                                str(playbook)], cwd=tmp_path, env=environment, capture_output=True, text=True,
                               timeout=600, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def rows(path):
    return [(row["mailbox"], row["setting"], row["desired"], row["status"])
            for row in json.loads(path.read_text())["rows"]]


def test_switched_off_steps_give_no_rows_and_the_rest_keep_the_plan_order(emulator, tmp_path):
    code, output = run_playbook(tmp_path, "drift_report", "--limit", "contoso",
                                "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"),
                                "-e", "relay_accounts_disable_per_user_mfa=false",
                                "-e", "relay_accounts_enable_org_smtp_auth=true")
    assert code == 0, output
    settings = [setting for _mailbox, setting, _desired, _status in rows(tmp_path / "reports" / "contoso.json")]
    assert "per_user_mfa" not in settings
    assert list(dict.fromkeys(settings)) == ["app_permissions", "license", "security_defaults", "org_smtp_auth", "inbound_connector",
                                             "smtp_app_consent",
                                             "exchange_service_principal", "mailbox_permission", "mailbox_smtp_auth"]


def test_a_step_not_reached_is_reported_as_not_checked_even_after_an_earlier_run(emulator, tmp_path):
    role = "m365ops.smtp_auth.relay_accounts"
    play = [{"name": "Run the role twice on one tenant", "hosts": "contoso", "gather_facts": False, "tasks": [
        # Everything is read and registered ...
        {"name": "Report first", "ansible.builtin.include_role": {"name": role},
         "vars": {"relay_accounts_report_only": True, "relay_accounts_report_dir": str(tmp_path / "first")}},
        # ... then an apply run whose only mailbox is unlicensed stops after the licence check.
        {"name": "Apply then", "ansible.builtin.include_role": {"name": role},
         "vars": {"relay_accounts_mailboxes": ["backup@contoso.com"],
                  "relay_accounts_report_in_apply_mode": True, "relay_accounts_report_dir": str(tmp_path / "second")}},
    ]}]
    code, output = run_play(tmp_path, play)
    assert code != 0, output
    first = rows(tmp_path / "first" / "contoso.json")
    assert ("scanner@contoso.com", "per_user_mfa", "disabled", "compliant") in first
    second = json.loads((tmp_path / "second" / "contoso.json").read_text())["rows"]
    after_the_licence_check = [row for row in second if row["setting"] not in ("app_permissions", "license")]
    assert after_the_licence_check
    assert {(row["status"], row["message"]) for row in after_the_licence_check} == {
        ("error", "not checked: an earlier step failed")}
