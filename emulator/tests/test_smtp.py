"""SMTP submission: Python's smtplib against the emulator sees Exchange Online's replies for each blocker."""

from __future__ import annotations

import base64
import smtplib
from email.message import EmailMessage
from types import SimpleNamespace

import pytest

from conftest import AUTOMATION_APP, CONTOSO_ID, FABRIKAM_ID, READONLY_APP
from m365_emulator.smtp import models as smtp
from m365_emulator.seed import load_store
from m365_emulator.state import ServicePrincipal

PASSWORDS = {
    "scanner": "Scanner-Pass-2026!", "printer": "Printer-Pass-2026!", "alerts": "Alerts-Pass-2026!",
    "erp": "Erp-Pass-2026!", "backup": "Backup-Pass-2026!", "kiosk": "Kiosk-Pass-2026!",
}
SP_OBJECT_ID = "a1b2c3d4-0000-4000-8000-00000000beef"
CRITERIA = ("5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated "
            "successfully. Contact your administrator.")


def connect(emulator, tls: bool = True) -> smtplib.SMTP:
    client = smtplib.SMTP(emulator.smtp_host, emulator.smtp_port, timeout=10)
    client.ehlo("client.example")
    if tls:
        client.starttls(context=emulator.client_ssl_context())
        client.ehlo("client.example")
    return client


def login(emulator, upn: str, password: str) -> tuple[int, str]:
    with connect(emulator) as client:
        try:
            code, text = client.login(upn, password)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code, error.smtp_error.decode()
        except smtplib.SMTPResponseException as error:
            return error.smtp_code, error.smtp_error.decode()
        return code, text.decode()


def change(emulator, **tenant_fields):
    with emulator.store.lock:
        tenant = emulator.store.find_tenant(CONTOSO_ID)
        for key, value in tenant_fields.items():
            setattr(tenant, key, value)
        return tenant


def mailbox(emulator, name: str):
    with emulator.store.lock:
        return emulator.store.find_tenant(CONTOSO_ID).find_user(f"{name}@contoso.com")


# -- protocol surface -----------------------------------------------------------------------------------------

def test_greeting_and_ehlo_before_and_after_starttls(emulator):
    client = smtplib.SMTP(timeout=10)
    code, greeting = client.connect(emulator.smtp_host, emulator.smtp_port)
    assert code == 220 and b"Microsoft ESMTP MAIL Service ready at " in greeting
    with client:
        client.ehlo("client.example")
        assert client.has_extn("starttls") and not client.has_extn("auth")
        code, text = client.docmd("AUTH", "LOGIN")
        assert (code, text) == (504, b"5.7.4 Unrecognized authentication type")
        code, text = client.docmd("STARTTLS")
        assert (code, text) == (220, b"2.0.0 SMTP server ready")
        client.sock = emulator.client_ssl_context().wrap_socket(client.sock, server_hostname=emulator.smtp_host)
        client.file = None
        client.ehlo("client.example")
        assert client.esmtp_features["auth"].split() == ["LOGIN", "XOAUTH2"]
        assert client.esmtp_features["size"] == "157286400"
        for keyword in ("pipelining", "enhancedstatuscodes", "8bitmime", "smtputf8"):
            assert client.has_extn(keyword), keyword
        assert not client.has_extn("starttls")


def test_mail_from_without_auth_is_530_5_7_57(emulator):
    with connect(emulator) as client:
        code, text = client.mail("scanner@contoso.com")
    assert code == 530 and text.decode().startswith("5.7.57 Client not authenticated to send mail. [")


@pytest.mark.parametrize("switch", [False, True])
def test_mail_from_after_a_refused_auth(emulator, switch):
    change(emulator, transport_smtp_auth_disabled=False, security_defaults_enabled=False)
    with emulator.store.lock:
        emulator.store.behaviour["auth_failure_at_mail_from"] = switch
    with connect(emulator) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alerts@contoso.com", PASSWORDS["alerts"])  # its authentication policy blocks basic auth
        code, text = client.mail("alerts@contoso.com")
    text = text.decode()
    assert code == 530
    if switch:
        assert text.startswith("5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication "
                               "unsuccessful, basic authentication is disabled. [")
        assert text.count("[") == 1 and text.endswith("]")
    else:
        assert text.startswith("5.7.57 Client not authenticated to send mail. [")


def test_mail_from_without_any_auth_names_no_refusal_even_with_the_switch(emulator):
    with emulator.store.lock:
        emulator.store.behaviour["auth_failure_at_mail_from"] = True
    with connect(emulator) as client:
        code, text = client.mail("scanner@contoso.com")
    assert code == 530 and text.decode().startswith("5.7.57 Client not authenticated to send mail. [")


