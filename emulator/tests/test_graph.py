"""Graph endpoints: security defaults, per-user MFA, users, Conditional Access, $batch, faults and latency."""

from __future__ import annotations

import pytest

from conftest import CONTOSO_ID, FABRIKAM_ID, READONLY_APP, bearer

SECURITY_DEFAULTS = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy"
STANDARD_PLAN = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"
FABRIKAM_APP = "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8"


@pytest.fixture
def graph(emulator, http, get_token):
    """``graph(method, path, **kwargs)`` with the automation app's Graph token."""
    headers = bearer(get_token("graph"))

    def call(method: str, path: str, **kwargs):
        return http.request(method, emulator.base_url + path, headers={**headers, **kwargs.pop("headers", {})},
                            **kwargs)

    return call


def _tenant(emulator, tenant_id=CONTOSO_ID):
    return emulator.store.find_tenant(tenant_id)


def assert_graph_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    assert response.headers["request-id"] == error["innerError"]["request-id"]
    return error


# -- security defaults ---------------------------------------------------------------------------------
def test_security_defaults_get(graph):
    response = graph("GET", SECURITY_DEFAULTS, headers={"client-request-id": "abc-123"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "00000000-0000-0000-0000-000000000005"
    assert body["displayName"] == "Security Defaults" and body["description"]
    assert body["isEnabled"] is True
    assert "@odata.context" in body
    assert response.headers["client-request-id"] == "abc-123" and response.headers["request-id"]


def test_security_defaults_patch_is_204_and_changes_state(emulator, graph):
    response = graph("PATCH", SECURITY_DEFAULTS, json={"isEnabled": False})
    assert response.status_code == 204 and response.content == b""
    assert _tenant(emulator).security_defaults_enabled is False
    assert graph("GET", SECURITY_DEFAULTS).json()["isEnabled"] is False
    assert emulator.request_log[-2]["wrote"] is True and emulator.request_log[-2]["tenant"] == CONTOSO_ID
    assert emulator.request_log[-1]["wrote"] is False


@pytest.mark.parametrize("body", [{"displayName": "x"}, {"id": "1"}, {"isEnabled": "no"}, {"colour": "blue"}])
def test_security_defaults_patch_rejects_read_only_and_bad_fields(emulator, graph, body):
    assert_graph_error(graph("PATCH", SECURITY_DEFAULTS, json=body), 400, "BadRequest")
    assert _tenant(emulator).security_defaults_enabled is True


def test_security_defaults_need_policy_permissions(emulator, http, get_token):
    readonly = bearer(get_token("graph", client_id=READONLY_APP))
    for method, body in (("GET", None), ("PATCH", {"isEnabled": False})):
        response = http.request(method, emulator.base_url + SECURITY_DEFAULTS, headers=readonly, json=body)
        error = assert_graph_error(response, 403, "Authorization_RequestDenied")
        assert error["message"].startswith("Insufficient privileges to complete the operation.")
    # Policy.Read.All alone reads but does not write.
    http.patch(f"{emulator.base_url}/_emulator/tenants/contoso/apps/{READONLY_APP}",
               json={"graph_permissions": ["Policy.Read.All"]})
    reader = bearer(get_token("graph", client_id=READONLY_APP))
    assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=reader).status_code == 200
    response = http.patch(emulator.base_url + SECURITY_DEFAULTS, headers=reader, json={"isEnabled": False})
    assert_graph_error(response, 403, "Authorization_RequestDenied")
    assert _tenant(emulator).security_defaults_enabled is True


def set_permissions(emulator, http, permissions):
    http.patch(f"{emulator.base_url}/_emulator/tenants/contoso/apps/{READONLY_APP}",
               json={"graph_permissions": permissions})


@pytest.mark.parametrize("permissions, allowed", [
    (["Policy.ReadWrite.SecurityDefaults"], True),
    (["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"], True),
    (["Policy.ReadWrite.ConditionalAccess"], False),
    (["Policy.Read.All"], False),
])
def test_security_defaults_write_least_privilege_or_the_older_pair(emulator, http, get_token, permissions, allowed):
    set_permissions(emulator, http, permissions)
    token = bearer(get_token("graph", client_id=READONLY_APP))
    response = http.patch(emulator.base_url + SECURITY_DEFAULTS, headers=token, json={"isEnabled": False})
    if allowed:
        assert response.status_code == 204
    else:
        message = assert_graph_error(response, 403, "Authorization_RequestDenied")["message"]
        assert message.startswith("Insufficient privileges to complete the operation.")
        named = message.split(". ", 1)[1]
        assert named.index("Policy.ReadWrite.SecurityDefaults") < named.index("Policy.ReadWrite.ConditionalAccess")
    assert _tenant(emulator).security_defaults_enabled is not allowed


# -- per-user MFA --------------------------------------------------------------------------------------
def test_mfa_requirements_get(graph):
    response = graph("GET", "/beta/users/printer@contoso.com/authentication/requirements")
    assert response.status_code == 200
    assert response.json() == {"@odata.type": "#microsoft.graph.strongAuthenticationRequirements",
                               "perUserMfaState": "enforced"}


def test_mfa_enabled_becomes_enforced_when_a_method_is_registered(emulator, graph):
    # printer has a method registered; erp has none.
    assert graph("PATCH", "/beta/users/printer@contoso.com/authentication/requirements",
                 json={"perUserMfaState": "disabled"}).status_code == 204
    assert graph("PATCH", "/beta/users/printer@contoso.com/authentication/requirements",
                 json={"perUserMfaState": "enabled"}).status_code == 204
    assert graph("GET", "/beta/users/c0ffee00-0000-4000-8000-000000000003/authentication/requirements"
                 ).json()["perUserMfaState"] == "enforced"
    assert graph("PATCH", "/beta/users/erp@contoso.com/authentication/requirements",
                 json={"perUserMfaState": "enabled"}).status_code == 204
    assert _tenant(emulator).find_user("erp@contoso.com").per_user_mfa_state == "enabled"


@pytest.mark.parametrize("body", [{"perUserMfaState": "on"}, {"perUserMfaState": "unknownFutureValue"},
                                  {"state": "disabled"}])
def test_mfa_invalid_values_are_400(graph, body):
    response = graph("PATCH", "/beta/users/printer@contoso.com/authentication/requirements", json=body)
    assert_graph_error(response, 400, "BadRequest")


def test_mfa_requirements_exist_in_beta_only(graph):
    response = graph("GET", "/v1.0/users/printer@contoso.com/authentication/requirements")
    error = assert_graph_error(response, 400, "BadRequest")
    assert error["message"] == "Resource not found for the segment 'requirements'."


def test_mfa_write_needs_authentication_method_permission(emulator, http, get_token):
    http.patch(f"{emulator.base_url}/_emulator/tenants/contoso/apps/{READONLY_APP}",
               json={"graph_permissions": ["Policy.Read.All"]})
    token = bearer(get_token("graph", client_id=READONLY_APP))
    url = f"{emulator.base_url}/beta/users/printer@contoso.com/authentication/requirements"
    assert http.get(url, headers=token).status_code == 200
    assert_graph_error(http.patch(url, headers=token, json={"perUserMfaState": "disabled"}), 403,
                       "Authorization_RequestDenied")


# -- users ---------------------------------------------------------------------------------------------
def test_user_with_assigned_plans(graph):
    response = graph("GET", "/v1.0/users/scanner@contoso.com?$select=id,userPrincipalName,assignedPlans")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"@odata.context", "id", "userPrincipalName", "assignedPlans"}
    assert body["id"] == "c0ffee00-0000-4000-8000-000000000002"
    assert body["assignedPlans"] == [{"assignedDateTime": "2024-01-15T09:00:00Z", "capabilityStatus": "Enabled",
                                      "service": "exchange", "servicePlanId": STANDARD_PLAN}]


