# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""mailbox_permission: FullAccess and SendAs for one trustee on many mailboxes, written only where they drift."""

from __future__ import annotations

import pytest

from module_harness import ModuleFailed, cmdlets, writing_cmdlets
from relay_tenant import RELAY_APP, RELAY_SP, SELF, RelayTenant

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import PermissionDeniedError
from ansible_collections.m365ops.smtp_auth.plugins.modules import mailbox_permission

NOTIFY = "notify@contoso.com"
ALERTS = "alerts@contoso.com"


def relay_tenant(show_principal_as="Identity", mailboxes=(NOTIFY, ALERTS)):
    tenant = RelayTenant(show_principal_as=show_principal_as)
    principal = tenant.add_exchange_principal()
    for upn in mailboxes:
        tenant.add_mailbox(upn)
    return tenant, principal


def run(scripted_module, tenant, check_mode=False, **params):
    params = dict({"mailboxes": [NOTIFY, ALERTS], "trustee": RELAY_APP, "access_rights": ["FullAccess"],
                   "state": "present", "exclusive": False}, **params)
    module, server = scripted_module(tenant, check_mode=check_mode, **params)
    return mailbox_permission.manage(module), server


@pytest.mark.parametrize("shown_as", ["Identity", "DisplayName", "ObjectId", "AppId"])
def test_full_access_is_granted_to_the_service_principal_once_however_exchange_shows_it(scripted_module, shown_as):
    tenant, principal = relay_tenant(shown_as)
    result, server = run(scripted_module, tenant, mailboxes=[NOTIFY, "Notify@Contoso.com", ALERTS])

    # Mailboxes are written a few at a time: in any order, each once.
    assert sorted(writing_cmdlets(server), key=lambda call: call[1]["Identity"]) == [
        ("Add-MailboxPermission", {"Identity": upn, "User": principal["Identity"], "AccessRights": ["FullAccess"],
                                   "InheritanceType": "All"}) for upn in (ALERTS, NOTIFY)]
    assert [(item["identity"], item["before"], item["after"], item["changed"]) for item in result["results"]] == [
        (NOTIFY, [], ["FullAccess"], True), (ALERTS, [], ["FullAccess"], True)]
    assert result["diff"]["after"][NOTIFY] == {RELAY_APP: ["FullAccess"]}
    assert result["trustee"] == {"identity": principal["Identity"], "service_principal": True}

    again, server = run(scripted_module, tenant)
    assert again["changed"] is False and writing_cmdlets(server) == []
    assert [item["before"] for item in again["results"]] == [["FullAccess"], ["FullAccess"]]


def test_check_mode_reports_and_writes_nothing(scripted_module):
    tenant, _principal = relay_tenant()
    result, server = run(scripted_module, tenant, check_mode=True, access_rights=["SendAs", "FullAccess"])
    assert result["changed"] is True
    assert [item["after"] for item in result["results"]] == [["FullAccess", "SendAs"]] * 2
    assert writing_cmdlets(server) == []


def test_an_unknown_mailbox_fails_alone_and_is_named(scripted_module):
    tenant, _principal = relay_tenant()
    result, server = run(scripted_module, tenant, mailboxes=[NOTIFY, "ghost@contoso.com", ALERTS])

    assert result["failed"] is True
    assert result["msg"] == ("1 of 3 mailboxes failed in tenant contoso.onmicrosoft.com: ghost@contoso.com: mailbox "
                             "ghost@contoso.com not found in tenant contoso.onmicrosoft.com")
    ghost = result["results"][1]
    assert ghost["found"] is False and ghost["failed"] is True and ghost["changed"] is False
    assert sorted(parameters["Identity"] for _name, parameters in writing_cmdlets(server)) == [ALERTS, NOTIFY]
    assert "ghost@contoso.com" not in result["diff"]["before"]


