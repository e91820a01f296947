"""The OAuth relay through Exchange's cmdlets: service principals, mailbox and recipient permissions,
authentication policies and their assignment, and the XOAUTH2 login they add up to (with the consent in Graph)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import CONTOSO_ID, RELAY_APP, RELAY_OBJECT_ID, RELAY_SP, bearer
from m365_emulator.smtp import models as smtp
from m365_emulator.state import BASIC_AUTH_SWITCHES
from test_exchange import detail, invoke
from test_smtp import connect, xoauth2

SELF = "NT AUTHORITY\\SELF"
SEND_AS_APP = "7146a1f0-8703-45b3-9eae-527a64c00995"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
ACE_ABSENT = "Can't remove the access control entry on the object \"notify\" for account \"{}\" because the ACE " \
             "doesn't exist on the object."


@pytest.fixture
def token(get_token) -> str:
    return get_token("exchange")


@pytest.fixture
def call(emulator, http, token):
    """``call(cmdlet, params)`` -> the reply (any status)."""

    def run(cmdlet: str, parameters: dict[str, Any] | None = None):
        return invoke(emulator, http, token, cmdlet, parameters)

    return run


@pytest.fixture
def run(call):
    """``run(cmdlet, params)`` -> the 200 reply's JSON."""

    def run_ok(cmdlet: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = call(cmdlet, parameters)
        assert reply.status_code == 200, reply.text
        return reply.json()

    return run_ok


def tenant(emulator):
    return emulator.store.find_tenant(CONTOSO_ID)


def wrote(emulator) -> bool:
    return emulator.request_log[-1]["wrote"]


def register(run, object_id: str = RELAY_SP, display_name: str | None = "SMTP relay") -> dict[str, Any]:
    parameters = {"AppId": RELAY_APP, "ObjectId": object_id}
    if display_name:
        parameters["DisplayName"] = display_name
    [created] = run("New-ServicePrincipal", parameters)["value"]
    return created


def set_switch(emulator, name: str, value: Any) -> None:
    with emulator.store.lock:
        emulator.store.behaviour[name] = value


# -- service principals ---------------------------------------------------------------------------------------

def test_service_principal_lifecycle(emulator, run, call):
    created = register(run)
    assert {key: created[key] for key in ("AppId", "ObjectId", "DisplayName")} == {
        "AppId": RELAY_APP, "ObjectId": RELAY_SP, "DisplayName": "SMTP relay"}
    assert created["Identity"] and created["Name"]
    duplicate = call("New-ServicePrincipal", {"AppId": RELAY_APP, "ObjectId": "b0000000-0000-4000-8000-000000000001"})
    assert duplicate.status_code == 400
    assert f"ADObjectAlreadyExistsException|The service principal with AppId '{RELAY_APP}'" in detail(duplicate)

    assert run("Set-ServicePrincipal", {"Identity": RELAY_APP, "DisplayName": "Relay devices"})["value"] == []
    assert wrote(emulator) is True
    run("Set-ServicePrincipal", {"Identity": created["Identity"], "DisplayName": "Relay devices"})
    assert wrote(emulator) is False
    [shown] = run("Get-ServicePrincipal", {"Identity": RELAY_SP})["value"]
    assert shown["DisplayName"] == "Relay devices"

    assert run("Remove-ServicePrincipal", {"Identity": RELAY_APP, "Confirm": False})["value"] == []
    assert wrote(emulator) is True and run("Get-ServicePrincipal")["value"] == []
    for cmdlet, parameters in (("Get-ServicePrincipal", {"Identity": RELAY_APP}),
                               ("Remove-ServicePrincipal", {"Identity": RELAY_APP}),
                               ("Set-ServicePrincipal", {"Identity": RELAY_APP, "DisplayName": "x"})):
        reply = call(cmdlet, parameters)
        assert reply.status_code == 404 and "ManagementObjectNotFoundException" in detail(reply), cmdlet


def test_removing_a_service_principal_orphans_its_permissions(emulator, run, get_token):
    register(run)
    run("Add-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "FullAccess"})
    run("Add-RecipientPermission", {"Identity": "notify", "Trustee": RELAY_APP, "AccessRights": "SendAs",
                                    "Confirm": False})
    run("Remove-ServicePrincipal", {"Identity": RELAY_APP})
    [orphan] = run("Get-MailboxPermission", {"Identity": "notify"})["value"][1:]
    assert orphan["User"].startswith("S-1-5-21-") and orphan["AccessRights"] == ["FullAccess"]
    [send_as] = [row for row in run("Get-RecipientPermission", {"Identity": "notify"})["value"]
                 if row["Trustee"] != SELF]
    assert send_as["Trustee"] == orphan["User"]

    # Registered again with the same ids, the app gets nothing from the orphaned entries.
    register(run)
    assert run("Get-MailboxPermission", {"Identity": "notify", "User": RELAY_APP})["value"] == []
    with emulator.store.lock:
        principal = tenant(emulator).find_service_principal(RELAY_APP)
        assert not smtp.has_full_access(tenant(emulator), tenant(emulator).find_user("notify"), principal)
    # The orphaned entries can be removed by what they show.
    run("Remove-MailboxPermission", {"Identity": "notify", "User": orphan["User"], "AccessRights": "FullAccess"})
    run("Remove-RecipientPermission", {"Identity": "notify", "Trustee": orphan["User"], "AccessRights": "SendAs"})
    assert run("Get-MailboxPermission", {"Identity": "notify"})["value"][0]["User"] == SELF
    assert len(run("Get-MailboxPermission", {"Identity": "notify"})["value"]) == 1
    with emulator.store.lock:
        assert tenant(emulator).find_user("notify").send_as == []


# -- mailbox permissions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shows, expected", [("display_name", "SMTP relay"), ("identity", "IDENTITY"),
                                             ("app_id", RELAY_APP)])
