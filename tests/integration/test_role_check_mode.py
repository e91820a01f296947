# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check mode and report-only runs send no writing request in any scenario the role knows, and still report the
drift they found: every plan step, faults, missing permissions and bad mailboxes included."""

from __future__ import annotations

import json

import pytest
import yaml

from m365_emulator import Emulator

from conftest import writing_requests
from test_role_permission_preflight import change_app, without
from test_role_relay_accounts import INVENTORY, run_playbook, tenants_inventory, writes

SAMPLE_HOSTS = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["m365_tenants"]["hosts"]
CONNECTION = yaml.safe_load((INVENTORY / "group_vars" / "m365_tenants.yml").read_text())["relay_accounts_connection"]


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def contoso(**variables):
    return {"contoso": dict(SAMPLE_HOSTS["contoso"], **variables)}


def storm(emulator):
    emulator.add_fault({"path": r"^/(v1\.0|beta|adminapi)/", "status": 429, "count": None, "ratio": 0.3,
                        "retry_after": 0})
    emulator.add_fault({"path": r"^/adminapi/", "status": 503, "count": None, "ratio": 0.1})


def no_write_permissions(emulator):
    change_app(emulator, "contoso", directory_roles=[],
               graph_permissions=without("Policy.ReadWrite.AuthenticationMethod", "Policy.ReadWrite.ConditionalAccess"))


# (name, host vars of the inventory, what to do to the emulator first, playbook, extra arguments)
SCENARIOS = [
    ("both sample tenants, basic and oauth mailboxes", SAMPLE_HOSTS, None, "enable", ["--check", "--diff"]),
    ("the drift report playbook, started without --check", SAMPLE_HOSTS, None, "drift_report", []),
    ("exclusive mode and retired basic and oauth mailboxes",
     contoso(relay_accounts_exclusive=True, relay_accounts_mailboxes=[
         "scanner@contoso.com", {"upn": "printer@contoso.com", "state": "absent"},
         {"upn": "notify@contoso.com", "auth": "oauth", "state": "absent"}]), None, "enable", ["--check"]),
    ("an authentication policy and the organisation-wide switch",
     contoso(relay_accounts_basic_auth_policy="Allow SMTP AUTH for devices", relay_accounts_enable_org_smtp_auth=True),
     None, "enable", ["--check"]),
    ("a throttling storm and Exchange outages",
     contoso(relay_accounts_connection=dict(CONNECTION, max_retries=10)), storm, "enable", ["--check"]),
    ("an app without any write permission", SAMPLE_HOSTS, no_write_permissions, "enable", ["--check"]),
    ("an unknown and an unlicensed mailbox among good ones",
     contoso(relay_accounts_mailboxes=["ghost@contoso.com", "scanner@contoso.com", "backup@contoso.com"]),
     None, "enable", ["--check"]),
]


@pytest.mark.parametrize("hosts, prepare, playbook, arguments", [scenario[1:] for scenario in SCENARIOS],
                         ids=[scenario[0] for scenario in SCENARIOS])
def test_check_mode_sends_no_writing_request_and_still_reports_the_drift(
        emulator, tmp_path, hosts, prepare, playbook, arguments):
    if prepare:
        prepare(emulator)
    inventory = tenants_inventory(tmp_path, hosts)
    run_playbook(tmp_path, playbook, *arguments, "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"),
                 inventory=inventory)

    assert writing_requests(emulator) == []
    assert writes(emulator) == []
    # It did read the tenant (Graph and Exchange), so the absence of writes is not the absence of a run.
    paths = [entry["path"] for entry in emulator.request_log if not entry["fault"]]
    assert any(path.startswith("/adminapi/") for path in paths) and any(path.startswith("/v1.0/") for path in paths)
    for tenant in hosts:
        rows = json.loads((tmp_path / "reports" / ("%s.json" % tenant)).read_text())["rows"]
        assert [row for row in rows if row["status"] in ("drift", "error")], tenant
