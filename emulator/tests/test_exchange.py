"""The Exchange admin API (InvokeCommand): envelope, cmdlets, errors, permissions, ResultSize and paging."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import CONTOSO_ID, EXCHANGE_SCOPE, FABRIKAM_ID, READONLY_APP, bearer, https_session, msal_app
from m365_emulator import Emulator
from m365_emulator.exchange import models as exchange
from m365_emulator.state import User

MORE = exchange.MORE_RESULTS_WARNING


def invoke(emulator: Emulator, http, token: str, cmdlet: str, parameters: dict[str, Any] | None = None,
           tenant: str = "contoso.com", url: str | None = None, body: Any = None, headers: dict | None = None):
    payload = body if body is not None else {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}}
    target = url or f"{emulator.base_url}/adminapi/beta/{tenant}/InvokeCommand"
    return http.post(target, json=payload, headers={**bearer(token), **(headers or {})}, timeout=30)


@pytest.fixture
def token(get_token) -> str:
    return get_token("exchange")


@pytest.fixture
def run(emulator, http, token):
    """``run(cmdlet, params)`` -> the 200 reply's JSON (fails the test on any other status)."""

    def call(cmdlet: str, parameters: dict[str, Any] | None = None, **kwargs) -> dict[str, Any]:
        reply = invoke(emulator, http, token, cmdlet, parameters, **kwargs)
        assert reply.status_code == 200, reply.text
        return reply.json()

    return call


def detail(reply) -> str:
    body = reply.json()
    assert body["error"]["message"] == "Error executing cmdlet"
    return body["error"]["details"][0]["message"]


def user(emulator: Emulator, identity: str) -> User:
    with emulator.store.lock:
        return emulator.store.find_tenant(CONTOSO_ID).find_user(identity)


# -- envelope, objects, identity ------------------------------------------------------------------------------

def test_envelope_and_collection_annotations(emulator, run):
    body = run("Get-CASMailbox", {"Identity": "scanner@contoso.com"})
    assert body["@odata.context"] == (f"{emulator.base_url}/adminapi/beta/contoso.com/"
                                      "$metadata#Collection(Exchange.GenericHashTable)")
    assert body["adminapi.warnings@odata.type"] == "#Collection(String)"
    assert body["@adminapi.warnings"] == []
    assert "@odata.nextLink" not in body
    [mailbox] = body["value"]
    assert mailbox["PrimarySmtpAddress"] == "scanner@contoso.com"
    assert mailbox["ExternalDirectoryObjectId"] == "c0ffee00-0000-4000-8000-000000000002"
    assert mailbox["DisplayName"] == "Second-floor scanner"
    assert mailbox["SmtpClientAuthenticationDisabled"] is True
    assert mailbox["EmailAddresses@odata.type"] == "#Collection(String)"
    assert "SMTP:scanner@contoso.com" in mailbox["EmailAddresses"]
    assert mailbox["Guid"] and mailbox["Identity"] == "scanner"


@pytest.mark.parametrize("identity", ["printer@contoso.com", "PRINTER", "c0ffee00-0000-4000-8000-000000000003",
                                      "Printer@Contoso.com"])
def test_identity_resolves_upn_alias_and_object_id(run, identity):
    [mailbox] = run("Get-CASMailbox", {"Identity": identity}, tenant=CONTOSO_ID)["value"]
    assert mailbox["PrimarySmtpAddress"] == "printer@contoso.com"
    assert mailbox["SmtpClientAuthenticationDisabled"] is None


def test_primary_smtp_address_differing_from_upn_resolves(emulator, run):
    with emulator.store.lock:
        emulator.store.find_tenant(CONTOSO_ID).add_user(User("copier@contoso.onmicrosoft.com",
                                                              primary_smtp_address="copier.floor2@contoso.com"))
    [mailbox] = run("Get-Mailbox", {"Identity": "copier.floor2@contoso.com"})["value"]
    assert mailbox["UserPrincipalName"] == "copier@contoso.onmicrosoft.com"


def test_user_without_mailbox_is_not_found_by_mailbox_cmdlets(emulator, http, token, run):
    with emulator.store.lock:
        emulator.store.find_tenant(CONTOSO_ID).add_user(User("guest@contoso.com", has_mailbox=False))
    for cmdlet in ("Get-CASMailbox", "Get-Mailbox", "Set-CASMailbox"):
        reply = invoke(emulator, http, token, cmdlet, {"Identity": "guest@contoso.com"})
        assert reply.status_code == 404
        assert "ManagementObjectNotFoundException|The operation couldn't be performed because object " \
               "'guest@contoso.com' couldn't be found on '" in detail(reply)
    [found] = run("Get-User", {"Identity": "guest@contoso.com"})["value"]
    assert found["RecipientTypeDetails"] == "User"
    listed = {m["PrimarySmtpAddress"] for m in run("Get-CASMailbox", {"ResultSize": "Unlimited"})["value"]}
    assert "guest@contoso.com" not in listed and "scanner@contoso.com" in listed