MAILBOX_PLANS = {"9aaf7827-d63c-4b61-89c3-182f06f82e5c", "efb87545-963c-4e0d-99df-69c6916d9eb0",
                 "4a82b400-a79f-41a4-b4e2-e94f5787b113", "1126bef5-da20-4f07-b45e-ad25d2581aa8",
                 "e9b4930a-925f-45e2-ac2a-3f7788ca6fdd", "8c3069c0-ccdb-44be-ab77-986203a67df2"}


def test_exchange_service_plans_without_a_mailbox_plan(graph):
    """E5 security add-ons only: every plan says service "exchange", and none of them is a mailbox."""
    body = graph("GET", "/v1.0/users/defender-only@contoso.com?$select=id,mail,assignedPlans").json()
    plans = body["assignedPlans"]
    assert {plan["servicePlanId"] for plan in plans} == {
        "f20fedf3-f3c3-43c3-8267-2bfdd51c0939", "34c0d7a0-a70f-4668-9238-47f9fc208882",
        "199a5c09-e0ca-4e37-8f7c-b05d533e1ea2", "113feb6c-3fe4-4440-bddc-54d774bf0318"}
    assert {plan["service"] for plan in plans} == {"exchange"}
    assert not MAILBOX_PLANS & {plan["servicePlanId"] for plan in plans}
    assert body["mail"] is None


