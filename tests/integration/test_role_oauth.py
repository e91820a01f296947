# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The relay_accounts role in OAuth mode against the emulator: the relay app's consent, Exchange registration and
mailbox rights converge once, the device then logs in with XOAUTH2 and sends; nothing an OAuth mailbox does not
need is weakened; a retired OAuth mailbox loses the rights; basic and OAuth mailboxes converge in one run; and
after Basic auth's retirement the report says which inventory change saves each basic mailbox."""

from __future__ import annotations

import base64
import json
import smtplib
import ssl

import pytest
import requests

from test_role_relay_accounts import recap, run_playbook, tenants_inventory, users, writes

from m365_emulator import Emulator

RELAY_APP_NAME = "smtp relay app"
NOTIFY = "notify@contoso.com"
ERP_APP = "erp@contoso.com"


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def relay_app(emulator):
    tenant = next(entry for entry in emulator.connection_info()["tenants"] if entry["name"] == "contoso")
    return tenant, next(app for app in tenant["apps"] if app["display_name"] == RELAY_APP_NAME)


def contoso_host(emulator, mailboxes, **variables):
    _tenant, app = relay_app(emulator)
    return {"contoso": dict({"relay_accounts_mailboxes": mailboxes,
                             "relay_accounts_oauth_app": {"app_id": app["client_id"]}}, **variables)}


def smtp_session(emulator):
    session = smtplib.SMTP(emulator.smtp_host, emulator.smtp_port, timeout=30)
    session.starttls(context=ssl.create_default_context(cafile=str(emulator.ca_path)))
    session.ehlo()
    return session


