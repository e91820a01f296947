# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""inbound_connector: create, change only what differs, remove; addresses checked before any request."""

from __future__ import annotations

import pytest

from module_harness import ModuleFailed, exchange_reply, not_found, writing_cmdlets

from ansible_collections.m365ops.smtp_auth.plugins.modules import inbound_connector


class ConnectorTenant:
    """Inbound connectors answered over InvokeCommand; SenderDomains shown in the address-space form."""

    def __init__(self, connectors=None):
        self.connectors = {name.lower(): dict(record, Name=name) for name, record in (connectors or {}).items()}

    def __call__(self, method, path, body, headers):
        cmdlet, parameters = body["CmdletInput"]["CmdletName"], body["CmdletInput"]["Parameters"]
        if cmdlet == "New-InboundConnector":
            record = dict(parameters)
            record["SenderDomains"] = ["smtp:%s;1" % domain for domain in parameters["SenderDomains"]]
            self.connectors[parameters["Name"].lower()] = record
            return exchange_reply(record)
        record = self.connectors.get(parameters["Identity"].lower())
        if record is None:
            return not_found(parameters["Identity"])
        if cmdlet == "Set-InboundConnector":
            record.update((key, value) for key, value in parameters.items() if key != "Identity")
        elif cmdlet == "Remove-InboundConnector":
            del self.connectors[parameters["Identity"].lower()]
            return exchange_reply()
        return exchange_reply(record)


EXISTING = {"Scanners": {"ConnectorType": "OnPremises", "Enabled": True, "SenderIPAddresses": ["203.0.113.10"],
                         "SenderDomains": ["smtp:*;1"], "TlsSenderCertificateName": None, "RequireTls": False}}


def run(scripted_module, tenant, check_mode=False, **params):
    params = dict({"sender_ip_addresses": None, "tls_sender_certificate_name": None, "sender_domains": ["*"],
                   "enabled": True, "state": "present"}, **params)
    module, server = scripted_module(tenant, check_mode=check_mode, **params)
    return inbound_connector.manage(module), server, module


def test_a_missing_connector_is_created_on_premises(scripted_module):
    tenant = ConnectorTenant()
    result, server, _module = run(scripted_module, tenant, name="Scanners",
                                  sender_ip_addresses=["203.0.113.10/32", "198.51.100.7/24"])
    assert writing_cmdlets(server) == [("New-InboundConnector", {
        "Name": "Scanners", "ConnectorType": "OnPremises", "Enabled": True,
        "SenderIPAddresses": ["198.51.100.0/24", "203.0.113.10"], "TlsSenderCertificateName": None,
        "SenderDomains": ["*"], "RequireTls": False})]
    assert result["changed"] is True and result["before"] is None
    assert result["diff"]["after"]["sender_ip_addresses"] == ["198.51.100.0/24", "203.0.113.10"]


def test_a_matching_connector_is_left_alone(scripted_module):
    result, server, _module = run(scripted_module, ConnectorTenant(EXISTING), name="scanners",
                                  sender_ip_addresses=["203.0.113.10"])
    assert result["changed"] is False
    assert writing_cmdlets(server) == []
    assert result["before"]["sender_domains"] == ["*"]


def test_drift_sends_only_what_differs(scripted_module):
    tenant = ConnectorTenant(EXISTING)
    result, server, _module = run(scripted_module, tenant, name="Scanners",
                                  sender_ip_addresses=["203.0.113.11"], tls_sender_certificate_name="Relay.Contoso.com")
    assert writing_cmdlets(server) == [("Set-InboundConnector", {
        "Identity": "Scanners", "SenderIPAddresses": ["203.0.113.11"],
        "TlsSenderCertificateName": "relay.contoso.com", "RequireTls": True})]
    assert result["before"]["sender_ip_addresses"] == ["203.0.113.10"]
    assert result["after"]["require_tls"] is True


def test_a_partner_connector_of_that_name_becomes_on_premises(scripted_module):
    tenant = ConnectorTenant({"Scanners": dict(EXISTING["Scanners"], ConnectorType="Partner")})
    _result, server, _module = run(scripted_module, tenant, name="Scanners", sender_ip_addresses=["203.0.113.10"])
    assert writing_cmdlets(server) == [("Set-InboundConnector", {"Identity": "Scanners",
                                                                 "ConnectorType": "OnPremises"})]


@pytest.mark.parametrize("params", [
    {"name": "New", "sender_ip_addresses": ["203.0.113.10"]},
    {"name": "Scanners", "sender_ip_addresses": ["203.0.113.99"]},
    {"name": "Scanners", "state": "absent"},
])
def test_check_mode_reports_the_change_and_writes_nothing(scripted_module, params):
    tenant = ConnectorTenant(EXISTING)
    result, server, _module = run(scripted_module, tenant, check_mode=True, **params)
    assert result["changed"] is True
    assert writing_cmdlets(server) == []
    assert list(tenant.connectors) == ["scanners"]


def test_absent_removes_the_connector_once(scripted_module):
    tenant = ConnectorTenant(EXISTING)
    removed, server, _module = run(scripted_module, tenant, name="Scanners", state="absent")
    assert writing_cmdlets(server) == [("Remove-InboundConnector", {"Identity": "Scanners", "Confirm": False})]
    assert removed["after"] is None and tenant.connectors == {}
    again, _server, _module = run(scripted_module, tenant, name="Scanners", state="absent")
    assert again["changed"] is False


def test_refused_addresses_are_named_before_any_request(scripted_module):
    params = {"name": "Scanners", "sender_ip_addresses": ["2001:db8::1", "203.0.113.0/23", "printer", "203.0.113.5"],
              "tls_sender_certificate_name": None, "sender_domains": ["*"], "enabled": True, "state": "present"}
    module, server = scripted_module(ConnectorTenant(), **params)
    with pytest.raises(ModuleFailed) as failed:
        inbound_connector.manage(module)
    assert server.requests == []
    message = failed.value.msg
    assert "'2001:db8::1' is IPv6" in message
    assert "'203.0.113.0/23' is wider than /24" in message
    assert "'printer' is not an IPv4 address" in message
    assert "203.0.113.5" not in message.split("refuses these sender_ip_addresses:")[1]


def test_a_private_address_is_accepted_with_a_warning(scripted_module):
    _result, _server, module = run(scripted_module, ConnectorTenant(), name="Lab", sender_ip_addresses=["10.0.0.5"])
    assert len(module.warnings) == 1 and "10.0.0.5 is not a public address" in module.warnings[0]
