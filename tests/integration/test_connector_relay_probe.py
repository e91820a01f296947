# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""smtp_submission_test with auth_mode connector against the emulator's MX endpoint: a connector made with
inbound_connector lists 127.0.0.2, so relay from there is accepted and relay from 127.0.0.1 gets 5.7.64, with a
diagnosis that names the connector and its address (or says the connectors could not be read)."""

from __future__ import annotations

import pytest

from conftest import Emulator, _ensure_collection_link, contoso

SCANNER = "scanner@contoso.com"
# Outside every tenant of the emulator: only a connector lets the MX endpoint relay there.
OUTSIDE = "archive@fabrikam.example"
CONNECTOR = "Office scanners"
LISTED = "127.0.0.2"
UNLISTED = "127.0.0.1"


@pytest.fixture(scope="module")
def emulator():
    _ensure_collection_link()
    with Emulator(mx_port=0) as running:
        yield running


@pytest.fixture
def relay(tenant):
    tenant.messages.clear()
    return tenant


def connector_task():
    return {"m365ops.smtp_auth.inbound_connector": {"name": CONNECTOR, "sender_ip_addresses": [LISTED]}}


def relay_task(emulator, source, **options):
    arguments = dict(auth_mode="connector", host=emulator.smtp_host, port=emulator.mx_port, sender=SCANNER,
                     recipient=OUTSIDE, source_address=source, timeout=10)
    arguments.update(options)
    return {"m365ops.smtp_auth.smtp_submission_test": arguments}


def test_relay_from_the_listed_address_is_accepted_and_from_another_gets_5_7_64_naming_the_connector(run_play, relay):
    run = run_play([connector_task(), relay_task(relay, LISTED), relay_task(relay, UNLISTED)])
    created, accepted, refused = run.results

    assert created["changed"] is True
    assert accepted["status"] == "sent" and accepted["ok"] is True and accepted["changed"] is True
    assert accepted["source_address"] == LISTED and accepted["port"] == relay.mx_port
    assert accepted["authenticated"] is False and accepted["auth_mode"] == "connector"
    assert accepted["starttls_offered"] is True and accepted["starttls_used"] is True
    assert accepted["tls_version"].startswith("TLSv1.")
    assert not any(line.startswith("C: AUTH") for line in accepted["transcript"])
    assert "relayed the test message to %s without AUTH" % OUTSIDE in accepted["summary"]
    (message,) = relay.messages
    assert (message["relay_connector"], message["source_address"], message["auth_mechanism"]) == (
        CONNECTOR, LISTED, None)
    assert message["rcpt_tos"] == [OUTSIDE] and message["mail_from"] == SCANNER

    assert refused["ok"] is False and refused["status"] == "refused" and refused["stage"] == "rcpt"
    assert refused["reply_code"] == 550 and refused["enhanced_status_code"] == "5.7.64"
    assert refused["reply_line"] == "550 5.7.64 TenantAttribution; Relay Access Denied"
    assert refused["changed"] is False and len(relay.messages) == 1
    diagnosis = refused["diagnosis"]
    assert diagnosis["key"] == "relay_access_denied"
    assert diagnosis["connectors_read"] is True and diagnosis["source_address"] == UNLISTED
    assert diagnosis["source_address_listed"] is False
    assert [(c["name"], c["sender_ip_addresses"], c["lists_source_address"]) for c in diagnosis["connectors"]] == [
        (CONNECTOR, [LISTED], False)]
    assert "no inbound connector matches this sending IP address or certificate" in diagnosis["cause"]
    assert "'%s' (OnPremises, enabled) lists %s" % (CONNECTOR, LISTED) in diagnosis["cause"]
    assert "The source address %s is not among them." % UNLISTED in diagnosis["cause"]
    assert diagnosis["fix_module"] == "m365ops.smtp_auth.inbound_connector"
    assert diagnosis["fix_arguments"]["name"] == CONNECTOR
    assert diagnosis["fix_arguments"]["sender_ip_addresses"] == [LISTED, UNLISTED]
    assert CONNECTOR in refused["summary"] and "Relay Access Denied" in refused["summary"]
    # Reading the connectors is the only Exchange request the refused test made.
    assert [entry["cmdlet"] for entry in run.requests[2] if entry.get("cmdlet")] == ["Get-InboundConnector"]


def test_the_suggested_fix_makes_the_refused_address_relay(run_play, relay):
    run = run_play([connector_task(), relay_task(relay, UNLISTED)])
    fix = run.results[1]["diagnosis"]
    again = run_play([{fix["fix_module"]: fix["fix_arguments"]}, relay_task(relay, UNLISTED)])

    assert again.results[0]["changed"] is True
    assert again.results[1]["status"] == "sent"
    assert relay.messages[-1]["source_address"] == UNLISTED and relay.messages[-1]["relay_connector"] == CONNECTOR


def test_without_connection_credentials_the_relay_is_still_tested_and_the_diagnosis_says_connectors_were_not_read(
        run_play, relay):
    with relay.store.lock:
        contoso(relay).inbound_connectors.append({
            "name": CONNECTOR, "connector_type": "OnPremises", "enabled": True, "sender_ip_addresses": [LISTED],
            "sender_domains": ["*"]})
    run = run_play([relay_task(relay, UNLISTED), relay_task(relay, LISTED)],
                   without_env=("M365_CLIENT_ID", "M365_CLIENT_SECRET"))
    refused, accepted = run.results

    assert refused["status"] == "refused" and refused["enhanced_status_code"] == "5.7.64"
    diagnosis = refused["diagnosis"]
    assert diagnosis["connectors_read"] is False and diagnosis["connectors"] is None
    assert diagnosis["source_address_listed"] is None
    assert "could not be read" in diagnosis["cause"] and "client_id" in diagnosis["cause"]
    assert "inbound_connector" in diagnosis["fix"]
    assert run.requests[0] == [] and run.requests[1] == []
    assert accepted["status"] == "sent" and relay.messages[-1]["relay_connector"] == CONNECTOR


def test_check_mode_stops_at_rcpt_to_and_sends_nothing(run_play, relay):
    run = run_play([connector_task(), dict(relay_task(relay, LISTED), check_mode=True),
                    dict(relay_task(relay, UNLISTED), check_mode=True)])
    _created, accepted, refused = run.results

    assert accepted["status"] == "recipient_accepted" and accepted["ok"] is True and accepted["changed"] is False
    assert accepted["reply_line"].startswith("250 2.1.5")
    sent = [line[3:].split(" ")[0].upper() for line in accepted["transcript"] if line.startswith("C: ")]
    assert sent == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert refused["status"] == "refused" and refused["diagnosis"]["source_address_listed"] is False
    assert relay.messages == []


def test_a_source_address_that_is_not_an_ip_address_fails_before_connecting(run_play, relay):
    result = run_play([relay_task(relay, "scanner-vlan")]).results[0]

    assert result["failed"] is True and "transcript" not in result
    assert "source_address must be an IP address" in result["msg"] and "'scanner-vlan'" in result["msg"]