# -- basic authentication refusals for the sample tenant's relay mailboxes -------------------------------------

def test_each_blocked_mailbox_gets_its_own_refusal(emulator):
    # Org switch on, security defaults on: the sample tenant as seeded.
    assert login(emulator, "scanner@contoso.com", PASSWORDS["scanner"])[1].startswith(smtp.MAILBOX_DISABLED[1])
    assert login(emulator, "printer@contoso.com", PASSWORDS["printer"])[1].startswith(smtp.TENANT_DISABLED[1])
    assert login(emulator, "scanner@contoso.com", "wrong")[1].startswith(smtp.CREDENTIALS[1])
    assert login(emulator, "nobody@contoso.com", "x")[1].startswith(smtp.CREDENTIALS[1])

    change(emulator, transport_smtp_auth_disabled=False)
    code, text = login(emulator, "alerts@contoso.com", PASSWORDS["alerts"])
    assert code == 535 and text.startswith("5.7.139 Authentication unsuccessful, basic authentication is disabled.")
    code, text = login(emulator, "kiosk@contoso.com", PASSWORDS["kiosk"])
    assert text.startswith("5.7.139 Authentication unsuccessful, user is locked by your organization's security "
                           "defaults policy. Contact your administrator.")

    change(emulator, security_defaults_enabled=False)
    criteria = "5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated " \
               "successfully. Contact your administrator."
    for name in ("printer", "erp", "kiosk"):  # per-user MFA enforced, MFA enabled, Conditional Access
        code, text = login(emulator, f"{name}@contoso.com", PASSWORDS[name])
        assert (code, text.split(" [")[0]) == (535, criteria), name
    assert login(emulator, "backup@contoso.com", PASSWORDS["backup"])[1].startswith(smtp.CREDENTIALS[1])
    with emulator.store.lock:
        emulator.store.behaviour["unlicensed_reply"] = "criteria"
    assert login(emulator, "backup@contoso.com", PASSWORDS["backup"])[1].startswith(criteria)


def test_refusals_carry_the_bracketed_frontend_suffix(emulator):
    code, text = login(emulator, "scanner@contoso.com", PASSWORDS["scanner"])
    suffix = text.rsplit(" [", 1)[1]
    frontend, stamp, request_id = suffix.rstrip("]").split(" ")
    assert frontend.endswith(".PROD.OUTLOOK.COM") and stamp.endswith("Z") and len(request_id) == 16


def test_fixed_mailbox_authenticates_and_sends(emulator):
    with emulator.store.lock:
        mailbox(emulator, "scanner").smtp_client_authentication_disabled = False  # overrides the org switch
    change(emulator, security_defaults_enabled=False)
    with connect(emulator) as client:
        code, text = client.login("scanner@contoso.com", PASSWORDS["scanner"])
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "scanner@contoso.com", "ops@example.org", "Scan 42"
        message.set_content("scanned")
        assert client.send_message(message) == {}
    [sent] = emulator.messages
    assert sent["mailbox"] == "scanner@contoso.com" and sent["tenant"] == CONTOSO_ID
    assert sent["mail_from"] == "scanner@contoso.com" and sent["rcpt_tos"] == ["ops@example.org"]
    assert sent["subject"] == "Scan 42" and sent["auth_mechanism"] == "LOGIN" and sent["size"] > 0


def test_send_as_another_mailbox_needs_send_as(emulator):
    with emulator.store.lock:
        mailbox(emulator, "scanner").smtp_client_authentication_disabled = False
    change(emulator, security_defaults_enabled=False)
    with connect(emulator) as client:
        client.login("scanner@contoso.com", PASSWORDS["scanner"])
        code, text = client.mail("alice@contoso.com")
        assert code == 550
        assert text.decode().startswith("5.7.60 SMTP; Client does not have permissions to send as this sender")
        client.rset()
        with emulator.store.lock:
            mailbox(emulator, "alice").send_as.append("scanner@contoso.com")
        assert client.mail("alice@contoso.com")[0] == 250


def test_basic_auth_retired_is_550_5_7_30(emulator):
    with emulator.store.lock:
        emulator.store.behaviour["basic_auth_retired"] = True
    code, text = login(emulator, "legacy-relay@contoso.com", "Legacy-Pass-2026!")
    assert code == 550
    assert text.startswith("5.7.30 Basic authentication is not supported for Client Submission.")


