"""The MX endpoint of connector relay: no AUTH, relay only from an address a connector lists, 5.7.64 otherwise."""

from __future__ import annotations

import smtplib

import pytest

from conftest import CONTOSO_ID
from m365_emulator import Emulator

MESSAGE = "Subject: scan\r\n\r\nscanned page\r\n"


@pytest.fixture
def relay_emulator():
    with Emulator(host="127.0.0.1", https_port=0, smtp_port=0, mx_port=0) as running:
        with running.store.lock:
            running.store.find_tenant(CONTOSO_ID).inbound_connectors.append({
                "name": "Office scanners", "connector_type": "OnPremises", "enabled": True,
                "sender_ip_addresses": ["127.0.0.2"], "sender_domains": ["*"]})
        yield running


def send(emulator, source, recipient="someone@example.net"):
    with smtplib.SMTP("127.0.0.1", emulator.mx_port, timeout=10, source_address=(source, 0)) as client:
        client.ehlo("scanner")
        assert not client.has_extn("auth")
        return client.sendmail("scanner@contoso.com", [recipient], MESSAGE)


def test_relay_from_a_listed_address_is_accepted(relay_emulator):
    assert send(relay_emulator, "127.0.0.2") == {}
    record = relay_emulator.messages[-1]
    assert record["relay_connector"] == "Office scanners" and record["source_address"] == "127.0.0.2"
    assert record["auth_mechanism"] is None


def test_relay_from_an_unlisted_address_gets_5_7_64(relay_emulator):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(relay_emulator, "127.0.0.3")
    code, text = refused.value.recipients["someone@example.net"]
    assert code == 550 and text.decode().startswith("5.7.64 TenantAttribution; Relay Access Denied [")
    assert relay_emulator.messages == []


def test_mail_to_the_organisation_needs_no_connector(relay_emulator):
    assert send(relay_emulator, "127.0.0.3", recipient="printer@contoso.com") == {}


def test_the_mx_port_is_in_connection_info(relay_emulator):
    assert relay_emulator.connection_info()["mx_port"] == relay_emulator.mx_port > 0
