# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_mailboxes import relay_mailboxes
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_plan import relay_plan
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_tenant import EMPTY, relay_tenant

APP = {"app_id": "0d5c1b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d"}
CONNECTOR = {"name": "Scanners", "sender_ip_addresses": ["203.0.113.0/24"]}
DECLARED = ["scanner@contoso.com", {"upn": "Old-Copier@contoso.com", "state": "absent"},
            {"upn": "notify@contoso.com", "auth": "oauth", "send_as": True},
            {"upn": "lobby@contoso.com", "auth": "connector", "source_ip": "203.0.113.7"}]


def test_a_good_declaration_gives_the_entries_and_the_plan_of_the_filters_it_stands_for():
    checked = relay_tenant(DECLARED, oauth_app=APP, connector=CONNECTOR, plan={"exclusive": True})
    entries = relay_mailboxes(DECLARED)
    assert checked["problems"] == []
    assert checked["entries"] == entries
    assert checked["plan"] == relay_plan(entries, exclusive=True, oauth_app_id=APP["app_id"], connector=CONNECTOR)


def test_every_switch_reaches_the_plan():
    switches = {"check_license": False, "disable_security_defaults": "false", "enable_org_smtp_auth": True,
                "enable_mailbox_smtp_auth": True, "disable_per_user_mfa": False, "exclusive": False,
                "basic_auth_policy": "Allow SMTP basic", "check_permissions": False}
    plan = relay_tenant(["scanner@contoso.com"], plan=switches)["plan"]
    assert list(plan) == ["basic_auth_policy", "basic_auth_policy_users", "org_smtp_auth", "mailbox_smtp_auth"]


def test_bad_entries_are_listed_and_the_good_ones_still_planned():
    checked = relay_tenant(["scanner@contoso.com", "not-an-address", {"upn": "x@contoso.com", "stat": "absent"}])
    assert len(checked["problems"]) == 2
    assert "not-an-address" in checked["problems"][0] and "stat" in checked["problems"][1]
    assert checked["plan"]["mailbox_smtp_auth"]["mailboxes"] == ["scanner@contoso.com"]


def test_an_empty_declaration_is_a_problem_unless_allowed():
    assert relay_tenant([])["problems"] == [EMPTY]
    assert relay_tenant(None)["problems"] == [EMPTY]
    allowed = relay_tenant([], allow_empty="true")
    assert allowed["problems"] == [] and allowed["plan"] == {}
    with pytest.raises(AnsibleFilterError, match="allow_empty"):
        relay_tenant([], allow_empty="perhaps")


@pytest.mark.parametrize("app, message", [
    (None, "relay_accounts_oauth_app must be a mapping with app_id (the relay app's application id), got NoneType"),
    ("0d5c1b4a", "relay_accounts_oauth_app must be a mapping with app_id (the relay app's application id), got str"),
    ({}, "relay_accounts_oauth_app.app_id is not set: the oauth mailboxes (notify@contoso.com) need the application"
         " (client) id of the app their devices sign in with"),
    ({"app_id": "  "}, "relay_accounts_oauth_app.app_id is not set"),
    ({"app_id": "relay-app"}, "relay_accounts_oauth_app.app_id must be an application (client) id (a GUID), got "
                              "relay-app"),
    (dict(APP, object_id="enterprise-app"), "relay_accounts_oauth_app.object_id must be the object id (a GUID) of "
                                            "the app's enterprise application, got enterprise-app"),
])
def test_a_wrong_relay_app_is_named_and_nothing_is_planned(app, message):
    checked = relay_tenant([{"upn": "notify@contoso.com", "auth": "oauth"}], oauth_app=app)
    assert len(checked["problems"]) == 1 and checked["problems"][0].startswith(message)
    assert checked["plan"] == {}


def test_the_relay_app_is_only_checked_when_an_entry_uses_oauth():
    checked = relay_tenant(["scanner@contoso.com"], oauth_app="anything")
    assert checked["problems"] == [] and "per_user_mfa" in checked["plan"]


def test_a_connector_that_does_not_cover_a_device_is_named_and_nothing_is_planned():
    declared = [{"upn": "lobby@contoso.com", "auth": "connector", "source_ip": "198.51.100.9"}]
    checked = relay_tenant(declared, connector=CONNECTOR)
    assert len(checked["problems"]) == 1 and "198.51.100.9" in checked["problems"][0]
    assert checked["plan"] == {}
    assert "is not set" in relay_tenant(declared)["problems"][0]


def test_entry_problems_come_before_those_of_the_app_and_the_connector():
    checked = relay_tenant(["bad", {"upn": "notify@contoso.com", "auth": "oauth"}], oauth_app={})
    assert "bad" in checked["problems"][0] and checked["problems"][1].startswith("relay_accounts_oauth_app.app_id")


def test_an_unknown_switch_is_refused():
    with pytest.raises(AnsibleFilterError, match="unknown plan switch.*exclusiv"):
        relay_tenant(["scanner@contoso.com"], plan={"exclusiv": True})
    with pytest.raises(AnsibleFilterError, match="connector"):
        relay_tenant(["scanner@contoso.com"], plan={"connector": CONNECTOR})
