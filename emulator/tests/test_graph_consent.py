"""Graph: service principals, app registrations and app role assignments (admin consent of application
permissions), and how a consent reaches the next token."""

from __future__ import annotations

import datetime

import jwt
import pytest

from conftest import (AUTOMATION_APP, AUTOMATION_SP, CONTOSO_ID, READONLY_APP, RELAY_APP, RELAY_OBJECT_ID, RELAY_SP,
                      bearer)
from m365_emulator.state import derived_id
from test_graph import assert_graph_error

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MANAGE_AS_APP = "dc50a0fb-09a3-484d-be87-e023b12c6440"
SEND_AS_APP = "7146a1f0-8703-45b3-9eae-527a64c00995"
ASSIGNMENT_KEYS = {"id", "appRoleId", "principalId", "principalType", "principalDisplayName", "resourceId",
                   "resourceDisplayName", "createdDateTime", "deletedDateTime"}


@pytest.fixture
def graph(emulator, http, get_token):
    """``graph(method, path, client_id=..., **kwargs)`` with a Graph token of that app (the automation app)."""

    def call(method: str, path: str, client_id: str = AUTOMATION_APP, **kwargs):
        headers = {**bearer(get_token("graph", client_id=client_id)), **kwargs.pop("headers", {})}
        return http.request(method, emulator.base_url + path, headers=headers, timeout=30, **kwargs)

    return call


@pytest.fixture
def exchange_sp(graph) -> str:
    """The object id of Office 365 Exchange Online's service principal in contoso."""
    reply = graph("GET", f"/v1.0/servicePrincipals(appId='{EXCHANGE_APP_ID}')")
    assert reply.status_code == 200, reply.text
    return reply.json()["id"]


def consent_body(principal: str = RELAY_SP, resource: str = "", role: str = SEND_AS_APP) -> dict[str, str]:
    return {"principalId": principal, "resourceId": resource, "appRoleId": role}


def roles_of(token: str) -> list[str]:
    return jwt.decode(token, options={"verify_signature": False}).get("roles", [])


def app(emulator, client_id: str):
    with emulator.store.lock:
        return emulator.store.find_tenant(CONTOSO_ID).apps[client_id]


# -- service principals and app registrations ------------------------------------------------------------------

def test_the_exchange_resource_principal_and_its_app_roles(graph):
    reply = graph("GET", f"/v1.0/servicePrincipals(appId='{EXCHANGE_APP_ID}')")
    assert reply.status_code == 200
    body = reply.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#servicePrincipals/$entity")
    assert body["id"] == derived_id("resource-service-principal", CONTOSO_ID, EXCHANGE_APP_ID)
    assert body["displayName"] == "Office 365 Exchange Online" and body["servicePrincipalType"] == "Application"
    roles = {role["value"]: role for role in body["appRoles"]}
    assert set(roles) == {"Exchange.ManageAsApp", "SMTP.SendAsApp", "full_access_as_app", "IMAP.AccessAsApp",
                          "POP.AccessAsApp"}
    assert roles["Exchange.ManageAsApp"]["id"] == MANAGE_AS_APP and roles["SMTP.SendAsApp"]["id"] == SEND_AS_APP
    assert all(role["allowedMemberTypes"] == ["Application"] and role["isEnabled"] is True
               for role in roles.values())


def test_the_resource_principal_differs_per_tenant(emulator, http, graph, get_token, exchange_sp):
    fabrikam = http.get(f"{emulator.base_url}/v1.0/servicePrincipals(appId='{EXCHANGE_APP_ID}')",
                        headers=bearer(get_token("graph", tenant="fabrikam.com",
                                                 client_id="4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8",
                                                 secret="emulator-secret-fabrikam")))
    assert fabrikam.status_code == 200 and fabrikam.json()["id"] != exchange_sp


