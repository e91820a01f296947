# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connector entries: devices that relay without SMTP AUTH through the tenant's inbound connector."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_report import drift_report
from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_rows import drift_rows
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_connector_problems import relay_connector_problems
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_mailboxes import relay_mailboxes
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_plan import relay_plan

CONNECTOR = {"name": "Office scanners", "sender_ip_addresses": ["203.0.113.0/28"]}
ENTRIES = relay_mailboxes(["printer@contoso.com",
                           {"upn": "notify@contoso.com", "auth": "oauth"},
                           {"upn": "scan-2f@contoso.com", "auth": "connector", "source_ip": "203.0.113.5"},
                           {"upn": "old-fax@contoso.com", "auth": "connector", "state": "absent"}])
APP = "0d5c1b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d"


def test_a_connector_entry_is_parsed_with_its_address_and_checked():
    assert ENTRIES[2] == {"upn": "scan-2f@contoso.com", "auth": "connector", "state": "present", "send_as": False,
                          "source_ip": "203.0.113.5"}
    assert "source_ip" not in ENTRIES[0]
    for entry, words in [
        ({"upn": "a@contoso.com", "auth": "connector", "source_ip": "203.0.113.0/28"}, "not an IPv4 address"),
        ({"upn": "a@contoso.com", "auth": "connector", "source_ip": "2001:db8::1"}, "IPv6"),
        ({"upn": "a@contoso.com", "auth": "connector", "source_ip": 5}, "a number"),
        ({"upn": "a@contoso.com", "auth": "basic", "source_ip": "203.0.113.5"}, "only auth 'connector'"),
        ({"upn": "a@contoso.com", "auth": "connector", "send_as": True}, "only auth 'oauth'"),
    ]:
        result = relay_mailboxes([entry], strict=False)
        assert result["entries"] == [] and words in result["errors"][0] and "a@contoso.com" in result["errors"][0]


def test_the_plan_gives_connector_entries_the_connector_and_no_smtp_auth_step():
    plan = relay_plan(ENTRIES, oauth_app_id=APP, connector=CONNECTOR)
    assert plan["inbound_connector"]["mailboxes"] == ["scan-2f@contoso.com"]
    assert plan["inbound_connector"]["sources"] == {"scan-2f@contoso.com": "203.0.113.5"}
    assert plan["inbound_connector"]["connector"] == CONNECTOR
    assert plan["inbound_connector"]["permissions"]["write"] == ["exchange"]
    for step in ("license", "mailbox_smtp_auth", "per_user_mfa"):
        assert "scan-2f@contoso.com" not in plan[step]["mailboxes"], step
    # A retired connector entry has no SMTP AUTH switch to turn off, nor a mailbox to find.
    assert "retired_mailbox_smtp_auth" not in plan
    with pytest.raises(AnsibleFilterError, match="relay_accounts_connector"):
        relay_plan(ENTRIES, oauth_app_id=APP)
    # A connector declared without connector entries is still managed; none at all plans no step.
    assert "inbound_connector" in relay_plan(ENTRIES[:2], oauth_app_id=APP, connector=CONNECTOR)
    assert "inbound_connector" not in relay_plan(ENTRIES[:2], oauth_app_id=APP, connector={})


@pytest.mark.parametrize("connector, words", [
    ({}, "relay_accounts_connector is not set: the connector entries (scan-2f@contoso.com)"),
    ({"name": None, "sender_ip_addresses": None}, "relay_accounts_connector is not set"),
    ("Office scanners", "must be a mapping"),
    ({"sender_ip_addresses": ["203.0.113.0/28"]}, "relay_accounts_connector.name is required"),
    ({"name": "x"}, "needs sender_ip_addresses"),
    ({"name": "x", "sender_ip_addresses": ["203.0.113.0/28"], "ports": [25]}, "unknown key(s) ports"),
    ({"name": "x", "sender_ip_addresses": ["10.0.0.0/8", "203.0.113.0/28"]}, "'10.0.0.0/8' is wider than /24"),
    ({"name": "x", "sender_ip_addresses": ["198.51.100.7"]},
     "scan-2f@contoso.com (auth connector): its source_ip 203.0.113.5 is not in relay_accounts_connector"),
])
def test_a_connector_that_cannot_serve_the_devices_is_refused_naming_why(connector, words):
    problems = relay_connector_problems(ENTRIES, connector)
    assert any(words in problem for problem in problems), problems


