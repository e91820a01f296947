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
import yaml

from m365_emulator import Emulator

from conftest import writes

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "playbooks" / "inventory" / "emulator"


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def run_playbook(tmp_path, playbook, *arguments, inventory=INVENTORY):
    """Run a playbook of the collection (or a playbook file) over the emulator inventory; return (returncode,
    output)."""
    environment = dict(os.environ)
    environment.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
    environment.update({
        "M365_EMULATOR_CONNECTION_FILE": str(tmp_path / "connection.json"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
    })
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
               playbook if playbook.endswith(".yml") else "m365ops.smtp_auth." + playbook, *arguments]
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True,
                               timeout=600, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def tenants_inventory(tmp_path, hosts):
    """An inventory of the emulator's tenants with the given host vars, and the emulator's connection vars."""
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "group_vars").symlink_to(INVENTORY / "group_vars", target_is_directory=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"m365_tenants": {"hosts": hosts}}))
    return directory


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


def test_an_unlicensed_mailbox_is_left_out_and_named_while_the_others_are_done(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": ["scanner@contoso.com", "backup@contoso.com"]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    _tenant, by_upn = users(emulator, "contoso")
    assert by_upn["scanner@contoso.com"]["smtp_client_authentication_disabled"] is False
    assert not [entry for entry in writes(emulator) if "backup" in json.dumps(entry)]
    assert "backup@contoso.com has no Exchange Online mailbox licence" in output.split("Fail the tenant")[-1]
    assert "mailbox_smtp_auth scanner@contoso.com" in output.split("; changed: ")[-1]


def test_a_tenant_whose_relay_mailboxes_all_lack_a_licence_stops_before_any_change(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": ["backup@contoso.com", "nobody@contoso.com"]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    assert "none of the relay mailboxes has one (or exists): backup@contoso.com, nobody@contoso.com" in output
    assert "Nothing was changed" in output
    assert writes(emulator) == []


@pytest.mark.parametrize("app, expected", [
    # {} is the role's default: no relay app declared (given explicitly, since the demo inventory declares one).
    ({}, "relay_accounts_oauth_app.app_id is not set: the oauth mailboxes (notify@contoso.com) need"),
    ({"app_id": "not-a-guid"}, "relay_accounts_oauth_app.app_id must be an application (client) id (a GUID), "
                               "got not-a-guid"),
    ({"app_id": "0d5c1b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "object_id": "x"},
     "relay_accounts_oauth_app.object_id must be the object id (a GUID)"),
])
def test_oauth_mailboxes_without_a_good_relay_app_are_refused_before_any_request(emulator, tmp_path, app, expected):
    variables = {"relay_accounts_mailboxes": ["scanner@contoso.com", {"upn": "notify@contoso.com", "auth": "oauth"}],
                 "relay_accounts_oauth_app": app}
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", json.dumps(variables))
    assert code != 0
    assert expected in " ".join(output.split()), output
    assert emulator.request_log == []


def test_a_malformed_entry_is_refused_by_name_before_any_request(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": ["scanner@contoso.com", {"upn": "erp@contoso.com",
                                                                                 "sate": "absent"}]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    assert "relay_accounts_mailboxes[1] (erp@contoso.com): unknown key(s) sate" in output
    assert emulator.request_log == []


def printed_lines(output, text):
    """The lines that show ``text``, leaving out ansible's one-line JSON record of each failed task."""
    return [line for line in output.splitlines() if text in line and not line.startswith("fatal: [")]


def test_a_tenant_that_declares_no_mailbox_fails_naming_the_variable_before_any_request(emulator, tmp_path):
    inventory = tenants_inventory(tmp_path, {
        "contoso": {"relay_account_mailboxes": ["scanner@contoso.com"]},    # misspelt
        "fabrikam": {"relay_accounts_mailboxes": []},
    })
    code, output = run_playbook(tmp_path, "enable", "-e", "relay_accounts_fail_on_drift=true", inventory=inventory)
    assert code != 0, output
    assert "CLEAN" not in output
    assert recap(output)["contoso"]["failed"] == 1 and recap(output)["fabrikam"]["failed"] == 1
    assert printed_lines(output, "Tenant contoso: relay_accounts_mailboxes must be fixed")
    assert "- relay_accounts_mailboxes is not set (set instead: relay_account_mailboxes; misspelt?)" in output
    assert printed_lines(output, "Tenant fabrikam: relay_accounts_mailboxes must be fixed")
    assert "- relay_accounts_mailboxes is empty: no relay mailbox is declared" in output
    assert "relay_accounts_allow_empty" in output
    assert emulator.request_log == []


def test_a_tenant_may_declare_no_mailbox_when_it_says_so(emulator, tmp_path):
    inventory = tenants_inventory(tmp_path, {
        "contoso": {"relay_accounts_mailboxes": [], "relay_accounts_allow_empty": True,
                    "relay_accounts_exclusive": True},
    })
    code, output = run_playbook(tmp_path, "enable", inventory=inventory)
    assert code == 0, output
    # Exclusive mode with nothing declared: the mailbox that had SMTP AUTH explicitly on follows the
    # organisation again.
    _tenant, contoso_users = users(emulator, "contoso")
    assert contoso_users["legacy-relay@contoso.com"]["smtp_client_authentication_disabled"] is None


def test_bad_entries_are_printed_once_as_plain_lines(emulator, tmp_path):
    inventory = tenants_inventory(tmp_path, {
        "contoso": {"relay_accounts_mailboxes": [
            "scanner@contoso.com", {"upn": "erp@contoso.com", "sate": "absent"}, 42, "printer",
            "Scanner@Contoso.com"]},
        "fabrikam": {"relay_accounts_mailboxes": {"upn": "mfp@fabrikam.com"}},
    })
    code, output = run_playbook(tmp_path, "enable", inventory=inventory)
    assert code != 0, output
    expected = [
        "Tenant contoso: relay_accounts_mailboxes must be fixed before anything is sent to the tenant:",
        "- relay_accounts_mailboxes[1] (erp@contoso.com): unknown key(s) sate; allowed keys are upn, auth, state, send_as, source_ip",
        "- relay_accounts_mailboxes[2]: must be a user principal name or a mapping, got a number",
        "- relay_accounts_mailboxes[3] (printer): 'printer' is not a valid user principal name "
        "(expected name@domain.tld)",
        "- relay_accounts_mailboxes[4] (Scanner@Contoso.com): scanner@contoso.com is already declared at "
        "relay_accounts_mailboxes[0]",
        "Tenant fabrikam: relay_accounts_mailboxes must be fixed before anything is sent to the tenant:",
        "- relay_accounts_mailboxes must be a list of user principal names or mappings, got a mapping",
    ]
    for line in expected:
        shown = printed_lines(output, line)
        assert len(shown) == 1, (line, output)
        assert shown[0].endswith(line), (line, output)
    assert len([line for line in output.splitlines() if line.startswith("fatal: [contoso]")]) == 1
    for noise in ("_AnsibleTagged", "An unhandled exception occurred", "Error while resolving value",
                  "The filter plugin", "<<< caused by >>>"):
        assert noise not in output, (noise, output)
    assert emulator.request_log == []


def test_a_failed_step_is_printed_once(emulator, tmp_path):
    mailboxes = json.dumps({"relay_accounts_mailboxes": ["backup@contoso.com"]})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", mailboxes)
    assert code != 0
    assert len(printed_lines(output, "needs a licensed Exchange Online mailbox")) == 1, output
    # The summary and the final failure name the step, and the tenant fails once more, at the end.
    assert "failed at 'Stop before any change when no relay mailbox has a mailbox licence'" in output
    assert recap(output)["contoso"]["failed"] == 1


def test_one_unknown_mailbox_does_not_stop_the_others_and_is_an_error_in_the_apply_report(emulator, tmp_path):
    variables = json.dumps({"relay_accounts_mailboxes": ["scanner@contoso.com", "ghost@contoso.com",
                                                         "printer@contoso.com"],
                            "relay_accounts_check_license": False, "relay_accounts_report_in_apply_mode": True,
                            "relay_accounts_report_dir": str(tmp_path / "reports")})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", variables)
    assert code != 0
    _tenant, by_upn = users(emulator, "contoso")
    assert by_upn["scanner@contoso.com"]["smtp_client_authentication_disabled"] is False
    assert by_upn["printer@contoso.com"]["per_user_mfa_state"] == "disabled"
    report = json.loads((tmp_path / "reports" / "contoso.json").read_text())
    ghost = [row for row in report["rows"] if row["mailbox"] == "ghost@contoso.com"]
    assert {row["setting"] for row in ghost} == {"mailbox_smtp_auth", "per_user_mfa"}
    assert {row["status"] for row in ghost} == {"error"}
    failure = output.split("Fail the tenant when")[-1]
    assert "ghost@contoso.com" in failure and "failed at" not in failure, output
    assert "mailbox_smtp_auth scanner@contoso.com" in output.split("; changed: ")[-1], output
