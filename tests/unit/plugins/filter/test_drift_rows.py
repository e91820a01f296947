# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_rows import NOT_RUN_MESSAGE, drift_rows


def item(identity, before, after, changed, **extra):
    result = {"identity": identity, "found": True, "before": before, "after": after, "changed": changed,
              "failed": False, "msg": ""}
    result.update(extra)
    return result


LICENSE = {"changed": False, "mailboxes": [
    {"identity": "scanner@contoso.com", "found": True, "licensed": True, "mailbox_plans": []},
    {"identity": "backup@contoso.com", "found": True, "licensed": False, "mailbox_plans": []},
    {"identity": "nobody@contoso.com", "found": False, "licensed": False, "mailbox_plans": []},
]}


def test_license_rows():
    rows = drift_rows([{"setting": "license", "mailboxes": ["scanner@contoso.com"], "result": LICENSE}], "contoso")
    assert [(row["mailbox"], row["actual"], row["status"]) for row in rows] == [
        ("scanner@contoso.com", "licensed", "compliant"),
        ("backup@contoso.com", "unlicensed", "error"),
        ("nobody@contoso.com", "not_found", "error"),
    ]
    assert rows[0]["fix"] is None
    assert "backup@contoso.com" in rows[1]["fix"] and "mailbox plan" in rows[1]["fix"]
    assert "no Exchange Online mailbox licence" in rows[1]["message"]
    assert rows[2]["fix"].startswith("Correct the user principal name nobody@contoso.com")


@pytest.mark.parametrize("check_mode, changed, status", [
    (True, True, "drift"), (False, True, "changed"), (True, False, "compliant"), (False, False, "compliant"),
])
def test_tenant_wide_status(check_mode, changed, status):
    result = {"changed": changed, "before": "enabled" if changed else "disabled", "after": "disabled"}
    rows = drift_rows([{"setting": "security_defaults", "desired": "disabled", "result": result}],
                      "contoso", check_mode=check_mode)
    assert len(rows) == 1
    row = rows[0]
    assert (row["tenant"], row["mailbox"], row["setting"], row["desired"], row["status"]) == (
        "contoso", None, "security_defaults", "disabled", status)
    assert row["actual"] == result["before"]
    if status == "compliant":
        assert row["fix"] is None
    else:
        assert '"isEnabled": false' in row["fix"]


def test_mailbox_rows_in_check_mode():
    result = {"changed": True, "results": [
        item("scanner@contoso.com", "disabled", "enabled", True),
        item("printer@contoso.com", "enabled", "enabled", False),
    ]}
    rows = drift_rows([{"setting": "mailbox_smtp_auth", "desired": "enabled",
                        "mailboxes": ["scanner@contoso.com", "printer@contoso.com"], "result": result}],
                      "contoso", check_mode=True)
    assert [(row["mailbox"], row["actual"], row["status"]) for row in rows] == [
        ("scanner@contoso.com", "disabled", "drift"), ("printer@contoso.com", "enabled", "compliant")]
    assert rows[0]["fix"] == "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false"


def test_undeclared_mailboxes_want_inherit_unless_declared_elsewhere():
    result = {"changed": True, "results": [
        item("scanner@contoso.com", "enabled", "enabled", False),
        item("legacy-relay@contoso.com", "enabled", "inherit", True, undeclared=True),
        item("old-copier@contoso.com", "enabled", "inherit", True, undeclared=True),
    ]}
    rows = drift_rows([{"setting": "mailbox_smtp_auth", "desired": "enabled", "mailboxes": ["scanner@contoso.com"],
                        "declared_elsewhere": ["Old-Copier@contoso.com"], "result": result}], "contoso", True)
    assert [row["mailbox"] for row in rows] == ["scanner@contoso.com", "legacy-relay@contoso.com"]
    assert rows[1]["desired"] == "inherit" and rows[1]["status"] == "drift"
    assert rows[1]["fix"].endswith("-SmtpClientAuthenticationDisabled $null")
    assert "exclusive" in rows[1]["message"]


def test_item_errors_and_unknown_mailboxes():
    result = {"failed": True, "msg": "mailbox ghost@contoso.com not found", "results": [
        item("ghost@contoso.com", None, None, False, found=False, failed=True, msg="no such mailbox"),
        item("printer@contoso.com", "enforced", "disabled", True, failed=True, msg="403 Authorization_RequestDenied"),
        item("erp@contoso.com", "enabled", "disabled", True),
    ]}
    rows = drift_rows([{"setting": "per_user_mfa", "desired": "disabled",
                        "mailboxes": ["ghost@contoso.com", "printer@contoso.com", "erp@contoso.com"],
                        "result": result}], "contoso")
    assert [row["status"] for row in rows] == ["error", "error", "changed"]
    assert rows[0]["message"] == "no such mailbox"
    assert rows[0]["fix"].startswith("Correct the user principal name ghost@contoso.com")
    assert rows[1]["message"] == "403 Authorization_RequestDenied"
    assert '"perUserMfaState": "disabled"' in rows[1]["fix"]


def test_module_failure_without_items_marks_every_mailbox():
    result = {"failed": True, "msg": "Exchange answered 401: the app lacks Exchange.ManageAsApp"}
    rows = drift_rows([{"setting": "mailbox_smtp_auth", "desired": "disabled",
                        "mailboxes": ["a@contoso.com", "b@contoso.com"], "result": result}], "contoso")
    assert [(row["mailbox"], row["status"], row["message"]) for row in rows] == [
        ("a@contoso.com", "error", result["msg"]), ("b@contoso.com", "error", result["msg"])]
    assert rows[0]["fix"].endswith("$true")


