# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""authentication_policy: create, update and remove a policy's SMTP switch, and nothing else."""

from __future__ import annotations

import pytest

from module_harness import ModuleFailed, PolicyTenant, writing_cmdlets

from ansible_collections.m365ops.smtp_auth.plugins.modules import authentication_policy

LEGACY = {"AllowBasicAuthSmtp": False, "AllowBasicAuthImap": True, "AllowBasicAuthActiveSync": True}


def run(scripted_module, tenant, check_mode=False, **params):
    params = dict({"allow_basic_auth_smtp": None, "state": "present"}, **params)
    module, server = scripted_module(tenant, check_mode=check_mode, **params)
    return authentication_policy.manage(module), server


def test_a_missing_policy_is_created_with_the_smtp_switch(scripted_module):
    tenant = PolicyTenant()
    result, server = run(scripted_module, tenant, name="Allow Basic SMTP", allow_basic_auth_smtp=True)

    assert writing_cmdlets(server) == [("New-AuthenticationPolicy", {"Name": "Allow Basic SMTP",
                                                                     "AllowBasicAuthSmtp": True})]
    assert result["changed"] is True
    assert result["before"] is None
    assert result["after"] == {"name": "Allow Basic SMTP", "allow_basic_auth_smtp": True}
    assert result["diff"] == {"before": {}, "after": result["after"]}
    # What Exchange printed for the new policy: every other protocol blocked.
    assert result["other_protocols"] == {"imap": False, "pop": False}
    assert tenant.policies["Allow Basic SMTP"]["AllowBasicAuthSmtp"] is True


def test_a_new_policy_blocks_basic_smtp_when_nothing_is_said(scripted_module):
    result, server = run(scripted_module, PolicyTenant(), name="Relay")
    assert writing_cmdlets(server) == [("New-AuthenticationPolicy", {"Name": "Relay", "AllowBasicAuthSmtp": False})]
    assert result["after"] == {"name": "Relay", "allow_basic_auth_smtp": False}


def test_drift_sends_only_the_smtp_switch_and_keeps_the_other_protocols(scripted_module):
    tenant = PolicyTenant({"Legacy Devices": LEGACY})
    result, server = run(scripted_module, tenant, name="legacy devices", allow_basic_auth_smtp=True)

    assert writing_cmdlets(server) == [("Set-AuthenticationPolicy", {"Identity": "Legacy Devices",
                                                                     "AllowBasicAuthSmtp": True})]
    assert result["before"] == {"name": "Legacy Devices", "allow_basic_auth_smtp": False}
    assert result["after"] == {"name": "Legacy Devices", "allow_basic_auth_smtp": True}
    assert result["other_protocols"] == {"active_sync": True, "imap": True}
    assert tenant.policies["Legacy Devices"] == dict(LEGACY, AllowBasicAuthSmtp=True)


@pytest.mark.parametrize("params", [{"allow_basic_auth_smtp": False}, {}])
def test_a_policy_that_already_matches_is_left_alone(scripted_module, params):
    result, server = run(scripted_module, PolicyTenant({"Legacy Devices": LEGACY}), name="Legacy Devices", **params)
    assert result["changed"] is False
    assert writing_cmdlets(server) == []
    assert result["before"] == result["after"] == {"name": "Legacy Devices", "allow_basic_auth_smtp": False}


@pytest.mark.parametrize("params", [
    {"name": "New", "allow_basic_auth_smtp": True},
    {"name": "Legacy Devices", "allow_basic_auth_smtp": True},
    {"name": "Legacy Devices", "state": "absent"},
])
def test_check_mode_reports_the_change_and_writes_nothing(scripted_module, params):
    tenant = PolicyTenant({"Legacy Devices": LEGACY})
    result, server = run(scripted_module, tenant, check_mode=True, **params)
    assert result["changed"] is True
    assert writing_cmdlets(server) == []
    assert tenant.policies == {"Legacy Devices": LEGACY}


def test_absent_removes_the_policy_once(scripted_module):
    tenant = PolicyTenant({"Legacy Devices": LEGACY})
    removed, server = run(scripted_module, tenant, name="Legacy Devices", state="absent")
    again, second_server = run(scripted_module, tenant, name="Legacy Devices", state="absent")

    assert writing_cmdlets(server) == [("Remove-AuthenticationPolicy", {"Identity": "Legacy Devices",
                                                                        "Confirm": False})]
    assert removed["changed"] is True and removed["after"] is None and removed["other_protocols"] is None
    assert removed["diff"] == {"before": {"name": "Legacy Devices", "allow_basic_auth_smtp": False}, "after": {}}
    assert again["changed"] is False and again["before"] is None
    assert writing_cmdlets(second_server) == []


def test_a_refused_removal_fails_with_exchanges_words_and_the_policy_name(scripted_module):
    refusal = "The default authentication policy of the organization can't be removed."
    tenant = PolicyTenant({"Legacy Devices": LEGACY}, remove_refusal=refusal)
    with pytest.raises(ModuleFailed) as failed:
        run(scripted_module, tenant, name="Legacy Devices", state="absent")
    assert refusal in failed.value.msg
    assert "'Legacy Devices'" in failed.value.msg and "contoso.onmicrosoft.com" in failed.value.msg
    assert failed.value.result["changed"] is False
    assert failed.value.result["error"]["cmdlet"] == "Remove-AuthenticationPolicy"
    assert "Legacy Devices" in tenant.policies
