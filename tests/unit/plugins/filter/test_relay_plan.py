# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_mailboxes import relay_mailboxes
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_plan import relay_plan

ENTRIES = relay_mailboxes(["scanner@contoso.com", "printer@contoso.com",
                           {"upn": "old-copier@contoso.com", "state": "absent"}])
BASIC = ["scanner@contoso.com", "printer@contoso.com"]
APP = "0d5c1b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
MIXED = ENTRIES + relay_mailboxes([{"upn": "notify@contoso.com", "auth": "oauth"},
                                   {"upn": "erp-app@contoso.com", "auth": "oauth", "send_as": True},
                                   {"upn": "old-app@contoso.com", "auth": "oauth", "state": "absent"}])


def planned(plan):
    """The planned steps after the permission check, which comes first whenever anything is planned."""
    names = list(plan)
    assert names[0] == "app_permissions"
    return names[1:]


def bare(step):
    """A step without its permission needs (tested on their own below)."""
    return {key: value for key, value in step.items() if key != "permissions"}


def test_the_default_plan_runs_the_basic_steps_in_order():
    plan = relay_plan(ENTRIES)
    assert planned(plan) == ["license", "security_defaults", "retired_mailbox_smtp_auth", "mailbox_smtp_auth",
                             "per_user_mfa"]
    assert bare(plan["license"]) == {"step": "license", "setting": "license", "desired": "licensed", "mailboxes": BASIC,
                                     "register": "_relay_accounts_license"}
    assert bare(plan["security_defaults"]) == {"step": "security_defaults", "setting": "security_defaults",
                                               "desired": "disabled", "mailboxes": [],
                                               "register": "_relay_accounts_security_defaults"}
    assert bare(plan["retired_mailbox_smtp_auth"]) == {
        "step": "retired_mailbox_smtp_auth", "setting": "mailbox_smtp_auth", "desired": "disabled",
        "mailboxes": ["old-copier@contoso.com"], "register": "_relay_accounts_retired"}
    assert bare(plan["mailbox_smtp_auth"]) == {
        "step": "mailbox_smtp_auth", "setting": "mailbox_smtp_auth", "desired": "enabled", "mailboxes": BASIC,
        "register": "_relay_accounts_smtp_auth", "exclusive": False,
        "declared_elsewhere": ["old-copier@contoso.com"]}
    assert bare(plan["per_user_mfa"]) == {"step": "per_user_mfa", "setting": "per_user_mfa", "desired": "disabled",
                                          "mailboxes": BASIC, "register": "_relay_accounts_per_user_mfa"}


def test_oauth_mailboxes_get_the_oauth_steps_and_no_basic_one():
    plan = relay_plan(MIXED, oauth_app_id=APP)
    assert planned(plan) == ["license", "security_defaults", "smtp_app_consent", "exchange_service_principal",
                             "full_access", "send_as", "retired_permissions", "retired_mailbox_smtp_auth",
                             "mailbox_smtp_auth", "per_user_mfa"]
    oauth = ["notify@contoso.com", "erp-app@contoso.com"]
    assert plan["license"]["mailboxes"] == BASIC + oauth
    assert plan["mailbox_smtp_auth"]["mailboxes"] == BASIC + oauth
    assert plan["per_user_mfa"]["mailboxes"] == BASIC
    assert bare(plan["smtp_app_consent"]) == {"step": "smtp_app_consent", "setting": "smtp_app_consent",
                                              "desired": "granted", "mailboxes": [], "app_id": APP,
                                              "register": "_relay_accounts_smtp_app_consent"}
    assert plan["full_access"]["mailboxes"] == oauth and plan["full_access"]["access_rights"] == ["FullAccess"]
    assert plan["send_as"]["mailboxes"] == ["erp-app@contoso.com"] and plan["send_as"]["access_rights"] == ["SendAs"]
    assert plan["retired_permissions"]["mailboxes"] == ["old-app@contoso.com"]
    assert plan["retired_permissions"]["access_rights"] == ["FullAccess", "SendAs"]
    assert plan["retired_mailbox_smtp_auth"]["mailboxes"] == ["old-copier@contoso.com", "old-app@contoso.com"]


def test_an_oauth_only_tenant_touches_neither_security_defaults_nor_mfa():
    plan = relay_plan(relay_mailboxes(["notify@contoso.com"], "oauth"), oauth_app_id=APP)
    assert planned(plan) == ["license", "smtp_app_consent", "exchange_service_principal", "full_access",
                             "mailbox_smtp_auth"]


def test_oauth_mailboxes_need_the_relay_app():
    with pytest.raises(AnsibleFilterError, match="relay_accounts_oauth_app.app_id"):
        relay_plan(MIXED)


def test_the_basic_auth_policy_is_planned_for_basic_mailboxes_only_when_named():
    assert "basic_auth_policy" not in relay_plan(MIXED, oauth_app_id=APP)
    plan = relay_plan(MIXED, oauth_app_id=APP, basic_auth_policy="Allow Basic SMTP")
    assert planned(plan)[:4] == ["license", "security_defaults", "basic_auth_policy", "basic_auth_policy_users"]
    assert plan["basic_auth_policy"]["policy"] == "Allow Basic SMTP" and plan["basic_auth_policy"]["mailboxes"] == []
    assert plan["basic_auth_policy_users"]["mailboxes"] == BASIC
    assert plan["basic_auth_policy_users"]["desired"] == "Allow Basic SMTP"
    oauth_only = relay_mailboxes(["notify@contoso.com"], "oauth")
    assert "basic_auth_policy" not in relay_plan(oauth_only, oauth_app_id=APP, basic_auth_policy="Allow Basic SMTP")