def test_user_without_a_mailbox_plan_has_no_mailbox(emulator, http, token, run):
    reply = invoke(emulator, http, token, "Get-CASMailbox", {"Identity": "defender-only@contoso.com"})
    assert "ManagementObjectNotFoundException" in detail(reply)
    [found] = run("Get-User", {"Identity": "defender-only@contoso.com"})["value"]
    assert found["RecipientTypeDetails"] == "User" and found["SKUAssigned"] is False


# -- Set-CASMailbox, Set-TransportConfig ----------------------------------------------------------------------

@pytest.mark.parametrize("value", [False, True, None])
def test_set_cas_mailbox_switch_empty_reply(emulator, run, value):
    body = run("Set-CASMailbox", {"Identity": "scanner@contoso.com", "SmtpClientAuthenticationDisabled": value})
    assert body["value"] == []
    assert user(emulator, "scanner").smtp_client_authentication_disabled is value
    entry = emulator.request_log[-1]
    assert entry["cmdlet"] == "Set-CASMailbox" and entry["tenant"] == CONTOSO_ID
    assert entry["wrote"] is (value is not True)  # scanner starts at True


def test_set_cas_mailbox_object_reply(emulator, run):
    with emulator.store.lock:
        emulator.store.behaviour["set_response"] = "object"
    [mailbox] = run("Set-CASMailbox", {"Identity": "scanner", "SmtpClientAuthenticationDisabled": False})["value"]
    assert mailbox["SmtpClientAuthenticationDisabled"] is False
    assert mailbox["PrimarySmtpAddress"] == "scanner@contoso.com"


def test_null_refused_when_it_does_not_clear(emulator, http, token):
    with emulator.store.lock:
        emulator.store.behaviour["null_clears_mailbox_switch"] = False
    reply = invoke(emulator, http, token, "Set-CASMailbox",
                   {"Identity": "scanner", "SmtpClientAuthenticationDisabled": None})
    assert reply.status_code == 400
    assert "ParameterBindingValidationException|Cannot validate argument on parameter " \
           "'SmtpClientAuthenticationDisabled'. The argument is null." in detail(reply)
    assert user(emulator, "scanner").smtp_client_authentication_disabled is True
    assert emulator.request_log[-1]["wrote"] is False


def test_transport_config_read_and_write(emulator, http, token, run):
    [config] = run("Get-TransportConfig")["value"]
    assert config["SmtpClientAuthenticationDisabled"] is True
    assert run("Set-TransportConfig", {"SmtpClientAuthenticationDisabled": False})["value"] == []
    with emulator.store.lock:
        assert emulator.store.find_tenant(CONTOSO_ID).transport_smtp_auth_disabled is False
    assert run("Get-TransportConfig")["value"][0]["SmtpClientAuthenticationDisabled"] is False
    reply = invoke(emulator, http, token, "Set-TransportConfig", {"SmtpClientAuthenticationDisabled": None})
    assert reply.status_code == 400 and "ParameterBindingValidationException" in detail(reply)


# -- other cmdlets --------------------------------------------------------------------------------------------

def test_get_mailbox_filters(emulator, run):
    with emulator.store.lock:
        emulator.store.find_tenant(CONTOSO_ID).add_user(User("frontdesk@contoso.com",
                                                              recipient_type_details="SharedMailbox"))
    everything = run("Get-Mailbox", {"ResultSize": "Unlimited"})["value"]
    assert len(everything) == 11
    [shared] = run("Get-Mailbox", {"RecipientTypeDetails": "SharedMailbox"})["value"]
    assert shared["UserPrincipalName"] == "frontdesk@contoso.com"
    assert shared["RecipientTypeDetails"] == "SharedMailbox"
    for name, value in (("PrimarySmtpAddress", "kiosk@contoso.com"), ("UserPrincipalName", "KIOSK@contoso.com"),
                        ("ExternalDirectoryObjectId", "c0ffee00-0000-4000-8000-000000000007")):
        [kiosk] = run("Get-Mailbox", {name: value})["value"]
        assert kiosk["DisplayName"] == "Lobby kiosk"