def test_steps_that_never_ran_are_errors_and_skipped_steps_give_nothing():
    rows = drift_rows([
        {"setting": "org_smtp_auth", "desired": "enabled", "result": {"skipped": True, "changed": False}},
        {"setting": "security_defaults", "desired": "disabled", "result": {}},
        {"setting": "per_user_mfa", "desired": "disabled", "mailboxes": ["a@contoso.com"], "result": None},
    ], "contoso", check_mode=True)
    assert [(row["setting"], row["status"], row["message"]) for row in rows] == [
        ("security_defaults", "error", NOT_RUN_MESSAGE), ("per_user_mfa", "error", NOT_RUN_MESSAGE)]


def test_unknown_setting_is_refused():
    with pytest.raises(AnsibleFilterError, match="unknown setting 'smtp'"):
        drift_rows([{"setting": "smtp", "result": {"changed": False}}], "contoso")


APP = "0d5c1b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d"


def test_oauth_steps_give_rows_with_the_auth_mode_and_a_fix_naming_the_app():
    steps = [
        {"setting": "smtp_app_consent", "desired": "granted", "app_id": APP,
         "result": {"changed": True, "before": False}},
        {"setting": "exchange_service_principal", "desired": "registered", "app_id": APP,
         "result": {"changed": False, "before": {"app_id": APP}}},
        {"setting": "mailbox_permission", "desired": "FullAccess", "app_id": APP, "mailboxes": ["notify@contoso.com"],
         "result": {"changed": True, "results": [{"identity": "notify@contoso.com", "found": True, "before": [],
                                                  "changed": True}]}},
        {"setting": "user_authentication_policy", "desired": "Allow Basic SMTP", "mailboxes": ["alerts@contoso.com"],
         "result": {"changed": True, "results": [{"identity": "alerts@contoso.com", "found": True,
                                                  "before": "Block Basic SMTP", "changed": True}]}},
    ]
    rows = drift_rows(steps, tenant="contoso", check_mode=True,
                      auth_modes={"notify@contoso.com": "oauth", "Alerts@contoso.com": "basic"})
    assert [(row["mailbox"], row["auth"], row["actual"], row["status"]) for row in rows] == [
        (None, None, "not_granted", "drift"), (None, None, "registered", "compliant"),
        ("notify@contoso.com", "oauth", "none", "drift"), ("alerts@contoso.com", "basic", "Block Basic SMTP", "drift")]
    assert APP in rows[0]["fix"] and "SMTP.SendAsApp" in rows[0]["fix"]
    assert rows[1]["fix"] is None
    assert rows[2]["fix"] == ("Add-MailboxPermission -Identity notify@contoso.com -User <service principal of %s> "
                              "-AccessRights FullAccess" % APP)
    assert rows[3]["fix"] == "Set-User -Identity alerts@contoso.com -AuthenticationPolicy 'Allow Basic SMTP'"


def _permissions_step(checks=None, failed=None):
    result = {"checks": checks or []} if failed is None else {"failed": True, "msg": failed}
    return {"setting": "app_permissions", "desired": "held", "mailboxes": [], "result": result}


def _permission_check(step, access, permission, verdict):
    return {"step": step, "access": access, "permission": permission, "verdict": verdict, "reason": None}


ROLE = "the Exchange Administrator directory role (or Global Administrator)"
PERMISSION_CHECKS = [_permission_check("security_defaults", "read", "Policy.Read.All", "held"),
                     _permission_check("mailbox_smtp_auth", "write", ROLE, "missing"),
                     _permission_check("org_smtp_auth", "write", ROLE, "missing"),
                     _permission_check("per_user_mfa", "read", "Policy.Read.All", "held"),
                     _permission_check("license", "read", "User.Read.All", "missing"),
                     _permission_check("org_smtp_auth", "read", "Exchange.ManageAsApp", "unknown")]


def test_a_missing_write_permission_is_drift_in_check_mode_and_names_every_step_that_needs_it():
    rows = drift_rows([_permissions_step(PERMISSION_CHECKS)], tenant="contoso", check_mode=True)
    assert [(row["desired"], row["actual"], row["status"]) for row in rows] == [
        ("Policy.Read.All", "held", "compliant"), (ROLE, "missing", "drift"), ("User.Read.All", "missing", "error")]
    assert rows[1]["message"] == "the automation app lacks it; needed to write by: mailbox_smtp_auth, org_smtp_auth"
    assert rows[1]["fix"].startswith("Assign the Exchange Administrator directory role (or Global Administrator) to")
    assert "Microsoft Graph application permission User.Read.All" in rows[2]["fix"]
    assert rows[0]["fix"] is None and all(row["setting"] == "app_permissions" for row in rows)


def test_a_missing_permission_is_an_error_in_apply_mode_and_a_failed_check_is_one_error_row():
    rows = drift_rows([_permissions_step(PERMISSION_CHECKS)], tenant="contoso", check_mode=False)
    assert [row["status"] for row in rows] == ["compliant", "error", "error"]
    rows = drift_rows([_permissions_step(failed="AADSTS7000215: Invalid client secret")], tenant="contoso")
    assert [(row["status"], row["message"]) for row in rows] == [("error", "AADSTS7000215: Invalid client secret")]
