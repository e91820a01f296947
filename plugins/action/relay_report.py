# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The relay_report action: the report of one tenant, made and written on the controller in one step.

It reads each step's registered result straight from the task's variables instead of through a template:
for thousands of mailboxes, templating those results into rows, then the rows into JSON, Markdown and JUnit
(a task each) took most of a drift run. Documentation: plugins/modules/relay_report.py.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from itertools import groupby

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_junit import drift_junit
from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_markdown import drift_markdown
from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_report import drift_report
from ansible_collections.m365ops.smtp_auth.plugins.filter.drift_rows import drift_rows

FORMATS = {
    "json": ("json", lambda report: json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"),
    "markdown": ("md", drift_markdown),
    "junit": ("xml", drift_junit),
}

ARGUMENT_SPEC = {
    "plan": {"type": "dict", "required": True},
    "tenant": {"type": "str", "required": True},
    "check_mode": {"type": "bool", "default": False},
    "entries": {"type": "list", "elements": "dict", "default": []},
    "connector": {"type": "dict"},
    "usage": {"type": "dict"},
    "dest": {"type": "path"},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
}


def write_atomically(path, text):
    """Replace ``path`` with ``text`` (mode 0644) so that a reader never sees half a report."""
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def changes(rows):
    """What changed (or would change), by setting, in row order: [{setting, mailboxes}]."""
    changing = [row for row in rows if row["status"] in ("changed", "drift") and row["setting"] != "app_permissions"]
    return [{"setting": setting, "mailboxes": [row["mailbox"] for row in group if row.get("mailbox")]}
            for setting, group in groupby(sorted(changing, key=lambda row: row["setting"]), key=lambda row: row["setting"])]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        steps = []
        for step in args["plan"].values():
            if not isinstance(step, dict) or "register" not in step:
                raise AnsibleActionFail("relay_report: each step of the plan needs a 'register', got %r" % (step,))
            steps.append(dict(step, result=task_vars.get(step["register"]) or {}))
        entries = args["entries"]
        rows = drift_rows(steps, tenant=args["tenant"], check_mode=args["check_mode"],
                          auth_modes={entry["upn"]: entry.get("auth") for entry in entries if entry.get("upn")})
        report = drift_report(rows, tenant=args["tenant"], mode="check" if args["check_mode"] else "apply",
                              generated_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              entries=entries, connector=args["connector"], usage=args["usage"])
        files = []
        if args["dest"]:
            try:
                os.makedirs(args["dest"], mode=0o755, exist_ok=True)
                for name in args["formats"]:
                    extension, render = FORMATS[name]
                    path = os.path.join(args["dest"], "%s.%s" % (args["tenant"], extension))
                    write_atomically(path, render(report))
                    files.append(path)
            except OSError as error:
                raise AnsibleActionFail("relay_report: cannot write the report of tenant %s to %s: %s"
                                        % (args["tenant"], args["dest"], error)) from error
        result.update(changed=False, summary=report["summary"], changes=changes(rows), files=files,
                      errors=[row["message"] or "%s: %s" % (row.get("mailbox") or "tenant-wide", row["setting"])
                              for row in rows if row["status"] == "error"])
        return result