def test_a_connector_that_covers_every_device_has_no_problem():
    assert relay_connector_problems(ENTRIES, CONNECTOR) == []
    assert relay_connector_problems(ENTRIES[:2], {}) == []
    by_certificate = relay_mailboxes([{"upn": "print-server@contoso.com", "auth": "connector"}])
    assert relay_connector_problems(by_certificate, {"name": "x", "tls_sender_certificate_name": "print.contoso.com"}) == []
    assert "needs source_ip" in relay_connector_problems(by_certificate, CONNECTOR)[0]


def step(before, after, changed, sources=None):
    return {"setting": "inbound_connector", "desired": "present", "connector": CONNECTOR,
            "mailboxes": list((sources or {"scan-2f@contoso.com": "203.0.113.5"})),
            "sources": sources or {"scan-2f@contoso.com": "203.0.113.5"},
            "result": {"changed": changed, "before": before, "after": after}}


AFTER = {"name": "Office scanners", "enabled": True, "sender_ip_addresses": ["203.0.113.0/28"],
         "tls_sender_certificate_name": None}


def test_rows_say_whether_the_connector_covers_each_device():
    auth = {"scan-2f@contoso.com": "connector"}
    missing = drift_rows([step(None, AFTER, True)], tenant="contoso", check_mode=True, auth_modes=auth)
    assert [(row["mailbox"], row["actual"], row["status"]) for row in missing] == [
        (None, "missing", "drift"), ("scan-2f@contoso.com", "not_covered", "drift")]
    assert "New-InboundConnector" in missing[0]["fix"] and "203.0.113.0/28" in missing[0]["fix"]
    assert missing[1]["auth"] == "connector"
    held = drift_rows([step(AFTER, AFTER, False)], tenant="contoso", auth_modes=auth)
    assert [(row["actual"], row["status"]) for row in held] == [("enabled: 203.0.113.0/28", "compliant"),
                                                                ("covered", "compliant")]
    outside = drift_rows([step(AFTER, AFTER, False, {"scan-2f@contoso.com": "198.51.100.7"})], tenant="contoso")
    assert outside[1]["status"] == "error" and "5.7.64" in outside[1]["message"]
    assert "198.51.100.7" in outside[1]["fix"]
    not_run = drift_rows([dict(step(None, None, False), result={})], tenant="contoso")
    assert {row["status"] for row in not_run} == {"error"} and len(not_run) == 2


def test_the_report_gives_each_device_its_settings_and_each_basic_mailbox_both_ways_out():
    report = drift_report([], tenant="contoso", mode="check", generated_at="2026-12-06T10:00:00Z", entries=ENTRIES,
                          connector=CONNECTOR)
    assert report["connector_relay"] == {"connector": "Office scanners", "devices": [{
        "mailbox": "scan-2f@contoso.com", "source_ip": "203.0.113.5", "host": "contoso-com.mail.protection.outlook.com",
        "port": 25, "authentication": "none", "tls": "STARTTLS when the device offers it (TLS 1.2 or later)",
        "from": "scan-2f@contoso.com"}]}
    (printer,) = report["basic_auth_retirement"]["mailboxes"]
    assert printer["inventory_change"] == "- {upn: printer@contoso.com, auth: oauth}"
    assert printer["connector_change"].startswith("- {upn: printer@contoso.com, auth: connector, source_ip: ")
    assert "connector_relay" not in drift_report([], tenant="c", mode="check", generated_at="x", entries=ENTRIES[:2])
