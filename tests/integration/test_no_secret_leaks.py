# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Nothing secret leaves a run: not at -vvvv, not in a report, not in a returned value.

Every entry point an operator uses runs once at -vvvv against one emulator: the drift report (check mode,
with a client secret and again with a password-protected PFX), the role applying its fixes, the troubleshoot
playbook with mailbox passwords, and smtp_submission_test with AUTH LOGIN and with XOAUTH2 (a token it
requests, and a token it is given). Everything printed and every report file written is then searched for
each client secret, the PFX password, every mailbox password, every access token the emulator issued
(``GET /_emulator/tokens``), and their base64 forms, including the AUTH LOGIN and XOAUTH2 encodings. Any
base64 run in the output is also decoded and searched, so an encoding nobody thought of is caught too.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import msal
import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from conftest import COLLECTIONS, PLAYBOOK_TIMEOUT, REPO, Emulator, _ensure_collection_link

INVENTORY = REPO / "playbooks" / "inventory" / "emulator"
RELAY_APP = "smtp relay app"
# The emulator's own PFX files share a one-word password that also names half the paths here; the runs use
# copies of them under a password that cannot turn up by chance.
PFX_PASSWORD = "Pfx-Pass-2026!-k3y"
# Refused credentials are secrets too: a typo'd password is usually one character from the real one.
WRONG_PASSWORD = "Wrong-Pass-2026!-q8"
WRONG_SECRET = "Wrong-Secret-2026-z7"
# Long enough that a hit is not chance; JWT segments and base64 of short passwords are longer than this.
BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def _ansible_environment(tmp_path, connection_file):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("M365_")}
    environment.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "M365_EMULATOR_CONNECTION_FILE": str(connection_file),
    })
    return environment


def _playbook(tmp_path, connection_file, *arguments):
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-vvvv", "-i", str(INVENTORY), *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=str(tmp_path),
                               env=_ansible_environment(tmp_path, connection_file), timeout=PLAYBOOK_TIMEOUT * 3,
                               check=False)
    return completed


def _app(info, tenant_name, display_name):
    tenant = next(tenant for tenant in info["tenants"] if tenant["name"] == tenant_name)
    return tenant, next(app for app in tenant["apps"] if app["display_name"] == display_name)


def _protected_pfx(certificate, destination):
    """The app's key and certificate as a PFX under PFX_PASSWORD."""
    key = serialization.load_pem_private_key(Path(certificate["key_path"]).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(Path(certificate["cert_path"]).read_bytes())
    destination.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(PFX_PASSWORD.encode())))
    return str(destination)


def _relay_token(emulator, info):
    """A token of the relay app, got the way a device would, to hand to smtp_submission_test."""
    tenant, app = _app(info, "contoso", RELAY_APP)
    session = requests.Session()
    session.trust_env = False
    session.verify = emulator.ca_path
    with session:
        client = msal.ConfidentialClientApplication(
            app["client_id"], authority="%s/%s" % (emulator.base_url, tenant["id"]), client_credential=app["secret"],
            instance_discovery=False, http_client=session, token_cache=msal.TokenCache())
        result = client.acquire_token_for_client(["https://outlook.office365.com/.default"])
    assert "access_token" in result, result
    return result["access_token"]


