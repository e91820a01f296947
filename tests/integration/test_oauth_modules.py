# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The OAuth relay modules against the emulator: consent, Exchange service principal and FullAccess for the seeded
relay app, then an XOAUTH2 login with the relay app's own token through the emulator's submission server."""

from __future__ import annotations

import pytest

from conftest import contoso, writes, writing_requests

from m365_emulator.state import ServicePrincipal

RELAY_APP = "smtp relay app"
MAILBOX = "notify@contoso.com"
RECIPIENT = "it-team@contoso.com"


@pytest.fixture(scope="module")
def emulator(smtp_emulator):
    return smtp_emulator


def relay_app(tenant):
    return next(app for app in contoso(tenant).apps.values() if app.display_name == RELAY_APP)


def changes(source):
    """Requests that would change the tenant: Exchange writes, PATCH, and Graph POST/DELETE other than $batch."""
    graph = [entry for entry in source if entry["method"] == "DELETE"
             or (entry["method"] == "POST" and "/v1.0/" in entry["path"] and not entry["path"].endswith("$batch"))]
    return writing_requests(source) + graph + [entry for entry in writes(source) if entry not in graph]


def run_again(run_play, tenant, tasks, **options):
    """run_play cuts the request log at its markers from the start: each later run starts from an empty log."""
    tenant.clear_request_log()
    return run_play(tasks, **options)


def chain(app):
    """The role's order for an oauth mailbox: consent, service principal, FullAccess, mailbox SMTP AUTH on."""
    return [
        {"m365ops.smtp_auth.smtp_app_consent": {"app_id": app.client_id}},
        {"m365ops.smtp_auth.exchange_service_principal": {"app_id": app.client_id}},
        {"m365ops.smtp_auth.mailbox_permission": {"mailboxes": [MAILBOX], "trustee": app.client_id}},
        {"m365ops.smtp_auth.mailbox_smtp_auth": {"mailboxes": [MAILBOX], "state": "enabled"}},
    ]


def probe(tenant, app):
    """An XOAUTH2 login as the mailbox with a token of the relay app itself, and a test message."""
    return {"m365ops.smtp_auth.smtp_submission_test": {
        "host": tenant.smtp_host, "port": tenant.smtp_port, "username": MAILBOX, "auth_mode": "oauth",
        "client_id": app.client_id, "client_secret": app.secrets[0], "recipient": RECIPIENT, "timeout": 10}}


def test_the_oauth_chain_converges_sends_and_absent_takes_the_mailbox_away(run_play, tenant):
    app = relay_app(tenant)
    tenant.messages.clear()

    run = run_play(chain(app) + [probe(tenant, app)], diff=True)
    consent, principal, permission, smtp_auth, sent = run.results
    for result in (consent, principal, permission, smtp_auth):
        assert result["changed"] is True and not result.get("failed"), result
    assert (consent["before"], consent["after"]) == (False, True) and consent["assignment_id"]
    assert principal["after"]["object_id"] == app.service_principal_id != app.object_id
    assert permission["results"][0]["after"] == ["FullAccess"]
    assert sent["ok"] is True and sent["status"] == "sent", sent["summary"]
    assert "C: AUTH XOAUTH2 ********" in sent["transcript"]
    assert [message["mailbox"] for message in tenant.messages] == [MAILBOX]

    again = run_again(run_play, tenant, chain(app))
    assert [result["changed"] for result in again.results] == [False] * 4
    assert [changes(requests) for requests in again.requests] == [[]] * 4

    run = run_again(run_play, tenant, [{"m365ops.smtp_auth.mailbox_permission": {
        "mailboxes": [MAILBOX], "trustee": app.client_id, "state": "absent"}}, probe(tenant, app)])
    removed, refused = run.results
    assert removed["changed"] is True and removed["results"][0]["after"] == []
    assert [entry["cmdlet"] for entry in writes(run.requests[0])] == ["Remove-MailboxPermission"]
    assert refused["ok"] is False and refused["stage"] == "auth"
    assert refused["reply_line"].startswith("535 5.7.3 Authentication unsuccessful")
    assert len(tenant.messages) == 1


def test_a_registration_made_with_the_app_registration_id_is_replaced_and_login_works(run_play, tenant):
    """The classic mistake, made by hand before the collection ran: every XOAUTH2 login fails until it is fixed."""
    app = relay_app(tenant)
    tenant.messages.clear()
    with tenant.store.lock:
        wrong = ServicePrincipal(app_id=app.client_id, object_id=app.object_id, display_name="relay (by hand)")
        contoso(tenant).service_principals.append(wrong)
        contoso(tenant).find_user(MAILBOX).mailbox_permissions.append(
            {"user": wrong.identity, "access_rights": ["FullAccess"]})

    consent, *rest = chain(app)
    run = run_play([consent, probe(tenant, app)] + rest + [probe(tenant, app)])
    _consent, refused, principal, permission, _smtp_auth, sent = run.results
    assert refused["ok"] is False and refused["reply_line"].startswith("535 5.7.3 Authentication unsuccessful")
    assert principal["replaced"] is True and principal["changed"] is True
    assert (principal["before"]["object_id"], principal["after"]["object_id"]) == (app.object_id,
                                                                                   app.service_principal_id)
    assert [entry["cmdlet"] for entry in writes(run.requests[2])] == ["Remove-ServicePrincipal", "New-ServicePrincipal"]
    assert any("Grant its mailbox rights again" in warning for warning in principal["warnings"])
    # The new registration is another principal: FullAccess is granted to it, after which the login works.
    assert permission["results"][0]["changed"] is True
    assert sent["ok"] is True and sent["status"] == "sent", sent["summary"]


def test_check_mode_sends_no_writing_request(run_play, tenant):
    app = relay_app(tenant)
    checked = run_play(chain(app)[:2], check=True, diff=True)
    assert [result["changed"] for result in checked.results] == [True, True]
    assert checked[1]["after"]["object_id"] == app.service_principal_id
    assert all(changes(requests) == [] for requests in checked.requests)
    with tenant.store.lock:
        assert contoso(tenant).find_service_principal(app.client_id) is None

    run_play(chain(app)[:2])
    checked = run_again(run_play, tenant, chain(app)[2:3], check=True)
    assert checked[0]["changed"] is True and checked[0]["results"][0]["after"] == ["FullAccess"]
    assert changes(checked.requests[0]) == []


def test_the_app_registration_object_id_is_refused_naming_both_ids(run_play, tenant):
    app = relay_app(tenant)
    run = run_play([{"m365ops.smtp_auth.exchange_service_principal": {"app_id": app.client_id,
                                                                      "object_id": app.object_id}}])
    result = run[0]
    assert result["failed"] is True
    assert app.object_id in result["msg"] and app.service_principal_id in result["msg"]
    assert "object id of the app registration" in result["msg"]
    assert changes(run.requests[0]) == []


def test_consent_and_registration_are_taken_away(run_play, tenant):
    app = relay_app(tenant)
    run_play(chain(app)[:2])
    run = run_again(run_play, tenant, [
        {"m365ops.smtp_auth.smtp_app_consent": {"app_id": app.client_id, "state": "absent"}},
        {"m365ops.smtp_auth.exchange_service_principal": {"app_id": app.client_id, "state": "absent"}},
    ])
    consent, principal = run.results
    assert (consent["changed"], consent["after"]) == (True, False)
    assert (principal["changed"], principal["after"]) == (True, None)
    with tenant.store.lock:
        assert contoso(tenant).find_service_principal(app.client_id) is None
