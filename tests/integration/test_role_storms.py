# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay_accounts role under throttling storms and outages: it converges, writes once, and says what waited."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from m365_emulator import Emulator

from test_role_relay_accounts import recap, run_playbook, users, writes

# Graph (single requests, $batch and its items) and Exchange, not the token endpoint.
SERVICES = r"^/(v1\.0|beta|adminapi)/"
# The emulator inventory's connection with more retries: at 40 % throttled, 11 attempts all fail for one request
# in 25,000, so the storm test does not depend on luck.
STORM_RETRIES = 10


def storm_variables(tmp_path):
    connection = {name: "{{ emulator_%s }}" % value for name, value in (
        ("tenant_id", "tenant.id"), ("client_id", "tenant.apps[0].client_id"),
        ("client_secret", "tenant.apps[0].secret"), ("authority_url", "info.authority_url"),
        ("graph_url", "info.graph_url"), ("exchange_url", "info.exchange_url"), ("ca_path", "info.ca_path"))}
    return json.dumps({"relay_accounts_connection": dict(connection, max_retries=STORM_RETRIES),
                       "relay_accounts_report_dir": str(tmp_path / "reports")})


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


def landed(emulator):
    """Every accepted write, by request (batch items by their own path)."""
    return Counter((entry["method"], entry["path"], entry["cmdlet"]) for entry in writes(emulator))


def converged_writes(tmp_path):
    """The writes a storm-free run of the same plan makes, from an emulator of its own."""
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as calm:
        (tmp_path / "calm").mkdir()
        (tmp_path / "calm" / "connection.json").write_text(json.dumps(calm.connection_info()))
        code, output = run_playbook(tmp_path / "calm", "enable", "--limit", "contoso",
                                    "-e", "relay_accounts_report_dir=" + str(tmp_path / "calm"))
        assert code == 0, output
        return landed(calm)


def test_a_throttling_storm_converges_with_every_write_landing_once(emulator, tmp_path):
    emulator.add_fault({"path": SERVICES, "status": 429, "count": None, "ratio": 0.4, "retry_after": 0})
    storm = storm_variables(tmp_path)

    code, output = run_playbook(tmp_path, "enable", "--check", "--limit", "contoso", "-e", storm)
    assert code == 0, output
    assert writes(emulator) == []
    assert not [entry for entry in emulator.request_log if entry["method"] == "PATCH"
                or (entry["cmdlet"] or "").split("-")[0] in ("Set", "New", "Add", "Remove")]

    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", storm)
    assert code == 0, output
    # The same writes as a storm-free run, each as many times (Set-CASMailbox once per mailbox): none twice.
    assert landed(emulator) == converged_writes(tmp_path)
    served = [entry for entry in emulator.request_log if re.search(SERVICES, entry["path"])]
    faulted = [entry for entry in served if entry["fault"]]
    # A large share was throttled (about 40 %), and every throttled request was retried until answered.
    assert len(faulted) >= len(served) // 5
    assert len(served) - len(faulted) >= len(faulted) // STORM_RETRIES
    assert "Microsoft 365 throttled" in output and "(HTTP 429)" in output and "were retried after waiting" in output
    _tenant, by_upn = users(emulator, "contoso")
    assert by_upn["scanner@contoso.com"]["smtp_client_authentication_disabled"] is False

    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso", "-e", storm)
    assert code == 0 and recap(output)["contoso"]["changed"] == 0, output


def test_an_outage_that_outlasts_the_retries_is_reported_as_unavailable(emulator, tmp_path):
    emulator.add_fault({"cmdlet": "Set-CASMailbox", "status": 503, "count": None, "retry_after": 1})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso",
                                "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"))
    assert code != 0
    assert "was unavailable (HTTP 503)" in output and "kept throttling" not in output
    assert "was unavailable for" in output and "(HTTP 503/504)" in output


def test_a_retry_after_beyond_the_limit_fails_at_once_naming_the_wait(emulator, tmp_path):
    emulator.add_fault({"cmdlet": "Get-CASMailbox", "status": 429, "count": None, "retry_after": 3600})
    code, output = run_playbook(tmp_path, "enable", "--limit", "contoso",
                                "-e", "relay_accounts_report_dir=" + str(tmp_path / "reports"))
    assert code != 0
    assert "was throttled and asked to wait 3600 seconds before a retry, longer than max_retry_wait (300 s)" in output
    # One read per relay mailbox (4 in contoso's inventory), each refused at once and never sent again.
    faulted = [entry for entry in emulator.request_log if entry["fault"]]
    assert 1 <= len(faulted) <= 4 and {entry["cmdlet"] for entry in faulted} == {"Get-CASMailbox"}