def test_user_default_properties_and_lookup_by_id(graph):
    body = graph("GET", "/v1.0/users/c0ffee00-0000-4000-8000-000000000009").json()
    assert body["userPrincipalName"] == "alice@contoso.com" and body["mail"] == "alice@contoso.com"
    assert "assignedPlans" not in body


def test_unknown_user_is_404(graph):
    error = assert_graph_error(graph("GET", "/v1.0/users/nobody@contoso.com"), 404, "Request_ResourceNotFound")
    assert error["message"] == ("Resource 'nobody@contoso.com' does not exist or one of its queried "
                                "reference-property objects are not present.")


def test_unknown_select_property_is_400(graph):
    assert_graph_error(graph("GET", "/v1.0/users/alice@contoso.com?$select=shoeSize"), 400, "Request_BadRequest")


def test_users_need_user_read(emulator, http, get_token):
    http.patch(f"{emulator.base_url}/_emulator/tenants/contoso/apps/{READONLY_APP}",
               json={"graph_permissions": ["Policy.Read.All"]})
    token = bearer(get_token("graph", client_id=READONLY_APP))
    assert_graph_error(http.get(f"{emulator.base_url}/v1.0/users/alice@contoso.com", headers=token), 403,
                       "Authorization_RequestDenied")


def test_users_list_pages_with_next_link(emulator, graph):
    first = graph("GET", "/v1.0/users?$top=4&$select=id,userPrincipalName").json()
    assert len(first["value"]) == 4 and set(first["value"][0]) == {"id", "userPrincipalName"}
    seen = [user["userPrincipalName"] for user in first["value"]]
    link = first["@odata.nextLink"]
    for _ in range(10):  # bounded: 10 users in 4-user pages is 3 pages
        assert link.startswith(emulator.base_url)
        page = graph("GET", link[len(emulator.base_url):]).json()
        seen += [user["userPrincipalName"] for user in page["value"]]
        link = page.get("@odata.nextLink")
        if not link:
            break
    assert seen == [user.user_principal_name for user in _tenant(emulator).users.values()]


def test_users_list_rejects_bad_top(graph):
    assert_graph_error(graph("GET", "/v1.0/users?$top=5000"), 400, "Request_UnsupportedQuery")


# -- Conditional Access ----------------------------------------------------------------------------------
def test_conditional_access_policies(graph):
    body = graph("GET", "/v1.0/identity/conditionalAccess/policies").json()
    names = [policy["displayName"] for policy in body["value"]]
    assert names == ["Block legacy authentication for kiosk devices", "Require MFA for administrators (report only)"]
    assert body["value"][0]["grantControls"]["builtInControls"] == ["block"]


