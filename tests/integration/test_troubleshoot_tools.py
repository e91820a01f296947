# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""smtp_auth_info and smtp_submission_test against the emulator, one blocker at a time.

For each blocker: the relay mailbox is made clean, exactly that blocker is set, and then
- the info verdict names exactly that blocker, with the reply line the diagnosis table gives it;
- the probe gets that reply line from the emulator's submission server and the matching diagnosis;
- after the fix (the module and arguments the info module names, or the manual step it describes, done
  here on the emulator's state), both say ok and a test message is accepted.
"""

from __future__ import annotations

import pytest

from conftest import contoso, writing_requests

from m365_emulator.state import ServicePrincipal

RELAY = "printer@contoso.com"
PASSWORD = "Printer-Pass-2026!"
OAUTH_RELAY = "notify@contoso.com"
RECIPIENT = "it-team@contoso.com"


@pytest.fixture(scope="module")
def emulator(smtp_emulator):
    return smtp_emulator


def relay(tenant, upn=RELAY):
    return contoso(tenant).find_user(upn)


def make_clean(tenant):
    """Nothing blocks SMTP AUTH for the relay mailboxes."""
    with tenant.store.lock:
        organisation = contoso(tenant)
        organisation.security_defaults_enabled = False
        organisation.transport_smtp_auth_disabled = False
        organisation.default_authentication_policy = None
        for upn in (RELAY, OAUTH_RELAY):
            user = relay(tenant, upn)
            user.smtp_client_authentication_disabled = None
            user.per_user_mfa_state = "disabled"
            user.mfa_method_registered = False
            user.authentication_policy = None
            user.licenses = ["EXCHANGE_S_STANDARD"]
        app = automation_app(tenant)
        if "SMTP.SendAsApp" not in app.exchange_permissions:
            app.exchange_permissions.append("SMTP.SendAsApp")
        principal = organisation.find_service_principal(app.client_id)
        if principal is None:
            # Registered the right way: with the object id of the app's enterprise application.
            principal = ServicePrincipal(app_id=app.client_id, object_id=app.service_principal_id,
                                         display_name="m365ops automation")
            principal.identity = principal.object_id
            organisation.service_principals.append(principal)
        principal.object_id = app.service_principal_id
        app_id = app.client_id
        relay(tenant, OAUTH_RELAY).mailbox_permissions = [
            {"user": organisation.find_service_principal(app_id).identity, "access_rights": ["FullAccess"]}]


def automation_app(tenant):
    return next(app for app in contoso(tenant).apps.values() if app.display_name == "m365ops automation")


def kiosk_policy(organisation):
    return next(policy for policy in organisation.conditional_access_policies
                if policy["grantControls"]["builtInControls"] == ["block"])


# name -> (what sets it, what fixes it by hand or None when the info module's fix module does it)
def _set(**changes):
    def apply(tenant):
        with tenant.store.lock:
            for path, value in changes.items():
                owner, attribute = path.split("__")
                target = contoso(tenant) if owner == "tenant" else relay(tenant)
                setattr(target, attribute, value)
    return apply


def _include_relay_in_ca(tenant):
    with tenant.store.lock:
        kiosk_policy(contoso(tenant))["conditions"]["users"]["includeUsers"].append(relay(tenant).id)


def _exclude_relay_from_ca(tenant):
    with tenant.store.lock:
        kiosk_policy(contoso(tenant))["conditions"]["users"]["excludeUsers"].append(relay(tenant).id)


BASIC_BLOCKERS = {
    "org_smtp_auth_disabled": (_set(tenant__transport_smtp_auth_disabled=True), None),
    "mailbox_smtp_auth_disabled": (_set(user__smtp_client_authentication_disabled=True), None),
    "security_defaults_enabled": (_set(tenant__security_defaults_enabled=True), None),
    "per_user_mfa": (_set(user__per_user_mfa_state="enforced", user__mfa_method_registered=True), None),
    "authentication_policy": (_set(user__authentication_policy="Block Basic SMTP"),
                              _set(user__authentication_policy="Allow Basic SMTP")),
    "conditional_access": (_include_relay_in_ca, _exclude_relay_from_ca),
    "no_exchange_license": (_set(user__licenses=["EXCHANGE_S_FOUNDATION"]),
                            _set(user__licenses=["EXCHANGE_S_STANDARD"])),
}


def info_task(mailboxes, **options):
    return {"m365ops.smtp_auth.smtp_auth_info": dict(mailboxes=mailboxes, **options)}


def probe_task(emulator, username=RELAY, **options):
    arguments = dict(host=emulator.smtp_host, port=emulator.smtp_port, username=username, timeout=10)
    if options.get("auth_mode", "basic") == "basic":
        arguments["password"] = PASSWORD
    arguments.update(options)
    return {"m365ops.smtp_auth.smtp_submission_test": arguments}


def fix_task(blocker):
    return {blocker["fix_module"]: blocker["fix_arguments"]}


def assert_single_blocker(info, name, identity=RELAY):
    (mailbox,) = info["mailboxes"]
    assert mailbox["identity"] == identity
    assert mailbox["verdict"] == "blocked", mailbox
    assert [blocker["blocker"] for blocker in mailbox["blockers"]] == [name]
    assert mailbox["unreadable"] == []
    assert identity in mailbox["summary"]
    return mailbox["blockers"][0]


def assert_probe_refused_with(probe, blocker):
    assert probe["ok"] is False and probe["status"] == "refused"
    assert probe["stage"] == "auth"
    assert probe["reply_line"] in blocker["replies"]
    assert probe["server_suffix"] and probe["server_suffix"].startswith("[")
    assert blocker["blocker"] in probe["diagnosis"]["blockers"]
    assert probe["diagnosis"]["matches_known_reply"] is True
    assert probe["message_sent"] is False and probe["changed"] is False


def assert_both_ok_and_sent(info, probe, tenant, identity=RELAY):
    (mailbox,) = info["mailboxes"]
    assert mailbox["verdict"] == "ok", mailbox
    assert mailbox["blockers"] == [] and mailbox["unreadable"] == []
    assert probe["ok"] is True and probe["status"] == "sent", probe["summary"]
    assert probe["changed"] is True and probe["authenticated"] is True
    assert [message["mailbox"] for message in tenant.messages] == [identity]
    assert tenant.messages[0]["rcpt_tos"] == [RECIPIENT]


@pytest.mark.parametrize("name", sorted(BASIC_BLOCKERS))
def test_basic_blocker_is_named_refused_and_fixed(run_play, tenant, name):
    set_blocker, manual_fix = BASIC_BLOCKERS[name]
    make_clean(tenant)
    set_blocker(tenant)
    tenant.messages.clear()

    info, probe = run_play([info_task([RELAY]), probe_task(tenant, recipient=RECIPIENT)]).results
    blocker = assert_single_blocker(info, name)
    assert_probe_refused_with(probe, blocker)
    assert tenant.messages == []

    tasks = []
    if manual_fix is None:
        assert blocker["fix_module"], "%s names no module to fix it" % name
        tasks.append(fix_task(blocker))
    else:
        manual_fix(tenant)
    fixed = run_play(tasks + [info_task([RELAY]), probe_task(tenant, recipient=RECIPIENT)]).results
    if tasks:
        assert fixed[0]["changed"] is True and not fixed[0].get("failed"), fixed[0]
    assert_both_ok_and_sent(fixed[-2], fixed[-1], tenant)


def test_org_default_authentication_policy_blocks_too(run_play, tenant):
    make_clean(tenant)
    with tenant.store.lock:
        contoso(tenant).default_authentication_policy = "Block Basic SMTP"

    info, probe = run_play([info_task([RELAY]), probe_task(tenant)]).results

    blocker = assert_single_blocker(info, "authentication_policy")
    assert "default" in blocker["detail"]
    assert_probe_refused_with(probe, blocker)


def test_mailbox_not_found(run_play, tenant):
    make_clean(tenant)

    info, probe = run_play([info_task(["ghost@contoso.com"]), probe_task(tenant, username="ghost@contoso.com")]).results

    blocker = assert_single_blocker(info, "mailbox_not_found", identity="ghost@contoso.com")
    assert info["mailboxes"][0]["found"] is False
    assert_probe_refused_with(probe, blocker)


OAUTH_BLOCKERS = ("no_smtp_send_as_app", "service_principal_not_registered", "service_principal_wrong_object_id",
                  "no_full_access")


@pytest.mark.parametrize("name", OAUTH_BLOCKERS)
def test_oauth_blocker_is_named_refused_and_fixed(run_play, tenant, name):
    make_clean(tenant)
    with tenant.store.lock:
        if name == "no_smtp_send_as_app":
            automation_app(tenant).exchange_permissions.remove("SMTP.SendAsApp")
        if name == "service_principal_not_registered":
            contoso(tenant).service_principals.clear()
        if name == "service_principal_wrong_object_id":
            # The classic mistake: the app registration's object id instead of the enterprise application's.
            contoso(tenant).find_service_principal(automation_app(tenant).client_id).object_id = \
                automation_app(tenant).object_id
        relay(tenant, OAUTH_RELAY).mailbox_permissions = []
    tenant.messages.clear()
    oauth_probe = probe_task(tenant, username=OAUTH_RELAY, auth_mode="oauth", recipient=RECIPIENT)

    info, probe = run_play([info_task([{"upn": OAUTH_RELAY, "auth": "oauth"}]), oauth_probe]).results
    blocker = assert_single_blocker(info, name, identity=OAUTH_RELAY)
    assert_probe_refused_with(probe, blocker)
    assert "C: AUTH XOAUTH2 ********" in probe["transcript"]

    make_clean(tenant)  # the manual fix: consent, New-ServicePrincipal, Add-MailboxPermission FullAccess
    info, probe = run_play([info_task([OAUTH_RELAY], auth_mode="oauth"), oauth_probe]).results
    assert_both_ok_and_sent(info, probe, tenant, identity=OAUTH_RELAY)


def test_oauth_ignores_the_blockers_of_basic_authentication(run_play, tenant):
    make_clean(tenant)
    with tenant.store.lock:
        contoso(tenant).security_defaults_enabled = True
        relay(tenant, OAUTH_RELAY).per_user_mfa_state = "enforced"

    info = run_play([info_task([{"upn": OAUTH_RELAY, "auth": "oauth"}, RELAY])])[0]

    oauth_mailbox, basic_mailbox = info["mailboxes"]
    assert oauth_mailbox["verdict"] == "ok"
    assert [blocker["blocker"] for blocker in basic_mailbox["blockers"]] == ["security_defaults_enabled"]


def test_every_blocker_of_the_sample_tenant_in_one_run(run_play, tenant):
    """The sample tenant as seeded: a handful of requests, every mailbox with its own story."""
    mailboxes = ["scanner@contoso.com", "printer@contoso.com", "alerts@contoso.com", "kiosk@contoso.com",
                 "backup@contoso.com", "ghost@contoso.com"]

    info = run_play([info_task(mailboxes)], check=True)[0]

    names = {mailbox["identity"]: {blocker["blocker"] for blocker in mailbox["blockers"]}
             for mailbox in info["mailboxes"]}
    tenant_wide = {"security_defaults_enabled", "org_smtp_auth_disabled"}
    assert names["scanner@contoso.com"] == {"security_defaults_enabled", "mailbox_smtp_auth_disabled"}
    assert names["printer@contoso.com"] == tenant_wide | {"per_user_mfa"}
    assert names["alerts@contoso.com"] == tenant_wide | {"authentication_policy"}
    assert names["kiosk@contoso.com"] == tenant_wide | {"conditional_access"}
    assert names["backup@contoso.com"] == tenant_wide | {"no_exchange_license"}
    assert names["ghost@contoso.com"] == {"mailbox_not_found"}
    assert writing_requests(tenant) == []
    graph_requests = [entry for entry in tenant.request_log if entry["path"] in ("/v1.0/$batch", "/beta/$batch")]
    assert len(graph_requests) == 1, "licences, MFA and the tenant policies fit in one $batch"


def test_missing_permission_gives_unknown_and_names_it(run_play, tenant):
    make_clean(tenant)
    with tenant.store.lock:
        automation_app(tenant).graph_permissions = ["User.Read.All"]

    info = run_play([info_task([RELAY])])[0]

    (mailbox,) = info["mailboxes"]
    assert mailbox["verdict"] == "unknown"
    unreadable = {item["setting"]: item["permission"] for item in mailbox["unreadable"]}
    assert unreadable == {"security defaults": "Policy.Read.All", "per-user MFA": "Policy.Read.All",
                          "Conditional Access policies": "Policy.Read.All"}
    # What could be read still is: the switches and the licence.
    assert mailbox["settings"]["mailbox_smtp_auth"] == "inherit"
    assert mailbox["settings"]["mailbox_plans"] == ["EXCHANGE_S_STANDARD"]
    assert "Policy.Read.All" in mailbox["summary"]


def test_missing_permission_does_not_hide_a_blocker(run_play, tenant):
    make_clean(tenant)
    with tenant.store.lock:
        automation_app(tenant).graph_permissions = ["User.Read.All"]
        relay(tenant).smtp_client_authentication_disabled = True

    (mailbox,) = run_play([info_task([RELAY])])[0]["mailboxes"]

    assert mailbox["verdict"] == "blocked"
    assert [blocker["blocker"] for blocker in mailbox["blockers"]] == ["mailbox_smtp_auth_disabled"]
    assert mailbox["unreadable"]


def test_basic_auth_retirement_gets_5_7_30(run_play, tenant):
    make_clean(tenant)
    with tenant.store.lock:
        tenant.store.behaviour["basic_auth_retired"] = True

    probe = run_play([probe_task(tenant)])[0]

    assert probe["reply_line"] == "550 5.7.30 Basic authentication is not supported for Client Submission."
    assert probe["diagnosis"]["key"] == "basic_auth_retired"
    assert "OAuth" in probe["summary"]


def test_send_as_anonymous_and_wrong_password_in_one_play(run_play, tenant):
    """Three device mistakes that need no tenant change, in one play to keep the suite quick."""
    make_clean(tenant)

    result = run_play([
        probe_task(tenant, sender="admin@contoso.com", recipient=RECIPIENT),
        probe_task(tenant, auth_mode="none", recipient=RECIPIENT),
        probe_task(tenant, password="Not-The-Password-1!"),
    ])
    send_as, anonymous, wrong_password = result.results

    assert send_as["authenticated"] is True and send_as["stage"] == "mail"
    assert send_as["diagnosis"]["key"] == "send_as_denied"
    assert anonymous["diagnosis"]["key"] == "client_not_authenticated"
    assert anonymous["stage"] == "mail"
    assert wrong_password["diagnosis"]["key"] == "credentials_incorrect"
    assert "Not-The-Password-1!" not in result.stdout + repr(wrong_password)
    assert "C: AUTH LOGIN ********" in wrong_password["transcript"]


def test_check_mode_authenticates_but_never_sends(run_play, tenant):
    make_clean(tenant)
    tenant.messages.clear()

    probe = run_play([probe_task(tenant, recipient=RECIPIENT)], check=True)[0]

    assert probe["status"] == "authenticated" and probe["ok"] is True
    assert probe["changed"] is False and probe["message_sent"] is False
    assert tenant.messages == []
    assert not any(line.startswith("C: MAIL") for line in probe["transcript"])


def test_fail_on_error_fails_the_task_with_the_summary(run_play, tenant):
    make_clean(tenant)
    with tenant.store.lock:
        relay(tenant).smtp_client_authentication_disabled = True

    probe = run_play([probe_task(tenant, fail_on_error=True)])[0]

    assert probe["failed"] is True
    assert "disabled for the Mailbox" in probe["msg"]
    assert probe["diagnosis"]["key"] == "mailbox_smtp_auth_disabled"
