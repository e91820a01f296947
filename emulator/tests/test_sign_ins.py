"""Entra sign-in logs: what the seed and the SMTP server write, and Graph's /auditLogs/signIns with its
permission, licence, $filter and paging."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import (AUTOMATION_APP, CONTOSO_ID, FABRIKAM_ID, READONLY_APP, RELAY_APP, bearer)
from m365_emulator import state
from m365_emulator.seed import load_document, store_from_document
from m365_emulator.state import sign_in_record
from test_graph import assert_graph_error
from test_smtp import PASSWORDS, change, login, mailbox, xoauth2

SIGN_INS = "/v1.0/auditLogs/signIns"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
SIGN_IN_KEYS = {"id", "createdDateTime", "userPrincipalName", "userId", "userDisplayName", "appId", "appDisplayName",
                "ipAddress", "clientAppUsed", "isInteractive", "status", "authenticationDetails",
                "conditionalAccessStatus"}


@pytest.fixture
def graph(emulator, http, get_token):
    """``graph(path_or_link, client_id=..., tenant=...)`` -> the reply to a GET with that app's Graph token."""

    def call(path: str, client_id: str = AUTOMATION_APP, tenant: str = CONTOSO_ID, secret: str | None = None):
        url = path if path.startswith("https://") else emulator.base_url + path
        token = get_token("graph", tenant=tenant, client_id=client_id, secret=secret)
        return http.get(url, headers=bearer(token), timeout=30)

    return call


def entries(emulator, tenant_id: str = CONTOSO_ID) -> list[dict]:
    with emulator.store.lock:
        return [dict(entry) for entry in emulator.store.find_tenant(tenant_id).sign_ins]


def written_since(emulator, count: int) -> list[dict]:
    return entries(emulator)[count:]


def ago(**delta) -> str:
    return state.iso_utc(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**delta))


# -- the seeded log and the API -----------------------------------------------------------------------------------

def test_the_seeded_log_newest_first(graph):
    reply = graph(SIGN_INS)
    assert reply.status_code == 200
    body = reply.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#auditLogs/signIns")
    assert "@odata.nextLink" not in body
    rows = body["value"]
    assert [row["userPrincipalName"] for row in rows] == ["legacy-relay@contoso.com"] * 2 + [
        "scanner@contoso.com", "legacy-relay@contoso.com", "printer@contoso.com"]
    assert [row["createdDateTime"] for row in rows] == sorted((row["createdDateTime"] for row in rows), reverse=True)
    assert all(SIGN_IN_KEYS <= set(row) for row in rows)
    relay = rows[0]
    assert relay["ipAddress"] == "203.0.113.10" and relay["clientAppUsed"] == "Authenticated SMTP"
    assert relay["status"] == {"errorCode": 0, "failureReason": "Other.", "additionalDetails": None}
    assert relay["userId"] == "c0ffee00-0000-4000-8000-000000000010" and relay["userDisplayName"] == "Retired copier"
    assert relay["appId"] == EXCHANGE_APP_ID and relay["isInteractive"] is False
    assert ago(days=1) > relay["createdDateTime"] > ago(days=1, hours=3)
    scanner = rows[2]
    assert scanner["status"]["errorCode"] == 50000 and "disabled for the mailbox" in scanner["status"]["failureReason"]
    assert min(row["createdDateTime"] for row in rows) > ago(days=30)


def test_reading_needs_audit_log_read(graph):
    error = assert_graph_error(graph(SIGN_INS, client_id=READONLY_APP), 403, "Authorization_RequestDenied")
    assert error["message"] == "Insufficient privileges to complete the operation."


