# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""user_authentication_policy: assign or clear users' policy, one Set-User per user that drifts."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error

from module_harness import ModuleFailed, PolicyTenant, cmdlets, writing_cmdlets

from ansible_collections.m365ops.smtp_auth.plugins.modules import user_authentication_policy

POLICIES = {"Allow Basic SMTP": {"AllowBasicAuthSmtp": True}, "Block Basic SMTP": {"AllowBasicAuthSmtp": False}}


def tenant(shows="name", **users):
    return PolicyTenant(POLICIES, {"%s@contoso.com" % name: policy for name, policy in users.items()}, shows=shows)


def run(scripted_module, answer, check_mode=False, **params):
    params = dict({"policy": None, "state": "present"}, **params)
    module, server = scripted_module(answer, check_mode=check_mode, **params)
    return user_authentication_policy.manage(module), server


@pytest.mark.parametrize("shows", ["name", "distinguished_name"])
def test_assigns_only_users_that_drift_whichever_way_get_user_shows_the_policy(scripted_module, shows):
    scripted = tenant(shows, scanner=None, printer="Allow Basic SMTP", alerts="Block Basic SMTP")
    result, server = run(scripted_module, scripted, policy="allow basic smtp",
                         users=["scanner@contoso.com", "printer@contoso.com", "alerts@contoso.com"])

    # Writes go a few at a time, in no set order.
    assert sorted(writing_cmdlets(server), key=lambda command: command[1]["Identity"]) == [
        ("Set-User", {"Identity": "alerts@contoso.com", "AuthenticationPolicy": "Allow Basic SMTP"}),
        ("Set-User", {"Identity": "scanner@contoso.com", "AuthenticationPolicy": "Allow Basic SMTP"})]
    assert [(item["before"], item["after"], item["changed"]) for item in result["results"]] == [
        (None, "Allow Basic SMTP", True),
        ("Allow Basic SMTP", "Allow Basic SMTP", False),
        ("Block Basic SMTP", "Allow Basic SMTP", True)]
    assert result["diff"]["before"] == {"scanner@contoso.com": None, "printer@contoso.com": "Allow Basic SMTP",
                                        "alerts@contoso.com": "Block Basic SMTP"}
    assert set(scripted.users.values()) == {"Allow Basic SMTP"}

    again, second_server = run(scripted_module, scripted, policy="Allow Basic SMTP",
                               users=["scanner@contoso.com", "printer@contoso.com", "alerts@contoso.com"])
    assert again["changed"] is False and writing_cmdlets(second_server) == []


def test_an_unknown_policy_is_refused_before_any_user_is_read_or_written(scripted_module):
    module, server = scripted_module(tenant(scanner=None), check_mode=False, policy="Alow Basic SMTP", state="present",
                                     users=["scanner@contoso.com"])
    with pytest.raises(ModuleFailed) as failed:
        user_authentication_policy.manage(module)
    assert "'Alow Basic SMTP' does not exist in tenant contoso.onmicrosoft.com" in failed.value.msg
    assert cmdlets(server) == [("Get-AuthenticationPolicy", {"Identity": "Alow Basic SMTP"})]


def test_an_unknown_user_fails_its_item_and_the_others_are_still_changed(scripted_module):
    scripted = tenant(scanner=None)
    result, server = run(scripted_module, scripted, policy="Allow Basic SMTP",
                         users=["ghost@contoso.com", "scanner@contoso.com", "Scanner@Contoso.com"])

    assert result["failed"] is True
    assert "1 of 2 users failed" in result["msg"] and "ghost@contoso.com" in result["msg"]
    ghost, scanner = result["results"]
    assert ghost["found"] is False and ghost["failed"] is True and ghost["changed"] is False
    assert scanner["changed"] is True and scanner["failed"] is False
    assert scripted.users["scanner@contoso.com"] == "Allow Basic SMTP"
    assert "ghost@contoso.com" not in result["diff"]["before"]
    assert len(writing_cmdlets(server)) == 1


def test_check_mode_reads_and_reports_but_writes_nothing(scripted_module):
    scripted = tenant(scanner=None, alerts="Block Basic SMTP")
    result, server = run(scripted_module, scripted, check_mode=True, policy="Allow Basic SMTP",
                         users=["scanner@contoso.com", "alerts@contoso.com"])
    assert result["changed"] is True
    assert [item["after"] for item in result["results"]] == ["Allow Basic SMTP", "Allow Basic SMTP"]
    assert writing_cmdlets(server) == []
    assert scripted.users == {"scanner@contoso.com": None, "alerts@contoso.com": "Block Basic SMTP"}


