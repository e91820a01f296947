# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection options that must not pass silently: every module refuses them before any request."""

from __future__ import annotations

import importlib
import socket
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import CLOUDS

SETTING_MODULES = {
    "security_defaults": {"state": "disabled"},
    "org_smtp_auth": {"state": "enabled"},
    "mailbox_smtp_auth": {"mailboxes": ["scanner@contoso.com"], "state": "enabled"},
    "per_user_mfa": {"users": ["scanner@contoso.com"], "state": "disabled"},
    "mailbox_license_info": {"mailboxes": ["scanner@contoso.com"]},
    "smtp_auth_info": {"mailboxes": ["scanner@contoso.com"]},
    "exchange_service_principal": {"app_id": "d4c3b2a1-6e5f-4a7b-8c9d-0e1f2a3b4c5d"},
    "mailbox_permission": {"mailboxes": ["notify@contoso.com"], "trustee": "d4c3b2a1-6e5f-4a7b-8c9d-0e1f2a3b4c5d"},
    "smtp_app_consent": {"app_id": "d4c3b2a1-6e5f-4a7b-8c9d-0e1f2a3b4c5d"},
    "authentication_policy": {"name": "Relay devices", "allow_basic_auth_smtp": True},
    "user_authentication_policy": {"users": ["alerts@contoso.com"], "policy": "Relay devices"},
    "smtp_auth_usage_info": {"days": 7},
}
# Nothing listens on the discard port: a module that got as far as a request would fail differently.
UNREACHABLE = "https://127.0.0.1:9"
CONNECTION = {"tenant_id": "contoso.onmicrosoft.com", "client_id": "11111111-1111-1111-1111-111111111111",
              "client_secret": "not-a-real-secret", "authority_url": UNREACHABLE, "graph_url": UNREACHABLE,
              "exchange_url": UNREACHABLE, "max_retries": 0, "timeout": 2}


@pytest.fixture(autouse=True)
def no_m365_environment(monkeypatch):
    for name in ("M365_TENANT_ID", "M365_CLIENT_ID", "M365_CLIENT_SECRET", "M365_CLIENT_CERTIFICATE_PATH",
                 "M365_CLIENT_CERTIFICATE_PASSWORD", "M365_CA_PATH", "M365_CLOUD"):
        monkeypatch.delenv(name, raising=False)


def set_module_args(monkeypatch, args):
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    # ansible-core 2.19 and later also want the serialization profile a controller would send.
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)


def run_module(name, args, capsys, monkeypatch):
    """Run a module's main() with ``args`` as Ansible would, and return its JSON result."""
    module = importlib.import_module("ansible_collections.m365ops.smtp_auth.plugins.modules." + name)
    set_module_args(monkeypatch, args)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("module", sorted(SETTING_MODULES))
@pytest.mark.parametrize("option, value, expected", [
    ("max_retries", -1, "max_retries must be 0 or more, not -1"),
    ("timeout", 0, "timeout must be a number of seconds greater than 0, not 0"),
    ("timeout", -5, "timeout must be a number of seconds greater than 0, not -5"),
    ("ca_path", "/nonexistent/m365-ca.pem", "ca_path (or M365_CA_PATH) is /nonexistent/m365-ca.pem, which does not exist"),
])
def test_out_of_range_connection_options_are_refused_naming_the_option(module, option, value, expected, capsys,
                                                                       monkeypatch):
    result = run_module(module, dict(CONNECTION, **SETTING_MODULES[module], **{option: value}), capsys, monkeypatch)
    assert result["failed"] is True
    assert expected in result["msg"]


@pytest.mark.parametrize("module", sorted(SETTING_MODULES))
def test_missing_credentials_name_every_way_to_give_them(module, capsys, monkeypatch):
    args = {key: value for key, value in CONNECTION.items() if key not in ("client_secret", "client_id")}
    result = run_module(module, dict(args, **SETTING_MODULES[module]), capsys, monkeypatch)
    assert result["failed"] is True
    message = result["msg"]
    assert "client_id, client_secret or client_certificate_path" in message
    for way in ("M365_CLIENT_ID", "client_secret", "M365_CLIENT_SECRET", "client_certificate_path",
                "M365_CLIENT_CERTIFICATE_PATH", "M365_CLIENT_CERTIFICATE_PASSWORD", "module_defaults"):
        assert way in message


SUBMISSION = {"username": "scanner@contoso.com", "password": "not-a-real-password", "port": 9}


@pytest.mark.parametrize("option, value, expected", [
    ("timeout", 0, "timeout must be a number of seconds greater than 0, not 0"),
    ("ca_path", "/nonexistent/m365-ca.pem", "ca_path (or M365_CA_PATH) is /nonexistent/m365-ca.pem"),
    ("port", 0, "port must be between 1 and 65535, not 0"),
    ("port", 70000, "port must be between 1 and 65535, not 70000"),
])
def test_the_submission_test_refuses_bad_options_before_connecting(option, value, expected, capsys, monkeypatch):
    result = run_module("smtp_submission_test", dict(SUBMISSION, host="127.0.0.1", **{option: value}), capsys,
                        monkeypatch)
    assert result["failed"] is True and expected in result["msg"]
    assert "transcript" not in result