def test_an_app_has_an_enterprise_application_apart_from_its_registration(graph):
    principal = graph("GET", f"/v1.0/servicePrincipals(appId='{RELAY_APP}')").json()
    assert (principal["id"], principal["appId"], principal["displayName"]) == (RELAY_SP, RELAY_APP, "smtp relay app")
    assert principal["appRoles"] == [] and principal["servicePrincipalType"] == "Application"
    registration = graph("GET", f"/v1.0/applications(appId='{RELAY_APP}')").json()
    assert registration["@odata.context"].endswith("#applications/$entity")
    assert (registration["id"], registration["appId"]) == (RELAY_OBJECT_ID, RELAY_APP)
    assert graph("GET", f"/v1.0/servicePrincipals/{RELAY_SP}").json()["appId"] == RELAY_APP
    # The registration's object id is not a service principal.
    assert_graph_error(graph("GET", f"/v1.0/servicePrincipals/{RELAY_OBJECT_ID}"), 404, "Request_ResourceNotFound")


def test_an_app_without_an_explicit_enterprise_application_gets_a_stable_one(emulator, graph):
    derived = graph("GET", f"/v1.0/servicePrincipals(appId='{READONLY_APP}')").json()["id"]
    assert derived == app(emulator, READONLY_APP).service_principal_id == derived_id("service-principal", READONLY_APP)
    assert derived != app(emulator, READONLY_APP).object_id


@pytest.mark.parametrize("path", ["/v1.0/servicePrincipals(appId='{missing}')", "/v1.0/servicePrincipals/{missing}",
                                  "/v1.0/applications(appId='{missing}')"])
def test_an_unknown_principal_or_application_is_404(graph, path):
    missing = "b0000000-0000-4000-8000-000000000000"
    error = assert_graph_error(graph("GET", path.format(missing=missing)), 404, "Request_ResourceNotFound")
    assert error["message"].startswith("Resource '") and missing in error["message"]
    assert error["message"].endswith("does not exist or one of its queried reference-property objects are not "
                                     "present.")


def test_the_alternate_key_must_be_quoted(graph):
    assert_graph_error(graph("GET", f"/v1.0/servicePrincipals(appId={RELAY_APP})"), 400, "Request_BadRequest")


def test_select_and_filter(graph):
    selected = graph("GET", f"/v1.0/servicePrincipals(appId='{RELAY_APP}')?$select=id,appId").json()
    assert set(selected) == {"@odata.context", "id", "appId"}
    listed = graph("GET", f"/v1.0/servicePrincipals?$filter=appId eq '{RELAY_APP.upper()}'&$select=id").json()
    assert listed["value"] == [{"id": RELAY_SP}]
    by_name = graph("GET", "/v1.0/servicePrincipals?$filter=displayName eq 'Office 365 Exchange Online'").json()
    assert [principal["appId"] for principal in by_name["value"]] == [EXCHANGE_APP_ID]
    everything = graph("GET", "/v1.0/servicePrincipals").json()["value"]
    assert {GRAPH_APP_ID, EXCHANGE_APP_ID, RELAY_APP, AUTOMATION_APP, READONLY_APP} == {p["appId"] for p in everything}
    applications = graph("GET", f"/v1.0/applications?$filter=appId eq '{RELAY_APP}'").json()["value"]
    assert [application["id"] for application in applications] == [RELAY_OBJECT_ID]
    assert_graph_error(graph("GET", "/v1.0/servicePrincipals?$filter=tags eq 'x'"), 400, "Request_UnsupportedQuery")
    assert_graph_error(graph("GET", "/v1.0/servicePrincipals?$filter=appId eq"), 400, "BadRequest")
    assert_graph_error(graph("GET", "/v1.0/servicePrincipals?$select=colour"), 400, "Request_BadRequest")


def test_reading_principals_needs_an_application_read_permission(emulator, http, graph):
    for path in (f"/v1.0/servicePrincipals(appId='{RELAY_APP}')", "/v1.0/servicePrincipals",
                 f"/v1.0/applications(appId='{RELAY_APP}')", f"/v1.0/servicePrincipals/{RELAY_SP}/appRoleAssignments"):
        error = assert_graph_error(graph("GET", path, client_id=READONLY_APP), 403, "Authorization_RequestDenied")
        assert error["message"] == "Insufficient privileges to complete the operation."
    with emulator.store.lock:
        app(emulator, READONLY_APP).graph_permissions = ["Directory.Read.All"]
    assert graph("GET", f"/v1.0/servicePrincipals(appId='{RELAY_APP}')", client_id=READONLY_APP).status_code == 200


