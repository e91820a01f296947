# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A run killed in the middle of its writes, then run again, converges, and no mailbox is written twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from m365_emulator import Emulator

from test_role_relay_accounts import ROOT, recap, run_playbook, tenants_inventory, users, writes

GENERATED = 400
# Enough added latency that the mailbox step is still writing when the run is killed after its first write.
LATENCY_MS = 60
KILL_DEADLINE = 120


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0, generate=GENERATED,
                  latency_ms=LATENCY_MS) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def start_playbook(tmp_path, inventory, *arguments):
    """ansible-playbook in a process group of its own, so that killing the group also kills its modules."""
    environment = dict(os.environ)
    environment.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
    environment.update({"M365_EMULATOR_CONNECTION_FILE": str(tmp_path / "connection.json"), "ANSIBLE_NOCOLOR": "1"})
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
               "m365ops.smtp_auth.enable", *arguments]
    return subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def set_cas_mailbox(emulator):
    return [entry for entry in emulator.request_log if entry["cmdlet"] == "Set-CASMailbox" and entry["status"] == 200]


def test_a_run_killed_mid_apply_converges_when_run_again_and_writes_each_mailbox_once(emulator, tmp_path):
    tenant, _by_upn = users(emulator, "contoso")
    domain = tenant["domains"][0]
    generated = ["device%05d@%s" % (number, domain) for number in range(1, GENERATED + 1)]
    # The sample mailboxes bring per-user MFA drift; the generated ones have their SMTP AUTH switch unset.
    declared = ["scanner@contoso.com", "printer@contoso.com"] + generated
    inventory = tenants_inventory(tmp_path, {"contoso": {"relay_accounts_mailboxes": declared,
                                                         "relay_accounts_report_dir": str(tmp_path / "reports")}})

    process = start_playbook(tmp_path, inventory)
    deadline = time.monotonic() + KILL_DEADLINE
    try:
        while not set_cas_mailbox(emulator):
            assert process.poll() is None, "the run ended before its first mailbox write"
            assert time.monotonic() < deadline, "no mailbox write within %d s" % KILL_DEADLINE
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    # Requests already on their way still land: let them, then look at what the killed run left.
    time.sleep(LATENCY_MS / 1000 * 5)
    written_before = len(set_cas_mailbox(emulator))
    assert 0 < written_before < len(declared), "the run was not killed in the middle of its writes"
    _tenant, by_upn = users(emulator, "contoso")
    assert by_upn["printer@contoso.com"]["per_user_mfa_state"] == "enforced", "the killed run got past its last step"

    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", inventory=inventory)
    assert code == 0, output
    _tenant, by_upn = users(emulator, "contoso")
    for upn in declared:
        assert by_upn[upn]["smtp_client_authentication_disabled"] is False, upn
    assert by_upn["printer@contoso.com"]["per_user_mfa_state"] == "disabled"
    # Each mailbox written once over both runs: the second run read what the first had done and left it.
    assert len(set_cas_mailbox(emulator)) == len(declared)

    written = len(writes(emulator))
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", inventory=inventory)
    assert code == 0, output
    assert recap(output)["contoso"]["changed"] == 0
    assert len(writes(emulator)) == written
    assert Counter(entry["cmdlet"] for entry in writes(emulator))["Set-CASMailbox"] == len(declared)