def xoauth2(emulator, upn, send=True):
    """Log in as ``upn`` with a token of the relay app, the way a device does; (code, reply text)."""
    tenant, app = relay_app(emulator)
    http = requests.Session()
    http.trust_env = False
    token = http.post(f"{emulator.base_url}/{tenant['id']}/oauth2/v2.0/token", verify=str(emulator.ca_path),
                      data={"grant_type": "client_credentials", "client_id": app["client_id"],
                            "client_secret": app["secret"], "scope": "https://outlook.office365.com/.default"},
                      timeout=30).json()["access_token"]
    http.close()
    blob = base64.b64encode(f"user={upn}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    with smtp_session(emulator) as session:
        code, text = session.docmd("AUTH", "XOAUTH2 " + blob)
        if code == 235 and send:
            session.sendmail(upn, ["alice@contoso.com"], f"From: {upn}\r\nSubject: relay\r\n\r\nhello\r\n")
    return code, text.decode()


def password_login(emulator, upn, password):
    with smtp_session(emulator) as session:
        try:
            session.login(upn, password)
        except smtplib.SMTPResponseException as error:
            return error.smtp_code, error.smtp_error.decode()
    return 235, "Authentication successful"


def run_role(tmp_path, hosts, *arguments, playbook="enable"):
    inventory = tmp_path / "inventory"
    if not inventory.exists():
        tenants_inventory(tmp_path, hosts)
    else:
        (inventory / "hosts.yml").write_text(json.dumps({"m365_tenants": {"hosts": hosts}}))
    return run_playbook(tmp_path, playbook, "--limit", "contoso", *arguments, inventory=inventory)


def test_an_oauth_relay_converges_logs_in_with_xoauth2_and_weakens_nothing(emulator, tmp_path):
    hosts = contoso_host(emulator, [{"upn": NOTIFY, "auth": "oauth", "send_as": True}])
    assert xoauth2(emulator, NOTIFY)[0] == 535

    code, output = run_role(tmp_path, hosts, "--check", "--diff")
    assert code == 0, output
    assert writes(emulator) == []

    code, output = run_role(tmp_path, hosts)
    assert code == 0, output
    contoso, contoso_users = users(emulator, "contoso")
    _tenant, app = relay_app(emulator)
    state = contoso["apps"][app["client_id"]]
    assert "SMTP.SendAsApp" in state["exchange_permissions"]
    assert [principal["object_id"] for principal in contoso["service_principals"]
            if principal["app_id"] == app["client_id"]] == [state["service_principal_id"]]
    notify = contoso_users[NOTIFY]
    assert notify["smtp_client_authentication_disabled"] is False
    assert [entry["access_rights"] for entry in notify["mailbox_permissions"]] == [["FullAccess"]]
    assert len(notify["send_as"]) == 1
    # An OAuth mailbox needs neither security defaults nor anybody's MFA changed.
    assert contoso["security_defaults_enabled"] is True
    assert contoso_users["printer@contoso.com"]["per_user_mfa_state"] == "enforced"
    assert not any(entry["path"].endswith("identitySecurityDefaultsEnforcementPolicy") for entry in writes(emulator))

    messages = len(emulator.messages)
    assert xoauth2(emulator, NOTIFY) == (235, "2.7.0 Authentication successful")
    assert len(emulator.messages) == messages + 1

    written = len(writes(emulator))
    code, output = run_role(tmp_path, hosts)
    assert code == 0, output
    assert recap(output)["contoso"]["changed"] == 0
    assert len(writes(emulator)) == written


def test_a_retired_oauth_relay_loses_the_apps_rights_and_its_login(emulator, tmp_path):
    code, output = run_role(tmp_path, contoso_host(emulator, [{"upn": NOTIFY, "auth": "oauth", "send_as": True}]))
    assert code == 0, output
    assert xoauth2(emulator, NOTIFY, send=False)[0] == 235

    code, output = run_role(tmp_path, contoso_host(emulator, [{"upn": NOTIFY, "auth": "oauth", "state": "absent"}]))
    assert code == 0, output
    _contoso, contoso_users = users(emulator, "contoso")
    assert contoso_users[NOTIFY]["mailbox_permissions"] == [] and contoso_users[NOTIFY]["send_as"] == []
    assert contoso_users[NOTIFY]["smtp_client_authentication_disabled"] is True
    code, text = xoauth2(emulator, NOTIFY, send=False)
    assert code == 535 and text.startswith("5.7.3 Authentication unsuccessful"), text


def test_basic_and_oauth_relays_converge_in_one_run_with_the_basic_auth_policy(emulator, tmp_path):
    # alerts@ is refused by its authentication policy ("Block Basic SMTP"); the role assigns one that allows it.
    hosts = contoso_host(emulator, ["alerts@contoso.com", {"upn": NOTIFY, "auth": "oauth"}],
                         relay_accounts_basic_auth_policy="Relay devices")
    code, output = run_role(tmp_path, hosts)
    assert code == 0, output
    contoso, contoso_users = users(emulator, "contoso")
    assert contoso["authentication_policies"]["Relay devices"]["AllowBasicAuthSmtp"] is True
    assert contoso_users["alerts@contoso.com"]["authentication_policy"] == "Relay devices"
    assert contoso["security_defaults_enabled"] is False  # a basic mailbox needs it
    assert password_login(emulator, "alerts@contoso.com", "Alerts-Pass-2026!")[0] == 235
    assert xoauth2(emulator, NOTIFY, send=False)[0] == 235

    code, output = run_role(tmp_path, hosts)
    assert code == 0 and recap(output)["contoso"]["changed"] == 0, output


def test_after_basic_auth_is_retired_the_report_says_which_change_saves_each_basic_relay(emulator, tmp_path):
    hosts = contoso_host(emulator, ["scanner@contoso.com", {"upn": NOTIFY, "auth": "oauth"}])
    code, output = run_role(tmp_path, hosts)
    assert code == 0, output
    with emulator.store.lock:
        emulator.store.behaviour["basic_auth_retired"] = True
    code, text = password_login(emulator, "scanner@contoso.com", "Scanner-Pass-2026!")
    assert code == 550 and text.startswith("5.7.30 Basic authentication is not supported for Client Submission."), text
    assert xoauth2(emulator, NOTIFY, send=False)[0] == 235

    code, output = run_role(tmp_path, hosts, "-e", "relay_accounts_report_dir=%s" % (tmp_path / "reports"),
                            "-e", "relay_accounts_usage_report=true", playbook="drift_report")
    assert code == 0, output
    report = json.loads((tmp_path / "reports" / "contoso.json").read_text())
    assert report["basic_auth_retirement"]["mailboxes"] == [
        {"mailbox": "scanner@contoso.com", "inventory_change": "- {upn: scanner@contoso.com, auth: oauth}",
         "connector_change": "- {upn: scanner@contoso.com, auth: connector, source_ip: <the device's public IPv4 "
                             "address>}"}]
    assert {row["auth"] for row in report["rows"] if row["mailbox"] == NOTIFY} == {"oauth"}
    # The sign-in logs: the seeded copier still uses SMTP AUTH undeclared; both declared relays signed in.
    assert report["usage"]["status"] == "read" and report["usage"]["unused"] == []
    assert "legacy-relay@contoso.com" in [account["user_principal_name"] for account in report["usage"]["undeclared"]]
    assert "Signed in with SMTP AUTH but not declared" in (tmp_path / "reports" / "contoso.md").read_text()