def test_user_authentication_policy(emulator, http, token, run):
    [alerts] = run("Get-User", {"Identity": "alerts@contoso.com"})["value"]
    assert alerts["AuthenticationPolicy"] == "Block Basic SMTP"
    assert run("Set-User", {"Identity": "alerts@contoso.com", "AuthenticationPolicy": "allow basic smtp"})["value"] == []
    assert user(emulator, "alerts").authentication_policy == "Allow Basic SMTP"
    run("Set-User", {"Identity": "alerts@contoso.com", "AuthenticationPolicy": None})
    assert user(emulator, "alerts").authentication_policy is None
    reply = invoke(emulator, http, token, "Set-User", {"Identity": "alerts", "AuthenticationPolicy": "No Such Policy"})
    assert reply.status_code == 404
    assert "ManagementObjectNotFoundException|The operation couldn't be performed because object " \
           "'No Such Policy' couldn't be found" in detail(reply)


def test_organization_config_and_authentication_policies(emulator, http, token, run):
    [org] = run("Get-OrganizationConfig")["value"]
    assert org["DefaultAuthenticationPolicy"] is None
    policies = {p["Name"]: p for p in run("Get-AuthenticationPolicy")["value"]}
    assert policies["Block Basic SMTP"]["AllowBasicAuthSmtp"] is False
    assert policies["Allow Basic SMTP"]["AllowBasicAuthSmtp"] is True
    [one] = run("Get-AuthenticationPolicy", {"Identity": "Allow Basic SMTP"})["value"]
    assert one["AllowBasicAuthSmtp"] is True and one["AllowBasicAuthPop"] is False
    reply = invoke(emulator, http, token, "Get-AuthenticationPolicy", {"Identity": "Nope"})
    assert reply.status_code == 404 and "ManagementObjectNotFoundException" in detail(reply)
    run("Set-OrganizationConfig", {"DefaultAuthenticationPolicy": "Block Basic SMTP"})
    assert run("Get-OrganizationConfig")["value"][0]["DefaultAuthenticationPolicy"] == "Block Basic SMTP"


APP_ID = "0b6f3c1e-7a2d-4c5e-9f80-1a2b3c4d5e6f"
SP_OBJECT_ID = "a1b2c3d4-0000-4000-8000-00000000beef"


def test_service_principals(emulator, http, token, run):
    [created] = run("New-ServicePrincipal", {"AppId": APP_ID, "ObjectId": SP_OBJECT_ID,
                                             "DisplayName": "SMTP relay app"})["value"]
    assert created["AppId"] == APP_ID and created["ObjectId"] == SP_OBJECT_ID
    assert emulator.request_log[-1]["wrote"] is True
    [listed] = run("Get-ServicePrincipal")["value"]
    assert listed["DisplayName"] == "SMTP relay app"
    assert run("Get-ServicePrincipal", {"Identity": APP_ID})["value"][0]["Identity"] == created["Identity"]
    duplicate = invoke(emulator, http, token, "New-ServicePrincipal", {"AppId": APP_ID, "ObjectId": SP_OBJECT_ID})
    assert duplicate.status_code == 400 and "AlreadyExistsException|" in detail(duplicate)
    not_guid = invoke(emulator, http, token, "New-ServicePrincipal", {"AppId": "relay", "ObjectId": SP_OBJECT_ID})
    assert not_guid.status_code == 400 and "to type \"System.Guid\"" in detail(not_guid)
    missing = invoke(emulator, http, token, "Get-ServicePrincipal", {"Identity": "b0000000-0000-4000-8000-000000000000"})
    assert missing.status_code == 404 and "ManagementObjectNotFoundException" in detail(missing)


def test_mailbox_and_recipient_permissions(emulator, http, token, run):
    with emulator.store.lock:
        emulator.store.behaviour["mailbox_permission_user"] = "identity"
    run("New-ServicePrincipal", {"AppId": APP_ID, "ObjectId": SP_OBJECT_ID})
    [granted] = run("Add-MailboxPermission", {"Identity": "notify@contoso.com", "User": SP_OBJECT_ID,
                                              "AccessRights": "FullAccess", "InheritanceType": "All",
                                              "AutoMapping": False})["value"]
    assert granted["AccessRights"] == ["FullAccess"] and granted["AccessRights@odata.type"] == "#Collection(String)"
    assert emulator.request_log[-1]["wrote"] is True
    run("Add-MailboxPermission", {"Identity": "notify", "User": APP_ID, "AccessRights": ["FullAccess"]})
    assert emulator.request_log[-1]["wrote"] is False  # the same grant again changes nothing
    assert len(user(emulator, "notify").mailbox_permissions) == 1
    rows = run("Get-MailboxPermission", {"Identity": "notify@contoso.com"})["value"]
    assert {row["User"] for row in rows} == {"NT AUTHORITY\\SELF", SP_OBJECT_ID}
    [mine] = run("Get-MailboxPermission", {"Identity": "notify@contoso.com", "User": APP_ID})["value"]
    assert mine["AccessRights"] == ["FullAccess"]

    run("Add-RecipientPermission", {"Identity": "notify@contoso.com", "Trustee": SP_OBJECT_ID,
                                    "AccessRights": "SendAs", "Confirm": False})
    assert SP_OBJECT_ID in user(emulator, "notify").send_as
    [send_as] = run("Get-RecipientPermission", {"Identity": "notify@contoso.com", "Trustee": SP_OBJECT_ID})["value"]
    assert send_as["AccessRights"] == ["SendAs"] and send_as["Trustee"] == SP_OBJECT_ID
    wrong_right = invoke(emulator, http, token, "Add-RecipientPermission",
                         {"Identity": "notify", "Trustee": SP_OBJECT_ID, "AccessRights": "FullAccess"})
    assert wrong_right.status_code == 400 and "ParameterBindingArgumentTransformationException" in detail(wrong_right)
    unknown_trustee = invoke(emulator, http, token, "Add-MailboxPermission",
                             {"Identity": "notify", "User": "nobody@contoso.com", "AccessRights": "FullAccess"})
    assert unknown_trustee.status_code == 404 and "'nobody@contoso.com' couldn't be found" in detail(unknown_trustee)