@pytest.mark.parametrize("switch, step", [
    ("check_license", "license"),
    ("disable_security_defaults", "security_defaults"),
    ("disable_per_user_mfa", "per_user_mfa"),
])
def test_a_switch_turned_off_leaves_its_step_out(switch, step):
    plan = relay_plan(ENTRIES, **{switch: False})
    assert step not in plan
    assert len(planned(plan)) == 4


def test_the_mailbox_switch_covers_both_mailbox_steps():
    plan = relay_plan(ENTRIES, enable_mailbox_smtp_auth=False)
    assert planned(plan) == ["license", "security_defaults", "per_user_mfa"]


def test_org_wide_smtp_auth_is_planned_only_when_asked_and_after_security_defaults():
    assert "org_smtp_auth" not in relay_plan(ENTRIES)
    plan = relay_plan(ENTRIES, enable_org_smtp_auth=True)
    assert planned(plan)[:3] == ["license", "security_defaults", "org_smtp_auth"]
    assert plan["org_smtp_auth"]["desired"] == "enabled" and plan["org_smtp_auth"]["mailboxes"] == []


def test_without_present_basic_mailboxes_only_mailbox_steps_that_have_work_remain():
    retired_only = relay_mailboxes([{"upn": "old-copier@contoso.com", "state": "absent"}])
    assert planned(relay_plan(retired_only)) == ["retired_mailbox_smtp_auth"]
    assert relay_plan([]) == {}


def test_exclusive_mode_runs_the_mailbox_step_even_with_nothing_declared():
    plan = relay_plan([], exclusive=True)
    assert planned(plan) == ["mailbox_smtp_auth"]
    assert plan["mailbox_smtp_auth"]["mailboxes"] == [] and plan["mailbox_smtp_auth"]["exclusive"] is True


@pytest.mark.parametrize("given, planned", [("false", False), ("no", False), ("true", True), ("yes", True)])
def test_switches_given_as_strings_on_the_command_line_are_booleans(given, planned):
    assert ("per_user_mfa" in relay_plan(ENTRIES, disable_per_user_mfa=given)) is planned


def test_a_switch_that_is_not_a_boolean_is_refused():
    with pytest.raises(AnsibleFilterError, match="relay_plan"):
        relay_plan(ENTRIES, exclusive="perhaps")


def test_entries_must_be_normalised():
    with pytest.raises(AnsibleFilterError, match="normalised by relay_mailboxes"):
        relay_plan(["scanner@contoso.com"])


def test_every_plan_step_is_a_drift_rows_step():
    """The report hands the plan's steps, with their results, to drift_rows as they are."""
    from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_rows import drift_rows

    plan = relay_plan(ENTRIES, enable_org_smtp_auth=True, exclusive=True)
    rows = drift_rows([dict(step, result={}) for step in plan.values()], tenant="contoso")
    assert [row["setting"] for row in rows] == [
        "app_permissions", "license", "license", "security_defaults", "org_smtp_auth", "mailbox_smtp_auth", "mailbox_smtp_auth",
        "mailbox_smtp_auth", "per_user_mfa", "per_user_mfa"]
    assert {row["status"] for row in rows} == {"error"}
    plan = relay_plan(MIXED, oauth_app_id=APP, basic_auth_policy="Allow Basic SMTP")
    rows = drift_rows([dict(step, result={}) for step in plan.values()], tenant="contoso")
    assert {row["setting"] for row in rows} >= {"smtp_app_consent", "exchange_service_principal",
                                                "mailbox_permission", "authentication_policy",
                                                "user_authentication_policy"}
    assert {row["status"] for row in rows} == {"error"}


def test_the_permission_check_comes_first_with_the_needs_of_every_step():
    plan = relay_plan(MIXED, oauth_app_id=APP, basic_auth_policy="Allow Basic SMTP")
    assert bare(plan["app_permissions"]) == {"step": "app_permissions", "setting": "app_permissions",
                                             "desired": "held", "mailboxes": [],
                                             "register": "_relay_accounts_app_permissions"}
    assert plan["security_defaults"]["permissions"] == {
        "step": "security_defaults", "read": ["security_defaults_read"], "write": ["security_defaults_write"]}
    assert plan["mailbox_smtp_auth"]["permissions"] == {"step": "mailbox_smtp_auth", "read": ["exchange"],
                                                        "write": ["exchange"]}
    assert plan["smtp_app_consent"]["permissions"]["write"] == ["app_role_assignment_write"]
    assert plan["per_user_mfa"]["permissions"]["write"] == ["mfa_write"]
    assert all(step["permissions"]["step"] == name for name, step in plan.items())


def test_the_permission_check_can_be_switched_off_and_is_not_planned_alone():
    assert "app_permissions" not in relay_plan(ENTRIES, check_permissions=False)
    assert "app_permissions" not in relay_plan(ENTRIES, check_permissions="false")
    assert relay_plan([]) == {}
