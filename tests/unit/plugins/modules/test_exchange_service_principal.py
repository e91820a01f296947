# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""exchange_service_principal: the relay app registered in Exchange with its enterprise application's object id."""

from __future__ import annotations

import pytest

from module_harness import ModuleFailed, writing_cmdlets
from relay_tenant import RELAY_APP, RELAY_REGISTRATION, RELAY_SP, RelayTenant

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError, PermissionDeniedError
from ansible_collections.m365ops.smtp_auth.plugins.modules import exchange_service_principal

OTHER_ID = "11111111-2222-4333-8444-555555555555"


def run(scripted_module, tenant, check_mode=False, **params):
    params = dict({"app_id": RELAY_APP, "object_id": None, "display_name": None, "state": "present"}, **params)
    module, server = scripted_module(tenant, check_mode=check_mode, **params)
    return exchange_service_principal.manage(module), server, module


def test_a_missing_registration_is_made_with_the_enterprise_application_id_then_left_alone(scripted_module):
    tenant = RelayTenant()
    result, server, _module = run(scripted_module, tenant)

    assert writing_cmdlets(server) == [("New-ServicePrincipal", {"AppId": RELAY_APP, "ObjectId": RELAY_SP,
                                                                 "DisplayName": "SMTP relay"})]
    assert result["changed"] is True and result["replaced"] is False
    assert result["before"] is None
    made = tenant.exchange_principals[0]
    assert result["after"] == {"app_id": RELAY_APP, "object_id": RELAY_SP, "display_name": "SMTP relay",
                               "identity": made["Identity"]}
    assert result["service_principal"] == result["after"]
    assert result["diff"] == {"before": {"service_principal": None}, "after": {"service_principal": result["after"]}}

    again, server, _module = run(scripted_module, tenant, app_id=RELAY_APP.upper())
    assert again["changed"] is False
    assert writing_cmdlets(server) == []
    assert again["before"] == again["after"] == result["after"]


def test_check_mode_reports_the_registration_and_writes_nothing(scripted_module):
    tenant = RelayTenant()
    result, server, _module = run(scripted_module, tenant, check_mode=True, display_name="Relay")
    assert result["changed"] is True
    assert result["after"] == {"app_id": RELAY_APP, "object_id": RELAY_SP, "display_name": "Relay", "identity": None}
    assert writing_cmdlets(server) == [] and tenant.exchange_principals == []


@pytest.mark.parametrize("given, what", [
    (RELAY_REGISTRATION, "is the object id of the app registration, not of its enterprise application"),
    (OTHER_ID, "is not the object id of the app's enterprise application"),
])
def test_an_object_id_that_is_not_the_enterprise_application_is_refused_naming_both(scripted_module, given, what):
    tenant = RelayTenant()
    with pytest.raises(ModuleFailed) as failed:
        run(scripted_module, tenant, object_id=given)
    assert what in failed.value.msg
    assert given in failed.value.msg and RELAY_SP in failed.value.msg
    assert "makes every token for app %s fail" % RELAY_APP in failed.value.msg
    assert tenant.writes() == []


def test_the_right_object_id_given_is_accepted(scripted_module):
    tenant = RelayTenant()
    result, server, _module = run(scripted_module, tenant, object_id=RELAY_SP.upper())
    assert result["changed"] is True and writing_cmdlets(server)[0][1]["ObjectId"] == RELAY_SP
    # Graph was not asked for the app registration: nothing to explain.
    assert not [request for request in server.requests if "applications" in request["path"]]


def test_a_registration_with_the_app_registration_id_is_replaced_with_a_warning(scripted_module):
    tenant = RelayTenant()
    wrong = tenant.add_exchange_principal(object_id=RELAY_REGISTRATION, display_name="Old relay")
    result, server, module = run(scripted_module, tenant)

    assert writing_cmdlets(server) == [
        ("Remove-ServicePrincipal", {"Identity": wrong["Identity"], "Confirm": False}),
        ("New-ServicePrincipal", {"AppId": RELAY_APP, "ObjectId": RELAY_SP, "DisplayName": "Old relay"})]
    assert result["changed"] is True and result["replaced"] is True
    assert result["before"]["object_id"] == RELAY_REGISTRATION and result["after"]["object_id"] == RELAY_SP
    assert [record["ObjectId"] for record in tenant.exchange_principals] == [RELAY_SP]
    assert RELAY_REGISTRATION in module.warnings[0] and "Grant its mailbox rights again" in module.warnings[0]


def test_a_changed_display_name_is_set_in_place(scripted_module):
    tenant = RelayTenant()
    existing = tenant.add_exchange_principal(display_name="Relay")
    result, server, _module = run(scripted_module, tenant, display_name="SMTP relay (printers)")
    assert writing_cmdlets(server) == [("Set-ServicePrincipal", {"Identity": existing["Identity"],
                                                                 "DisplayName": "SMTP relay (printers)"})]
    assert result["diff"]["before"]["service_principal"]["display_name"] == "Relay"
    assert result["after"]["identity"] == existing["Identity"]


def test_absent_removes_the_registration_once_without_asking_graph(scripted_module):
    tenant = RelayTenant()
    existing = tenant.add_exchange_principal()
    result, server, _module = run(scripted_module, tenant, state="absent")
    assert writing_cmdlets(server) == [("Remove-ServicePrincipal", {"Identity": existing["Identity"], "Confirm": False})]
    assert result["changed"] is True and result["after"] is None
    assert not [request for request in server.requests if request["path"].startswith("/v1.0")]

    again, server, _module = run(scripted_module, tenant, state="absent")
    assert again["changed"] is False and writing_cmdlets(server) == []


def test_an_app_without_enterprise_application_is_named_with_the_fix(scripted_module):
    tenant = RelayTenant()
    del tenant.graph_principals[RELAY_APP]
    with pytest.raises(NotFoundError) as missing:
        run(scripted_module, tenant)
    assert "App %s has no enterprise application (service principal) in tenant" % RELAY_APP in str(missing.value)
    assert "admin consent" in str(missing.value)
    assert tenant.writes() == []


def test_graph_permission_denied_names_application_read_all(scripted_module):
    tenant = RelayTenant()
    tenant.denied.add("GET servicePrincipals")
    with pytest.raises(PermissionDeniedError) as denied:
        run(scripted_module, tenant)
    assert denied.value.permission == "Application.Read.All"
    assert "Application.Read.All" in str(denied.value)


@pytest.mark.parametrize("option", ["app_id", "object_id"])
def test_an_id_that_is_not_a_guid_is_refused_before_any_request(scripted_module, option):
    tenant = RelayTenant()
    module, server = scripted_module(tenant, **dict({"app_id": RELAY_APP, "object_id": None, "display_name": None,
                                                     "state": "present"}, **{option: "relay-app"}))
    with pytest.raises(ModuleFailed) as failed:
        exchange_service_principal.manage(module)
    assert failed.value.msg.startswith("%s must be a GUID" % option) and "'relay-app'" in failed.value.msg
    assert server.requests == []