@pytest.mark.parametrize("shows", ["name", "distinguished_name"])
def test_absent_with_a_policy_clears_only_users_that_have_exactly_it(scripted_module, shows):
    scripted = tenant(shows, scanner="Allow Basic SMTP", alerts="Block Basic SMTP", printer=None)
    result, server = run(scripted_module, scripted, state="absent", policy="Allow Basic SMTP",
                         users=["scanner@contoso.com", "alerts@contoso.com", "printer@contoso.com"])

    assert writing_cmdlets(server) == [("Set-User", {"Identity": "scanner@contoso.com", "AuthenticationPolicy": None})]
    assert [item["changed"] for item in result["results"]] == [True, False, False]
    assert scripted.users == {"scanner@contoso.com": None, "alerts@contoso.com": "Block Basic SMTP",
                              "printer@contoso.com": None}


def test_absent_without_a_policy_clears_every_policy(scripted_module):
    scripted = tenant(scanner="Allow Basic SMTP", alerts="Block Basic SMTP", printer=None)
    result, server = run(scripted_module, scripted, state="absent",
                         users=["scanner@contoso.com", "alerts@contoso.com", "printer@contoso.com"])
    assert sorted(parameters["Identity"] for _name, parameters in writing_cmdlets(server)) == [
        "alerts@contoso.com", "scanner@contoso.com"]
    assert set(scripted.users.values()) == {None}
    assert result["diff"]["after"] == {"scanner@contoso.com": None, "alerts@contoso.com": None,
                                       "printer@contoso.com": None}


def test_a_clear_that_the_tenant_ignores_fails_the_user_clearly(scripted_module):
    scripted = tenant(scanner="Allow Basic SMTP")
    scripted.null_clears = False
    result, _server = run(scripted_module, scripted, state="absent", users=["scanner@contoso.com"])
    (item,) = result["results"]
    assert result["failed"] is True
    assert item["failed"] is True and item["changed"] is False and item["after"] == "Allow Basic SMTP"
    assert "still has 'Allow Basic SMTP'" in item["msg"] and "Set-User -AuthenticationPolicy $null" in item["msg"]


@pytest.mark.parametrize("users, expected", [([], "at least one user"),
                                             (["scanner@contoso.com", " "], "users[1] is empty")])
def test_an_empty_user_list_or_name_is_refused_before_any_request(scripted_module, users, expected):
    # An empty name is an M365Error raised before any request (the module edge makes it one failure).
    with pytest.raises((ModuleFailed, M365Error)) as failed:
        run(scripted_module, tenant(scanner=None), policy="Allow Basic SMTP", users=users)
    assert expected in str(getattr(failed.value, "msg", failed.value))


def test_many_users_are_read_from_one_listing_and_matched_by_name(scripted_module):
    names = ["relay%03d" % number for number in range(services.MAILBOX_BATCH_THRESHOLD + 1)]
    scripted = tenant(**{name: None for name in names})
    users = ["%s@Contoso.com" % name for name in names]
    result, server = run(scripted_module, scripted, policy="Allow Basic SMTP", users=users)

    reads = [(name, parameters) for name, parameters in cmdlets(server) if name == "Get-User"]
    assert reads == [("Get-User", {"ResultSize": "Unlimited"})]
    assert all(item["found"] and item["changed"] for item in result["results"])
    assert len(writing_cmdlets(server)) == len(names)


def test_a_few_dozen_users_are_read_by_identity_ten_to_an_admin_api_batch(scripted_module):
    names = ["relay%02d" % number for number in range(30)]
    result, server = run(scripted_module, tenant(**{name: None for name in names}), policy="Allow Basic SMTP",
                         users=["%s@Contoso.com" % name for name in names])

    batches = [request for request in server.requests if request["path"].endswith("/$batch")]
    assert [len(request["body"]["requests"]) for request in batches] == [10] * 6  # 3 of Get-User, 3 of Set-User
    assert sorted(parameters["Identity"] for name, parameters in cmdlets(server) if name == "Get-User") == \
        sorted("%s@Contoso.com" % name for name in names)
    assert all(item["found"] and item["changed"] for item in result["results"])
