# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""smtp_app_consent: SMTP.SendAsApp as an app role assignment, found by the role's value, written only on drift."""

from __future__ import annotations

import pytest

from module_harness import ModuleFailed
from relay_tenant import EXCHANGE_APP, RELAY_APP, RELAY_SP, SEND_AS_APP_ROLE_ID, RelayTenant

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError, PermissionDeniedError
from ansible_collections.m365ops.smtp_auth.plugins.modules import smtp_app_consent

RESOURCE = "e0e0e0e0-0000-4000-8000-000000000001"


def run(scripted_module, tenant, check_mode=False, **params):
    module, server = scripted_module(tenant, check_mode=check_mode, **dict({"app_id": RELAY_APP, "state": "present"},
                                                                           **params))
    return smtp_app_consent.manage(module), server


def graph_writes(server):
    return [(request["method"], request["path"], request["body"]) for request in server.requests
            if request["method"] in ("POST", "PATCH", "DELETE") and not request["path"].endswith("$batch")
            and not request["path"].startswith("/adminapi/")]


def tenant_with_other_permissions():
    """The relay app already holds three other roles: its assignments span two pages."""
    tenant = RelayTenant()
    tenant.assignments[RELAY_SP] = [{"id": "other-%d" % number, "principalId": RELAY_SP, "resourceId": RESOURCE,
                                     "appRoleId": "other-role-%d" % number} for number in range(3)]
    return tenant


def test_present_assigns_the_role_found_by_its_value_then_is_idempotent_across_pages(scripted_module):
    tenant = tenant_with_other_permissions()
    result, server = run(scripted_module, tenant)

    assert graph_writes(server) == [("POST", "/v1.0/servicePrincipals/%s/appRoleAssignments" % RELAY_SP,
                                     {"principalId": RELAY_SP, "resourceId": RESOURCE,
                                      "appRoleId": SEND_AS_APP_ROLE_ID})]
    assert result["changed"] is True and (result["before"], result["after"]) == (False, True)
    assert result["diff"] == {"before": {"granted": False}, "after": {"granted": True}}
    assert result["assignment_id"] == tenant.assignments[RELAY_SP][-1]["id"]
    assert (result["app_role_id"], result["principal_id"], result["resource_id"]) == (SEND_AS_APP_ROLE_ID, RELAY_SP,
                                                                                      RESOURCE)

    again, server = run(scripted_module, tenant)
    assert again["changed"] is False and graph_writes(server) == []
    assert again["assignment_id"] == result["assignment_id"]
    # The SMTP.SendAsApp assignment is the fourth: only found by following @odata.nextLink.
    assert any("skip=2" in request["path"] for request in server.requests)


def test_the_role_id_comes_from_the_tenant_not_from_a_constant(scripted_module):
    tenant = RelayTenant()
    tenant.graph_principals[EXCHANGE_APP]["appRoles"][1]["id"] = "another-cloud-role-id"
    result, server = run(scripted_module, tenant)
    assert graph_writes(server)[0][2]["appRoleId"] == "another-cloud-role-id"


def test_check_mode_reports_and_writes_nothing(scripted_module):
    tenant = RelayTenant()
    result, server = run(scripted_module, tenant, check_mode=True)
    assert result["changed"] is True and result["after"] is True and result["assignment_id"] is None
    assert graph_writes(server) == [] and tenant.consented() == []


def test_absent_deletes_only_that_assignment(scripted_module):
    tenant = tenant_with_other_permissions()
    tenant.assignments[RELAY_SP].append({"id": "send-as", "principalId": RELAY_SP, "resourceId": RESOURCE,
                                         "appRoleId": SEND_AS_APP_ROLE_ID})
    result, server = run(scripted_module, tenant, state="absent")
    assert graph_writes(server) == [("DELETE", "/v1.0/servicePrincipals/%s/appRoleAssignments/send-as" % RELAY_SP,
                                     None)]
    assert result["changed"] is True and result["after"] is False and result["assignment_id"] is None
    assert tenant.consented() == ["other-role-0", "other-role-1", "other-role-2"]

    again, server = run(scripted_module, tenant, state="absent")
    assert again["changed"] is False and graph_writes(server) == []


def test_an_app_without_enterprise_application_is_named(scripted_module):
    tenant = RelayTenant()
    del tenant.graph_principals[RELAY_APP]
    with pytest.raises(NotFoundError) as missing:
        run(scripted_module, tenant)
    assert "App %s has no enterprise application (service principal)" % RELAY_APP in str(missing.value)


@pytest.mark.parametrize("denied, permission, operation", [
    ("POST appRoleAssignments", "AppRoleAssignment.ReadWrite.All and Application.Read.All", "granting SMTP.SendAsApp to app"),
    ("GET appRoleAssignments", "Application.Read.All", "reading the app role assignments of app"),
])
def test_permission_denied_names_the_permission_of_the_operation(scripted_module, denied, permission, operation):
    tenant = RelayTenant()
    tenant.denied.add(denied)
    with pytest.raises(PermissionDeniedError) as refused:
        run(scripted_module, tenant)
    assert refused.value.permission == permission
    assert permission in str(refused.value) and operation in str(refused.value)
    assert tenant.consented() == []


def test_an_app_id_that_is_not_a_guid_is_refused_before_any_request(scripted_module):
    module, server = scripted_module(RelayTenant(), app_id="relay", state="present")
    with pytest.raises(ModuleFailed) as failed:
        smtp_app_consent.manage(module)
    assert "app_id must be a GUID" in failed.value.msg
    assert server.requests == []
