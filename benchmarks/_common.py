# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the benchmarks share: the emulator as a separate process, its request log, and ansible-playbook runs.

Not a benchmark itself. The scripts next to it import it as ``_common`` (their own directory is on sys.path
when they run as scripts, and each adds it when imported).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
# A generated tenant of 20,000 mailboxes (or a seed of as many users) is ready in a few seconds; two minutes
# is far beyond that, and still ends a run whose emulator hangs.
STARTUP_TIMEOUT = 120
POLL_SECONDS = 0.1
PLAYBOOK_TIMEOUT = 3600


def start_emulator(directory: Path, *, generate: int = 0, latency_ms: int = 0, seed_path: Path | None = None,
                   behaviour: dict | None = None):
    """Start ``python -m m365_emulator`` on free loopback ports; return ``(process, connection info)``.

    ``generate`` adds that many bulk mailboxes (``device00001@...``) to the first tenant of the seed, which is the
    bundled sample unless ``seed_path`` names another one. ``behaviour`` sets the emulator's behaviour switches
    (``--behaviour key=value``).
    """
    connection_file = directory / "connection.json"
    command = [sys.executable, "-m", "m365_emulator", "--https-port", "0", "--smtp-port", "0",
               "--latency-ms", str(latency_ms), "--state-dir", str(directory / "state"),
               "--connection-file", str(connection_file)]
    if generate:
        command += ["--generate", str(generate)]
    if seed_path is not None:
        command += ["--seed", str(seed_path)]
    for name, value in (behaviour or {}).items():
        command += ["--behaviour", "%s=%s" % (name, value)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _attempt in range(int(STARTUP_TIMEOUT / POLL_SECONDS)):
        # The emulator writes the file atomically once it listens.
        if connection_file.exists() and connection_file.stat().st_size:
            return process, json.loads(connection_file.read_text())
        if process.poll() is not None:
            raise SystemExit("the emulator stopped: %s" % process.stderr.read().decode(errors="replace"))
        time.sleep(POLL_SECONDS)
    stop_emulator(process)
    raise SystemExit("the emulator did not write %s within %d s" % (connection_file, STARTUP_TIMEOUT))


def stop_emulator(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def control_session(info: dict) -> requests.Session:
    """A session for the emulator's control API, trusting its CA and ignoring proxy and CA variables."""
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_path"]
    return session


def request_log(session: requests.Session, info: dict, since: int = 0) -> list[dict]:
    """The emulator's request log after sequence number ``since``. Items of a Graph ``$batch`` are entries of
    their own, with ``batch`` set to the sequence number of the POST that carried them; control API calls are
    not logged."""
    reply = session.get(info["control_url"] + "/requests", params={"since": since}, timeout=60)
    reply.raise_for_status()
    return reply.json()["requests"]


def clear_request_log(session: requests.Session, info: dict) -> None:
    session.delete(info["control_url"] + "/requests", timeout=60).raise_for_status()


def last_seq(session: requests.Session, info: dict) -> int:
    entries = request_log(session, info)
    return entries[-1]["seq"] if entries else 0


def round_trips(entries: list[dict]) -> list[dict]:
    """The entries that were HTTP requests on the wire (not items inside a ``$batch``)."""
    return [entry for entry in entries if entry.get("batch") is None]


def connection_options(info: dict, tenant: dict, **extra) -> dict:
    """The collection's connection options for the first app (the automation app) of ``tenant``."""
    app = tenant["apps"][0]
    return dict({"tenant_id": tenant["id"], "client_id": app["client_id"], "client_secret": app["secret"],
                 "authority_url": info["authority_url"], "graph_url": info["graph_url"],
                 "exchange_url": info["exchange_url"], "ca_path": info["ca_path"]}, **extra)


def run_playbook(directory: Path, inventory: Path, playbook: str, *arguments: str, forks: int = 5,
                 timeout: int = PLAYBOOK_TIMEOUT, environment: dict | None = None):
    """Run ansible-playbook from ``directory`` against the collection of this checkout; return
    ``(wall seconds, CompletedProcess)``. ``environment`` adds variables; ``timeout`` ends a run that takes
    longer (TimeoutExpired)."""
    # PWD too: the role resolves a relative report directory against it, and a child keeps the parent's.
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_RETRY_FILES_ENABLED="0", PWD=str(directory), **(environment or {}))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-f", str(forks),
               playbook, *arguments]
    started = time.monotonic()
    completed = subprocess.run(command, cwd=str(directory), env=environment, capture_output=True, text=True,
                               timeout=timeout, check=False)
    return time.monotonic() - started, completed
