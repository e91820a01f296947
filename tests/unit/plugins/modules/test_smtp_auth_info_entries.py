# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""smtp_auth_info reads the mailbox entries the way the relay_accounts role does, before any request."""

from __future__ import annotations

import importlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

# Nothing listens on the discard port: a module that got as far as a request would fail differently.
UNREACHABLE = "https://127.0.0.1:9"
CONNECTION = {"tenant_id": "contoso.onmicrosoft.com", "client_id": "11111111-1111-1111-1111-111111111111",
              "client_secret": "not-a-real-secret", "authority_url": UNREACHABLE, "graph_url": UNREACHABLE,
              "exchange_url": UNREACHABLE, "max_retries": 0, "timeout": 2}


def run_info(mailboxes, capsys, monkeypatch, **options):
    module = importlib.import_module("ansible_collections.m365ops.smtp_auth.plugins.modules.smtp_auth_info")
    args = dict(CONNECTION, mailboxes=mailboxes, **options)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_bad_and_duplicate_entries_fail_naming_each_before_any_request(capsys, monkeypatch):
    result = run_info(["scanner@contoso.com", "printer", {"upn": "erp@contoso.com", "sate": "absent"},
                       {"upn": "Scanner@Contoso.com", "auth": "oauth"}], capsys, monkeypatch)
    assert result["failed"] is True
    assert result["msg"] == (
        "3 invalid mailbox entries:\n"
        "- mailboxes[1] (printer): 'printer' is not a valid user principal name (expected name@domain.tld)\n"
        "- mailboxes[2] (erp@contoso.com): unknown key(s) sate; allowed keys are upn, auth, state, send_as, source_ip\n"
        "- mailboxes[3] (Scanner@Contoso.com): scanner@contoso.com is already declared at mailboxes[0]")
    assert result["mailboxes"] == [] and result["retired"] == []


def test_a_bad_state_is_refused(capsys, monkeypatch):
    result = run_info([{"upn": "scanner@contoso.com", "state": "retired"}], capsys, monkeypatch)
    assert result["failed"] is True
    assert "mailboxes[0] (scanner@contoso.com): state must be one of present, absent, got 'retired'" in result["msg"]


def test_retired_mailboxes_are_listed_and_not_read(capsys, monkeypatch):
    # Only retired mailboxes: nothing to read, so the unreachable endpoints are never called.
    result = run_info([{"upn": "Old-Copier@contoso.com", "state": "absent"},
                       {"upn": "old-fax@contoso.com", "state": "absent", "auth": "oauth"}], capsys, monkeypatch)
    assert result.get("failed") is not True, result
    assert result["mailboxes"] == []
    assert result["retired"] == ["Old-Copier@contoso.com", "old-fax@contoso.com"]
    assert result["changed"] is False