def test_absent_takes_both_rights_away_without_prompting(scripted_module):
    tenant, principal = relay_tenant()
    tenant.grant(NOTIFY, principal["Identity"])
    tenant.grant_send_as(NOTIFY, principal["Identity"])
    result, server = run(scripted_module, tenant, mailboxes=[NOTIFY, ALERTS], access_rights=["FullAccess", "SendAs"],
                         state="absent")

    assert writing_cmdlets(server) == [
        ("Remove-MailboxPermission", {"Identity": NOTIFY, "User": principal["Identity"], "AccessRights": ["FullAccess"],
                                      "InheritanceType": "All", "Confirm": False}),
        ("Remove-RecipientPermission", {"Identity": NOTIFY, "Trustee": principal["Identity"], "AccessRights": ["SendAs"],
                                        "Confirm": False})]
    assert [(item["before"], item["after"], item["changed"]) for item in result["results"]] == [
        (["FullAccess", "SendAs"], [], True), ([], [], False)]
    assert tenant.rights(NOTIFY, principal["Identity"]) == set()


def test_exclusive_removes_only_undeclared_explicit_grants(scripted_module):
    tenant, principal = relay_tenant()
    tenant.grant(NOTIFY, principal["Identity"])
    tenant.grant(NOTIFY, "old-scanner@contoso.com", ["FullAccess", "ReadPermission"])
    tenant.grant(NOTIFY, "helpdesk@contoso.com", ["ReadPermission"])
    tenant.grant(NOTIFY, "CONTOSO\\Organization Management", ["FullAccess"], inherited=True)
    tenant.grant(NOTIFY, "blocked@contoso.com", ["FullAccess"], deny=True)
    result, server = run(scripted_module, tenant, mailboxes=[NOTIFY], exclusive=True)

    assert writing_cmdlets(server) == [
        ("Remove-MailboxPermission", {"Identity": NOTIFY, "User": "old-scanner@contoso.com",
                                      "AccessRights": ["FullAccess"], "InheritanceType": "All", "Confirm": False})]
    (item,) = result["results"]
    assert item["changed"] is True and item["before"] == item["after"] == ["FullAccess"]
    assert item["undeclared_trustees"] == [{"trustee": "old-scanner@contoso.com", "access_rights": ["FullAccess"]}]
    assert result["diff"] == {
        "before": {NOTIFY: {RELAY_APP: ["FullAccess"], "old-scanner@contoso.com": ["FullAccess"]}},
        "after": {NOTIFY: {RELAY_APP: ["FullAccess"], "old-scanner@contoso.com": []}}}
    # Every read was of the whole list (nothing narrowed to the trustee), and SELF was read but left alone.
    assert all("User" not in parameters for name, parameters in cmdlets(server) if name == "Get-MailboxPermission")
    assert tenant.rights(NOTIFY, "old-scanner@contoso.com") == {"ReadPermission"}
    assert tenant.rights(NOTIFY, "helpdesk@contoso.com") == {"ReadPermission"}
    assert not any(parameters.get("User") in (SELF, "blocked@contoso.com", "CONTOSO\\Organization Management")
                   for _name, parameters in writing_cmdlets(server))


def test_exclusive_is_refused_with_absent_and_an_empty_list_is_refused(scripted_module):
    tenant, _principal = relay_tenant()
    with pytest.raises(ModuleFailed) as failed:
        run(scripted_module, tenant, exclusive=True, state="absent")
    assert "exclusive=true is only allowed with state=present" in failed.value.msg
    with pytest.raises(ModuleFailed) as failed:
        run(scripted_module, tenant, mailboxes=[])
    assert "mailboxes and access_rights must each name at least one" in failed.value.msg
    assert tenant.cmdlets == []


def test_an_app_id_not_registered_in_exchange_names_the_module_that_registers_it(scripted_module):
    tenant = RelayTenant()
    tenant.add_mailbox(NOTIFY)
    with pytest.raises(ModuleFailed) as failed:
        run(scripted_module, tenant, mailboxes=[NOTIFY])
    assert "trustee %s is not a service principal registered in Exchange Online" % RELAY_APP in failed.value.msg
    assert "m365ops.smtp_auth.exchange_service_principal" in failed.value.msg
    assert [name for name, _parameters in tenant.cmdlets] == ["Get-ServicePrincipal"]


