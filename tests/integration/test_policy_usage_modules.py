# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""authentication_policy, user_authentication_policy and smtp_auth_usage_info against the emulator, judged by
tenant state and request log; SMTP AUTH attempts made through the emulator's submission server show up in the
sign-in logs the usage module reads."""

from __future__ import annotations

import pytest

from conftest import AUTOMATION_APP, READ_ONLY_APP, connection_env, contoso, writes, writing_requests

FABRIKAM = "fabrikam.onmicrosoft.com"


@pytest.fixture(scope="module")
def emulator(smtp_emulator):
    return smtp_emulator


def policies(tenant):
    with tenant.store.lock:
        return {name: dict(switches) for name, switches in contoso(tenant).authentication_policies.items()}


def assigned(tenant, upn):
    with tenant.store.lock:
        return contoso(tenant).find_user(upn).authentication_policy


def behave(tenant, **switches):
    with tenant.store.lock:
        tenant.store.behaviour.update(switches)


def policy_task(**arguments):
    return {"m365ops.smtp_auth.authentication_policy": arguments}


def users_task(**arguments):
    return {"m365ops.smtp_auth.user_authentication_policy": arguments}


def usage_task(**arguments):
    return {"m365ops.smtp_auth.smtp_auth_usage_info": arguments}


# ---- authentication_policy ------------------------------------------------------------------------------

def test_a_policy_is_created_once_and_check_mode_writes_nothing(run_play, tenant):
    task = policy_task(name="Relay Devices", allow_basic_auth_smtp=True)
    run = run_play([dict(task, check_mode=True), task, task], diff=True)
    checked, created, again = run.results

    assert checked["changed"] is True and writing_requests(run.requests[0]) == []
    assert created["changed"] is True and created["before"] is None
    assert created["after"] == {"name": "Relay Devices", "allow_basic_auth_smtp": True}
    assert [entry["cmdlet"] for entry in writes(run.requests[1])] == ["New-AuthenticationPolicy"]
    # Exchange makes a new policy with every other basic protocol blocked, and the module says so.
    assert created["other_protocols"] and not any(created["other_protocols"].values())
    assert policies(tenant)["Relay Devices"]["AllowBasicAuthSmtp"] is True
    assert again["changed"] is False and writing_requests(run.requests[2]) == []


def test_an_existing_policy_gets_its_smtp_switch_and_nothing_else(run_play, tenant):
    with tenant.store.lock:
        contoso(tenant).authentication_policies["Block Basic SMTP"]["AllowBasicAuthImap"] = True
    before = policies(tenant)["Block Basic SMTP"]

    result = run_play([policy_task(name="block basic smtp", allow_basic_auth_smtp=True)]).results[0]

    assert result["changed"] is True
    assert (result["before"], result["after"]) == ({"name": "Block Basic SMTP", "allow_basic_auth_smtp": False},
                                                   {"name": "Block Basic SMTP", "allow_basic_auth_smtp": True})
    assert policies(tenant)["Block Basic SMTP"] == dict(before, AllowBasicAuthSmtp=True)
    assert result["other_protocols"]["imap"] is True


def test_absent_removes_an_unused_policy_and_surfaces_exchanges_refusal_for_the_default(run_play, tenant):
    with tenant.store.lock:
        contoso(tenant).default_authentication_policy = "Allow Basic SMTP"
        contoso(tenant).authentication_policies["Unused"] = {"AllowBasicAuthSmtp": False}
    run = run_play([policy_task(name="Unused", state="absent"), policy_task(name="Unused", state="absent"),
                    policy_task(name="Allow Basic SMTP", state="absent")])
    removed, again, refused = run.results

    assert removed["changed"] is True and removed["after"] is None and "Unused" not in policies(tenant)
    assert again["changed"] is False and writing_requests(run.requests[1]) == []
    assert refused["failed"] is True
    # Exchange's own words, and the policy named.
    assert "'Allow Basic SMTP'" in refused["msg"] and "organization's default authentication policy" in refused["msg"]
    assert refused["error"]["cmdlet"] == "Remove-AuthenticationPolicy"
    assert "Allow Basic SMTP" in policies(tenant)


# ---- user_authentication_policy -------------------------------------------------------------------------

@pytest.mark.parametrize("shows", ["name", "distinguished_name"])
def test_users_are_assigned_once_whichever_way_get_user_shows_the_policy(run_play, tenant, shows):
    behave(tenant, authentication_policy_shows=shows)
    task = users_task(users=["alerts@contoso.com", "scanner@contoso.com"], policy="Allow Basic SMTP")
    run = run_play([dict(task, check_mode=True), task, task], diff=True)
    checked, applied, again = run.results

    assert checked["changed"] is True and writing_requests(run.requests[0]) == []
    assert checked["diff"]["before"] == {"alerts@contoso.com": "Block Basic SMTP", "scanner@contoso.com": None}
    assert applied["changed"] is True
    assert sorted(entry["cmdlet"] for entry in writes(run.requests[1])) == ["Set-User", "Set-User"]
    assert assigned(tenant, "alerts@contoso.com") == assigned(tenant, "scanner@contoso.com") == "Allow Basic SMTP"
    assert again["changed"] is False and writing_requests(run.requests[2]) == []


def test_an_unknown_policy_is_refused_before_any_write_and_an_unknown_user_fails_alone(run_play, tenant):
    run = run_play([users_task(users=["scanner@contoso.com"], policy="Alow Basic SMTP"),
                    users_task(users=["ghost@contoso.com", "scanner@contoso.com"], policy="Allow Basic SMTP")])
    unknown_policy, unknown_user = run.results

    assert unknown_policy["failed"] is True and "'Alow Basic SMTP' does not exist" in unknown_policy["msg"]
    assert writing_requests(run.requests[0]) == []
    assert unknown_user["failed"] is True and "ghost@contoso.com" in unknown_user["msg"]
    assert [item["changed"] for item in unknown_user["results"]] == [False, True]
    assert assigned(tenant, "scanner@contoso.com") == "Allow Basic SMTP"


def test_absent_clears_only_the_named_policy(run_play, tenant):
    behave(tenant, authentication_policy_shows="distinguished_name")
    with tenant.store.lock:
        contoso(tenant).find_user("scanner@contoso.com").authentication_policy = "Allow Basic SMTP"
    result = run_play([users_task(users=["alerts@contoso.com", "scanner@contoso.com"], policy="Allow Basic SMTP",
                                  state="absent")]).results[0]

    assert [item["changed"] for item in result["results"]] == [False, True]
    assert assigned(tenant, "alerts@contoso.com") == "Block Basic SMTP"
    assert assigned(tenant, "scanner@contoso.com") is None


# ---- smtp_auth_usage_info -------------------------------------------------------------------------------

def probe(tenant, username, **options):
    return {"m365ops.smtp_auth.smtp_submission_test": dict(
        host=tenant.smtp_host, port=tenant.smtp_port, username=username, timeout=10, **options)}


def test_smtp_auth_attempts_show_up_in_the_usage_and_are_compared_with_inventory(run_play, tenant):
    # The seeded log says "Authenticated SMTP"; from now on the emulator writes "SMTP": both must be read.
    behave(tenant, sign_in_client_app="SMTP")
    declared = ["scanner@contoso.com", {"upn": "printer@contoso.com", "auth": "basic"}, "backup@contoso.com"]
    run = run_play([probe(tenant, "erp@contoso.com", password="Erp-Pass-2026!"),
                    probe(tenant, "notify@contoso.com", auth_mode="oauth"),
                    usage_task(declared=declared), usage_task(days=7, include_failures=False)])
    basic, oauth, usage, successes = run.results[0], run.results[1], run.results[2], run.results[3]

    assert basic["stage"] == "auth" and oauth["stage"] == "auth"
    assert usage["status"] == "read" and usage["changed"] is False
    assert usage["client_app_names"] == ["Authenticated SMTP", "SMTP"]
    accounts = {account["user_principal_name"]: account for account in usage["accounts"]}
    assert [account["user_principal_name"] for account in usage["accounts"]] == sorted(accounts)

    erp = accounts["erp@contoso.com"]
    assert erp["auth"] == "basic" and erp["declared"] is False
    assert erp["sign_ins"] == 1 and erp["successes"] == 0 and erp["source_ips"] == ["127.0.0.1"]
    assert erp["last_error"]["code"] and erp["last_error"]["reason"]

    notify = accounts["notify@contoso.com"]
    automation = connection_env(tenant, AUTOMATION_APP)["M365_CLIENT_ID"]
    assert notify["auth"] == "oauth" and notify["app_ids"] == [automation]

    relay = accounts["legacy-relay@contoso.com"]
    assert relay["sign_ins"] == relay["successes"] == 3 and relay["last_error"] is None
    assert relay["source_ips"] == ["203.0.113.10"] and relay["auth"] == "basic" and relay["app_ids"] == []

    assert accounts["scanner@contoso.com"]["declared"] is True and accounts["scanner@contoso.com"]["failures"] == 1
    assert usage["undeclared"] == ["erp@contoso.com", "legacy-relay@contoso.com", "notify@contoso.com"]
    assert usage["unused"] == ["backup@contoso.com"]
    assert usage["window"]["days"] == 30

    # Successes only, and only the last 7 days: the refused attempts are gone, the copier's successes stay.
    assert [account["user_principal_name"] for account in successes["accounts"]] == ["legacy-relay@contoso.com"]
    assert successes["undeclared"] is None and successes["unused"] is None


def test_a_tenant_without_premium_licence_is_unknown_naming_the_licence(run_play, tenant):
    result = run_play([usage_task()], extra_env=connection_env(tenant, AUTOMATION_APP, FABRIKAM)).results[0]
    assert "failed" not in result or result["failed"] is False
    assert result["status"] == "unknown" and "an Entra ID P1 or P2 licence" in result["reason"]
    assert result["accounts"] is None and result["undeclared"] is None and result["unused"] is None


def test_an_app_without_the_audit_log_permission_is_unknown_naming_it(run_play, tenant):
    result = run_play([usage_task(declared=["scanner@contoso.com"])], app_name=READ_ONLY_APP).results[0]
    assert result["status"] == "unknown" and "AuditLog.Read.All" in result["reason"]
    assert "licence" not in result["reason"]
    assert result["accounts"] is None and result["unused"] is None


def test_a_service_that_refuses_the_combined_filter_is_asked_once_per_client_app_name(run_play, tenant):
    tenant.add_fault({"path": "auditLogs/signIns", "method": "GET", "status": 400, "retry_after": None, "count": 1,
                      "body": {"error": {"code": "Request_UnsupportedQuery",
                                         "message": "Unsupported or invalid query filter clause specified."}}})
    run = run_play([usage_task()])
    result = run.results[0]

    assert result["status"] == "read"
    assert [entry["status"] for entry in run.requests[0] if "auditLogs/signIns" in entry["path"]] == [400, 200, 200]
    relay = next(account for account in result["accounts"]
                 if account["user_principal_name"] == "legacy-relay@contoso.com")
    assert relay["sign_ins"] == 3