def test_conditional_access_policy_by_role(emulator, http, get_token):
    token = bearer(get_token("graph", tenant=FABRIKAM_ID, client_id=FABRIKAM_APP, secret="emulator-secret-fabrikam"))
    [policy] = http.get(f"{emulator.base_url}/v1.0/identity/conditionalAccess/policies", headers=token).json()["value"]
    assert policy["conditions"]["users"]["includeRoles"] == [GLOBAL_ADMINISTRATOR]
    assert policy["conditions"]["clientAppTypes"] == ["other"]
    url = emulator.base_url + "/v1.0" + ROLES_OF.format("it-admin@fabrikam.com")
    [role] = http.get(url, headers=token).json()["value"]
    assert role["roleTemplateId"] == GLOBAL_ADMINISTRATOR


# -- directory roles -------------------------------------------------------------------------------------
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ROLES_OF = "/users/{}/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,roleTemplateId"


@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_directory_roles_of_a_user(graph, version):
    response = graph("GET", f"/{version}" + ROLES_OF.format("admin@contoso.com"))
    assert response.status_code == 200, response.text
    [role] = response.json()["value"]
    assert role["@odata.type"] == "#microsoft.graph.directoryRole"
    assert role["roleTemplateId"] == GLOBAL_ADMINISTRATOR
    assert role["id"] and role["id"] != GLOBAL_ADMINISTRATOR
    assert set(role) == {"@odata.type", "id", "roleTemplateId"}
    assert graph("GET", f"/{version}" + ROLES_OF.format("printer@contoso.com")).json()["value"] == []


def test_directory_roles_through_batch_with_count(emulator, graph):
    body = {"requests": [
        {"id": "admin", "method": "GET", "url": ROLES_OF.format("c0ffee00-0000-4000-8000-000000000001") + "&$count=true",
         "headers": {"ConsistencyLevel": "eventual"}},
        {"id": "no-header", "method": "GET", "url": ROLES_OF.format("admin@contoso.com") + "&$count=true"},
        {"id": "ghost", "method": "GET", "url": ROLES_OF.format("ghost@contoso.com")},
    ]}
    responses = {item["id"]: item for item in graph("POST", "/v1.0/$batch", json=body).json()["responses"]}
    admin = responses["admin"]
    assert admin["status"] == 200 and admin["body"]["@odata.count"] == 1
    assert admin["body"]["value"][0]["roleTemplateId"] == GLOBAL_ADMINISTRATOR
    assert responses["no-header"]["status"] == 400
    assert responses["ghost"]["status"] == 404


def test_plain_transitive_member_of_lists_the_roles_too(graph):
    [role] = graph("GET", "/v1.0/users/admin@contoso.com/transitiveMemberOf?$select=id").json()["value"]
    assert role["@odata.type"] == "#microsoft.graph.directoryRole" and set(role) == {"@odata.type", "id"}


def test_directory_roles_without_a_role_permission_have_limited_information(emulator, http, get_token):
    set_permissions(emulator, http, ["User.Read.All"])
    token = bearer(get_token("graph", client_id=READONLY_APP))
    [role] = http.get(emulator.base_url + "/v1.0" + ROLES_OF.format("admin@contoso.com"), headers=token).json()["value"]
    assert role["id"] and role["roleTemplateId"] is None
    for permissions in (["User.Read.All", "RoleManagement.Read.Directory"], ["Directory.Read.All"]):
        set_permissions(emulator, http, permissions)
        token = bearer(get_token("graph", client_id=READONLY_APP))
        [role] = http.get(emulator.base_url + "/v1.0" + ROLES_OF.format("admin@contoso.com"),
                          headers=token).json()["value"]
        assert role["roleTemplateId"] == GLOBAL_ADMINISTRATOR, permissions
    set_permissions(emulator, http, ["Policy.Read.All"])
    token = bearer(get_token("graph", client_id=READONLY_APP))
    response = http.get(emulator.base_url + "/v1.0" + ROLES_OF.format("admin@contoso.com"), headers=token)
    assert_graph_error(response, 403, "Authorization_RequestDenied")


