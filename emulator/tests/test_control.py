"""The /_emulator/ control API and the Emulator object's own surface."""

from __future__ import annotations

import json
import ssl

import pytest
import requests

from conftest import AUTOMATION_APP, CONTOSO_ID, bearer, https_session
from m365_emulator import Emulator
from m365_emulator.state import DEFAULT_BEHAVIOUR

SECURITY_DEFAULTS = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy"


@pytest.fixture
def control(emulator, http):
    def call(method: str, path: str, **kwargs):
        return http.request(method, f"{emulator.base_url}/_emulator/{path}", **kwargs)
    return call


def test_state_snapshot(control):
    state = control("GET", "state").json()
    assert [tenant["name"] for tenant in state["tenants"]] == ["contoso", "fabrikam"]
    assert state["behaviour"] == DEFAULT_BEHAVIOUR
    assert state["emulator"]["token_lifetime"] == 3599


def test_request_log_since_and_clear(emulator, control, http, get_token):
    get_token("graph")
    entries = control("GET", "requests").json()["requests"]
    assert [entry["method"] for entry in entries] == ["GET", "POST"]
    token_entry = entries[1]
    assert token_entry["status"] == 200 and token_entry["client_id"] == AUTOMATION_APP
    assert token_entry["tenant"] == CONTOSO_ID
    assert set(token_entry) >= {"seq", "time", "method", "path", "tenant", "cmdlet", "status", "wrote", "client_id"}
    assert control("GET", f"requests?since={token_entry['seq']}").json()["requests"] == []
    # Control calls are not logged themselves.
    assert len(emulator.request_log) == 2
    assert control("DELETE", "requests").status_code == 204
    assert emulator.request_log == []


def test_reset_restores_the_starting_seed(emulator, control, http, get_token):
    token = bearer(get_token("graph"))
    http.patch(emulator.base_url + SECURITY_DEFAULTS, headers=token, json={"isEnabled": False})
    control("POST", "faults", json={"path": "/nothing"})
    control("POST", "latency", json={"ms": 5})
    assert control("POST", "reset").status_code == 200
    assert emulator.store.find_tenant("contoso.com").security_defaults_enabled is True
    assert control("GET", "faults").json()["faults"] == []
    assert emulator.latency_ms == 0
    # Apps keep their generated certificates after a reset.
    app = emulator.store.find_app(AUTOMATION_APP)[1]
    assert emulator.app_certificates[AUTOMATION_APP].certificate_pem in app.certificates


def test_reset_with_a_seed_document(emulator, control):
    document = {"tenants": [{"name": "tailspin", "id": "11111111-2222-4333-8444-555555555555",
                             "users": [{"user_principal_name": "mfp@tailspin.onmicrosoft.com"}],
                             "apps": [{"client_id": "aaaaaaaa-0000-4000-8000-000000000001", "secrets": ["s"]}]}]}
    assert control("POST", "reset", json=document).status_code == 200
    assert [tenant.name for tenant in emulator.store.tenants] == ["tailspin"]
    assert emulator.connection_info()["tenants"][0]["apps"][0]["certificate"]["pfx_path"]
    bad = control("POST", "reset", json={"tenants": [{"name": "x", "users": [{"upn": "nope"}]}]})
    assert bad.status_code == 400 and "unknown keys" in bad.json()["error"]["message"]
    assert [tenant.name for tenant in emulator.store.tenants] == ["tailspin"]


def test_faults_crud(control):
    created = control("POST", "faults", json={"cmdlet": "Set-CASMailbox", "status": 503, "count": 3}).json()
    assert created["cmdlet"] == "Set-CASMailbox" and created["count"] == 3
    listed = control("GET", "faults").json()["faults"]
    assert [fault["id"] for fault in listed] == [created["id"]]
    assert control("DELETE", f"faults/{created['id']}").status_code == 204
    assert control("GET", "faults").json()["faults"] == []
    control("POST", "faults", json=[{"path": "a"}, {"path": "b"}])
    assert len(control("GET", "faults").json()["faults"]) == 2
    assert control("DELETE", "faults").status_code == 204
    assert control("GET", "faults").json()["faults"] == []


@pytest.mark.parametrize("spec", [{"status": 200}, {"path": "("}, {"count": 0}, {"colour": "red"},
                                  {"retry_after": -1}, {"retry_after": "soon"}, {"retry_after": True},
                                  {"ratio": 0}, {"ratio": 1.5}, {"ratio": True}, {"seed": "x"}])
def test_invalid_faults_are_400(control, spec):
    response = control("POST", "faults", json=spec)
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_fault_with_fractional_retry_after_through_the_control_api(control):
    created = control("POST", "faults", json={"path": "/users/", "status": 429, "retry_after": 1.5})
    assert created.status_code == 201 and created.json()["retry_after"] == 1.5


