# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay_accounts role and its playbooks, run by ansible-playbook against the emulator's sample tenants."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from m365_emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "playbooks" / "inventory" / "emulator"


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def run_playbook(tmp_path, playbook, *arguments):
    """Run a playbook of the collection over the emulator inventory; return (returncode, output)."""
    environment = dict(os.environ)
    environment.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
    environment.update({
        "M365_EMULATOR_CONNECTION_FILE": str(tmp_path / "connection.json"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
    })
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
               "m365ops.smtp_auth." + playbook, *arguments]
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True,
                               timeout=600, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def recap(output):
    """{host: {ok: n, changed: n, failed: n, ...}} from the PLAY RECAP."""
    hosts = {}
    for host, counters in re.findall(r"^(\w+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        hosts[host] = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", counters)}
    return hosts


def users(emulator, tenant_name):
    with emulator.store.lock:
        snapshot = emulator.store.snapshot()
    tenant = next(tenant for tenant in snapshot["tenants"] if tenant["name"] == tenant_name)
    return tenant, {user["user_principal_name"]: user for user in tenant["users"]}


def writes(emulator):
    return [entry for entry in emulator.request_log if entry.get("wrote")]


def test_one_play_converges_two_tenants_and_a_second_run_changes_nothing(emulator, tmp_path):
    code, output = run_playbook(tmp_path, "enable", "--forks", "2")
    assert code == 0, output

    contoso, contoso_users = users(emulator, "contoso")
    assert contoso["security_defaults_enabled"] is False
    for upn in ("scanner@contoso.com", "printer@contoso.com", "erp@contoso.com"):
        assert contoso_users[upn]["smtp_client_authentication_disabled"] is False, upn
        assert contoso_users[upn]["per_user_mfa_state"] == "disabled", upn
    # Not declared: left exactly as seeded.
    assert contoso_users["alice@contoso.com"]["per_user_mfa_state"] == "enforced"
    assert contoso_users["alerts@contoso.com"]["smtp_client_authentication_disabled"] is None
    assert contoso["transport_smtp_auth_disabled"] is True

    fabrikam, fabrikam_users = users(emulator, "fabrikam")
    assert fabrikam_users["mfp@fabrikam.com"]["smtp_client_authentication_disabled"] is False
    assert fabrikam_users["labels@fabrikam.com"]["per_user_mfa_state"] == "disabled"

    written = len(writes(emulator))
    code, output = run_playbook(tmp_path, "enable")
    assert code == 0, output
    assert recap(output)["contoso"]["changed"] == 0
    assert recap(output)["fabrikam"]["changed"] == 0
    assert len(writes(emulator)) == written


def test_check_mode_changes_nothing_and_shows_each_mailbox(emulator, tmp_path):
    code, output = run_playbook(tmp_path, "enable", "--check", "--diff", "--limit", "contoso")
    assert code == 0, output
    assert writes(emulator) == []
    assert '-    "scanner@contoso.com": "disabled"' in output
    assert '+    "printer@contoso.com": "disabled"' in output
    assert "contoso: NOT CLEAN" in output


def test_an_unlicensed_mailbox_stops_the_tenant_before_any_change(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": ["scanner@contoso.com", "backup@contoso.com"]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    assert "needs a licensed Exchange Online mailbox" in output and "backup@contoso.com" in output
    assert "Nothing was changed" in output
    assert writes(emulator) == []


def test_oauth_mailboxes_are_refused_by_name_before_any_request(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": [
        "scanner@contoso.com", {"upn": "notify@contoso.com", "auth": "oauth"}]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    assert "auth 'oauth' is not supported" in output and "notify@contoso.com" in output
    assert emulator.request_log == []


def test_a_malformed_entry_is_refused_by_name_before_any_request(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": ["scanner@contoso.com", {"upn": "erp@contoso.com",
                                                                                 "sate": "absent"}]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    assert "relay_accounts_mailboxes[1] (erp@contoso.com): unknown key(s) sate" in output
    assert emulator.request_log == []