def test_an_app_not_yet_registered_is_missing_every_right_in_check_mode_and_holds_none_to_remove(scripted_module):
    # In a check run the step that registers the app has not written either: report the rights as drift.
    tenant = RelayTenant()
    tenant.add_mailbox(NOTIFY)
    result, server = run(scripted_module, tenant, check_mode=True, mailboxes=[NOTIFY])
    assert [(item["before"], item["after"], item["changed"]) for item in result["results"]] == [
        ([], ["FullAccess"], True)]
    assert writing_cmdlets(server) == []
    removed, server = run(scripted_module, tenant, mailboxes=[NOTIFY], state="absent",
                          access_rights=["FullAccess", "SendAs"])
    assert removed["changed"] is False and writing_cmdlets(server) == []
    assert [item["before"] for item in removed["results"]] == [[]]


def test_a_user_trustee_is_taken_as_given(scripted_module):
    tenant, _principal = relay_tenant()
    result, server = run(scripted_module, tenant, mailboxes=[NOTIFY], trustee="printer@contoso.com",
                         access_rights=["SendAs"])
    assert writing_cmdlets(server) == [("Add-RecipientPermission", {
        "Identity": NOTIFY, "Trustee": "printer@contoso.com", "AccessRights": ["SendAs"], "Confirm": False})]
    assert result["trustee"] == {"identity": "printer@contoso.com", "service_principal": False}
    # A user principal name cannot name a service principal: Exchange's service principals were not read.
    assert "Get-ServicePrincipal" not in [name for name, _parameters in cmdlets(server)]


def test_many_mailboxes_read_send_as_in_one_listing(scripted_module):
    upns = ["device%02d@contoso.com" % number for number in range(30)]
    tenant, principal = relay_tenant(mailboxes=upns)
    tenant.grant_send_as(upns[3], principal["Identity"])
    result, server = run(scripted_module, tenant, mailboxes=upns + ["ghost@contoso.com"], access_rights=["SendAs"])

    reads = [(name, parameters) for name, parameters in cmdlets(server) if name != "Get-ServicePrincipal"
             and name.startswith("Get-")]
    assert reads == [("Get-Mailbox", {"ResultSize": "Unlimited"}),
                     ("Get-RecipientPermission", {"Trustee": principal["Identity"], "ResultSize": "Unlimited"})]
    assert result["results"][3]["changed"] is False and result["results"][3]["before"] == ["SendAs"]
    assert sum(item["changed"] for item in result["results"]) == 29
    assert result["results"][-1]["found"] is False and result["failed"] is True


def test_a_refused_write_fails_that_mailbox_only(scripted_module):
    tenant, principal = relay_tenant()
    original = tenant._add_mailboxpermission

    def refuse_alerts(parameters):
        if parameters["Identity"] == ALERTS:
            raise LookupError(parameters["User"])
        return original(parameters)

    tenant._add_mailboxpermission = refuse_alerts
    result, _server = run(scripted_module, tenant)
    notify, alerts = result["results"]
    assert notify["changed"] is True and notify["failed"] is False
    assert alerts["failed"] is True and alerts["changed"] is False and alerts["after"] == []
    assert alerts["msg"].startswith("granting FullAccess for %s: Add-MailboxPermission" % principal["Identity"])
    assert result["failed"] is True and result["diff"]["after"][ALERTS] == {RELAY_APP: []}


def test_exchange_permission_denied_fails_the_task_naming_the_role(scripted_module):
    tenant, _principal = relay_tenant()
    tenant.denied.add("Get-MailboxPermission")
    with pytest.raises(PermissionDeniedError) as denied:
        run(scripted_module, tenant)
    assert "Exchange.ManageAsApp" in str(denied.value) and "Exchange Administrator" in str(denied.value)


def test_a_trustee_given_by_object_id_is_the_same_principal(scripted_module):
    tenant, principal = relay_tenant()
    tenant.grant(NOTIFY, principal["Identity"])
    result, server = run(scripted_module, tenant, mailboxes=[NOTIFY], trustee=RELAY_SP)
    assert result["changed"] is False and writing_cmdlets(server) == []
