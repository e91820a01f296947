# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exchange's budget of changing cmdlets (the emulator's ``exchange_cmdlet_budget``): an apply that runs past it
paces itself, every change lands once and none fails; a big apply says up front how long it may take."""

from __future__ import annotations

import json

import pytest

from m365_emulator import Emulator

from test_role_relay_accounts import recap, run_playbook, tenants_inventory, users

# Small enough that the apply runs past it several times, in seconds rather than minutes.
BUDGET = [10, 3]


def start(tmp_path, generate, **behaviour):
    emulator = Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0, generate=generate,
                        behaviour=behaviour)
    emulator.start()
    (tmp_path / "connection.json").write_text(json.dumps(emulator.connection_info()))
    return emulator


@pytest.fixture
def emulator_factory(tmp_path):
    started = []

    def make(generate, **behaviour):
        started.append(start(tmp_path, generate, **behaviour))
        return started[-1]

    yield make
    for emulator in started:
        emulator.stop()


def generated_mailboxes(emulator, count):
    tenant, _by_upn = users(emulator, "contoso")
    return ["device%05d@%s" % (number, tenant["domains"][0]) for number in range(1, count + 1)]


def test_an_apply_past_the_budget_paces_itself_and_every_change_lands_once(emulator_factory, tmp_path):
    emulator = emulator_factory(40, exchange_cmdlet_budget="destructive", exchange_destructive_budget=BUDGET)
    declared = generated_mailboxes(emulator, 40)
    inventory = tenants_inventory(tmp_path, {"contoso": {"relay_accounts_mailboxes": declared}})

    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", inventory=inventory)
    assert code == 0, output
    _tenant, by_upn = users(emulator, "contoso")
    assert [upn for upn in declared if by_upn[upn]["smtp_client_authentication_disabled"] is not False] == []
    sets = [entry for entry in emulator.request_log if entry["cmdlet"] == "Set-CASMailbox"]
    landed = [entry for entry in sets if entry["status"] == 200]
    refused = [entry for entry in sets if entry["status"] == 429]
    assert len(landed) == len(declared)  # each mailbox once
    assert refused, "the apply never ran past the budget, so this tested nothing"
    # Paced after the first refusal: each write in flight then (4 batches of 10) is refused about once, not once
    # per window (unpaced, the three batches refused would be refused again together: 30, then 20, then 10).
    assert len(refused) <= 4 * 10, len(refused)
    assert "throttled" in output


def test_a_big_apply_says_up_front_how_long_its_exchange_changes_may_take(emulator_factory, tmp_path):
    emulator = emulator_factory(130)
    declared = generated_mailboxes(emulator, 130)
    inventory = tenants_inventory(tmp_path, {"contoso": {"relay_accounts_mailboxes": declared}})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "--check", inventory=inventory)
    assert code == 0, output
    assert "up to 130 Exchange Online changes" not in output  # check mode changes nothing
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", inventory=inventory)
    assert code == 0, output
    assert "up to 130 Exchange Online changes" in output and "about 2 minutes" in output
    # Said before the first change: the notice comes before the mailbox step in the output.
    assert output.index("up to 130 Exchange Online changes") < output.index("Turn on SMTP AUTH for each relay mailbox")
    assert recap(output)["contoso"]["changed"] >= 1