def test_blocker_order_decides_which_reply_wins():
    store = load_store()
    assert smtp.evaluate_basic(store, "scanner@contoso.com", PASSWORDS["scanner"]).blocker == "mailbox_switch"
    store.behaviour["blocker_order"] = ["security_defaults", "credentials", "mailbox_switch"]
    decision = smtp.evaluate_basic(store, "scanner@contoso.com", "wrong")
    assert decision.blocker == "security_defaults" and decision.reply.startswith("535 5.7.139")
    # The password is checked even when the order leaves it out.
    store.behaviour["blocker_order"] = []
    assert smtp.evaluate_basic(store, "scanner@contoso.com", "wrong").blocker == "credentials"
    assert smtp.evaluate_basic(store, "scanner@contoso.com", PASSWORDS["scanner"]).succeeded


def test_org_default_authentication_policy_applies_without_a_user_policy():
    store = load_store()
    tenant = store.find_tenant(CONTOSO_ID)
    tenant.transport_smtp_auth_disabled = False
    tenant.security_defaults_enabled = False
    assert smtp.evaluate_basic(store, "legacy-relay@contoso.com", "Legacy-Pass-2026!").succeeded
    tenant.default_authentication_policy = "Block Basic SMTP"
    assert smtp.evaluate_basic(store, "legacy-relay@contoso.com", "Legacy-Pass-2026!").reply == \
        "535 " + smtp.BASIC_DISABLED[1]


def test_excluded_user_is_not_blocked_by_conditional_access():
    store = load_store()
    tenant = store.find_tenant(CONTOSO_ID)
    kiosk = tenant.find_user("kiosk@contoso.com")
    assert smtp.blocking_policy(tenant, kiosk) is not None
    tenant.conditional_access_policies[0]["conditions"]["users"]["excludeUsers"] = [kiosk.id]
    assert smtp.blocking_policy(tenant, kiosk) is None


def test_conditional_access_by_role_template_and_only_for_other_clients():
    store = load_store()
    tenant = store.find_tenant(FABRIKAM_ID)
    admin = tenant.find_user("it-admin@fabrikam.com")
    [policy] = tenant.conditional_access_policies
    assert smtp.blocking_policy(tenant, admin) is policy
    assert smtp.blocking_policy(tenant, tenant.find_user("mfp@fabrikam.com")) is None
    policy["conditions"]["users"]["excludeRoles"] = ["Global Administrator"]
    assert smtp.blocking_policy(tenant, admin) is policy  # a role name is not a template id: no match
    policy["conditions"]["users"]["excludeRoles"] = [admin.role_template_ids[0]]
    assert smtp.blocking_policy(tenant, admin) is None
    # Exchange ActiveSync alone does not cover SMTP AUTH; all client apps do.
    contoso = store.find_tenant(CONTOSO_ID)
    kiosk = contoso.find_user("kiosk@contoso.com")
    contoso.conditional_access_policies[0]["conditions"]["clientAppTypes"] = ["exchangeActiveSync"]
    assert smtp.blocking_policy(contoso, kiosk) is None
    contoso.conditional_access_policies[0]["conditions"]["clientAppTypes"] = ["all"]
    assert smtp.blocking_policy(contoso, kiosk) is not None


def test_administrator_is_refused_by_the_role_policy(emulator):
    code, text = login(emulator, "it-admin@fabrikam.com", "Itadmin-Pass-2026!")
    assert code == 535 and text.startswith(CRITERIA)


# -- XOAUTH2 --------------------------------------------------------------------------------------------------