def test_an_oauth_submission_test_without_credentials_names_every_way_to_give_them(capsys, monkeypatch):
    result = run_module("smtp_submission_test", dict(SUBMISSION, host="127.0.0.1", auth_mode="oauth"), capsys,
                        monkeypatch)
    assert result["failed"] is True
    assert "M365_TENANT_ID" in result["msg"] and "client_certificate_path" in result["msg"]


@pytest.mark.parametrize("cloud, host", [
    ("global", "smtp.office365.com"),
    ("usgov_high", "smtp.office365.us"),
    ("usgov_dod", "smtp.office365.us"),
    ("china", "smtp.partner.outlook.cn"),
])
def test_the_submission_endpoint_follows_the_cloud(cloud, host, capsys, monkeypatch):
    from ansible_collections.m365ops.smtp_auth.plugins.modules import smtp_submission_test
    seen = {}

    def probe(settings):
        seen["host"] = settings.host
        raise SystemExit(0)

    monkeypatch.setattr(smtp_submission_test, "run_probe", probe)
    set_module_args(monkeypatch, dict(SUBMISSION, cloud=cloud, _ansible_check_mode=True))
    with pytest.raises(SystemExit):
        smtp_submission_test.main()
    assert seen["host"] == host == CLOUDS[cloud].smtp_host


@pytest.mark.parametrize("cloud, authority, graph, exchange", [
    ("global", "https://login.microsoftonline.com", "https://graph.microsoft.com", "https://outlook.office365.com"),
    ("usgov_high", "https://login.microsoftonline.us", "https://graph.microsoft.us", "https://outlook.office365.us"),
    ("usgov_dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us",
     "https://outlook-dod.office365.us"),
    ("china", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn",
     "https://partner.outlook.cn"),
])
def test_each_cloud_has_its_hosts_and_token_audiences(cloud, authority, graph, exchange):
    endpoints = CLOUDS[cloud]
    assert (endpoints.authority_url, endpoints.graph_url, endpoints.exchange_url) == (authority, graph, exchange)
    assert endpoints.graph_scope == graph + "/.default"
    assert endpoints.exchange_scope == exchange + "/.default"


RELAY = {"auth_mode": "connector", "sender": "scanner@contoso.com", "recipient": "archive@fabrikam.example"}


def test_connector_relay_goes_to_the_mx_endpoint_of_the_senders_domain_on_port_25(capsys, monkeypatch):
    looked_up = []

    def no_dns(host, *args, **kwargs):
        looked_up.append((host, args[0] if args else None))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # No name is resolved for real: the test only needs to see where the module would go.
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    result = run_module("smtp_submission_test", dict(RELAY), capsys, monkeypatch)

    assert looked_up[0] == ("contoso-com.mail.protection.outlook.com", 25)
    assert (result["host"], result["port"]) == ("contoso-com.mail.protection.outlook.com", 25)
    assert result["auth_mode"] == "connector"
    assert result["status"] == "dns_failure" and not result.get("failed")


def test_relay_domain_and_port_override_the_mx_endpoint(capsys, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    result = run_module("smtp_submission_test", dict(RELAY, relay_domain="fabrikam.co.uk", port=2525), capsys,
                        monkeypatch)

    assert (result["host"], result["port"]) == ("fabrikam-co-uk.mail.protection.outlook.com", 2525)


@pytest.mark.parametrize("args, expected", [
    (dict(RELAY, source_address="scanner-vlan"), "source_address must be an IP address of this host"),
    (dict(RELAY, relay_domain="contoso"), "relay_domain must be a domain such as contoso.com"),
    ({"auth_mode": "connector", "recipient": "archive@fabrikam.example"}, "missing: sender"),
    ({"auth_mode": "connector", "sender": "scanner@contoso.com"}, "missing: recipient"),
    (dict(RELAY, cloud="usgov_high"), "the MX endpoint of cloud usgov_high is not known to this module; give host"),
    (dict(RELAY, messages=3, host="127.0.0.1"), "messages and connections above 1 need auth_mode basic or oauth"),
])
def test_connector_relay_inputs_are_refused_before_connecting(args, expected, capsys, monkeypatch):
    result = run_module("smtp_submission_test", args, capsys, monkeypatch)
    assert result["failed"] is True and expected in result["msg"]
    assert "transcript" not in result


def test_connector_relay_warns_of_credentials_it_does_not_send_and_of_a_recipient_in_the_senders_domain(
        capsys, monkeypatch):
    recorded = []
    # In one process ansible-core keeps its warnings globally, across the modules other tests ran: record them here.
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, message, *args, **kwargs: recorded.append(message))
    args = dict(RELAY, recipient="it-team@contoso.com", username="scanner@contoso.com", password="unused",
                host="127.0.0.1", port=9, timeout=2)
    result = run_module("smtp_submission_test", args, capsys, monkeypatch)

    assert result["status"] == "connection_refused"
    warnings = " ".join(recorded)
    assert "auth_mode=connector sends no credentials" in warnings
    assert "recipient it-team@contoso.com is in the sender's own domain" in warnings
