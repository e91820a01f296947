"""The m365-emulator command: starts, prints its connection details, writes its files, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

EMULATOR_ROOT = Path(__file__).resolve().parents[1]


def _start(*arguments: str) -> subprocess.Popen:
    env = dict(os.environ)
    # Runs from the checkout whether or not the package is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EMULATOR_ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "m365_emulator", "--https-port", "0", "--smtp-port", "0",
                             *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def started(tmp_path):
    process = _start("--state-dir", str(tmp_path / "state"), "--connection-file", str(tmp_path / "connection.json"),
                     "--env-file", str(tmp_path / "m365.env"), "--behaviour", "set_response=object",
                     "--generate", "3")
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_cli_prints_connection_info_serves_and_stops_on_sigterm(started, tmp_path):
    process, info = started
    assert info["authority_url"] == info["graph_url"] == info["exchange_url"] == info["base_url"]
    assert info["base_url"].startswith("https://127.0.0.1:")
    assert info["smtp_host"] == "127.0.0.1" and info["smtp_port"]
    assert Path(info["ca_path"]) == tmp_path / "state" / "ca.pem"
    assert json.loads((tmp_path / "connection.json").read_text()) == info
    assert (tmp_path / "connection.json").stat().st_mode & 0o077 == 0

    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_path"]
    state = session.get(f"{info['base_url']}/_emulator/state").json()
    assert state["behaviour"]["set_response"] == "object"
    assert any(user["user_principal_name"].startswith("device00003@") for user in state["tenants"][0]["users"])
    session.close()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{info['base_url']}/_emulator/state", verify=info["ca_path"], timeout=5)


def test_cli_env_file_connects(started, tmp_path):
    """The env file is enough to get a token and read Graph, which is what the collection does with it."""
    _, info = started
    lines = (tmp_path / "m365.env").read_text().splitlines()
    values = {name: shlex.split(value)[0] for name, value in
              (line.removeprefix("export ").split("=", 1) for line in lines)}
    assert sorted(values) == ["M365_AUTHORITY_URL", "M365_CA_PATH", "M365_CLIENT_ID", "M365_CLIENT_SECRET",
                              "M365_EXCHANGE_URL", "M365_GRAPH_URL", "M365_TENANT_ID"]
    assert values["M365_CLIENT_ID"] == info["tenants"][0]["apps"][0]["client_id"]
    assert (tmp_path / "m365.env").stat().st_mode & 0o077 == 0

    session = requests.Session()
    session.trust_env = False
    session.verify = values["M365_CA_PATH"]
    token = session.post(f"{values['M365_AUTHORITY_URL']}/{values['M365_TENANT_ID']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": values["M365_CLIENT_ID"],
        "client_secret": values["M365_CLIENT_SECRET"], "scope": "https://graph.microsoft.com/.default"}).json()
    policy = session.get(f"{values['M365_GRAPH_URL']}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy",
                         headers={"Authorization": f"Bearer {token['access_token']}"})
    session.close()
    assert policy.status_code == 200 and "isEnabled" in policy.json()


def test_cli_stops_on_sigint(started):
    process, _ = started
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0


def test_cli_rejects_unknown_behaviour_switch():
    process = _start("--behaviour", "no_such_switch=1")
    _, error = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "unknown behaviour switch 'no_such_switch'" in error


def test_cli_reports_a_bad_seed(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text("tenants:\n  - name: x\n    users: [{upn: nope}]\n")
    process = _start("--seed", str(seed))
    _, error = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "unknown keys" in error