# -- errors ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmdlet, parameters, expected", [
    ("Get-Nothing", {}, "|System.Management.Automation.CommandNotFoundException|The term 'Get-Nothing' is not "
                        "recognized as a name of a cmdlet"),
    ("Get-CASMailbox", {"Colour": "blue"}, "|System.Management.Automation.ParameterBindingException|A parameter "
                                           "cannot be found that matches parameter name 'Colour'."),
    ("Get-Mailbox", {"R": "x"}, "|System.Management.Automation.ParameterBindingException|Parameter cannot be "
                                "processed because the parameter name 'R' is ambiguous."),
    ("Set-CASMailbox", {"Identity": "scanner", "SmtpClientAuthenticationDisabled": "false"},
     "|System.Management.Automation.ParameterBindingArgumentTransformationException|Cannot process argument "
     "transformation on parameter 'SmtpClientAuthenticationDisabled'."),
    ("Set-CASMailbox", {"SmtpClientAuthenticationDisabled": False},
     "|System.Management.Automation.ParameterBindingException|Cannot process command because of one or more "
     "missing mandatory parameters: Identity."),
    ("Get-CASMailbox", {"ResultSize": "lots"}, "ParameterBindingArgumentTransformationException|Cannot process "
                                               "argument transformation on parameter 'ResultSize'."),
])
def test_cmdlet_error_shapes(emulator, http, token, cmdlet, parameters, expected):
    reply = invoke(emulator, http, token, cmdlet, parameters)
    assert reply.status_code == 400
    body = reply.json()["error"]
    assert body["details"][0]["code"] == "Context" and body["details"][0]["target"] == ""
    assert expected in body["details"][0]["message"]
    assert body["innererror"]["internalexception"]["type"] in body["details"][0]["message"]
    assert user(emulator, "scanner").smtp_client_authentication_disabled is True


def test_binding_error_is_wrapped_as_ambiguous_parameter_set(emulator, http, token):
    reply = invoke(emulator, http, token, "Get-CASMailbox", {"Nope": 1})
    assert reply.json()["error"]["innererror"]["type"].endswith("AmbiguousParameterSetException")


def test_not_found_names_object_and_server(emulator, http, token):
    reply = invoke(emulator, http, token, "Get-CASMailbox", {"Identity": "ghost@contoso.com"})
    assert reply.status_code == 404
    error_id, exception_type, text = detail(reply).split("|", 2)
    assert error_id == "Ex6F9304"
    assert exception_type == "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    assert text.startswith("The operation couldn't be performed because object 'ghost@contoso.com' couldn't be found "
                           "on '") and text.endswith(".PROD.OUTLOOK.COM'.")


def test_not_found_has_the_captured_404_shape(emulator, http, token):
    reply = invoke(emulator, http, token, "Set-CASMailbox",
                   {"Identity": "ghost@contoso.com", "SmtpClientAuthenticationDisabled": False})
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "NotFound" and error["message"] == "Error executing cmdlet"
    [only] = error["details"]
    assert only["code"] == "Client"
    assert only["message"].startswith("Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
                                      "The operation couldn't be performed because object 'ghost@contoso.com'")
    assert error["innererror"]["type"] == "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"
    internal = error["innererror"]["internalexception"]
    assert internal["type"] == "Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdletExecutionException"
    assert error["@adminapi.warnings"] == []
    assert error["adminapi.warnings@odata.type"] == "#Collection(String)"


@pytest.mark.parametrize("body", [{"Cmdlet": "Get-CASMailbox"}, {"CmdletInput": {"Parameters": {}}},
                                  {"CmdletInput": {"CmdletName": "Get-CASMailbox", "Parameters": ["Identity"]}}, []])
