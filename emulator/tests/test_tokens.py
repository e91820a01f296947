"""Token endpoint, OIDC discovery and bearer checking, driven through MSAL like the collection does."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import (AUTOMATION_APP, AUTOMATION_SECRET, CONTOSO_ID, EXCHANGE_SCOPE, FABRIKAM_ID, GRAPH_SCOPE,
                      READONLY_APP, bearer, msal_app)

SECURITY_DEFAULTS = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy"


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _certificate(emulator, client_id: str = AUTOMATION_APP) -> dict:
    info = emulator.connection_info()
    for tenant in info["tenants"]:
        for app in tenant["apps"]:
            if app["client_id"] == client_id:
                return app["certificate"]
    raise AssertionError(f"no app {client_id}")


def _form(http, emulator, tenant: str, **fields) -> tuple[int, dict]:
    data = {"grant_type": "client_credentials", "client_id": AUTOMATION_APP, "scope": GRAPH_SCOPE, **fields}
    response = http.post(f"{emulator.base_url}/{tenant}/oauth2/v2.0/token", data=data)
    return response.status_code, response.json()


@pytest.mark.parametrize("scope,audience,roles", [
    (GRAPH_SCOPE, "https://graph.microsoft.com", "Policy.Read.All"),
    (EXCHANGE_SCOPE, "https://outlook.office365.com", "Exchange.ManageAsApp"),
])
def test_secret_gives_signed_token_with_the_audience_roles(emulator, http, scope, audience, roles):
    result = msal_app(emulator, http, tenant="contoso.com").acquire_token_for_client([scope])
    assert result.get("token_type") == "Bearer" and result["expires_in"] > 3000, result
    claims = jwt.decode(result["access_token"], emulator.tokens.public_key, algorithms=["RS256"],
                        audience=audience)
    assert claims["tid"] == CONTOSO_ID
    assert claims["iss"] == f"https://sts.windows.net/{CONTOSO_ID}/"
    assert claims["appid"] == AUTOMATION_APP
    assert claims["oid"] == "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"
    assert roles in claims["roles"]
    assert "Exchange.ManageAsApp" not in claims["roles"] or audience.endswith("office365.com")
    assert "29232cdf-9323-42fd-ade2-1d097af3e4de" in claims["wids"]
    assert claims["nbf"] <= claims["iat"] < claims["exp"]


def test_certificate_pem_credential_signs_a_valid_assertion(emulator, http):
    certificate = _certificate(emulator)
    credential = {"private_key": open(certificate["key_path"]).read(),
                  "public_certificate": open(certificate["cert_path"]).read()}
    result = msal_app(emulator, http, credential=credential).acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result
    claims = _claims(result["access_token"])
    assert claims["aud"] == "https://outlook.office365.com"
    assert claims["appidacr"] == "2"  # certificate, not secret


def test_certificate_pfx_credential(emulator, http):
    certificate = _certificate(emulator)
    credential = {"private_key_pfx_path": certificate["pfx_path"], "passphrase": certificate["pfx_password"]}
    result = msal_app(emulator, http, credential=credential).acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result


def _assert_with(emulator, http, key, algorithm, headers, valid_from=0, valid_until=600):
    """Ask for a token with a client assertion signed by ``key``, valid from/until these offsets from now."""
    now = int(time.time())
    assertion = jwt.encode(
        {"aud": f"{emulator.base_url}/{CONTOSO_ID}/oauth2/v2.0/token", "iss": AUTOMATION_APP,
         "sub": AUTOMATION_APP, "jti": str(uuid.uuid4()), "nbf": now + valid_from, "exp": now + valid_until},
        key, algorithm=algorithm, headers=headers)
    return _form(http, emulator, CONTOSO_ID, client_assertion=assertion,
                 client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer")


def _private_key(certificate):
    return serialization.load_pem_private_key(open(certificate["key_path"], "rb").read(), None)


def test_rs256_assertion_with_sha1_thumbprint_is_accepted(emulator, http):
    # Older MSAL versions sign RS256 with x5t (SHA-1); both must work.
    certificate = _certificate(emulator)
    status, body = _assert_with(emulator, http, _private_key(certificate), "RS256", {"x5t": certificate["x5t"]})
    assert status == 200, body


def test_assertion_signed_by_another_key_is_refused(emulator, http):
    # The read-only app's key signs, but the automation app's thumbprint is claimed.
    other = _private_key(_certificate(emulator, READONLY_APP))
    status, body = _assert_with(emulator, http, other, "PS256", {"x5t#S256": _certificate(emulator)["x5t_s256"]})
    assert status == 401
    assert body["error"] == "invalid_client" and body["error_codes"] == [700027]


def test_expired_assertion_is_refused(emulator, http):
    certificate = _certificate(emulator)
    status, body = _assert_with(emulator, http, _private_key(certificate), "PS256",
                                {"x5t#S256": certificate["x5t_s256"]}, valid_from=-1200, valid_until=-600)
    assert status == 401 and body["error_codes"] == [700024]


def test_bad_secret_is_aadsts7000215(emulator, http):
    result = msal_app(emulator, http, credential="not-the-secret").acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert result["error_codes"] == [7000215]
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert result[key]


def test_bad_secret_status_is_401(emulator, http):
    status, body = _form(http, emulator, CONTOSO_ID, client_secret="wrong")
    assert status == 401 and body["error_codes"] == [7000215]


def test_unknown_tenant_is_aadsts90002(emulator, http):
    status, body = _form(http, emulator, "nosuchtenant.onmicrosoft.com", client_secret=AUTOMATION_SECRET)
    assert status == 400
    assert body["error_description"].startswith("AADSTS90002: Tenant 'nosuchtenant.onmicrosoft.com' not found.")
    # MSAL fails already at discovery, which answers in the same way.
    with pytest.raises(ValueError, match="nosuchtenant"):
        msal_app(emulator, http, tenant="nosuchtenant.onmicrosoft.com")
    assert emulator.request_log[-1]["path"].endswith("/v2.0/.well-known/openid-configuration")
    assert emulator.request_log[-1]["status"] == 400


def test_app_of_another_tenant_is_aadsts700016(emulator, http):
    result = msal_app(emulator, http, tenant=FABRIKAM_ID).acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "unauthorized_client"
    assert result["error_description"].startswith(f"AADSTS700016: Application with identifier '{AUTOMATION_APP}'")
    assert "fabrikam" in result["error_description"]


@pytest.mark.parametrize("scope", ["https://graph.microsoft.com/User.Read.All", "https://example.com/.default",
                                   "api://something/.default"])
def test_scope_must_be_default_of_graph_or_exchange(emulator, http, scope):
    status, body = _form(http, emulator, CONTOSO_ID, client_secret=AUTOMATION_SECRET, scope=scope)
    assert status == 400 and body["error"] == "invalid_scope"
    assert body["error_description"].startswith("AADSTS1002012:")


@pytest.mark.parametrize("scope,audience", [
    ("https://graph.microsoft.us/.default", "https://graph.microsoft.us"),
    ("https://microsoftgraph.chinacloudapi.cn/.default", "https://microsoftgraph.chinacloudapi.cn"),
    ("https://outlook.office365.us/.default", "https://outlook.office365.us"),
    ("https://dod-graph.microsoft.us/.default", "https://dod-graph.microsoft.us"),
    ("https://outlook-dod.office365.us/.default", "https://outlook-dod.office365.us"),
])
def test_national_cloud_audiences(emulator, http, scope, audience):
    status, body = _form(http, emulator, CONTOSO_ID, client_secret=AUTOMATION_SECRET, scope=scope)
    assert status == 200, body
    token = body["access_token"]
    assert _claims(token)["aud"] == audience
    service = "graph" if "graph" in audience else "exchange"
    if service == "graph":
        assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(token)).status_code == 200
    else:
        reply = http.post(f"{emulator.base_url}/adminapi/beta/{CONTOSO_ID}/InvokeCommand", headers=bearer(token),
                          json={"CmdletInput": {"CmdletName": "Get-TransportConfig", "Parameters": {}}})
        assert reply.status_code == 200, reply.text


def test_dod_exchange_audience_is_outlook_dod_not_the_old_powershell_host(emulator, http):
    status, body = _form(http, emulator, CONTOSO_ID, client_secret=AUTOMATION_SECRET,
                         scope="https://webmail.apps.mil/.default")
    assert status == 400 and body["error"] == "invalid_scope"


def test_openid_configuration_points_at_this_origin(emulator, http):
    response = http.get(f"{emulator.base_url}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["token_endpoint"] == f"{emulator.base_url}/{CONTOSO_ID}/oauth2/v2.0/token"
    assert document["authorization_endpoint"].startswith(emulator.base_url)
    assert document["issuer"] == f"{emulator.base_url}/{CONTOSO_ID}/v2.0"


def test_msal_makes_no_instance_discovery_call(emulator, http, get_token):
    get_token("graph")
    paths = [entry["path"] for entry in emulator.request_log]
    assert paths == [f"/{CONTOSO_ID}/v2.0/.well-known/openid-configuration", f"/{CONTOSO_ID}/oauth2/v2.0/token"]


def test_graph_rejects_missing_token(emulator, http):
    response = http.get(emulator.base_url + SECURITY_DEFAULTS)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_graph_rejects_exchange_audience(emulator, http, get_token):
    response = http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(get_token("exchange")))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "audience" in response.json()["error"]["message"].lower()


def test_graph_rejects_token_signed_by_someone_else(emulator, http, get_token):
    claims = _claims(get_token("graph"))
    other_key = serialization.load_pem_private_key(open(_certificate(emulator)["key_path"], "rb").read(), None)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "forged"})
    response = http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(forged))
    assert response.status_code == 401


def test_short_lived_tokens_expire(emulator, http, get_token):
    http.post(f"{emulator.base_url}/_emulator/tokens/expire", json={"after_seconds": 0})
    token = get_token("graph")
    assert _claims(token)["exp"] <= int(time.time())
    response = http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_a_token_already_checked_still_expires(emulator, http, get_token):
    # The signature of a token is checked once and remembered; its lifetime must still be checked on every use.
    http.post(f"{emulator.base_url}/_emulator/tokens/expire", json={"after_seconds": 2})
    token = get_token("graph")
    assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(token)).status_code == 200
    time.sleep(max(_claims(token)["exp"] - time.time(), 0) + 0.2)
    response = http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_expire_now_invalidates_issued_tokens_only(emulator, http, get_token):
    old = get_token("graph")
    assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(old)).status_code == 200
    reply = http.post(f"{emulator.base_url}/_emulator/tokens/expire", json={"now": True})
    assert reply.json()["expired"] == 1
    assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(old)).status_code == 401
    fresh = msal_app(emulator, http).acquire_token_for_client([GRAPH_SCOPE])["access_token"]
    assert http.get(emulator.base_url + SECURITY_DEFAULTS, headers=bearer(fresh)).status_code == 200


def test_exchange_401_has_bearer_challenge(emulator, http, get_token):
    from m365_emulator.core import HttpError
    from m365_emulator.core import make_request as Request
    from m365_emulator.identity import authorize

    request = Request("POST", f"/adminapi/beta/{CONTOSO_ID}/InvokeCommand",
                      headers={"Authorization": f"Bearer {get_token('graph')}"})
    with pytest.raises(HttpError) as caught:
        authorize(emulator, request, "exchange")
    assert caught.value.response.status == 401
    assert caught.value.response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "audience" in caught.value.response.body.lower()


def test_authorize_checks_the_tenant_in_the_url(emulator, get_token):
    from m365_emulator.core import HttpError
    from m365_emulator.core import make_request as Request
    from m365_emulator.identity import authorize

    token = get_token("exchange")
    good = Request("POST", "/adminapi/beta/contoso.com/InvokeCommand", headers={"Authorization": f"Bearer {token}"})
    claims = authorize(emulator, good, "exchange")
    assert claims.tenant.id == CONTOSO_ID and claims.app.client_id == AUTOMATION_APP
    assert "Exchange.ManageAsApp" in claims.roles
    bad = Request("POST", f"/adminapi/beta/{FABRIKAM_ID}/InvokeCommand", headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(HttpError):
        authorize(emulator, bad, "exchange")
