# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat
from unittest.mock import MagicMock
from xml.etree import ElementTree

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.m365ops.smtp_auth.plugins.action.relay_report import ActionModule

PLAN = {
    "security_defaults": {"setting": "security_defaults", "desired": "disabled", "register": "_sd"},
    "mailbox_smtp_auth": {"setting": "mailbox_smtp_auth", "desired": "enabled", "register": "_smtp",
                          "mailboxes": ["scanner@contoso.com", "printer@contoso.com"]},
    "per_user_mfa": {"setting": "per_user_mfa", "desired": "disabled", "register": "_mfa",
                     "mailboxes": ["scanner@contoso.com", "printer@contoso.com"]},
}
ENTRIES = [{"upn": "scanner@contoso.com", "state": "present", "auth": "basic"},
           {"upn": "printer@contoso.com", "state": "present", "auth": "basic"}]
RESULTS = {
    "_sd": {"changed": True, "before": "enabled", "after": "disabled"},
    "_smtp": {"changed": True, "results": [
        {"identity": "scanner@contoso.com", "before": "disabled", "after": "enabled", "changed": True},
        {"identity": "printer@contoso.com", "before": "enabled", "after": "enabled", "changed": False}]},
}


def run(args, task_vars):
    task = MagicMock(async_val=0, check_mode=False, args=args, action="m365ops.smtp_auth.relay_report")
    connection = MagicMock()
    connection._shell.tmpdir = "unused"
    action = ActionModule(task, connection, MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    return action.run(task_vars=task_vars)


def test_reads_each_step_result_by_its_register_name_and_writes_every_format(tmp_path):
    result = run({"plan": PLAN, "tenant": "contoso", "check_mode": True, "entries": ENTRIES,
                  "dest": str(tmp_path / "reports")}, dict(RESULTS))
    assert result["changed"] is False
    # Two tenant-wide/mailbox changes would be made; per-user MFA was never reached, so its rows are errors.
    assert result["summary"] == {"compliant": 1, "drift": 2, "changed": 0, "error": 2, "total": 5, "clean": False}
    assert result["changes"] == [{"setting": "mailbox_smtp_auth", "mailboxes": ["scanner@contoso.com"]},
                                 {"setting": "security_defaults", "mailboxes": []}]
    assert len(result["errors"]) == 2 and all("per_user_mfa" in error or "not" in error for error in result["errors"])
    names = sorted(os.path.basename(path) for path in result["files"])
    assert names == ["contoso.json", "contoso.md", "contoso.xml"]
    document = json.loads((tmp_path / "reports" / "contoso.json").read_text())
    assert document["mode"] == "check" and document["summary"] == result["summary"]
    assert [row["auth"] for row in document["rows"] if row["mailbox"]] == ["basic"] * 4
    assert "| scanner@contoso.com | basic | mailbox_smtp_auth |" in (tmp_path / "reports" / "contoso.md").read_text()
    assert ElementTree.parse(tmp_path / "reports" / "contoso.xml").getroot().get("tests") == "5"
    assert stat.S_IMODE(os.stat(tmp_path / "reports" / "contoso.json").st_mode) == 0o644
    assert sorted(os.listdir(tmp_path / "reports")) == names  # no temporary file left beside them


def test_without_dest_only_the_summary_is_returned(tmp_path):
    results = dict(RESULTS, _mfa={"changed": False, "results": [
        {"identity": "scanner@contoso.com", "before": "disabled", "after": "disabled", "changed": False},
        {"identity": "printer@contoso.com", "before": "disabled", "after": "disabled", "changed": False}]})
    result = run({"plan": PLAN, "tenant": "contoso", "entries": ENTRIES}, results)
    assert result["files"] == [] and result["errors"] == []
    assert result["summary"]["changed"] == 2 and result["summary"]["clean"] is True


def test_only_the_formats_asked_for_are_written(tmp_path):
    result = run({"plan": PLAN, "tenant": "contoso", "entries": ENTRIES, "dest": str(tmp_path),
                  "formats": ["junit"]}, dict(RESULTS))
    assert [os.path.basename(path) for path in result["files"]] == ["contoso.xml"]


def test_an_unwritable_directory_names_the_tenant_and_the_directory(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a directory")
    with pytest.raises(AnsibleActionFail, match="cannot write the report of tenant contoso to .*reports"):
        run({"plan": PLAN, "tenant": "contoso", "entries": ENTRIES, "dest": str(blocker)}, dict(RESULTS))


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(AnsibleActionFail, match="formats must be one or more of.*pdf"):
        run({"plan": PLAN, "tenant": "contoso", "dest": str(tmp_path), "formats": ["pdf"]}, dict(RESULTS))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(AnsibleActionFail, match="needs a 'register'"):
        run({"plan": {"license": {"setting": "license"}}, "tenant": "contoso"}, {})
