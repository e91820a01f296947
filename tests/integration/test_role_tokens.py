# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A run of the role asks for one token per service (Graph, Exchange Online), not one per task, and leaves no
token behind, whether it succeeds or fails."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from m365_emulator import Emulator

from test_role_check_mode import SAMPLE_HOSTS
from test_role_relay_accounts import recap, run_playbook, tenants_inventory


@pytest.fixture
def emulator(tmp_path):
    with Emulator(seed=None, host="127.0.0.1", https_port=0, smtp_port=0) as running:
        (tmp_path / "connection.json").write_text(json.dumps(running.connection_info()))
        yield running


@pytest.fixture
def temporary(tmp_path, monkeypatch):
    """The runs' temporary directory, where the role makes its token directory."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.delenv("M365_TOKEN_CACHE", raising=False)
    return directory


def token_requests(emulator):
    """Token requests per app (client id)."""
    return Counter(entry["client_id"] for entry in emulator.request_log if entry["path"].endswith("/oauth2/v2.0/token"))


def test_a_run_asks_for_one_token_per_service_and_removes_them(emulator, tmp_path, temporary):
    code, output = run_playbook(tmp_path, "enable", inventory=tenants_inventory(tmp_path, SAMPLE_HOSTS))
    assert code == 0, output
    assert set(recap(output)) == set(SAMPLE_HOSTS)
    tokens = token_requests(emulator)
    # Two automation apps (one per tenant), each reading and writing both Graph and Exchange Online: two tokens
    # each for a run of some twenty module tasks.
    assert len(tokens) == 2 and set(tokens.values()) == {2}, tokens
    assert list(temporary.iterdir()) == []


def test_without_sharing_each_task_asks_again(emulator, tmp_path, temporary):
    hosts = {"contoso": dict(SAMPLE_HOSTS["contoso"], relay_accounts_share_tokens=False)}
    code, output = run_playbook(tmp_path, "enable", "--check", inventory=tenants_inventory(tmp_path, hosts))
    assert code == 0, output
    (tokens,) = token_requests(emulator).values()
    assert tokens > 4
    assert list(temporary.iterdir()) == []


def test_a_failed_run_removes_its_tokens_too(emulator, tmp_path, temporary):
    hosts = {"contoso": dict(SAMPLE_HOSTS["contoso"], relay_accounts_mailboxes=["nobody@contoso.com"])}
    code, output = run_playbook(tmp_path, "enable", inventory=tenants_inventory(tmp_path, hosts))
    assert code != 0 and "nobody@contoso.com" in output
    assert list(temporary.iterdir()) == []


def test_a_token_cache_of_the_operator_is_used_and_kept(emulator, tmp_path, temporary, monkeypatch):
    cache = tmp_path / "tokens.json"
    monkeypatch.setenv("M365_TOKEN_CACHE", str(cache))
    inventory = tenants_inventory(tmp_path, {"contoso": SAMPLE_HOSTS["contoso"]})
    for _run in range(2):
        code, output = run_playbook(tmp_path, "enable", "--check", inventory=inventory)
        assert code == 0, output
    # The second run found both tokens in the file, and the role made no directory of its own.
    assert list(token_requests(emulator).values()) == [2]
    assert cache.exists() and (cache.stat().st_mode & 0o777) == 0o600
    assert list(temporary.iterdir()) == []