# -- app role assignments ----------------------------------------------------------------------------------------

def test_the_resource_lists_who_holds_its_roles(graph, exchange_sp):
    body = graph("GET", f"/v1.0/servicePrincipals/{exchange_sp}/appRoleAssignedTo").json()
    assert body["@odata.context"].endswith(f"#servicePrincipals('{exchange_sp}')/appRoleAssignedTo")
    held = {(row["principalId"], row["appRoleId"]) for row in body["value"]}
    assert held == {(AUTOMATION_SP, MANAGE_AS_APP), (AUTOMATION_SP, SEND_AS_APP),
                    (derived_id("service-principal", READONLY_APP), MANAGE_AS_APP)}
    row = next(row for row in body["value"] if row["appRoleId"] == SEND_AS_APP)
    assert set(row) == ASSIGNMENT_KEYS
    assert row["principalType"] == "ServicePrincipal" and row["principalDisplayName"] == "m365ops automation"
    assert row["resourceId"] == exchange_sp and row["resourceDisplayName"] == "Office 365 Exchange Online"
    assert row["deletedDateTime"] is None and len(row["id"]) == 43


def test_a_client_lists_the_roles_it_holds_on_every_resource(graph, exchange_sp):
    rows = graph("GET", f"/v1.0/servicePrincipals/{AUTOMATION_SP}/appRoleAssignments").json()["value"]
    by_resource = {}
    for row in rows:
        by_resource.setdefault(row["resourceDisplayName"], set()).add(row["principalId"])
    assert set(by_resource) == {"Office 365 Exchange Online", "Microsoft Graph"}
    assert len([row for row in rows if row["resourceId"] == exchange_sp]) == 2
    assert graph("GET", f"/v1.0/servicePrincipals/{RELAY_SP}/appRoleAssignments").json()["value"] == []


def test_assignment_lists_page_with_top(emulator, graph):
    first = graph("GET", f"/v1.0/servicePrincipals/{AUTOMATION_SP}/appRoleAssignments?$top=3").json()
    rows, body, pages = list(first["value"]), first, 1
    while "@odata.nextLink" in body:
        assert body["@odata.nextLink"].startswith(emulator.base_url + "/v1.0/") and pages < 10
        body = graph("GET", body["@odata.nextLink"][len(emulator.base_url):]).json()
        rows += body["value"]
        pages += 1
    everything = graph("GET", f"/v1.0/servicePrincipals/{AUTOMATION_SP}/appRoleAssignments").json()["value"]
    assert pages > 1 and [row["id"] for row in rows] == [row["id"] for row in everything]


def test_consent_makes_the_next_exchange_token_carry_the_role(emulator, graph, get_token, exchange_sp):
    assert roles_of(get_token("exchange", client_id=RELAY_APP)) == []
    reply = graph("POST", f"/v1.0/servicePrincipals/{exchange_sp}/appRoleAssignedTo",
                  json=consent_body(resource=exchange_sp))
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["@odata.context"].endswith(f"#servicePrincipals('{exchange_sp}')/appRoleAssignedTo/$entity")
    assert set(created) - {"@odata.context"} == ASSIGNMENT_KEYS
    assert (created["principalId"], created["resourceId"], created["appRoleId"]) == (RELAY_SP, exchange_sp,
                                                                                     SEND_AS_APP)
    made = datetime.datetime.fromisoformat(created["createdDateTime"].replace("Z", "+00:00"))
    assert abs(datetime.datetime.now(datetime.timezone.utc) - made) < datetime.timedelta(minutes=1)
    assert emulator.request_log[-1]["wrote"] is True
    assert app(emulator, RELAY_APP).exchange_permissions == ["SMTP.SendAsApp"]
    assert roles_of(get_token("exchange", client_id=RELAY_APP)) == ["SMTP.SendAsApp"]
    # The same assignment, by the same id, from both ends.
    listed = graph("GET", f"/v1.0/servicePrincipals/{exchange_sp}/appRoleAssignedTo").json()["value"]
    assert {**created, "@odata.context": None} == {**next(row for row in listed if row["id"] == created["id"]),
                                                   "@odata.context": None}
    [held] = graph("GET", f"/v1.0/servicePrincipals/{RELAY_SP}/appRoleAssignments").json()["value"]
    assert held["id"] == created["id"]


