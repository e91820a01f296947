# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connector relay: the MX host a sender's domain maps to, the probe without AUTH against a plain server, and the
5.7.64 diagnosis told which inbound connectors list the source address."""

from __future__ import annotations

import email
import email.policy

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import smtp_diagnosis as diagnosis
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_probe import (
    ProbeSettings,
    input_problems,
    load_errors,
    mx_host,
    relay_domain_of,
    run_probe,
)
from smtp_reply_server import ReplyServer

SUFFIX = "[AM0PR02CA0001.eurprd02.prod.outlook.com 2026-02-03T10:11:12.345Z 08DE3A1B2C3D4E5F]"
SENDER = "scanner@contoso.com"
OUTSIDE = "archive@fabrikam.example"


@pytest.mark.parametrize("domain, host", [
    ("contoso.com", "contoso-com.mail.protection.outlook.com"),
    ("Contoso.CO.UK", "contoso-co-uk.mail.protection.outlook.com"),
    ("branch.contoso.com.", "branch-contoso-com.mail.protection.outlook.com"),
    ("fabrikam.onmicrosoft.com", "fabrikam-onmicrosoft-com.mail.protection.outlook.com"),
])
def test_the_mx_host_is_the_domain_with_dashes_under_mail_protection(domain, host):
    assert mx_host(domain) == host


def test_the_relay_domain_is_the_senders_unless_given():
    assert relay_domain_of("Scanner@Contoso.COM") == "contoso.com"
    assert relay_domain_of("scanner@contoso.com", "fabrikam.com") == "fabrikam.com"
    assert mx_host(relay_domain_of("scanner@contoso.com")) == "contoso-com.mail.protection.outlook.com"


@pytest.mark.parametrize("params, problem", [
    ({"source_address": "scanner-vlan"}, "source_address must be an IP address of this host such as 192.0.2.10, "
                                         "not 'scanner-vlan'"),
    ({"source_address": "192.0.2.300"}, "source_address must be an IP address"),
    ({"relay_domain": "contoso"}, "relay_domain must be a domain such as contoso.com, not 'contoso'"),
    ({"relay_domain": "scanner@contoso.com"}, "relay_domain must be a domain"),
])
def test_bad_relay_inputs_are_refused_naming_the_option(params, problem):
    problems = input_problems(params)
    assert len(problems) == 1 and problem in problems[0]


@pytest.mark.parametrize("params", [{"source_address": "127.0.0.2"}, {"source_address": "2001:db8::10"},
                                    {"relay_domain": "contoso.com"}])
def test_good_relay_inputs_pass(params):
    assert input_problems(params) == []


def test_a_load_test_is_refused_for_connector_relay():
    errors = load_errors(4, 2, 60, "127.0.0.1", "connector")
    assert any("need auth_mode basic or oauth" in error for error in errors)


def relay_settings(server, certificates, **overrides):
    values = dict(host="127.0.0.1", port=server.port, auth_mode="connector", sender=SENDER, recipient=OUTSIDE,
                  ca_path=certificates[0], timeout=10, source_address="127.0.0.1")
    values.update(overrides)
    return ProbeSettings(**values)


@pytest.fixture
def mx(server):
    """The reply server as the MX endpoint: MAIL FROM without AUTH is accepted."""
    server.handler.anonymous_mail_reply = None
    return server


def client_commands(result):
    return [line[3:].split(" ")[0].upper() for line in result["transcript"] if line.startswith("C: ")]


def test_connector_relay_sends_no_credentials_and_uses_starttls_when_offered(mx, certificates):
    result = run_probe(relay_settings(mx, certificates, username="ignored@contoso.com", password="never-sent"))

    assert result["status"] == "sent" and result["ok"] is True and result["message_sent"] is True
    assert result["authenticated"] is False and mx.handler.credentials == []
    assert (result["starttls_offered"], result["starttls_used"]) == (True, True)
    assert result["tls_version"].startswith("TLSv1.")
    assert result["source_address"] == "127.0.0.1"
    assert client_commands(result) == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "<MESSAGE:", ".", "QUIT"]
    ((mail_from, rcpt_tos, content),) = mx.handler.messages
    assert (mail_from, rcpt_tos) == (SENDER, [OUTSIDE])
    body = email.message_from_bytes(content, policy=email.policy.default).get_content()
    assert "relay through an inbound connector for scanner@contoso.com" in body
    assert "relayed the test message to %s without AUTH, over TLSv1." % OUTSIDE in result["summary"]


def test_connector_relay_goes_on_without_tls_when_starttls_is_not_offered(certificates):
    with ReplyServer(starttls=False) as plain:
        plain.handler.anonymous_mail_reply = None
        result = run_probe(relay_settings(plain, certificates))
        assert len(plain.handler.messages) == 1

    assert result["status"] == "sent"
    assert (result["starttls_offered"], result["starttls_used"], result["tls_version"]) == (False, False, None)
    assert "STARTTLS" not in client_commands(result)
    assert "without TLS (STARTTLS not offered)" in result["summary"]


@pytest.mark.parametrize("line", [diagnosis.REPLY_RELAY_DENIED, diagnosis.REPLY_RELAY_DENIED + " SMTP.",
                                  diagnosis.REPLY_RELAY_DENIED + " " + SUFFIX],
                         ids=["emulator", "documented", "suffix"])
def test_relay_denied_at_rcpt_is_diagnosed_as_no_matching_connector(mx, certificates, line):
    mx.handler.rcpt_reply = line

    result = run_probe(relay_settings(mx, certificates))

    assert result["status"] == "refused" and result["stage"] == "rcpt" and result["ok"] is False
    assert (result["reply_code"], result["enhanced_status_code"]) == (550, "5.7.64")
    assert result["diagnosis"]["key"] == "relay_access_denied"
    assert result["diagnosis"]["matches_known_reply"] is True
    assert "no inbound connector matches this sending IP address or certificate" in result["diagnosis"]["cause"]
    assert "sender_ip_addresses" in result["diagnosis"]["fix"]
    assert "m365ops.smtp_auth.inbound_connector" in result["diagnosis"]["fix"]
    assert mx.handler.messages == [] and "DATA" not in client_commands(result)


def test_check_mode_tries_the_envelope_and_resets_it(mx, certificates):
    result = run_probe(relay_settings(mx, certificates, send_message=False))

    assert result["status"] == "recipient_accepted" and result["ok"] is True and result["message_sent"] is False
    assert client_commands(result)[-3:] == ["RCPT", "RSET", "QUIT"]
    assert mx.handler.messages == []
    assert "check mode sent no message" in result["summary"]


def test_a_source_address_this_host_does_not_have_is_its_own_status(mx, certificates):
    # 192.0.2.0/24 is TEST-NET-1: no host has it, so binding it fails before any packet leaves.
    result = run_probe(relay_settings(mx, certificates, source_address="192.0.2.10"))

    assert result["status"] == "source_address_unavailable" and result["stage"] == "connect"
    assert result["diagnosis"]["key"] == "source_address_unavailable"
    assert result["transcript"] == [] and mx.handler.messages == []


# ---- the diagnosis told the tenant's connectors -----------------------------------------------------------------

def denied():
    return diagnosis.diagnose_reply(550, b"5.7.64 TenantAttribution; Relay Access Denied " + SUFFIX.encode())


def connector(name, addresses=(), connector_type="OnPremises", enabled=True, certificate=None, domains=("*",)):
    return {"name": name, "connector_type": connector_type, "enabled": enabled,
            "sender_ip_addresses": list(addresses), "tls_sender_certificate_name": certificate,
            "sender_domains": list(domains), "require_tls": bool(certificate)}


def test_an_unlisted_source_names_every_connector_and_its_addresses():
    connectors = [connector("Office scanners", ["203.0.113.7", "198.51.100.0/28"]),
                  connector("Partner relay", connector_type="Partner", certificate="*.contoso.com")]

    result = diagnosis.explain_relay_denied(denied(), connectors, "192.0.2.10")

    assert result["connectors_read"] is True and result["source_address_listed"] is False
    assert [entry["name"] for entry in result["connectors"]] == ["Office scanners", "Partner relay"]
    assert not any(entry["lists_source_address"] for entry in result["connectors"])
    assert ("'Office scanners' (OnPremises, enabled) lists 203.0.113.7, 198.51.100.0/28; 'Partner relay' "
            "(Partner, enabled) matches the certificate name *.contoso.com.") in result["cause"]
    assert "The source address 192.0.2.10 is not among them." in result["cause"]
    assert result["fix_module"] == "m365ops.smtp_auth.inbound_connector"
    assert result["fix_arguments"] == {"name": "Office scanners", "state": "present", "sender_domains": ["*"],
                                       "sender_ip_addresses": ["203.0.113.7", "198.51.100.0/28", "192.0.2.10"]}
    assert "name: Office scanners, sender_ip_addresses: [203.0.113.7, 198.51.100.0/28, 192.0.2.10]" in result["fix"]


def test_the_fix_keeps_the_connectors_certificate_and_domains():
    connectors = [connector("Scanners", ["203.0.113.7"], certificate="scan.contoso.com", domains=["contoso.com"])]

    arguments = diagnosis.explain_relay_denied(denied(), connectors, "203.0.113.8")["fix_arguments"]

    assert arguments["tls_sender_certificate_name"] == "scan.contoso.com"
    assert arguments["sender_domains"] == ["contoso.com"]
    assert arguments["sender_ip_addresses"] == ["203.0.113.7", "203.0.113.8"]


def test_without_any_connector_the_fix_creates_one():
    result = diagnosis.explain_relay_denied(denied(), [], "203.0.113.8")

    assert "The tenant has no inbound connector." in result["cause"]
    assert result["connectors"] == [] and result["source_address_listed"] is False
    assert result["fix_arguments"] == {"name": "Device relay", "sender_ip_addresses": ["203.0.113.8"],
                                       "state": "present"}


def test_a_source_in_a_listed_range_of_a_relaying_connector_points_at_the_sender_domain():
    result = diagnosis.explain_relay_denied(denied(), [connector("Office", ["203.0.113.0/28"])], "203.0.113.9")

    assert result["source_address_listed"] is True
    assert result["connectors"][0]["lists_source_address"] is True
    assert "is listed in 'Office', yet the relay was refused" in result["cause"]
    assert "accepted domain" in result["fix"] and "fix_module" not in result


def test_a_source_listed_only_in_a_disabled_connector_says_so():
    result = diagnosis.explain_relay_denied(denied(), [connector("Old", ["203.0.113.9"], enabled=False)],
                                            "203.0.113.9")

    assert result["source_address_listed"] is False
    assert result["connectors"][0]["lists_source_address"] is True
    assert "listed only in 'Old', which does not relay" in result["cause"]
    assert result["fix"].startswith("Enable 'Old'")


def test_a_private_or_ipv6_source_is_explained():
    private = diagnosis.explain_relay_denied(denied(), [connector("Office", ["203.0.113.7"])], "10.0.0.5")
    ipv6 = diagnosis.explain_relay_denied(denied(), [connector("Office", ["203.0.113.7"])], "2001:db8::5")

    assert "10.0.0.5 is not a public address" in private["cause"] and "behind NAT" in private["cause"]
    assert "IPv6 address, which inbound connectors do not support" in ipv6["cause"]


def test_connectors_that_could_not_be_read_are_said_to_be_unknown():
    result = diagnosis.explain_relay_denied(denied(), None, "127.0.0.1", "no connection to Microsoft 365: Missing "
                                                                         "tenant_id")

    assert (result["connectors_read"], result["connectors"], result["source_address_listed"]) == (False, None, None)
    assert "could not be read (no connection to Microsoft 365: Missing tenant_id)" in result["cause"]
    assert "whether one lists 127.0.0.1 is not known" in result["cause"]
    assert result["fix"] == denied()["fix"]


def test_other_diagnoses_are_left_alone():
    other = diagnosis.diagnose_reply(530, b"5.7.57 Client not authenticated to send mail.")
    assert diagnosis.explain_relay_denied(other, [connector("Office", ["203.0.113.7"])], "127.0.0.1") is other