def xoauth2(emulator, upn: str, token: str) -> tuple[int, str]:
    with connect(emulator) as client:
        try:
            code, text = client.auth("XOAUTH2", lambda challenge=None: f"user={upn}\x01auth=Bearer {token}\x01\x01",
                                     initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code, error.smtp_error.decode()
        return code, text.decode()


def register_app(emulator, full_access: bool = True):
    with emulator.store.lock:
        tenant = emulator.store.find_tenant(CONTOSO_ID)
        tenant.service_principals.append(ServicePrincipal(AUTOMATION_APP, SP_OBJECT_ID, "relay", SP_OBJECT_ID))
        if full_access:
            tenant.find_user("notify@contoso.com").mailbox_permissions.append(
                {"user": SP_OBJECT_ID, "access_rights": ["FullAccess"]})


def test_xoauth2_switches_apply_then_success_and_send(emulator, get_token):
    register_app(emulator)
    token = get_token("exchange")
    # Security defaults stay on: they do not concern OAuth. The org switch does.
    code, text = xoauth2(emulator, "notify@contoso.com", token)
    assert (code, text.split(" [")[0]) == (535, smtp.TENANT_DISABLED[1])
    with emulator.store.lock:
        mailbox(emulator, "notify").smtp_client_authentication_disabled = True
    assert xoauth2(emulator, "notify@contoso.com", token)[1].startswith(smtp.MAILBOX_DISABLED[1])
    with emulator.store.lock:
        mailbox(emulator, "notify").smtp_client_authentication_disabled = False
    assert xoauth2(emulator, "notify@contoso.com", token) == (235, "2.7.0 Authentication successful")

    with connect(emulator) as client:
        client.auth("XOAUTH2", lambda challenge=None: f"user=notify@contoso.com\x01auth=Bearer {token}\x01\x01")
        assert client.sendmail("notify@contoso.com", ["ops@example.org"], b"Subject: OAuth\r\n\r\nhello\r\n") == {}
        assert client.mail("alice@contoso.com")[0] == 550  # no SendAs for the app on alice
    [sent] = emulator.messages
    assert sent["auth_mechanism"] == "XOAUTH2" and sent["subject"] == "OAuth" and sent["mailbox"] == "notify@contoso.com"


@pytest.mark.parametrize("case", ["garbage", "graph_audience", "no_send_as_app", "no_service_principal",
                                  "no_full_access", "unknown_mailbox"])
def test_xoauth2_rejections_are_535_5_7_3(emulator, get_token, case):
    with emulator.store.lock:
        mailbox(emulator, "notify").smtp_client_authentication_disabled = False
    register_app(emulator, full_access=case != "no_full_access")
    upn = "ghost@contoso.com" if case == "unknown_mailbox" else "notify@contoso.com"
    if case == "garbage":
        token = "not.a.token"
    elif case == "graph_audience":
        token = get_token("graph")
    elif case == "no_send_as_app":
        token = get_token("exchange", client_id=READONLY_APP)
    else:
        token = get_token("exchange")
    if case == "no_service_principal":
        with emulator.store.lock:
            emulator.store.find_tenant(CONTOSO_ID).service_principals.clear()
    code, text = xoauth2(emulator, upn, token)
    assert code == 535 and text.startswith("5.7.3 Authentication unsuccessful")


def test_xoauth2_malformed_blob_is_5_7_3(emulator):
    with connect(emulator) as client:
        code, text = client.docmd("AUTH", "XOAUTH2 " + base64.b64encode(b"user=x").decode())
    assert code == 535 and text.decode().startswith("5.7.3 Authentication unsuccessful")


def test_evaluate_oauth_ignores_basic_only_blockers():
    store = load_store()
    tenant = store.find_tenant(CONTOSO_ID)
    tenant.transport_smtp_auth_disabled = False
    alerts = tenant.find_user("alerts@contoso.com")  # authentication policy blocks basic; MFA-free
    tenant.service_principals.append(ServicePrincipal(AUTOMATION_APP, SP_OBJECT_ID, "relay", SP_OBJECT_ID))
    alerts.mailbox_permissions.append({"user": AUTOMATION_APP, "access_rights": ["FullAccess"]})
    alerts.per_user_mfa_state = "enforced"
    claims = SimpleNamespace(tenant=tenant, app=tenant.apps[AUTOMATION_APP], roles=["SMTP.SendAsApp"])
    assert smtp.evaluate_oauth(store, "alerts@contoso.com", claims).succeeded
    assert smtp.evaluate_oauth(store, "alerts@contoso.com", None).blocker == "token"
    claims.roles = []
    assert smtp.evaluate_oauth(store, "alerts@contoso.com", claims).blocker == "permission"


def test_parse_xoauth2():
    assert smtp.parse_xoauth2(b"user=a@b.c\x01auth=Bearer tok\x01\x01") == ("a@b.c", "tok")
    for bad in (b"user=a@b.c\x01\x01", b"auth=Bearer tok\x01\x01", b"user=a@b.c\x01auth=Basic x\x01\x01", b"junk"):
        with pytest.raises(ValueError):
            smtp.parse_xoauth2(bad)


def test_messages_are_bounded(emulator, monkeypatch):
    monkeypatch.setattr(smtp, "MAX_MESSAGES", 2)
    with emulator.store.lock:
        mailbox(emulator, "scanner").smtp_client_authentication_disabled = False
    change(emulator, security_defaults_enabled=False)
    with connect(emulator) as client:
        client.login("scanner@contoso.com", PASSWORDS["scanner"])
        for number in range(3):
            client.sendmail("scanner@contoso.com", ["ops@example.org"], f"Subject: {number}\r\n\r\nx\r\n".encode())
    assert [m["subject"] for m in emulator.messages] == ["1", "2"]