# -- unknown paths -------------------------------------------------------------------------------------
def test_unknown_segment_is_400_bad_request(graph):
    error = assert_graph_error(graph("GET", "/v1.0/frobnicators"), 400, "BadRequest")
    assert error["message"] == "Resource not found for the segment 'frobnicators'."


def test_wrong_method_is_405(graph):
    assert_graph_error(graph("DELETE", SECURITY_DEFAULTS), 405, "Request_BadRequest")


# -- $batch --------------------------------------------------------------------------------------------
def test_batch_answers_every_item_in_shuffled_order(emulator, graph):
    requests = [{"id": str(number), "method": "GET", "url": f"/users/{upn}?$select=id"}
                for number, upn in enumerate(["alice@contoso.com", "printer@contoso.com", "nobody@contoso.com",
                                              "erp@contoso.com"], start=1)]
    response = graph("POST", "/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    responses = response.json()["responses"]
    assert [item["id"] for item in responses] != ["1", "2", "3", "4"]
    by_id = {item["id"]: item for item in responses}
    assert sorted(by_id) == ["1", "2", "3", "4"]
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["id"] == "c0ffee00-0000-4000-8000-000000000009"
    assert by_id["3"]["status"] == 404
    assert by_id["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    items = [entry for entry in emulator.request_log if entry["batch"] is not None]
    assert len(items) == 4 and all(entry["tenant"] == CONTOSO_ID for entry in items)


def test_batch_writes_through_the_same_handlers(emulator, graph):
    body = {"requests": [
        {"id": "sd", "method": "PATCH", "url": "/policies/identitySecurityDefaultsEnforcementPolicy",
         "headers": {"Content-Type": "application/json"}, "body": {"isEnabled": False}},
        {"id": "read", "method": "GET", "url": "/users/alice@contoso.com"},
    ]}
    responses = {item["id"]: item for item in graph("POST", "/v1.0/$batch", json=body).json()["responses"]}
    assert responses["sd"]["status"] == 204
    assert _tenant(emulator).security_defaults_enabled is False
    outer = [entry for entry in emulator.request_log if entry["path"] == "/v1.0/$batch"][-1]
    assert outer["wrote"] is True


def test_batch_of_beta_items(emulator, graph):
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users/printer@contoso.com/authentication/requirements"}]}
    item = graph("POST", "/beta/$batch", json=body).json()["responses"][0]
    assert item["status"] == 200 and item["body"]["perUserMfaState"] == "enforced"


def test_batch_limit_is_20(graph):
    requests = [{"id": str(number), "method": "GET", "url": "/users/alice@contoso.com"} for number in range(21)]
    assert_graph_error(graph("POST", "/v1.0/$batch", json={"requests": requests}), 400, "BadRequest")
    assert graph("POST", "/v1.0/$batch", json={"requests": requests[:20]}).status_code == 200


def test_batch_item_with_body_needs_content_type(emulator, graph):
    body = {"requests": [{"id": "1", "method": "PATCH", "url": "/policies/identitySecurityDefaultsEnforcementPolicy",
                          "body": {"isEnabled": False}}]}
    assert_graph_error(graph("POST", "/v1.0/$batch", json=body), 400, "BadRequest")
    assert _tenant(emulator).security_defaults_enabled is True


def test_batch_items_are_authorised_each(emulator, http, get_token):
    token = bearer(get_token("graph", client_id=READONLY_APP))
    body = {"requests": [{"id": "1", "method": "GET", "url": "/policies/identitySecurityDefaultsEnforcementPolicy"},
                         {"id": "2", "method": "GET", "url": "/users/alice@contoso.com"}]}
    responses = {item["id"]: item for item in
                 http.post(f"{emulator.base_url}/v1.0/$batch", headers=token, json=body).json()["responses"]}
    assert responses["1"]["status"] == 403 and responses["2"]["status"] == 200


def test_batch_item_429_from_fault_injection(emulator, http, graph):
    http.post(f"{emulator.base_url}/_emulator/faults",
              json={"path": "/users/printer", "status": 429, "count": 1, "retry_after": 7})
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users/alice@contoso.com"},
                         {"id": "2", "method": "GET", "url": "/users/printer@contoso.com"}]}
    response = graph("POST", "/v1.0/$batch", json=body)
    assert response.status_code == 200
    responses = {item["id"]: item for item in response.json()["responses"]}
    assert responses["1"]["status"] == 200
    assert responses["2"]["status"] == 429
    assert responses["2"]["headers"]["Retry-After"] == "7"
    assert responses["2"]["body"]["error"]["code"] == "TooManyRequests"
    # The fault was used up: the retry succeeds.
    retry = graph("POST", "/v1.0/$batch", json={"requests": [body["requests"][1]]}).json()["responses"][0]
    assert retry["status"] == 200