def test_what_get_mailbox_permission_shows_for_a_service_principal(emulator, run, shows, expected):
    set_switch(emulator, "mailbox_permission_user", shows)
    created = register(run)
    run("Add-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "FullAccess",
                                  "InheritanceType": "All", "AutoMapping": False})
    self_row, granted = run("Get-MailboxPermission", {"Identity": "notify@contoso.com"})["value"]
    assert self_row["User"] == SELF
    assert granted["User"] == (created["Identity"] if expected == "IDENTITY" else expected)
    assert {key: granted[key] for key in ("Identity", "AccessRights", "IsInherited", "Deny", "InheritanceType")} == {
        "Identity": "notify", "AccessRights": ["FullAccess"], "IsInherited": False, "Deny": False,
        "InheritanceType": "All"}
    # -User finds the entry by any name of the principal, and leaves NT AUTHORITY\SELF out.
    for name in (RELAY_APP, RELAY_SP, created["Identity"], "SMTP relay"):
        assert [row["User"] for row in run("Get-MailboxPermission", {"Identity": "notify", "User": name})["value"]] \
            == [granted["User"]], name


def test_a_user_trustee_shows_its_upn_whatever_the_switch(emulator, run):
    set_switch(emulator, "mailbox_permission_user", "app_id")
    run("Add-MailboxPermission", {"Identity": "notify", "User": "alice", "AccessRights": "FullAccess"})
    assert run("Get-MailboxPermission", {"Identity": "notify", "User": "alice@contoso.com"})["value"][0]["User"] == \
        "alice@contoso.com"