def test_a_duplicate_consent_is_400(graph, exchange_sp):
    path = f"/v1.0/servicePrincipals/{exchange_sp}/appRoleAssignedTo"
    assert graph("POST", path, json=consent_body(resource=exchange_sp)).status_code == 201
    error = assert_graph_error(graph("POST", path, json=consent_body(resource=exchange_sp)), 400,
                               "Request_BadRequest")
    assert error["message"] == "Permission being assigned already exists on the object."
    already = consent_body(principal=AUTOMATION_SP, resource=exchange_sp, role=MANAGE_AS_APP)
    assert_graph_error(graph("POST", path, json=already), 400, "Request_BadRequest")


@pytest.mark.parametrize("case, status, code", [
    ("unknown_role", 400, "Request_BadRequest"),
    ("graph_role_on_exchange", 400, "Request_BadRequest"),
    ("unknown_principal", 404, "Request_ResourceNotFound"),
    ("registration_object_id", 404, "Request_ResourceNotFound"),
    ("other_resource_in_body", 400, "Request_BadRequest"),
    ("missing_role", 400, "Request_BadRequest"),
    ("not_a_guid", 400, "Request_BadRequest"),
    ("unknown_property", 400, "Request_BadRequest"),
    ("unknown_resource_in_url", 404, "Request_ResourceNotFound"),
])
def test_consent_refusals(emulator, graph, exchange_sp, case, status, code):
    body = consent_body(resource=exchange_sp)
    path_resource = exchange_sp
    if case == "unknown_role":
        body["appRoleId"] = "b0000000-0000-4000-8000-000000000000"
    elif case == "graph_role_on_exchange":
        body["appRoleId"] = derived_id("graph-app-role", "AuditLog.Read.All")
    elif case == "unknown_principal":
        body["principalId"] = "b0000000-0000-4000-8000-000000000000"
    elif case == "registration_object_id":
        body["principalId"] = RELAY_OBJECT_ID
    elif case == "other_resource_in_body":
        body["resourceId"] = RELAY_SP
    elif case == "missing_role":
        del body["appRoleId"]
    elif case == "not_a_guid":
        body["appRoleId"] = "SMTP.SendAsApp"
    elif case == "unknown_property":
        body["consentType"] = "AllPrincipals"
    elif case == "unknown_resource_in_url":
        path_resource = "b0000000-0000-4000-8000-000000000000"
    reply = graph("POST", f"/v1.0/servicePrincipals/{path_resource}/appRoleAssignedTo", json=body)
    error = assert_graph_error(reply, status, code)
    if case == "unknown_role":
        assert error["message"] == f"Permission being assigned was not found on application '{EXCHANGE_APP_ID}'."
    assert app(emulator, RELAY_APP).exchange_permissions == []


def test_consent_needs_app_role_assignment_write(emulator, graph, exchange_sp):
    path = f"/v1.0/servicePrincipals/{exchange_sp}/appRoleAssignedTo"
    with emulator.store.lock:
        app(emulator, READONLY_APP).graph_permissions = ["Application.Read.All", "Application.ReadWrite.All"]
    assert graph("GET", path, client_id=READONLY_APP).status_code == 200
    refused = graph("POST", path, client_id=READONLY_APP, json=consent_body(resource=exchange_sp))
    assert_graph_error(refused, 403, "Authorization_RequestDenied")
    assert app(emulator, RELAY_APP).exchange_permissions == []
    [assignment] = [row for row in graph("GET", path).json()["value"] if row["principalId"] == AUTOMATION_SP
                    and row["appRoleId"] == SEND_AS_APP]
    deleted = graph("DELETE", f"{path}/{assignment['id']}", client_id=READONLY_APP)
    assert_graph_error(deleted, 403, "Authorization_RequestDenied")
    assert "SMTP.SendAsApp" in app(emulator, AUTOMATION_APP).exchange_permissions