def test_a_tenant_without_premium_licence_is_refused(emulator, http, graph):
    reply = graph(SIGN_INS, client_id="4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", tenant=FABRIKAM_ID,
                  secret="emulator-secret-fabrikam")
    error = assert_graph_error(reply, 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    assert error["message"] == "Neither tenant is B2C or tenant doesn't have premium license"
    patched = http.patch(f"{emulator.base_url}/_emulator/tenants/fabrikam", json={"entra_id_premium": True})
    assert patched.status_code == 200 and patched.json()["entra_id_premium"] is True
    assert graph(SIGN_INS, client_id="4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", tenant=FABRIKAM_ID,
                 secret="emulator-secret-fabrikam").json()["value"] == []


def test_the_control_snapshot_has_the_log_and_the_licence(emulator, http):
    snapshot = http.get(f"{emulator.base_url}/_emulator/state").json()
    contoso, fabrikam = snapshot["tenants"]
    assert len(contoso["sign_ins"]) == 5 and contoso["entra_id_premium"] is True
    assert fabrikam["entra_id_premium"] is False and fabrikam["sign_ins"] == []
    relay = next(app for app in contoso["apps"].values() if app["display_name"] == "smtp relay app")
    assert relay["service_principal_id"] != relay["object_id"]


# -- $filter ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, expected", [
    ("clientAppUsed eq 'Authenticated SMTP'", 5),
    ("clientAppUsed eq 'authenticated smtp'", 5),
    ("clientAppUsed eq 'SMTP'", 0),
    ("(clientAppUsed eq 'Authenticated SMTP' or clientAppUsed eq 'SMTP')", 5),
    ("(clientAppUsed eq 'SMTP' or clientAppUsed eq 'Authenticated SMTP') and createdDateTime ge {three_days}", 3),
    ("clientAppUsed eq 'Authenticated SMTP' and createdDateTime ge {three_days}", 3),
    ("createdDateTime ge {three_days} and userPrincipalName eq 'legacy-relay@contoso.com'", 2),
    ("userPrincipalName eq 'Legacy-Relay@contoso.com'", 3),
    ("createdDateTime lt {three_days}", 2),
    ("status/errorCode eq 0", 3),
    ("status/errorCode ne 0 and ipAddress eq '198.51.100.7'", 1),
    ("appId eq '00000002-0000-0ff1-ce00-000000000000'", 5),
    ("userPrincipalName eq 'it''s@contoso.com'", 0),
])
def test_filter(graph, expression, expected):
    text = expression.format(three_days=ago(days=3, minutes=1))
    reply = graph(f"{SIGN_INS}?$filter={text}")
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["value"]) == expected


def test_filter_takes_fractional_seconds_and_offsets(graph):
    for literal in (ago(days=3, minutes=1).replace("Z", ".123Z"), ago(days=3, minutes=1).replace("Z", "+00:00")):
        reply = graph(f"{SIGN_INS}?$filter=createdDateTime ge {literal.replace('+', '%2B')}")
        assert reply.status_code == 200 and len(reply.json()["value"]) == 3, literal


@pytest.mark.parametrize("expression, code, words", [
    ("createdDateTime ge '2026-01-01T00:00:00Z'", "BadRequest",
     "Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThanOrEqual'"),
    ("clientAppUsed eq SMTP", "BadRequest", "Invalid filter clause"),
    ("clientAppUsed eq 2026-01-01T00:00:00Z", "BadRequest", "'Edm.String' and 'Edm.DateTimeOffset'"),
    ("(clientAppUsed eq 'SMTP'", "BadRequest", "Invalid filter clause"),
    ("clientAppUsed eq 'SMTP' and", "BadRequest", "Invalid filter clause"),
    ("clientAppUsed eq 'SMTP' userPrincipalName eq 'x'", "BadRequest", "Invalid filter clause"),
    ("clientAppUsed eq 'SMTP", "BadRequest", "Invalid filter clause"),
    ("", "BadRequest", "Invalid filter clause"),
    ("clientAppUsed has 'SMTP'", "BadRequest", "is not a comparison operator"),
    ("riskState eq 'none'", "Request_UnsupportedQuery", "Could not find a property named 'riskState'"),
    ("clientAppUsed ge 'SMTP'", "Request_UnsupportedQuery", "property 'clientAppUsed'"),
])
def test_a_filter_it_cannot_read_is_400(graph, expression, code, words):
    error = assert_graph_error(graph(f"{SIGN_INS}?$filter={expression}"), 400, code)
    assert words in error["message"]


# -- paging -------------------------------------------------------------------------------------------------------