def test_remove_mailbox_permission(emulator, run, call):
    register(run)
    run("Add-MailboxPermission", {"Identity": "notify", "User": RELAY_APP,
                                  "AccessRights": ["FullAccess", "ReadPermission"]})
    body = run("Remove-MailboxPermission", {"Identity": "notify", "User": RELAY_SP, "AccessRights": "FullAccess",
                                            "InheritanceType": "All", "Confirm": False})
    assert body["value"] == [] and body["@adminapi.warnings"] == [] and wrote(emulator) is True
    [kept] = run("Get-MailboxPermission", {"Identity": "notify", "User": RELAY_APP})["value"]
    assert kept["AccessRights"] == ["ReadPermission"]
    run("Remove-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "ReadPermission"})
    assert run("Get-MailboxPermission", {"Identity": "notify", "User": RELAY_APP})["value"] == []

    again = run("Remove-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "FullAccess"})
    assert again["@adminapi.warnings"] == [ACE_ABSENT.format(RELAY_APP)] and wrote(emulator) is False
    for parameters in ({"Identity": "ghost", "User": RELAY_APP, "AccessRights": "FullAccess"},
                       {"Identity": "notify", "User": "nobody@contoso.com", "AccessRights": "FullAccess"}):
        reply = call("Remove-MailboxPermission", parameters)
        assert reply.status_code == 404 and "ManagementObjectNotFoundException" in detail(reply)
    missing_rights = call("Remove-MailboxPermission", {"Identity": "notify", "User": RELAY_APP})
    assert missing_rights.status_code == 400 and "missing mandatory parameters: AccessRights" in detail(missing_rights)


# -- recipient permissions ------------------------------------------------------------------------------------

def test_recipient_permissions_read_in_bulk_and_removed(emulator, run):
    register(run)
    for mailbox in ("notify", "alerts"):
        run("Add-RecipientPermission", {"Identity": mailbox, "Trustee": RELAY_APP, "AccessRights": "SendAs",
                                        "Confirm": False})
    run("Add-RecipientPermission", {"Identity": "erp", "Trustee": "alice", "AccessRights": "SendAs"})
    everything = run("Get-RecipientPermission", {"ResultSize": "Unlimited"})["value"]
    assert len([row for row in everything if row["Trustee"] == SELF]) == 10
    mine = run("Get-RecipientPermission", {"Trustee": RELAY_APP, "ResultSize": "Unlimited"})["value"]
    assert sorted(row["Identity"] for row in mine) == ["alerts", "notify"]
    assert {key: mine[0][key] for key in ("AccessControlType", "AccessRights", "IsInherited", "InheritanceType")} == {
        "AccessControlType": "Allow", "AccessRights": ["SendAs"], "IsInherited": False, "InheritanceType": "None"}
    assert run("Get-RecipientPermission", {"Trustee": RELAY_APP, "AccessRights": "SendAs"})["value"] == mine

    body = run("Remove-RecipientPermission", {"Identity": "notify", "Trustee": RELAY_SP, "AccessRights": "SendAs",
                                              "Confirm": False})
    assert body["value"] == [] and wrote(emulator) is True
    assert [row["Identity"] for row in run("Get-RecipientPermission", {"Trustee": RELAY_APP})["value"]] == ["alerts"]
    again = run("Remove-RecipientPermission", {"Identity": "notify", "Trustee": RELAY_APP, "AccessRights": "SendAs"})
    assert again["@adminapi.warnings"] == [ACE_ABSENT.format(RELAY_APP)] and wrote(emulator) is False


# -- authentication policies ----------------------------------------------------------------------------------

def test_seeded_policies_carry_every_switch(emulator, run):
    with emulator.store.lock:
        assert set(tenant(emulator).authentication_policies["Allow Basic SMTP"]) == set(BASIC_AUTH_SWITCHES)
    [policy] = run("Get-AuthenticationPolicy", {"Identity": "Allow Basic SMTP"})["value"]
    assert {key for key in policy if key.startswith("AllowBasicAuth")} == set(BASIC_AUTH_SWITCHES)
    assert len(BASIC_AUTH_SWITCHES) == 12 and policy["AllowBasicAuthSmtp"] is True
    assert policy["Name"] == policy["Identity"] == "Allow Basic SMTP" and len(policy["Id"]) == 36
    assert policy["DistinguishedName"].startswith("CN=Allow Basic SMTP,CN=Auth Policies,CN=Configuration,"
                                                  "CN=contoso.onmicrosoft.com,")


def test_new_and_set_authentication_policy(emulator, run, call):
    [created] = run("New-AuthenticationPolicy", {"Name": "Relay Devices", "AllowBasicAuthSmtp": True})["value"]
    assert created["AllowBasicAuthSmtp"] is True and wrote(emulator) is True
    assert not any(created[key] for key in BASIC_AUTH_SWITCHES if key != "AllowBasicAuthSmtp")
    for name in ("Relay Devices", "relay devices"):
        duplicate = call("New-AuthenticationPolicy", {"Name": name})
        assert duplicate.status_code == 400
        assert "AlreadyExistsException|The authentication policy 'relay devices' already exists" in \
            detail(duplicate).replace("Relay Devices", "relay devices")

    assert run("Set-AuthenticationPolicy", {"Identity": "relay devices", "AllowBasicAuthImap": True})["value"] == []
    assert wrote(emulator) is True
    run("Set-AuthenticationPolicy", {"Identity": created["DistinguishedName"], "AllowBasicAuthSmtp": False})
    [policy] = run("Get-AuthenticationPolicy", {"Identity": created["Id"]})["value"]
    assert (policy["AllowBasicAuthSmtp"], policy["AllowBasicAuthImap"], policy["AllowBasicAuthPop"]) == (False, True,
                                                                                                       False)
    run("Set-AuthenticationPolicy", {"Identity": "Relay Devices", "AllowBasicAuthImap": True})
    assert wrote(emulator) is False

    unknown = call("Set-AuthenticationPolicy", {"Identity": "Nope", "AllowBasicAuthSmtp": True})
    assert unknown.status_code == 404 and "ManagementObjectNotFoundException" in detail(unknown)
    bad_switch = call("New-AuthenticationPolicy", {"Name": "Other", "AllowBasicAuthTelnet": True})
    assert bad_switch.status_code == 400 and "'AllowBasicAuthTelnet'" in detail(bad_switch)
    text_switch = call("New-AuthenticationPolicy", {"Name": "Other", "AllowBasicAuthSmtp": "true"})
    assert text_switch.status_code == 400 and "ParameterBindingArgumentTransformationException" in detail(text_switch)
    assert "Other" not in tenant(emulator).authentication_policies


def test_remove_authentication_policy(emulator, run, call):
    run("Set-OrganizationConfig", {"DefaultAuthenticationPolicy": "Allow Basic SMTP"})
    default = call("Remove-AuthenticationPolicy", {"Identity": "Allow Basic SMTP", "Confirm": False})
    assert default.status_code == 400
    assert "TaskArgumentException|The authentication policy 'Allow Basic SMTP' is the organization's default " \
           "authentication policy and can't be removed." in detail(default)
    assigned = call("Remove-AuthenticationPolicy", {"Identity": "Block Basic SMTP"})
    assert assigned.status_code == 400 and "assigned to 1 user(s) (alerts@contoso.com)" in detail(assigned)
    run("Set-User", {"Identity": "alerts", "AuthenticationPolicy": None})
    assert run("Remove-AuthenticationPolicy", {"Identity": "block basic smtp"})["value"] == []
    assert wrote(emulator) is True and "Block Basic SMTP" not in tenant(emulator).authentication_policies
    gone = call("Get-AuthenticationPolicy", {"Identity": "Block Basic SMTP"})
    assert gone.status_code == 404
    for cmdlet in ("Get-AuthenticationPolicy", "Set-AuthenticationPolicy", "Remove-AuthenticationPolicy"):
        assert call(cmdlet, {"Identity": ""}).status_code == 404, cmdlet


@pytest.mark.parametrize("shows", ["name", "distinguished_name"])
def test_how_get_user_shows_the_policy(emulator, run, call, shows):
    set_switch(emulator, "authentication_policy_shows", shows)
    [dn] = [policy["DistinguishedName"] for policy in run("Get-AuthenticationPolicy")["value"]
            if policy["Name"] == "Block Basic SMTP"]
    expected = "Block Basic SMTP" if shows == "name" else dn
    [alerts] = run("Get-User", {"Identity": "alerts@contoso.com"})["value"]
    assert alerts["AuthenticationPolicy"] == expected
    run("Set-OrganizationConfig", {"DefaultAuthenticationPolicy": "Block Basic SMTP"})
    assert run("Get-OrganizationConfig")["value"][0]["DefaultAuthenticationPolicy"] == expected
    # What Get-User shows is accepted back.
    run("Set-User", {"Identity": "scanner", "AuthenticationPolicy": expected})
    assert tenant(emulator).find_user("scanner").authentication_policy == "Block Basic SMTP"
    [scanner] = run("Get-User", {"Identity": "scanner"})["value"]
    assert scanner["AuthenticationPolicy"] == expected
    unknown = call("Set-User", {"Identity": "scanner", "AuthenticationPolicy": "Block Basic SMTP 2"})
    assert unknown.status_code == 404 and "'Block Basic SMTP 2' couldn't be found" in detail(unknown)


# -- the whole relay: consent, registration, FullAccess, XOAUTH2 ------------------------------------------------

def consent(emulator, http, get_token) -> None:
    graph = bearer(get_token("graph"))
    resource = http.get(f"{emulator.base_url}/v1.0/servicePrincipals(appId='{EXCHANGE_APP_ID}')",
                        headers=graph).json()["id"]
    reply = http.post(f"{emulator.base_url}/v1.0/servicePrincipals/{resource}/appRoleAssignedTo", headers=graph,
                      json={"principalId": RELAY_SP, "resourceId": resource, "appRoleId": SEND_AS_APP})
    assert reply.status_code == 201, reply.text


def test_consent_registration_and_full_access_make_xoauth2_work(emulator, http, run, get_token):
    run("Set-CASMailbox", {"Identity": "notify", "SmtpClientAuthenticationDisabled": False})
    assert xoauth2(emulator, "notify@contoso.com", get_token("exchange", client_id=RELAY_APP))[0] == 535  # no consent
    consent(emulator, http, get_token)
    relay_token = get_token("exchange", client_id=RELAY_APP)
    assert xoauth2(emulator, "notify@contoso.com", relay_token)[0] == 535  # not registered in Exchange
    register(run)
    assert xoauth2(emulator, "notify@contoso.com", relay_token)[0] == 535  # no FullAccess
    run("Add-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "FullAccess"})
    assert xoauth2(emulator, "notify@contoso.com", relay_token) == (235, "2.7.0 Authentication successful")
    with connect(emulator) as client:
        client.auth("XOAUTH2", lambda challenge=None: f"user=notify@contoso.com\x01auth=Bearer {relay_token}\x01\x01")
        assert client.sendmail("notify@contoso.com", ["ops@example.org"], b"Subject: relay\r\n\r\nhi\r\n") == {}
    assert [message["subject"] for message in emulator.messages] == ["relay"]
    reasons = [entry["status"]["failureReason"] for entry in tenant(emulator).sign_ins[-5:]]
    assert [entry["appId"] for entry in tenant(emulator).sign_ins[-5:]] == [RELAY_APP] * 5
    assert reasons[:3] == ["The application has no SMTP.SendAsApp permission.",
                           "The application is not registered in Exchange Online.",
                           "The application has no FullAccess on the mailbox."]
    assert reasons[3:] == ["Other.", "Other."]


def test_a_service_principal_made_from_the_registration_object_id_is_refused(emulator, http, run, call, get_token):
    run("Set-CASMailbox", {"Identity": "notify", "SmtpClientAuthenticationDisabled": False})
    consent(emulator, http, get_token)
    # Exchange does not check the object id against Entra: the classic mistake is accepted here ...
    register(run, object_id=RELAY_OBJECT_ID)
    run("Add-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "FullAccess"})
    relay_token = get_token("exchange", client_id=RELAY_APP)
    # ... and only the sign-in fails.
    code, text = xoauth2(emulator, "notify@contoso.com", relay_token)
    assert code == 535 and text.startswith("5.7.3 Authentication unsuccessful")
    assert "names another object" in tenant(emulator).sign_ins[-1]["status"]["failureReason"]
    with emulator.store.lock:
        claims = emulator.services["smtp"].server.handler.verify(relay_token)
        assert smtp.evaluate_oauth(emulator.store, "notify@contoso.com", claims).blocker == \
            "service_principal_object_id"
    # Made again from the enterprise application's object id, with FullAccess again, it works.
    run("Remove-ServicePrincipal", {"Identity": RELAY_APP})
    register(run)
    run("Add-MailboxPermission", {"Identity": "notify", "User": RELAY_APP, "AccessRights": "FullAccess"})
    assert xoauth2(emulator, "notify@contoso.com", relay_token)[0] == 235


@pytest.mark.parametrize("object_id", ["registration", "another_app", "a_user"])
def test_any_other_directory_object_is_the_wrong_object_id(emulator, object_id):
    with emulator.store.lock:
        organisation = tenant(emulator)
        app = organisation.apps[RELAY_APP]
        app.exchange_permissions = ["SMTP.SendAsApp"]
        wrong = {"registration": app.object_id,
                 "another_app": organisation.apps["0b6f3c1e-7a2d-4c5e-9f80-1a2b3c4d5e6f"].service_principal_id,
                 "a_user": organisation.find_user("alice").id}[object_id]
        principal = smtp.ServicePrincipal(RELAY_APP, wrong, "relay", wrong)
        organisation.service_principals.append(principal)
        organisation.find_user("notify").mailbox_permissions.append({"user": wrong, "access_rights": ["FullAccess"]})
        organisation.find_user("notify").smtp_client_authentication_disabled = False
        claims = type("Claims", (), {"tenant": organisation, "app": app, "roles": ["SMTP.SendAsApp"]})()
        assert smtp.evaluate_oauth(emulator.store, "notify@contoso.com", claims).blocker == \
            "service_principal_object_id"
        principal.object_id = app.service_principal_id
        assert smtp.evaluate_oauth(emulator.store, "notify@contoso.com", claims).succeeded
