"""Inbound connectors as Exchange's cmdlets: Get/New/Set/Remove-InboundConnector, the documented address rules,
errors in Exchange's shape, and how SenderDomains is shown."""

from __future__ import annotations

import pytest

from conftest import CONTOSO_ID
from test_exchange import detail, invoke, run, token  # noqa: F401  (run and token are fixtures)

NEW = {"Name": "Scanner relay", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
       "SenderIPAddresses": ["203.0.113.10", "198.51.100.0/24"], "Enabled": True}


def stored(emulator):
    with emulator.store.lock:
        return [dict(connector) for connector in emulator.store.find_tenant(CONTOSO_ID).inbound_connectors]


def test_new_prints_the_connector_and_get_reads_it_back(emulator, run):
    made = run("New-InboundConnector", NEW)["value"][0]
    assert made["Name"] == "Scanner relay"
    assert made["ConnectorType"] == "OnPremises"
    assert made["SenderIPAddresses"] == ["203.0.113.10", "198.51.100.0/24"]
    assert made["SenderIPAddresses@odata.type"] == "#Collection(String)"
    # The address-space form is the emulator's default.
    assert made["SenderDomains"] == ["smtp:*;1"]
    assert run("Get-InboundConnector", {"Identity": "scanner RELAY"})["value"][0]["Guid"] == made["Guid"]
    assert [record["Name"] for record in run("Get-InboundConnector")["value"]] == ["Scanner relay"]


def test_sender_domains_can_be_shown_as_given(emulator, run):
    emulator.store.behaviour["inbound_connector_sender_domains"] = "domain"
    assert run("New-InboundConnector", NEW)["value"][0]["SenderDomains"] == ["*"]


def test_set_changes_only_what_it_is_given(emulator, run):
    run("New-InboundConnector", NEW)
    run("Set-InboundConnector", {"Identity": "Scanner relay", "SenderIPAddresses": ["203.0.113.11"],
                                 "TlsSenderCertificateName": "relay.contoso.com", "RequireTls": True})
    connector = stored(emulator)[0]
    assert connector["sender_ip_addresses"] == ["203.0.113.11"]
    assert connector["tls_sender_certificate_name"] == "relay.contoso.com"
    assert connector["enabled"] is True and connector["sender_domains"] == ["*"]
    # JSON null empties a multi-valued property.
    run("Set-InboundConnector", {"Identity": "Scanner relay", "SenderIPAddresses": None})
    assert stored(emulator)[0]["sender_ip_addresses"] == []


def test_remove_deletes_the_connector(emulator, run):
    run("New-InboundConnector", NEW)
    assert run("Remove-InboundConnector", {"Identity": "Scanner relay", "Confirm": False})["value"] == []
    assert stored(emulator) == []


def test_a_duplicate_name_is_refused_as_already_existing(emulator, http, token, run):  # noqa: F811
    run("New-InboundConnector", NEW)
    reply = invoke(emulator, http, token, "New-InboundConnector", dict(NEW, Name="SCANNER relay"))
    assert reply.status_code == 400
    assert "ADObjectAlreadyExistsException|The inbound connector 'SCANNER relay' already exists" in detail(reply)
    assert len(stored(emulator)) == 1


@pytest.mark.parametrize("cmdlet", ["Get-InboundConnector", "Set-InboundConnector", "Remove-InboundConnector"])
def test_an_unknown_connector_is_not_found(emulator, http, token, cmdlet):  # noqa: F811
    reply = invoke(emulator, http, token, cmdlet, {"Identity": "Nope"})
    assert reply.status_code == 404
    assert "ManagementObjectNotFoundException|The operation couldn't be performed because object 'Nope'" in \
        detail(reply)


@pytest.mark.parametrize("address, reason", [
    ("2001:db8::1", "IPv6 addresses aren't supported"),
    ("203.0.113.0/23", "valid subnet mask values are /24 through /32"),
])
def test_addresses_microsoft_refuses_are_refused(emulator, http, token, address, reason):  # noqa: F811
    reply = invoke(emulator, http, token, "New-InboundConnector", dict(NEW, SenderIPAddresses=[address]))
    assert reply.status_code == 400
    assert reason in detail(reply)
    assert stored(emulator) == []


def test_a_connector_relays_only_for_the_addresses_it_lists(emulator, run):
    run("New-InboundConnector", NEW)
    with emulator.store.lock:
        tenant = emulator.store.find_tenant(CONTOSO_ID)
        assert tenant.relay_connector("198.51.100.77")["name"] == "Scanner relay"
        assert tenant.relay_connector("203.0.113.11") is None
    run("Set-InboundConnector", {"Identity": "Scanner relay", "Enabled": False})
    with emulator.store.lock:
        assert emulator.store.find_tenant(CONTOSO_ID).relay_connector("198.51.100.77") is None
