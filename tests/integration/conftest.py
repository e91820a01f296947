# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Integration harness: the emulator in this process, ``ansible-playbook`` as a subprocess.

``run_play(tasks, ...)`` writes a play whose tasks each register their result (and never stop the play),
runs it against localhost with the collection from ``.build/collections`` and the connection in M365_*
variables, and returns ``PlayRun`` with each task's result in order. Tests then look at the emulator's
state and request log, which is what the tenant would have seen.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_checkout = importlib.import_module("checkout")
REPO = _checkout.REPO
COLLECTIONS = _checkout.COLLECTIONS
_ensure_collection_link = _checkout.ensure_collection_link
try:
    from m365_emulator.cli import connection_env as emulator_connection_env
    from m365_emulator.server import Emulator
except ImportError:  # not installed into this virtualenv: use the checkout
    sys.path.insert(0, str(REPO / "emulator"))
    from m365_emulator.cli import connection_env as emulator_connection_env
    from m365_emulator.server import Emulator

CONTOSO_DOMAIN = "contoso.onmicrosoft.com"
AUTOMATION_APP = "m365ops automation"
READ_ONLY_APP = "read-only auditor"
PLAYBOOK_TIMEOUT = 120


@dataclass
class PlayRun:
    returncode: int
    results: list = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    # The emulator's request log cut at the markers: requests[n] is what task n sent.
    requests: list = field(default_factory=list)

    def __getitem__(self, index):
        return self.results[index]


@pytest.fixture(scope="session")
def emulator():
    _ensure_collection_link()
    with Emulator(smtp_port=None) as running:
        yield running


@pytest.fixture(scope="module")
def smtp_emulator():
    """An emulator of the test module's own, with its SMTP submission server running (the session one has none).
    A module uses it as its ``emulator``: ``def emulator(smtp_emulator): return smtp_emulator``."""
    _ensure_collection_link()
    with Emulator() as running:
        yield running


@pytest.fixture
def tenant(emulator):
    """A fresh sample tenant state, an empty request log and no faults for each test."""
    emulator.reset()
    emulator.clear_faults()
    emulator.clear_request_log()
    return emulator


def contoso(emulator):
    return next(tenant for tenant in emulator.store.tenants if tenant.matches(CONTOSO_DOMAIN))


def connection_env(emulator, app_name=AUTOMATION_APP, tenant=CONTOSO_DOMAIN):
    return emulator_connection_env(emulator.connection_info(), tenant, app_name)


@pytest.fixture
def run_play(tenant, tmp_path):
    """Run ``tasks`` (module tasks, without ``register``) and return their results in order."""
    return play_runner(tenant, tmp_path)


def play_runner(tenant, tmp_path):
    """``run(tasks, check, diff, app_name, extra_env, without_env)`` against the emulator ``tenant``, files under ``tmp_path``;
    what ``run_play`` gives a test, for fixtures of a wider scope."""

    def run(tasks, check=False, diff=False, app_name=AUTOMATION_APP, extra_env=None, without_env=()):
        play_tasks = []
        names = []
        for number, task in enumerate(tasks):
            name = "result_%d" % number
            names.append(name)
            play_tasks.append(dict(task, register=name, ignore_errors=True))
            play_tasks.append(_marker_task(number))
        results_file = tmp_path / "results.json"
        collected = "{{ [%s] | to_json }}" % ", ".join(
            "(%s | default({'skipped_by_harness': true}))" % name for name in names)
        play_tasks.append({"name": "Keep results for the test", "ansible.builtin.copy": {
            "content": collected, "dest": str(results_file), "mode": "0600"}, "check_mode": False, "diff": False})
        playbook = tmp_path / "play.yml"
        playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": play_tasks}]))
        environment = dict(os.environ)
        environment.update(connection_env(tenant, app_name))
        environment.update({
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        })
        environment.update(extra_env or {})
        for name in without_env:
            environment.pop(name, None)
        command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                   str(playbook)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=str(tmp_path),
                                   timeout=PLAYBOOK_TIMEOUT, check=False)
        if not results_file.exists():
            raise AssertionError("ansible-playbook did not finish:\n%s\n%s" % (completed.stdout, completed.stderr))
        return PlayRun(completed.returncode, json.loads(results_file.read_text()), completed.stdout,
                       completed.stderr, _split_log(tenant.request_log, len(tasks)))

    return run


MARKER_PREFIX = "/_harness_marker/"


def _marker_task(number):
    """A request the emulator logs (and answers 404) after task ``number``, so the log can be cut per task."""
    return {"name": "Mark the end of task %d" % number, "ansible.builtin.uri": {
        "url": "{{ lookup('ansible.builtin.env', 'M365_GRAPH_URL') }}%s%d" % (MARKER_PREFIX, number),
        "ca_path": "{{ lookup('ansible.builtin.env', 'M365_CA_PATH') }}", "status_code": [404]},
        "check_mode": False}


def _split_log(entries, count):
    segments = [[] for _number in range(count)]
    current = 0
    for entry in entries:
        if entry["path"].startswith(MARKER_PREFIX):
            current = int(entry["path"][len(MARKER_PREFIX):]) + 1
        elif current < count:
            segments[current].append(entry)
    return segments


def _entries(source):
    return source.request_log if hasattr(source, "request_log") else source


def writes(source):
    """Requests that changed tenant state, from the emulator's log or one task's slice of it. A $batch is logged
    beside its items, and those are the writes: the batch itself is not counted."""
    return [entry for entry in _entries(source) if entry.get("wrote") and not entry["path"].endswith("/$batch")]


def writing_requests(source):
    """Requests that would change the tenant whether or not they did: PATCH, Set-*/New-*/Add-*/Remove-*.
    Check mode must send none of these."""
    found = []
    for entry in _entries(source):
        cmdlet = entry.get("cmdlet") or ""
        if entry["method"] == "PATCH" or cmdlet.split("-")[0] in ("Set", "New", "Add", "Remove"):
            found.append(entry)
    return found