# -- faults and latency ----------------------------------------------------------------------------------
def test_fault_injection_throttles_n_requests_then_recovers(emulator, http, graph):
    created = http.post(f"{emulator.base_url}/_emulator/faults",
                        json={"path": "identitySecurityDefaults", "method": "GET", "status": 429, "count": 2,
                              "retry_after": 3})
    assert created.status_code == 201
    statuses = []
    for _ in range(3):
        response = graph("GET", SECURITY_DEFAULTS)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "3"
            assert_graph_error(response, 429, "TooManyRequests")
    assert statuses == [429, 429, 200]
    # PATCH was not targeted.
    assert http.get(f"{emulator.base_url}/_emulator/faults").json()["faults"] == []
    assert [entry["fault"] for entry in emulator.request_log[-3:]] == [True, True, False]


def test_fault_with_custom_status_and_body(emulator, http, graph):
    http.post(f"{emulator.base_url}/_emulator/faults",
              json={"path": "^/v1.0/users", "status": 503, "retry_after": None, "body": "upstream down"})
    response = graph("GET", "/v1.0/users/alice@contoso.com")
    assert response.status_code == 503 and response.text == "upstream down"
    assert "Retry-After" not in response.headers


def test_fault_on_token_endpoint_has_entra_shape(emulator, http):
    http.post(f"{emulator.base_url}/_emulator/faults", json={"path": "/oauth2/v2.0/token", "status": 429})
    response = http.post(f"{emulator.base_url}/{CONTOSO_ID}/oauth2/v2.0/token",
                         data={"grant_type": "client_credentials", "client_id": "x", "scope": "y"})
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["error"] == "temporarily_unavailable" and body["error_description"].startswith("AADSTS")


def test_latency_is_added_to_each_request(emulator, http, graph, monkeypatch):
    import m365_emulator.core.dispatch as server

    slept = []
    monkeypatch.setattr(server.time, "sleep", lambda seconds: slept.append(seconds))
    assert http.post(f"{emulator.base_url}/_emulator/latency", json={"ms": 250}).json() == {"ms": 250}
    graph("GET", SECURITY_DEFAULTS)
    graph("GET", SECURITY_DEFAULTS)
    assert slept == [0.25, 0.25]


def test_keep_alive_reuses_one_connection(emulator, graph):
    for _ in range(20):
        assert graph("GET", SECURITY_DEFAULTS).status_code == 200
    # requests.Session pools connections; one TLS connection carried every request.
    assert len(emulator._server.connections) == 1


def test_keep_alive_carries_requests_with_bodies_on_one_connection(emulator, graph):
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users/alice@contoso.com"}]}
    for _ in range(5):
        assert graph("POST", "/v1.0/$batch", json=body).status_code == 200
        assert graph("PATCH", SECURITY_DEFAULTS, json={"isEnabled": True}).status_code == 204
        assert graph("GET", SECURITY_DEFAULTS).status_code == 200
    # The token request, the $batch and PATCH bodies and the GETs: one TLS connection accepted for all.
    assert emulator._server.accepted == 1
