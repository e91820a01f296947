# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Authentication policies on the wire: what each cmdlet sends, and how replies are read."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth_policies as auth_policies
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._services import Lookup
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_readiness import Facts, evaluate

UPN = "alerts@contoso.com"
DN = ("CN=Block Basic SMTP,OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted Organizations,"
      "DC=EURPRD10,DC=PROD,DC=OUTLOOK,DC=COM")
NOT_FOUND_DETAIL = ("Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
                    "The operation couldn't be performed because object 'Nope' couldn't be found.")
NOT_FOUND = (404, {"error": {"code": "NotFound", "message": "Error executing cmdlet",
                             "details": [{"code": "Client", "message": NOT_FOUND_DETAIL}]}}, None)


def reply(*records):
    return 200, {"@adminapi.warnings": [], "value": list(records)}, None


def sent(server):
    return [request["body"]["CmdletInput"] for request in server.requests]


@pytest.mark.parametrize("shown, name", [
    ("Block Basic SMTP", "Block Basic SMTP"),
    (DN, "Block Basic SMTP"),
    ("cn=Relay\\, legacy,CN=Auth Policies,CN=Configuration", "Relay, legacy"),
    ("  Allow Basic SMTP ", "Allow Basic SMTP"),
    ("", None),
    (None, None),
])
def test_a_policy_is_named_the_same_whether_shown_by_name_or_distinguished_name(shown, name):
    assert auth_policies.policy_name(shown) == name


def test_policies_compare_by_name_without_case():
    assert auth_policies.same_policy(DN, "block basic smtp")
    assert not auth_policies.same_policy(DN, "Allow Basic SMTP")
    assert auth_policies.same_policy(None, "")


def test_writes_send_the_smtp_switch_and_nothing_else(serve, clients):
    server = serve(lambda *args: reply())
    _graph, exchange, _events = clients(server.url)
    for command in (auth_policies.new_policy_command("Relay", True), auth_policies.set_smtp_command("Relay", False),
                    auth_policies.remove_policy_command("Relay"), auth_policies.set_user_policy_command(UPN, None)):
        command.run(exchange)
    assert sent(server) == [
        {"CmdletName": "New-AuthenticationPolicy", "Parameters": {"Name": "Relay", "AllowBasicAuthSmtp": True}},
        {"CmdletName": "Set-AuthenticationPolicy", "Parameters": {"Identity": "Relay", "AllowBasicAuthSmtp": False}},
        {"CmdletName": "Remove-AuthenticationPolicy", "Parameters": {"Identity": "Relay", "Confirm": False}},
        {"CmdletName": "Set-User", "Parameters": {"Identity": UPN, "AuthenticationPolicy": None}},
    ]


def test_an_unknown_policy_reads_as_none(serve, clients):
    server = serve(lambda *args: NOT_FOUND)
    _graph, exchange, _events = clients(server.url)
    assert auth_policies.read_policy(exchange, "Nope") is None
    assert sent(server) == [{"CmdletName": "Get-AuthenticationPolicy", "Parameters": {"Identity": "Nope"}}]


def test_a_policy_record_is_read_in_the_collections_words(serve, clients):
    record = {"Identity": "Relay", "Name": "Relay", "AllowBasicAuthSmtp": True, "AllowBasicAuthImap": False,
              "AllowBasicAuthActiveSync": True, "AllowBasicAuthOfflineAddressBook": False, "Guid": "x"}
    server = serve(lambda *args: reply(record))
    _graph, exchange, _events = clients(server.url)
    found = auth_policies.read_policy(exchange, "relay")
    assert auth_policies.parse_policy(found) == {"name": "Relay", "allow_basic_auth_smtp": True}
    assert auth_policies.other_protocols(found) == {"active_sync": True, "imap": False, "offline_address_book": False}


def test_the_default_policy_and_a_users_policy_are_names_even_when_shown_as_distinguished_names(serve, clients):
    def answer(method, path, body, headers):
        if body["CmdletInput"]["CmdletName"] == "Get-OrganizationConfig":
            return reply({"Identity": "contoso.onmicrosoft.com", "DefaultAuthenticationPolicy": DN})
        return reply({"Identity": "alerts", "UserPrincipalName": UPN, "AuthenticationPolicy": DN})

    server = serve(answer)
    _graph, exchange, _events = clients(server.url)
    assert auth_policies.read_default_policy(exchange) == "Block Basic SMTP"
    (lookup,) = auth_policies.read_users(exchange, [UPN])
    assert lookup.found and auth_policies.user_policy(lookup.record) == "Block Basic SMTP"


def test_readiness_finds_a_users_policy_shown_as_a_distinguished_name():
    facts = Facts(security_defaults="disabled", conditional_access=[], org_switch_disabled=False,
                  authentication_policies=auth_policies.index_policies([
                      {"Name": "Block Basic SMTP", "AllowBasicAuthSmtp": False}]))
    facts.users[UPN] = {"found": True, "user_id": "u1", "mailbox_plans": [{"name": "EXCHANGE_S_STANDARD"}]}
    facts.mfa[UPN] = "disabled"
    facts.cas_mailboxes[UPN] = Lookup(UPN, True, {"SmtpClientAuthenticationDisabled": False})
    facts.exchange_users[UPN] = Lookup(UPN, True, {"AuthenticationPolicy": DN})

    (verdict,) = evaluate(facts, [(UPN, "basic")])

    assert [blocker["blocker"] for blocker in verdict["blockers"]] == ["authentication_policy"]
    assert verdict["settings"]["authentication_policy"] == {
        "name": "Block Basic SMTP", "source": "assigned to the user", "allow_basic_auth_smtp": False}
