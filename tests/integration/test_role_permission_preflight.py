# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay_accounts role checks the automation app's permissions for the whole plan before its first write."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from m365_emulator import Emulator

from test_role_relay_accounts import run_playbook, users, writes

AUTOMATION_APP = "m365ops automation"


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def change_app(emulator, tenant_name, **fields):
    with emulator.store.lock:
        tenant = next(tenant for tenant in emulator.store.tenants if tenant.name == tenant_name)
        app = next(app for app in tenant.apps.values() if app.display_name == AUTOMATION_APP)
        for name, value in fields.items():
            setattr(app, name, value(getattr(app, name)) if callable(value) else value)


def without(*names):
    return lambda current: [name for name in current if name not in names]


SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report.schema.json").read_text())


def report_rows(tmp_path, tenant="contoso"):
    document = json.loads((tmp_path / "reports" / ("%s.json" % tenant)).read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    return document["rows"]


def test_an_app_without_the_exchange_role_stops_before_security_defaults_are_touched(emulator, tmp_path):
    change_app(emulator, "contoso", directory_roles=[])
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso")
    assert code != 0
    assert writes(emulator) == []
    tenant, _users = users(emulator, "contoso")
    assert tenant["security_defaults_enabled"] is True
    assert "the automation app cannot do what this run plans, so nothing was changed" in output
    assert ("the Exchange Administrator directory role (or Global Administrator), needed by: "
            "inbound_connector (write), exchange_service_principal (write), full_access (write), "
            "mailbox_smtp_auth (write)") in output
    # Graph was never asked to write, and Exchange was never called: the check reads only the tokens.
    assert not [entry for entry in emulator.request_log if "/adminapi/" in entry["path"]]


def test_a_missing_write_permission_is_a_drift_finding_in_check_mode_and_a_stop_in_apply(emulator, tmp_path):
    change_app(emulator, "contoso", graph_permissions=without("Policy.ReadWrite.AuthenticationMethod"))
    code, output = run_playbook(tmp_path, "enable", "--check", "--limit", "contoso",
                                "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"))
    assert code == 0, output
    assert writes(emulator) == []
    missing = [row for row in report_rows(tmp_path) if row["setting"] == "app_permissions" and row["status"] != "compliant"]
    assert [(row["desired"], row["actual"], row["status"], row["message"]) for row in missing] == [
        ("Policy.ReadWrite.AuthenticationMethod", "missing", "drift",
         "the automation app lacks it; needed to write by: per_user_mfa")]

    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso")
    assert code != 0
    assert writes(emulator) == []
    assert "Policy.ReadWrite.AuthenticationMethod, needed by: per_user_mfa (write)" in output


def test_tokens_without_wids_leave_the_role_unknown_warn_and_do_not_stop(emulator, tmp_path):
    emulator.store.behaviour["app_token_wids"] = False
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso")
    assert code == 0, output
    assert "cannot tell whether app" in output and "carries no wids claim" in output
    assert writes(emulator)
