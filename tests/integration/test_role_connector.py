# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Devices that cannot sign in: connector entries of the relay_accounts role. A mixed tenant (basic, oauth and
connector entries) converges in one run; the connector is managed once for the tenant and no SMTP AUTH setting
is touched for its devices; mail relayed without AUTH from the declared address is then accepted by the emulator's
MX endpoint, and from any other address refused with 5.7.64."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage

import pytest
import yaml

from m365_emulator import Emulator

from test_role_check_mode import SAMPLE_HOSTS
from test_role_relay_accounts import recap, run_playbook, tenants_inventory, users, writes

DEVICE = "scan-2f@contoso.com"
LISTED, UNLISTED = "127.0.0.2", "127.0.0.1"
OUTSIDE = "archive@fabrikam.example"


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0, mx_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def relay(emulator, source):
    """Send as the device would: no AUTH, STARTTLS when offered, port 25 of the MX endpoint, from ``source``."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = DEVICE, OUTSIDE, "scan"
    message.set_content("scanned page")
    with smtplib.SMTP(emulator.smtp_host, emulator.mx_port, timeout=15, source_address=(source, 0)) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=emulator.connection_info()["ca_path"]))
        smtp.send_message(message)


def connector_of(emulator):
    tenant, _by_upn = users(emulator, "contoso")
    with emulator.store.lock:
        return [dict(connector) for connector in emulator.store.find_tenant(tenant["id"]).inbound_connectors]


def test_a_mixed_tenant_converges_in_one_run_and_its_scanner_relays_from_its_address(emulator, tmp_path):
    hosts = {"contoso": SAMPLE_HOSTS["contoso"]}
    assert {entry["auth"] for entry in SAMPLE_HOSTS["contoso"]["relay_accounts_mailboxes"] if isinstance(entry, dict)} \
        >= {"oauth", "connector"}
    inventory = tenants_inventory(tmp_path, hosts)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        relay(emulator, LISTED)
    assert "5.7.64" in str(refused.value)

    code, output = run_playbook(tmp_path, "enable", "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"),
                                "-e", "relay_accounts_report_in_apply_mode=true", inventory=inventory)
    assert code == 0, output
    (connector,) = connector_of(emulator)
    assert connector["name"] == "Office scanners" and connector["sender_ip_addresses"] == [LISTED]
    # Nothing of SMTP AUTH was asked about or changed for the device.
    assert not [entry for entry in emulator.request_log if DEVICE in json.dumps(entry)]
    _tenant, by_upn = users(emulator, "contoso")
    assert by_upn["printer@contoso.com"]["per_user_mfa_state"] == "disabled"
    assert by_upn["scanner@contoso.com"]["smtp_client_authentication_disabled"] is False

    relay(emulator, LISTED)
    assert emulator.messages[-1]["relay_connector"] == "Office scanners"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        relay(emulator, UNLISTED)
    assert "5.7.64 TenantAttribution" in str(refused.value)

    report = json.loads((tmp_path / "reports" / "contoso.json").read_text())
    rows = [row for row in report["rows"] if row["setting"] == "inbound_connector"]
    assert [(row["mailbox"], row["auth"], row["status"]) for row in rows] == [
        (None, None, "changed"), (DEVICE, "connector", "changed")]
    assert not [row for row in report["rows"] if row["mailbox"] == DEVICE and row["setting"] != "inbound_connector"]
    (device,) = report["connector_relay"]["devices"]
    assert (device["host"], device["port"], device["authentication"], device["source_ip"]) == (
        "contoso-com.mail.protection.outlook.com", 25, "none", LISTED)
    markdown = (tmp_path / "reports" / "contoso.md").read_text()
    assert "contoso-com.mail.protection.outlook.com | 25 | none" in markdown

    written = len(writes(emulator))
    code, output = run_playbook(tmp_path, "enable", inventory=inventory)
    assert code == 0, output
    assert recap(output)["contoso"]["changed"] == 0
    assert len(writes(emulator)) == written


def test_a_device_outside_the_connector_stops_the_tenant_before_any_request(emulator, tmp_path):
    host = yaml.safe_load(yaml.safe_dump(SAMPLE_HOSTS["contoso"]))
    for entry in host["relay_accounts_mailboxes"]:
        if isinstance(entry, dict) and entry.get("auth") == "connector":
            entry["source_ip"] = "198.51.100.7"
    code, output = run_playbook(tmp_path, "enable", inventory=tenants_inventory(tmp_path, {"contoso": host}))
    assert code != 0
    assert "its source_ip 198.51.100.7 is not in relay_accounts_connector.sender_ip_addresses (127.0.0.2)" in output
    assert emulator.request_log == []


def test_smtp_auth_info_says_whether_a_connector_covers_each_device(emulator, tmp_path):
    entries = [{"upn": DEVICE, "auth": "connector", "source_ip": LISTED},
               {"upn": "copier@contoso.com", "auth": "connector", "source_ip": "127.0.0.9"}]
    playbook = tmp_path / "info.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "contoso", "gather_facts": False,
        "module_defaults": {"group/m365ops.smtp_auth.m365": "{{ relay_accounts_connection }}"},
        "tasks": [
            {"m365ops.smtp_auth.inbound_connector": {"name": "Office scanners", "sender_ip_addresses": [LISTED]}},
            {"m365ops.smtp_auth.smtp_auth_info": {"mailboxes": entries}, "register": "info"},
            {"ansible.builtin.copy": {"content": "{{ info | to_json }}", "dest": str(tmp_path / "info.json"),
                                      "mode": "0600"}}]}]))
    inventory = tenants_inventory(tmp_path, {"contoso": {}})
    code, output = run_playbook(tmp_path, str(playbook), inventory=inventory)
    assert code == 0, output
    covered, outside = json.loads((tmp_path / "info.json").read_text())["mailboxes"]
    assert covered["verdict"] == "ok" and covered["settings"]["covered_by"] == ["Office scanners"]
    assert outside["verdict"] == "blocked"
    (blocker,) = outside["blockers"]
    assert blocker["blocker"] == "no_connector_covers" and "5.7.64" in blocker["reply"]
    assert "Office scanners lists 127.0.0.2" in blocker["detail"]
    assert "127.0.0.9" in outside["summary"] or "127.0.0.9" in blocker["value"]
    # Connector entries need no mailbox: the only read was the tenant's connectors.
    reads = [entry["cmdlet"] for entry in emulator.request_log if entry.get("cmdlet") and not entry["wrote"]]
    assert "Get-CASMailbox" not in reads