def test_fault_targets_a_cmdlet(emulator, http, get_token):
    emulator.add_fault({"cmdlet": "Get-TransportConfig", "status": 429, "retry_after": 2})
    response = http.post(f"{emulator.base_url}/adminapi/beta/{CONTOSO_ID}/InvokeCommand",
                         headers=bearer(get_token("exchange")),
                         json={"CmdletInput": {"CmdletName": "Get-TransportConfig", "Parameters": {}}})
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    assert emulator.request_log[-1]["cmdlet"] == "Get-TransportConfig"


def test_unlimited_fault_until_deleted(emulator, http, control, get_token):
    control("POST", "faults", json={"path": "identitySecurity", "status": 503, "count": None})
    token = bearer(get_token("graph"))
    assert [http.get(emulator.base_url + SECURITY_DEFAULTS, headers=token).status_code for _ in range(3)] == [503] * 3
    control("DELETE", "faults")
    assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=token).status_code == 200


def test_a_storm_hits_about_its_share_the_same_way_for_the_same_seed_and_within_its_count(emulator, http, control,
                                                                                          get_token):
    token = bearer(get_token("graph"))

    def statuses(fault, requests):
        control("DELETE", "faults")
        control("POST", "faults", json=dict({"path": "identitySecurity", "status": 429}, **fault))
        return [http.get(emulator.base_url + SECURITY_DEFAULTS, headers=token).status_code for _ in range(requests)]

    storm = statuses({"count": None, "ratio": 0.5, "seed": 7}, 40)
    assert 10 <= storm.count(429) <= 30 and set(storm) == {200, 429}
    assert statuses({"count": None, "ratio": 0.5, "seed": 7}, 40) == storm
    assert statuses({"count": None, "ratio": 0.5, "seed": 8}, 40) != storm
    assert statuses({"count": 3, "ratio": 0.5}, 40).count(429) == 3


def test_a_storm_fault_reports_what_it_saw(control):
    created = control("POST", "faults", json={"path": "x", "ratio": 0.25, "count": None}).json()
    assert created["ratio"] == 0.25 and created["seen"] == 0 and created["hits"] == 0


def test_behaviour_patch_is_validated(emulator, control):
    assert control("GET", "behaviour").json() == DEFAULT_BEHAVIOUR
    changed = control("PATCH", "behaviour", json={"set_response": "object", "basic_auth_retired": True})
    assert changed.status_code == 200 and changed.json()["set_response"] == "object"
    assert emulator.store.behaviour["basic_auth_retired"] is True
    for bad in ({"set_response": "maybe"}, {"no_such_switch": 1}, {"basic_auth_retired": "yes"},
                {"blocker_order": ["credentials", "nonsense"]}, {"exchange_page_size": 0}):
        assert control("PATCH", "behaviour", json=bad).status_code == 400, bad
    assert emulator.store.behaviour["set_response"] == "object"


def test_patch_tenant_fields(emulator, control):
    response = control("PATCH", "tenants/contoso.com",
                       json={"transport_smtp_auth_disabled": False, "security_defaults_enabled": False})
    assert response.status_code == 200
    tenant = emulator.store.find_tenant(CONTOSO_ID)
    assert tenant.transport_smtp_auth_disabled is False and tenant.security_defaults_enabled is False
    assert control("PATCH", "tenants/contoso", json={"id": "x"}).status_code == 400
    assert control("PATCH", "tenants/contoso", json={"security_defaults_enabled": "no"}).status_code == 400
    assert control("PATCH", "tenants/nowhere.example", json={"security_defaults_enabled": True}).status_code == 404


def test_patch_user_fields_and_identity_index(emulator, control):
    response = control("PATCH", "tenants/contoso/users/scanner@contoso.com",
                       json={"smtp_client_authentication_disabled": None, "per_user_mfa_state": "enabled",
                             "primary_smtp_address": "scan@contoso.com"})
    assert response.status_code == 200, response.text
    tenant = emulator.store.find_tenant(CONTOSO_ID)
    user = tenant.find_user("scan@contoso.com")
    assert user is not None and user.user_principal_name == "scanner@contoso.com"
    assert user.smtp_client_authentication_disabled is None and user.per_user_mfa_state == "enabled"
    for bad in ({"per_user_mfa_state": "sometimes"}, {"licenses": ["NOT_A_PLAN"]}, {"shoe_size": 9},
                {"id": "new-id"}, {"mfa_method_registered": "true"}):
        assert control("PATCH", "tenants/contoso/users/scanner@contoso.com", json=bad).status_code == 400, bad
    assert control("PATCH", "tenants/contoso/users/nobody", json={"has_mailbox": False}).status_code == 404