def _probe_play(emulator, info, token, pfx_path):
    """smtp_submission_test with a password, with a token it requests (secret, then PFX + password) and with one
    it is given; the connection options are task options, so their no_log is what is tested."""
    tenant, relay = _app(info, "contoso", RELAY_APP)
    common = {"host": emulator.smtp_host, "port": emulator.smtp_port, "ca_path": emulator.ca_path,
              "recipient": "it-team@contoso.com", "fail_on_error": False}
    connection = {"tenant_id": tenant["id"], "client_id": relay["client_id"],
                  "authority_url": info["authority_url"], "ca_path": info["ca_path"]}
    tasks = [
        {"name": "AUTH LOGIN with a mailbox password", "m365ops.smtp_auth.smtp_submission_test": dict(
            common, username="scanner@contoso.com", auth_mode="basic", password="Scanner-Pass-2026!")},
        {"name": "XOAUTH2 with a token requested with a client secret", "m365ops.smtp_auth.smtp_submission_test": dict(
            common, username="notify@contoso.com", auth_mode="oauth", client_secret=relay["secret"], **connection)},
        {"name": "XOAUTH2 with a token requested with a PFX and its password",
         "m365ops.smtp_auth.smtp_submission_test": dict(
             common, username="notify@contoso.com", auth_mode="oauth", **connection,
             client_certificate_path=pfx_path, client_certificate_password=PFX_PASSWORD)},
        {"name": "XOAUTH2 with a token given", "m365ops.smtp_auth.smtp_submission_test": dict(
            common, username="notify@contoso.com", auth_mode="oauth", access_token=token)},
        {"name": "AUTH LOGIN with a wrong password", "m365ops.smtp_auth.smtp_submission_test": dict(
            common, username="scanner@contoso.com", auth_mode="basic", password=WRONG_PASSWORD)},
        {"name": "XOAUTH2 with a wrong client secret", "m365ops.smtp_auth.smtp_submission_test": dict(
            common, username="notify@contoso.com", auth_mode="oauth", client_secret=WRONG_SECRET, **connection)},
        {"name": "XOAUTH2 with a token for another user", "m365ops.smtp_auth.smtp_submission_test": dict(
            common, username="scanner@contoso.com", auth_mode="oauth", access_token=token)},
        {"name": "A setting module refused a wrong client secret", "m365ops.smtp_auth.security_defaults": dict(
            state="disabled", tenant_id=tenant["id"], client_id=tenant["apps"][0]["client_id"],
            client_secret=WRONG_SECRET, authority_url=info["authority_url"], graph_url=info["graph_url"],
            ca_path=info["ca_path"]), "ignore_errors": True},
    ]
    names = []
    for number, task in enumerate(tasks):
        task["register"] = names.append("probe_%d" % number) or "probe_%d" % number
    tasks.append({"name": "Show every returned value", "ansible.builtin.debug": {
        "msg": "{{ [%s] }}" % ", ".join(names)}})
    return [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory):
    """Run everything once; return (texts by where they came from, secrets by name, the emulator's records)."""
    _ensure_collection_link()
    tmp_path = tmp_path_factory.mktemp("leaks")
    with Emulator() as emulator:
        info = emulator.connection_info()
        connection_file = tmp_path / "connection.json"
        connection_file.write_text(json.dumps(info))
        reports = tmp_path / "reports"
        certificate_connection = tmp_path / "certificate.yml"
        # The same tenants, signed in with the automation app's PFX and its password instead of the secret.
        for tenant in info["tenants"]:
            _protected_pfx(tenant["apps"][0]["certificate"], tmp_path / ("%s.pfx" % tenant["name"]))
        certificate_connection.write_text(yaml.safe_dump({"relay_accounts_connection": {
            "tenant_id": "{{ emulator_tenant.id }}", "client_id": "{{ emulator_tenant.apps[0].client_id }}",
            "client_certificate_path": str(tmp_path / "{{ inventory_hostname }}.pfx"),
            "client_certificate_password": PFX_PASSWORD,
            "authority_url": "{{ emulator_info.authority_url }}", "graph_url": "{{ emulator_info.graph_url }}",
            "exchange_url": "{{ emulator_info.exchange_url }}", "ca_path": "{{ emulator_info.ca_path }}"}}))
        passwords = tmp_path / "passwords.yml"
        with emulator.store.lock:
            mailbox_passwords = {user.user_principal_name: user.password for tenant in emulator.store.tenants
                                 for user in tenant.users.values() if user.password}
        passwords.write_text(yaml.safe_dump({"troubleshoot_passwords": mailbox_passwords,
                                             "troubleshoot_recipient": "it-team@contoso.com"}))
        report_dir = "relay_accounts_report_dir=" + str(reports)
        runs = {
            "drift report (secret)": _playbook(tmp_path, connection_file, "m365ops.smtp_auth.drift_report",
                                               "-e", report_dir, "--diff"),
            "drift report (certificate)": _playbook(tmp_path, connection_file, "m365ops.smtp_auth.drift_report",
                                                    "-e", report_dir + "-certificate", "-e",
                                                    "@" + str(certificate_connection), "--diff"),
            "troubleshoot before": _playbook(tmp_path, connection_file, "m365ops.smtp_auth.troubleshoot",
                                             "-e", "@" + str(passwords)),
            "apply": _playbook(tmp_path, connection_file, "m365ops.smtp_auth.enable", "-e", report_dir + "-apply",
                               "--diff"),
            "check after apply": _playbook(tmp_path, connection_file, "m365ops.smtp_auth.enable", "--check",
                                           "--diff"),
            "troubleshoot after": _playbook(tmp_path, connection_file, "m365ops.smtp_auth.troubleshoot",
                                            "-e", "@" + str(passwords)),
        }
        token = _relay_token(emulator, info)
        probe_playbook = tmp_path / "probes.yml"
        relay_pfx = _protected_pfx(_app(info, "contoso", RELAY_APP)[1]["certificate"], tmp_path / "relay.pfx")
        probe_playbook.write_text(yaml.safe_dump(_probe_play(emulator, info, token, relay_pfx)))
        probe_env = _ansible_environment(tmp_path, connection_file)
        runs["smtp_submission_test"] = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-vvvv", "-i", "localhost,", "-c", "local",
             "-e", "ansible_python_interpreter=" + sys.executable, str(probe_playbook)],
            capture_output=True, text=True, cwd=str(tmp_path), env=probe_env, timeout=PLAYBOOK_TIMEOUT, check=False)
        issued = emulator.tokens.issued()
        # The control read answers the same list to a loopback client.
        session = requests.Session()
        session.trust_env = False
        with session:
            listed = session.get(info["control_url"] + "/tokens", verify=emulator.ca_path, timeout=10).json()
        assert listed["tokens"] == issued
        accepted = list(emulator.messages)
    texts = {}
    for name, completed in runs.items():
        texts[name + " stdout"] = completed.stdout
        texts[name + " stderr"] = completed.stderr
    report_files = sorted(path for path in tmp_path.glob("reports*/**/*") if path.is_file())
    for path in report_files:
        texts[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    secrets = {}
    for tenant in info["tenants"]:
        for app in tenant["apps"]:
            if app["secret"]:
                secrets["client secret of %s" % app["display_name"]] = app["secret"]
    secrets["certificate password"] = PFX_PASSWORD
    secrets["wrong password"] = WRONG_PASSWORD
    secrets["wrong client secret"] = WRONG_SECRET
    for upn, password in mailbox_passwords.items():
        secrets["password of %s" % upn] = password
    for number, issued_token in enumerate(issued):
        secrets["access token %d" % number] = issued_token
    return {"runs": runs, "texts": texts, "secrets": secrets, "issued": issued, "reports": report_files,
            "accepted": accepted, "given_token": token}


def _encodings(name, secret, users):
    """``secret`` and the forms it takes on the wire: base64 (standard and URL-safe), and for a token the
    XOAUTH2 client response of every user it could have been sent for; a JWT also by its payload and
    signature, either of which is enough to replay or identify it."""
    forms = {name: secret}
    raw = secret.encode()
    forms[name + " in base64"] = base64.b64encode(raw).decode().rstrip("=")
    forms[name + " in URL-safe base64"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if secret.count(".") == 2:
        _header, payload, signature = secret.split(".")
        forms[name + " (payload)"] = payload
        forms[name + " (signature)"] = signature
        for user in users:
            xoauth2 = "user=%s\x01auth=Bearer %s\x01\x01" % (user, secret)
            forms["%s as XOAUTH2 for %s" % (name, user)] = base64.b64encode(xoauth2.encode()).decode().rstrip("=")
    return forms


def _decoded_runs(text):
    """Every base64 run in ``text``, decoded (standard or URL-safe), for a search of what it hides."""
    decoded = []
    for match in BASE64_RUN.finditer(text):
        run = match.group(0).rstrip("=")
        for alphabet in (None, b"-_"):
            try:
                value = base64.b64decode(run + "=" * (-len(run) % 4), altchars=alphabet)
            except (binascii.Error, ValueError):
                continue
            decoded.append(value.decode("latin-1"))
    return decoded


def test_every_entry_point_ran_and_used_each_secret(leak_run):
    runs = leak_run["runs"]
    # The drift reports fail on drift by design; the other runs must succeed.
    for name in ("apply", "check after apply", "troubleshoot before", "troubleshoot after", "smtp_submission_test"):
        assert runs[name].returncode == 0, name + ":\n" + runs[name].stdout[-4000:] + runs[name].stderr[-2000:]
    for name in ("drift report (secret)", "drift report (certificate)"):
        assert "PLAY RECAP" in runs[name].stdout, runs[name].stdout[-4000:] + runs[name].stderr[-2000:]
        assert "AADSTS" not in runs[name].stdout, name + " did not sign in:\n" + runs[name].stdout[-4000:]
    assert leak_run["reports"], "no report file was written"
    # AUTH LOGIN and XOAUTH2 both got through, so the password and the tokens were really sent.
    signed_in = {(message["mailbox"], message["auth_mechanism"]) for message in leak_run["accepted"]}
    assert {("scanner@contoso.com", "LOGIN"), ("notify@contoso.com", "XOAUTH2")} <= signed_in, leak_run["accepted"]
    assert leak_run["given_token"] in leak_run["issued"]
    probes = leak_run["runs"]["smtp_submission_test"].stdout
    # The refusals happened, so the wrong credentials were sent and their replies printed.
    assert "5.7.139 Authentication unsuccessful, the user credentials were incorrect" in probes
    assert "AADSTS7000215" in probes
    # Graph and Exchange for the automation app, per tenant and run, plus the probes' own: many tokens.
    assert len(leak_run["issued"]) > 10


def test_no_secret_token_or_encoding_in_output_or_reports(leak_run):
    users = sorted({name[len("password of "):] for name in leak_run["secrets"] if name.startswith("password of ")}
                   | {"notify@contoso.com"})
    forms = {}
    for name, secret in leak_run["secrets"].items():
        forms.update(_encodings(name, secret, users))
    leaks = []
    for where, text in leak_run["texts"].items():
        hidden = "\n".join(_decoded_runs(text))
        for name, form in forms.items():
            if form in text:
                leaks.append("%s: %s" % (where, name))
        for name, secret in leak_run["secrets"].items():
            if secret in hidden:
                leaks.append("%s: %s, base64-encoded" % (where, name))
    assert not leaks, "\n".join(sorted(set(leaks)))


def test_the_search_finds_a_planted_leak(leak_run):
    """The search itself works: a token in XOAUTH2 form and a password in AUTH LOGIN form are found."""
    token = leak_run["given_token"]
    planted = {
        "xoauth2": base64.b64encode(("user=notify@contoso.com\x01auth=Bearer %s\x01\x01" % token).encode()).decode(),
        "auth login": "C: " + base64.b64encode(b"Scanner-Pass-2026!").decode(),
        "offset": base64.b64encode(b"xx:Scanner-Pass-2026!").decode(),
    }
    for text in planted.values():
        hidden = "\n".join(_decoded_runs(text))
        assert token in hidden or "Scanner-Pass-2026!" in hidden, text