def test_consent_through_the_clients_app_role_assignments(emulator, graph, get_token, exchange_sp):
    path = f"/v1.0/servicePrincipals/{RELAY_SP}/appRoleAssignments"
    mismatched = graph("POST", path, json=consent_body(principal=AUTOMATION_SP, resource=exchange_sp))
    assert_graph_error(mismatched, 400, "Request_BadRequest")
    reply = graph("POST", path, json=consent_body(resource=exchange_sp))
    assert reply.status_code == 201 and reply.json()["@odata.context"].endswith(
        f"#servicePrincipals('{RELAY_SP}')/appRoleAssignments/$entity")
    assert roles_of(get_token("exchange", client_id=RELAY_APP)) == ["SMTP.SendAsApp"]
    assert graph("DELETE", f"{path}/{reply.json()['id']}").status_code == 204
    assert roles_of(get_token("exchange", client_id=RELAY_APP)) == []


def test_revoking_consent_and_deleting_twice(emulator, graph, get_token, exchange_sp):
    path = f"/v1.0/servicePrincipals/{exchange_sp}/appRoleAssignedTo"
    created = graph("POST", path, json=consent_body(resource=exchange_sp)).json()
    deleted = graph("DELETE", f"{path}/{created['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert emulator.request_log[-1]["wrote"] is True
    assert app(emulator, RELAY_APP).exchange_permissions == []
    assert roles_of(get_token("exchange", client_id=RELAY_APP)) == []
    assert_graph_error(graph("DELETE", f"{path}/{created['id']}"), 404, "Request_ResourceNotFound")
    # An assignment is only found under the resource or client it belongs to.
    [graph_role] = [row for row in graph("GET", f"/v1.0/servicePrincipals/{AUTOMATION_SP}/appRoleAssignments")
                    .json()["value"] if row["resourceDisplayName"] == "Microsoft Graph"][:1]
    assert_graph_error(graph("DELETE", f"{path}/{graph_role['id']}"), 404, "Request_ResourceNotFound")
    # A consent given again gets the same id: a read after a write finds it.
    assert graph("POST", path, json=consent_body(resource=exchange_sp)).json()["id"] == created["id"]


def test_graph_permissions_are_assignments_on_microsoft_graph(emulator, graph, get_token):
    graph_sp = graph("GET", f"/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')").json()
    audit = next(role for role in graph_sp["appRoles"] if role["value"] == "AuditLog.Read.All")
    reply = graph("POST", f"/v1.0/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo",
                  json=consent_body(resource=graph_sp["id"], role=audit["id"]))
    assert reply.status_code == 201
    assert app(emulator, RELAY_APP).graph_permissions == ["AuditLog.Read.All"]
    assert roles_of(get_token("graph", client_id=RELAY_APP)) == ["AuditLog.Read.All"]


def test_consent_inside_a_batch(emulator, graph, get_token, exchange_sp):
    reply = graph("POST", "/v1.0/$batch", json={"requests": [
        {"id": "consent", "method": "POST", "url": f"/servicePrincipals/{exchange_sp}/appRoleAssignedTo",
         "headers": {"Content-Type": "application/json"}, "body": consent_body(resource=exchange_sp)},
        {"id": "principal", "method": "GET", "url": f"/servicePrincipals(appId='{RELAY_APP}')?$select=id"},
        {"id": "missing", "method": "GET", "url": "/servicePrincipals/b0000000-0000-4000-8000-000000000000"},
    ]})
    assert reply.status_code == 200
    answers = {item["id"]: item for item in reply.json()["responses"]}
    assert answers["consent"]["status"] == 201 and answers["consent"]["body"]["appRoleId"] == SEND_AS_APP
    assert answers["principal"]["status"] == 200 and answers["principal"]["body"]["id"] == RELAY_SP
    assert answers["missing"]["status"] == 404
    assert emulator.request_log[-1]["wrote"] is True
    assert roles_of(get_token("exchange", client_id=RELAY_APP)) == ["SMTP.SendAsApp"]