def test_malformed_body_is_400(emulator, http, token, body):
    reply = invoke(emulator, http, token, "", body=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "BadRequest"


def test_body_that_is_not_json_is_400(emulator, http, token):
    reply = http.post(f"{emulator.base_url}/adminapi/beta/contoso.com/InvokeCommand", data=b"{not json",
                      headers={**bearer(token), "Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 400


# -- permissions ----------------------------------------------------------------------------------------------

def test_app_permission_without_admin_role_is_403_not_json(emulator, http, get_token):
    reply = invoke(emulator, http, get_token("exchange", client_id=READONLY_APP), "Get-CASMailbox")
    assert reply.status_code == 403
    assert reply.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        reply.json()


def test_neither_permission_is_401(emulator, http, get_token):
    with emulator.store.lock:
        emulator.store.find_tenant(CONTOSO_ID).apps[READONLY_APP].exchange_permissions = []
    reply = invoke(emulator, http, get_token("exchange", client_id=READONLY_APP), "Get-CASMailbox")
    assert reply.status_code == 401
    assert "Bearer" in reply.headers["WWW-Authenticate"]


def test_role_removed_after_token_issue_is_403(emulator, http, token):
    with emulator.store.lock:
        emulator.store.find_tenant(CONTOSO_ID).apps[APP_ID].directory_roles = []
    assert invoke(emulator, http, token, "Get-CASMailbox").status_code == 403


def test_token_of_another_tenant_or_audience_is_401(emulator, http, token, get_token):
    assert invoke(emulator, http, token, "Get-CASMailbox", tenant=FABRIKAM_ID).status_code == 401
    assert invoke(emulator, http, get_token("graph"), "Get-CASMailbox").status_code == 401
    assert invoke(emulator, http, "not-a-token", "Get-CASMailbox").status_code == 401


def test_throttling_fault_answers_429_then_recovers(emulator, http, token):
    emulator.add_fault({"cmdlet": "Get-CASMailbox", "status": 429, "retry_after": 7})
    throttled = invoke(emulator, http, token, "Get-CASMailbox", {"Identity": "scanner"})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    other = invoke(emulator, http, token, "Get-TransportConfig")
    assert other.status_code == 200
    assert invoke(emulator, http, token, "Get-CASMailbox", {"Identity": "scanner"}).status_code == 200


def test_throttling_fault_can_send_a_fractional_retry_after(emulator, http, token):
    emulator.add_fault({"cmdlet": "Set-CASMailbox", "status": 429, "retry_after": 1.5})
    reply = invoke(emulator, http, token, "Set-CASMailbox",
                   {"Identity": "scanner", "SmtpClientAuthenticationDisabled": False})
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "1.5"
    assert user(emulator, "scanner").smtp_client_authentication_disabled is True


# -- ResultSize and paging ------------------------------------------------------------------------------------

def test_result_size_limits_and_warns(run):
    body = run("Get-CASMailbox", {"ResultSize": 3})
    assert len(body["value"]) == 3
    assert body["@adminapi.warnings"] == [MORE]
    everything = run("Get-CASMailbox", {"ResultSize": "Unlimited"})
    assert len(everything["value"]) == 10 and everything["@adminapi.warnings"] == []
    exact = run("Get-CASMailbox", {"ResultSize": 10})
    assert len(exact["value"]) == 10 and exact["@adminapi.warnings"] == []


@pytest.fixture
def bulk():
    """Contoso with 250 more mailboxes (260 in all) and pages of 100."""
    with Emulator(generate=250, behaviour={"exchange_page_size": 100}, smtp_port=None) as running:
        yield running


@pytest.fixture
def bulk_http(bulk):
    with https_session(bulk) as session:
        yield session


def exchange_token(emulator: Emulator, http) -> str:
    result = msal_app(emulator, http).acquire_token_for_client([EXCHANGE_SCOPE])
    return result["access_token"]


@pytest.fixture
def bulk_token(bulk, bulk_http):
    return exchange_token(bulk, bulk_http)


UNLIMITED = {"ResultSize": "Unlimited"}


def follow_pages(emulator, http, token, limit: int = 50) -> tuple[list[dict], int]:
    reply = invoke(emulator, http, token, "Get-CASMailbox", UNLIMITED)
    rows, pages = [], 0
    while True:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        rows += body["value"]
        pages += 1
        assert pages <= limit
        if "@odata.nextLink" not in body:
            return rows, pages
        reply = invoke(emulator, http, token, "Get-CASMailbox", UNLIMITED, url=body["@odata.nextLink"])


def test_paging_follow_returns_every_mailbox_once(bulk, bulk_http, bulk_token):
    rows, pages = follow_pages(bulk, bulk_http, bulk_token)
    assert pages == 3
    addresses = [row["PrimarySmtpAddress"] for row in rows]
    assert len(addresses) == 260 and len(set(addresses)) == 260


def all_pages(emulator, http, token, parameters: dict[str, Any], limit: int = 50) -> list[dict]:
    pages = [invoke(emulator, http, token, "Get-CASMailbox", parameters).json()]
    while "@odata.nextLink" in pages[-1]:
        assert len(pages) < limit
        reply = invoke(emulator, http, token, "Get-CASMailbox", parameters, url=pages[-1]["@odata.nextLink"])
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
    return pages


def test_every_page_with_a_next_one_warns_and_the_last_does_not(bulk, bulk_http, bulk_token):
    pages = all_pages(bulk, bulk_http, bulk_token, UNLIMITED)
    assert len(pages) == 3
    assert [page["@adminapi.warnings"] for page in pages] == [[MORE], [MORE], []]


def test_result_size_cut_warns_on_the_last_page_too(bulk, bulk_http, bulk_token):
    pages = all_pages(bulk, bulk_http, bulk_token, {"ResultSize": 150})
    assert [len(page["value"]) for page in pages] == [100, 50]
    assert [page["@adminapi.warnings"] for page in pages] == [[MORE], [MORE]]


def test_paging_next_link_is_absolute_and_replayable(bulk, bulk_http, bulk_token):
    first = invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED).json()
    link = first["@odata.nextLink"]
    assert link.startswith(f"{bulk.base_url}/adminapi/beta/contoso.com/InvokeCommand?$skiptoken=")
    again = [invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED, url=link).json() for _ in range(2)]
    assert again[0]["value"] == again[1]["value"] and again[0]["value"] != first["value"]


def test_paging_link_refused_for_another_body_or_after_30_minutes(bulk, bulk_http, bulk_token):
    link = invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED).json()["@odata.nextLink"]
    other = invoke(bulk, bulk_http, bulk_token, "Get-Mailbox", UNLIMITED, url=link)
    assert other.status_code == 400 and other.json()["error"]["message"] == exchange.PAGINATION_EXPIRED
    cursors = bulk.exchange_cursors
    now = cursors.clock()
    cursors.clock = lambda: now + 29 * 60
    assert invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED, url=link).status_code == 200
    cursors.clock = lambda: now + 31 * 60
    expired = invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED, url=link)
    assert expired.status_code == 400 and expired.json()["error"]["message"] == "Expired or Invalid pagination request"


