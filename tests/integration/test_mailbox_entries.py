# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One mailbox entry schema: smtp_auth_info and the troubleshoot playbook read relay_accounts_mailboxes as the
role does (retired mailboxes are not diagnosed as relays, bad entries are refused by name)."""

from __future__ import annotations

import pytest

from conftest import Emulator, _ensure_collection_link
from test_troubleshoot_playbook import paragraphs, run_troubleshoot

RETIRED = "legacy-relay@contoso.com"


def test_smtp_auth_info_lists_retired_mailboxes_instead_of_judging_them(run_play):
    run = run_play([{"m365ops.smtp_auth.smtp_auth_info": {"mailboxes": [
        "scanner@contoso.com", {"upn": RETIRED, "state": "absent"}]}}])
    result = run[0]
    assert not result.get("failed"), result.get("msg")
    assert [mailbox["identity"] for mailbox in result["mailboxes"]] == ["scanner@contoso.com"]
    assert result["retired"] == [RETIRED]


def test_smtp_auth_info_refuses_bad_entries_by_name_before_any_request(run_play):
    run = run_play([{"m365ops.smtp_auth.smtp_auth_info": {"mailboxes": [
        "scanner@contoso.com", "Scanner@Contoso.com", {"upn": "erp@contoso.com", "sate": "absent"}]}}])
    result = run[0]
    assert result["failed"] is True
    assert "mailboxes[1] (Scanner@Contoso.com): scanner@contoso.com is already declared at mailboxes[0]" \
        in result["msg"]
    assert "mailboxes[2] (erp@contoso.com): unknown key(s) sate" in result["msg"]
    assert run.requests[0] == []


@pytest.fixture(scope="module")
def emulator():
    _ensure_collection_link()
    with Emulator() as running:
        yield running


def test_the_troubleshoot_playbook_names_a_retired_mailbox_and_does_not_diagnose_it(emulator, tmp_path):
    emulator.reset()
    completed = run_troubleshoot(emulator, tmp_path, ["kiosk@contoso.com", {"upn": RETIRED, "state": "absent"}])

    assert completed.returncode == 0, completed.stdout + completed.stderr
    messages = paragraphs(completed.stdout)
    assert [message for message in messages if message.startswith(RETIRED)] == []
    assert any(message.startswith("kiosk@contoso.com:") for message in messages)
    assert "Not checked, retired (state absent, SMTP AUTH is meant to be off): %s." % RETIRED in messages


def test_the_troubleshoot_playbook_stops_when_no_mailbox_is_named(emulator, tmp_path):
    completed = run_troubleshoot(emulator, tmp_path, [])

    assert completed.returncode != 0
    assert "Tenant contoso: no mailbox to troubleshoot" in completed.stdout + completed.stderr
