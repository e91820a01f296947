# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""playbooks/troubleshoot.yml against the emulator's sample tenant: one paragraph per mailbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import COLLECTIONS, PLAYBOOK_TIMEOUT, REPO, Emulator, _ensure_collection_link, connection_env

PASSWORDS = {
    "scanner@contoso.com": "Scanner-Pass-2026!",
    "printer@contoso.com": "Printer-Pass-2026!",
    "alerts@contoso.com": "Alerts-Pass-2026!",
}


@pytest.fixture(scope="module")
def emulator():
    _ensure_collection_link()
    with Emulator() as running:
        yield running


def run_troubleshoot(emulator, tmp_path, mailboxes, check=False, recipient="", endpoint_in_inventory=False):
    """ansible-playbook on the shipped playbook with a one-tenant inventory; returns the printed paragraphs.
    The submission endpoint is given with -e, or as the tenant's host vars with ``endpoint_in_inventory``."""
    env = connection_env(emulator)
    endpoint = {"troubleshoot_smtp_host": emulator.smtp_host, "troubleshoot_smtp_port": emulator.smtp_port}
    inventory = {"m365_tenants": {"hosts": {"contoso": {
        "relay_accounts_mailboxes": mailboxes,
        "relay_accounts_connection": {
            "tenant_id": env["M365_TENANT_ID"], "client_id": env["M365_CLIENT_ID"],
            "client_secret": env["M365_CLIENT_SECRET"], "authority_url": env["M365_AUTHORITY_URL"],
            "graph_url": env["M365_GRAPH_URL"], "exchange_url": env["M365_EXCHANGE_URL"],
            "ca_path": env["M365_CA_PATH"]},
        "ansible_python_interpreter": sys.executable,
        **(endpoint if endpoint_in_inventory else {}),
    }}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "passwords.yml").write_text(yaml.safe_dump({"troubleshoot_passwords": PASSWORDS}))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("M365_")}
    environment.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    })
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
               str(REPO / "playbooks" / "troubleshoot.yml"), "-e", "@" + str(tmp_path / "passwords.yml"),
               "-e", json.dumps({**({} if endpoint_in_inventory else endpoint),
                                 "troubleshoot_recipient": recipient})]
    if check:
        command.append("--check")
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=str(tmp_path),
                               timeout=PLAYBOOK_TIMEOUT, check=False)
    return completed


def paragraphs(stdout):
    """The debug messages, in order."""
    found = []
    decoder = json.JSONDecoder()
    for marker in ('=> {', ') => {'):
        start = 0
        while True:
            index = stdout.find(marker, start)
            if index < 0:
                break
            try:
                value, end = decoder.raw_decode(stdout, index + len(marker) - 1)
            except ValueError:
                start = index + 1
                continue
            if isinstance(value, dict) and "msg" in value and isinstance(value["msg"], str):
                found.append(value["msg"])
            start = end
    return list(dict.fromkeys(found))


def test_one_paragraph_per_mailbox_says_what_fails_why_and_what_to_run(emulator, tmp_path):
    emulator.reset()
    emulator.messages.clear()
    completed = run_troubleshoot(emulator, tmp_path, ["scanner@contoso.com", "printer@contoso.com",
                                                      "alerts@contoso.com", "kiosk@contoso.com"],
                                 recipient="it-team@contoso.com")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    text = {message.split(":", 1)[0]: message for message in paragraphs(completed.stdout)}
    assert set(text) == {"scanner@contoso.com", "printer@contoso.com", "alerts@contoso.com", "kiosk@contoso.com"}
    assert "mailbox_smtp_auth" in text["scanner@contoso.com"]
    assert "per_user_mfa" in text["printer@contoso.com"]
    assert "module user_authentication_policy with users: [alerts@contoso.com]" in text["alerts@contoso.com"]
    assert "Conditional Access" in text["kiosk@contoso.com"]
    for upn in PASSWORDS:
        assert "Submission test: %s:" % upn in text[upn]
        assert "5.7.139" in text[upn]
    assert "not run (no password for kiosk@contoso.com" in text["kiosk@contoso.com"]
    for password in PASSWORDS.values():
        assert password not in completed.stdout
    assert emulator.messages == []


def test_fixed_mailbox_reads_ok_and_its_message_is_accepted(emulator, tmp_path):
    emulator.reset()
    emulator.messages.clear()
    with emulator.store.lock:
        tenant = emulator.store.find_tenant("contoso.onmicrosoft.com")
        tenant.security_defaults_enabled = False
        tenant.find_user("scanner@contoso.com").smtp_client_authentication_disabled = False

    # The endpoint comes from the inventory here: the playbook's own defaults must not override host vars.
    completed = run_troubleshoot(emulator, tmp_path, ["scanner@contoso.com"], recipient="it-team@contoso.com",
                                 endpoint_in_inventory=True)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    (message,) = paragraphs(completed.stdout)
    assert "nothing blocks SMTP AUTH" in message
    assert "accepted SMTP AUTH and the test message" in message
    assert [sent["mailbox"] for sent in emulator.messages] == ["scanner@contoso.com"]