def test_paging_expire_mode(bulk, bulk_http, bulk_token):
    with bulk.store.lock:
        bulk.store.behaviour["exchange_paging"] = "expire"
    first = invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED).json()
    assert len(first["value"]) == 100
    assert first["@adminapi.warnings"] == [MORE]
    replay = invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED, url=first["@odata.nextLink"])
    assert replay.status_code == 400
    assert replay.json()["error"]["message"] == "Expired or Invalid pagination request"


def test_paging_warning_mode(bulk, bulk_http, bulk_token):
    with bulk.store.lock:
        bulk.store.behaviour["exchange_paging"] = "warning"
    body = invoke(bulk, bulk_http, bulk_token, "Get-CASMailbox", UNLIMITED).json()
    assert len(body["value"]) == 100
    assert "@odata.nextLink" not in body
    assert body["@adminapi.warnings"] == [MORE]


def test_prefer_max_page_size_makes_pages_smaller(bulk, bulk_http, bulk_token):
    body = invoke(bulk, bulk_http, bulk_token, "Get-User", UNLIMITED,
                  headers={"Prefer": "odata.maxpagesize=40"}).json()
    assert len(body["value"]) == 40 and "@odata.nextLink" in body


def test_default_result_size_is_1000_with_warning():
    with Emulator(generate=1200, smtp_port=None) as emulator, https_session(emulator) as http:
        token = exchange_token(emulator, http)
        body = invoke(emulator, http, token, "Get-Mailbox").json()
        assert len(body["value"]) == 1000
        assert body["@adminapi.warnings"] == [MORE]
        assert "@odata.nextLink" not in body


def test_ten_thousand_mailboxes_build_each_object_once(monkeypatch):
    built = []
    original = exchange.cas_mailbox_object

    def counting(tenant, user):
        built.append(user.id)
        return original(tenant, user)

    monkeypatch.setattr(exchange, "cas_mailbox_object", counting)
    with Emulator(generate=10_000, smtp_port=None) as emulator, https_session(emulator) as http:
        token = exchange_token(emulator, http)
        rows, pages = follow_pages(emulator, http, token)
    assert pages == 11 and len(rows) == 10_010
    # Linear work: every mailbox object is built exactly once across all the pages.
    assert len(built) == 10_010 and len(set(built)) == 10_010