def add_sign_ins(emulator, count: int, **delta) -> None:
    with emulator.store.lock:
        tenant = emulator.store.find_tenant(CONTOSO_ID)
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**delta)
        for number in range(count):
            tenant.add_sign_in(sign_in_record(f"device{number:03d}@contoso.com", ip_address="192.0.2.1",
                                              created=start - datetime.timedelta(seconds=number // 2)))


def test_top_and_next_links_read_everything_once(emulator, graph):
    add_sign_ins(emulator, 25, hours=1)
    expression = "clientAppUsed eq 'Authenticated SMTP'"
    reply = graph(f"{SIGN_INS}?$filter={expression}&$top=7").json()
    pages, rows = [reply], list(reply["value"])
    while "@odata.nextLink" in pages[-1]:
        link = pages[-1]["@odata.nextLink"]
        assert link.startswith(f"{emulator.base_url}/v1.0/auditLogs/signIns?") and len(pages) < 10
        query = parse_qs(urlsplit(link).query)
        assert query["$filter"] == [expression] and query["$top"] == ["7"] and query["$skiptoken"]
        pages.append(graph(link).json())
        rows += pages[-1]["value"]
    assert [len(page["value"]) for page in pages] == [7, 7, 7, 7, 2]
    assert len({row["id"] for row in rows}) == 30
    everything = graph(SIGN_INS).json()["value"]
    assert [row["id"] for row in rows] == [row["id"] for row in everything]


def test_a_sign_in_written_between_pages_does_not_shift_the_next_page(emulator, graph):
    add_sign_ins(emulator, 6, hours=1)
    first = graph(f"{SIGN_INS}?$top=4").json()
    expected = graph(SIGN_INS).json()["value"][4:8]
    add_sign_ins(emulator, 3, minutes=1)  # newer than every entry read so far
    second = graph(first["@odata.nextLink"]).json()
    assert [row["id"] for row in second["value"][:4]] == [row["id"] for row in expected]


@pytest.mark.parametrize("query", ["$top=1001", "$top=0", "$top=all", "$skiptoken=bogus", "$orderby=createdDateTime"])
def test_bad_paging_options_are_400(graph, query):
    assert graph(f"{SIGN_INS}?{query}").status_code == 400


def test_default_page_is_a_thousand(emulator, graph):
    add_sign_ins(emulator, 1000, hours=1)
    body = graph(SIGN_INS).json()
    assert len(body["value"]) == 1000 and "@odata.nextLink" in body
    assert len(graph(body["@odata.nextLink"]).json()["value"]) == 5


def test_the_log_is_bounded(emulator, monkeypatch):
    monkeypatch.setattr(state, "MAX_SIGN_INS", 4)
    add_sign_ins(emulator, 3, minutes=1)
    kept = entries(emulator)
    assert len(kept) == 4 and kept[-1]["userPrincipalName"] == "device002@contoso.com"
    assert kept[0]["userPrincipalName"] == "legacy-relay@contoso.com"


# -- what SMTP AUTH writes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, code, reason", [
    ("mailbox_switch", 50000, "SMTP client authentication is disabled for the mailbox."),
    ("wrong_password", 50126, "Error validating credentials due to invalid username or password."),
    ("unknown_user", 50034, "The user account does not exist in the directory."),
    ("security_defaults", 50053, "security defaults"),
    ("per_user_mfa", 50076, "multi-factor authentication"),
    ("conditional_access", 53003, "Conditional Access"),
    ("authentication_policy", 50000, "authentication policy"),
    ("success", 0, "Other."),
    ("retired", 50000, "Basic authentication is not supported for Client Submission."),
])
def test_every_basic_auth_attempt_is_logged(emulator, case, code, reason):
    upn, password = "scanner@contoso.com", PASSWORDS["scanner"]
    if case == "wrong_password":
        password = "wrong"
    elif case == "unknown_user":
        upn = "ghost@contoso.com"
    elif case == "security_defaults":
        upn, password = "kiosk@contoso.com", PASSWORDS["kiosk"]
        change(emulator, transport_smtp_auth_disabled=False)
    elif case in ("per_user_mfa", "conditional_access", "authentication_policy"):
        upn = {"per_user_mfa": "printer", "conditional_access": "kiosk", "authentication_policy": "alerts"}[case]
        upn, password = f"{upn}@contoso.com", PASSWORDS[upn]
        change(emulator, transport_smtp_auth_disabled=False, security_defaults_enabled=False)
    elif case in ("success", "retired"):
        change(emulator, security_defaults_enabled=False)
        with emulator.store.lock:
            mailbox(emulator, "scanner").smtp_client_authentication_disabled = False
            emulator.store.behaviour["basic_auth_retired"] = case == "retired"
    before = len(entries(emulator))
    reply_code, _ = login(emulator, upn, password)
    assert (reply_code == 235) is (case == "success")
    [entry] = written_since(emulator, before)
    assert entry["userPrincipalName"] == upn and entry["ipAddress"] == "127.0.0.1"
    assert entry["status"]["errorCode"] == code and reason in entry["status"]["failureReason"]
    assert entry["clientAppUsed"] == "Authenticated SMTP" and entry["appId"] == EXCHANGE_APP_ID
    assert entry["conditionalAccessStatus"] == ("failure" if case == "conditional_access" else "notApplied")
    assert entry["userId"] == ("" if case == "unknown_user" else mailbox(emulator, upn.split("@")[0]).id)
    assert ago(minutes=1) <= entry["createdDateTime"] <= ago(minutes=-1)


def test_a_login_of_an_unknown_domain_is_in_nobodys_log(emulator):
    before = {tenant: len(entries(emulator, tenant)) for tenant in (CONTOSO_ID, FABRIKAM_ID)}
    assert login(emulator, "someone@example.org", "x")[0] == 535
    assert {tenant: len(entries(emulator, tenant)) for tenant in (CONTOSO_ID, FABRIKAM_ID)} == before


def test_the_client_app_name_follows_the_switch(emulator, graph):
    with emulator.store.lock:
        emulator.store.behaviour["sign_in_client_app"] = "SMTP"
    login(emulator, "scanner@contoso.com", "wrong")
    [written] = graph(f"{SIGN_INS}?$filter=clientAppUsed eq 'SMTP'").json()["value"]
    assert written["userPrincipalName"] == "scanner@contoso.com"
    both = graph(f"{SIGN_INS}?$filter=(clientAppUsed eq 'Authenticated SMTP' or clientAppUsed eq 'SMTP')").json()
    assert len(both["value"]) == 6


def test_the_seed_writes_its_entries_with_the_seeded_switch():
    document = load_document()
    document["behaviour"] = {"sign_in_client_app": "SMTP"}
    store = store_from_document(document)
    assert {entry["clientAppUsed"] for entry in store.find_tenant(CONTOSO_ID).sign_ins} == {"SMTP"}


@pytest.mark.parametrize("entry, words", [
    ({"user_principal_name": "a@contoso.com", "when": 1}, "unknown keys ['when']"),
    ({"user_principal_name": "a@contoso.com", "blocker": "bad_luck"}, "unknown blocker 'bad_luck'"),
    ({"user_principal_name": "a@contoso.com", "app_id": "b0000000-0000-4000-8000-000000000000"}, "no app"),
    ({"days_ago": 1}, "needs user_principal_name"),
])
def test_seeded_sign_ins_are_checked(entry, words):
    document = load_document()
    document["tenants"][0]["sign_ins"] = [entry]
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        store_from_document(document)


def test_xoauth2_attempts_name_the_tokens_app(emulator, get_token):
    before = len(entries(emulator))
    # The automation app holds SMTP.SendAsApp but is not registered in Exchange Online.
    assert xoauth2(emulator, "notify@contoso.com", get_token("exchange"))[0] == 535
    assert xoauth2(emulator, "notify@contoso.com", get_token("exchange", client_id=RELAY_APP))[0] == 535
    assert xoauth2(emulator, "notify@contoso.com", "not.a.token")[0] == 535
    automation, relay, garbage = written_since(emulator, before)
    assert (automation["appId"], automation["appDisplayName"]) == (AUTOMATION_APP, "m365ops automation")
    assert "not registered in Exchange Online" in automation["status"]["failureReason"]
    assert (relay["appId"], relay["appDisplayName"]) == (RELAY_APP, "smtp relay app")
    assert "SMTP.SendAsApp" in relay["status"]["failureReason"]
    assert garbage["appId"] == EXCHANGE_APP_ID and "token was rejected" in garbage["status"]["failureReason"]
    assert {entry["userId"] for entry in (automation, relay, garbage)} == {mailbox(emulator, "notify").id}
    assert {entry["status"]["errorCode"] for entry in (automation, relay, garbage)} == {50000}