def test_add_user(emulator, control):
    response = control("POST", "tenants/fabrikam/users",
                       json={"user_principal_name": "fax@fabrikam.com", "licenses": ["EXCHANGE_S_STANDARD"]})
    assert response.status_code == 201
    assert emulator.store.find_tenant("fabrikam.com").find_user("fax@fabrikam.com").has_mailbox_license
    assert control("POST", "tenants/fabrikam/users",
                   json={"user_principal_name": "fax@fabrikam.com"}).status_code == 400


def test_patch_app_permissions_take_effect_on_next_token(emulator, control, http, get_token):
    control("PATCH", f"tenants/contoso/apps/{AUTOMATION_APP}", json={"graph_permissions": []})
    response = http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(get_token("graph")))
    assert response.status_code == 403
    assert control("PATCH", f"tenants/contoso/apps/{AUTOMATION_APP}",
                   json={"directory_roles": ["Chief Wizard"]}).status_code == 400


def test_messages_endpoint_lists_and_clears(emulator, control):
    emulator.messages.append({"mail_from": "scanner@contoso.com", "rcpt_tos": ["a@example.com"]})
    assert control("GET", "messages").json()["messages"][0]["mail_from"] == "scanner@contoso.com"
    assert control("DELETE", "messages").status_code == 204
    assert emulator.messages == []


def test_control_api_refuses_other_clients(emulator):
    from m365_emulator.core import make_request as Request

    request = Request("GET", "/_emulator/state", remote_addr="192.0.2.10")
    assert emulator.dispatch(request).status == 403
    assert emulator.dispatch(Request("GET", "/_emulator/state", remote_addr="::ffff:127.0.0.1")).status == 200


def test_connection_info(emulator):
    info = emulator.connection_info()
    assert info["authority_url"] == info["graph_url"] == info["exchange_url"] == emulator.base_url
    app = info["tenants"][0]["apps"][0]
    assert app["client_id"] == AUTOMATION_APP and app["secret"] == "emulator-secret-contoso"
    certificate = app["certificate"]
    pem = open(certificate["pem_path"]).read()
    assert "PRIVATE KEY" in pem and "CERTIFICATE" in pem
    assert certificate["pfx_password"] == "emulator"
    json.dumps(info)  # what the CLI prints must be JSON


def test_server_certificate_verifies_for_every_loopback_name(emulator):
    context = emulator.client_ssl_context()
    for name in ("127.0.0.1", "localhost"):
        with https_session(emulator) as session:
            url = emulator.base_url.replace("127.0.0.1", name)
            assert session.get(f"{url}/_emulator/behaviour").status_code == 200
    assert context.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(requests.exceptions.SSLError):
        untrusted = requests.Session()
        untrusted.trust_env = False
        untrusted.get(f"{emulator.base_url}/_emulator/state")


def test_ipv6_loopback():
    try:
        emulator = Emulator(host="::1", smtp_port=None).start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert emulator.base_url.startswith("https://[::1]:")
        with https_session(emulator) as session:
            assert session.get(f"{emulator.base_url}/_emulator/behaviour").status_code == 200
    finally:
        emulator.stop()


def test_generate_bulk_mailboxes_and_behaviour_overrides():
    with Emulator(generate=25, behaviour={"exchange_page_size": 10}, smtp_port=None) as emulator:
        tenant = emulator.store.tenants[0]
        assert tenant.find_user(f"device00025@{tenant.domains[0]}") is not None
        assert emulator.store.behaviour["exchange_page_size"] == 10
        emulator.reset()
        assert emulator.store.tenants[0] is not tenant
        assert emulator.store.tenants[0].find_user(f"device00025@{tenant.domains[0]}") is not None


def test_state_dir_is_kept_when_given(tmp_path):
    with Emulator(state_dir=tmp_path / "state", smtp_port=None) as emulator:
        ca_path = emulator.ca_path
    assert (tmp_path / "state" / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert ca_path == str(tmp_path / "state" / "ca.pem")


def test_request_log_is_bounded():
    with Emulator(log_size=3, smtp_port=None) as emulator, https_session(emulator) as session:
        for _ in range(5):
            session.get(f"{emulator.base_url}/v1.0/users")
        assert [entry["seq"] for entry in emulator.request_log] == [3, 4, 5]


def test_tokens_lists_every_issued_access_token_in_order(emulator, control, get_token):
    before = control("GET", "tokens").json()["tokens"]
    graph = get_token("graph")
    exchange = get_token("exchange")
    issued = control("GET", "tokens").json()["tokens"]
    assert issued[len(before):] == [graph, exchange]
    assert emulator.tokens.issued() == issued