# -- pure parts -----------------------------------------------------------------------------------------------

def test_page_cursors_stay_bounded():
    cursors = exchange.PageCursors(capacity=3)
    tokens = [cursors.issue(exchange.Cursor("t", "f", [], lambda tenant, key: None, 0, cursors.clock()))
              for _ in range(5)]
    assert len(cursors) == 3
    assert cursors.take(tokens[0], "t", "f") is None
    assert cursors.take(tokens[-1], "t", "f") is not None
    assert cursors.take(tokens[-1], "other-tenant", "f") is None


def test_bind_accepts_case_insensitive_names_and_numbers_for_booleans():
    spec, _, _ = exchange.CMDLETS["Set-CASMailbox"]
    bound = exchange.bind("Set-CASMailbox", spec, {"identity": "x", "smtpclientauthenticationdisabled": 0})
    assert bound == {"Identity": "x", "SmtpClientAuthenticationDisabled": False}


# -- cmdlet budgets -------------------------------------------------------------------------------------------

def test_writes_past_the_destructive_budget_get_429_and_are_not_run(emulator, http, token):
    emulator.store.behaviour.update(exchange_cmdlet_budget="destructive", exchange_destructive_budget=[2, 30])
    write = {"Identity": "scanner@contoso.com", "SmtpClientAuthenticationDisabled": False}
    assert [invoke(emulator, http, token, "Set-CASMailbox", write).status_code for _ in range(2)] == [200, 200]
    user(emulator, "scanner@contoso.com").smtp_client_authentication_disabled = True
    refused = invoke(emulator, http, token, "Set-CASMailbox", write)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "Set-CASMailbox was not run" in refused.text
    # Not run: the switch is still off, and reads are not counted against the write budget.
    assert user(emulator, "scanner@contoso.com").smtp_client_authentication_disabled is True
    assert invoke(emulator, http, token, "Get-CASMailbox", {"Identity": "scanner@contoso.com"}).status_code == 200
    log = [entry for entry in emulator.request_log if entry["cmdlet"] == "Set-CASMailbox"]
    # The second changed nothing (already on) but still counts: the budget is of cmdlets run, not of changes.
    assert [(entry["status"], entry["wrote"]) for entry in log] == [(200, True), (200, False), (429, False)]


def test_the_budget_is_a_sliding_window_per_app():
    from m365_emulator.exchange.budget import CmdletBudget

    now = [0.0]
    budget = CmdletBudget(clock=lambda: now[0])
    behaviour = {"exchange_cmdlet_budget": "both", "exchange_destructive_budget": [2, 10],
                 "exchange_cmdlets_budget": [3, 5]}
    assert budget.admit(behaviour, "t", "a", "Set-User") is None
    now[0] = 4.0
    assert budget.admit(behaviour, "t", "a", "Set-User") is None
    assert budget.admit(behaviour, "t", "a", "Set-User") == 6  # the first leaves the window at 10 s
    assert budget.admit(behaviour, "t", "b", "Set-User") is None  # another app has its own budget
    assert budget.admit(behaviour, "t", "a", "Get-User") is None  # third cmdlet of a's 5 s window
    assert budget.admit(behaviour, "t", "a", "Get-User") == 1
    now[0] = 10.0
    assert budget.admit(behaviour, "t", "a", "Set-User") is None
    assert budget.admit({"exchange_cmdlet_budget": "off"}, "t", "a", "Set-User") is None
    with pytest.raises(ValueError):
        budget.admit({"exchange_cmdlet_budget": "sometimes"}, "t", "a", "Set-User")


# -- JSON batch -----------------------------------------------------------------------------------------------

def batch(emulator: Emulator, http, token: str, items: list[dict[str, Any]], tenant: str = "contoso.com",
          prefer: str = "odata.continue-on-error"):
    return http.post(f"{emulator.base_url}/adminapi/beta/{tenant}/$batch", json={"requests": items},
                     headers={**bearer(token), "Prefer": prefer}, timeout=30)


def item(emulator: Emulator, item_id: str, cmdlet: str, parameters: dict[str, Any], tenant: str = "contoso.com",
         url: str | None = None) -> dict[str, Any]:
    return {"id": item_id, "method": "POST",
            "url": url or f"{emulator.base_url}/adminapi/beta/{tenant}/InvokeCommand",
            "headers": {"X-CmdletName": cmdlet, "Content-Type": "application/json"},
            "body": {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}}


def test_a_batch_answers_each_cmdlet_as_invoke_command_would_matched_by_id(emulator, http, token):
    reply = batch(emulator, http, token, [
        item(emulator, "a", "Set-CASMailbox", {"Identity": "scanner@contoso.com",
                                               "SmtpClientAuthenticationDisabled": False}),
        item(emulator, "b", "Get-CASMailbox", {"Identity": "ghost@contoso.com"}),
        item(emulator, "c", "Get-CASMailbox", {"Identity": "printer@contoso.com"}, url="InvokeCommand"),
    ])
    assert reply.status_code == 200, reply.text
    answers = {answer["id"]: answer for answer in reply.json()["responses"]}
    assert answers["a"]["status"] == 200 and answers["a"]["body"]["value"] == []
    assert answers["b"]["status"] == 404
    assert "ManagementObjectNotFoundException" in answers["b"]["body"]["error"]["details"][0]["message"]
    assert answers["c"]["body"]["value"][0]["PrimarySmtpAddress"] == "printer@contoso.com"
    assert user(emulator, "scanner@contoso.com").smtp_client_authentication_disabled is False
    logged = emulator.request_log
    outer = next(entry for entry in logged if entry["path"].endswith("/$batch"))
    assert outer["wrote"] is True
    assert sorted(entry["cmdlet"] for entry in logged if entry["batch"] == outer["seq"]) == \
        ["Get-CASMailbox", "Get-CASMailbox", "Set-CASMailbox"]


def test_a_batch_is_refused_whole_when_too_large_or_malformed(emulator, http, token):
    too_many = [item(emulator, str(number), "Get-CASMailbox", {"Identity": "scanner"}) for number in range(11)]
    assert batch(emulator, http, token, too_many).status_code == 400
    assert batch(emulator, http, token, []).status_code == 400
    twice = [item(emulator, "x", "Get-CASMailbox", {"Identity": "scanner"})] * 2
    assert batch(emulator, http, token, twice).status_code == 400
    reply = batch(emulator, http, token, [dict(item(emulator, "g", "Get-CASMailbox", {}), method="GET")])
    assert reply.json()["responses"][0]["status"] == 400


def test_batch_items_meet_the_cmdlet_budget_one_by_one(emulator, http, token):
    emulator.store.behaviour.update(exchange_cmdlet_budget="destructive", exchange_destructive_budget=[2, 30])
    items = [item(emulator, upn, "Set-CASMailbox", {"Identity": upn, "SmtpClientAuthenticationDisabled": False})
             for upn in ("scanner@contoso.com", "printer@contoso.com", "alerts@contoso.com")]
    answers = sorted(batch(emulator, http, token, items).json()["responses"], key=lambda answer: answer["status"])
    assert [answer["status"] for answer in answers] == [200, 200, 429]
    assert int(answers[2]["headers"]["Retry-After"]) >= 1


def test_without_the_batch_switch_the_endpoint_is_not_there(emulator, http, token):
    emulator.store.behaviour["exchange_batch"] = False
    reply = batch(emulator, http, token, [item(emulator, "a", "Get-CASMailbox", {"Identity": "scanner"})])
    assert reply.status_code == 404


def test_a_batch_needs_the_same_permission_as_invoke_command(emulator, http, get_token):
    reply = batch(emulator, http, get_token("graph"), [item(emulator, "a", "Get-CASMailbox", {"Identity": "scanner"})])
    assert reply.status_code == 401


def test_select_keeps_only_the_properties_asked_for_on_every_page(emulator, http, token):
    emulator.store.behaviour["exchange_page_size"] = 2
    url = f"{emulator.base_url}/adminapi/beta/contoso.com/InvokeCommand?$select=PrimarySmtpAddress,emailaddresses"
    first = invoke(emulator, http, token, "Get-CASMailbox", {"ResultSize": "Unlimited"}, url=url).json()
    assert {key for row in first["value"] for key in row} == {"PrimarySmtpAddress", "EmailAddresses",
                                                              "EmailAddresses@odata.type"}
    assert "$select=PrimarySmtpAddress,emailaddresses" in first["@odata.nextLink"]
    second = invoke(emulator, http, token, "Get-CASMailbox", {"ResultSize": "Unlimited"},
                    url=first["@odata.nextLink"]).json()
    assert second["value"] and all(set(row) <= {"PrimarySmtpAddress", "EmailAddresses", "EmailAddresses@odata.type"}
                                   for row in second["value"])


def test_without_continue_on_error_a_batch_stops_at_the_first_failed_cmdlet(emulator, http, token):
    items = [item(emulator, "a", "Get-CASMailbox", {"Identity": "ghost@contoso.com"}),
             item(emulator, "b", "Set-CASMailbox", {"Identity": "scanner@contoso.com",
                                                   "SmtpClientAuthenticationDisabled": False})]
    answers = batch(emulator, http, token, items, prefer="odata.maxpagesize=1000").json()["responses"]
    assert [answer["id"] for answer in answers] == ["a"]
    assert user(emulator, "scanner@contoso.com").smtp_client_authentication_disabled is True
