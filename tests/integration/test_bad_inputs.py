# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A catalogue of bad inputs: each is refused with a message naming the culprit, and none writes to the tenant.

Each case is one task run against the emulator (all cases of a kind in one ansible-playbook run). A case says
what its message must contain and how far it may get: ``before`` (refused before any request: nothing in the
emulator's log), or ``read`` (it may sign in or read, never write). The role's own validation of the inventory
is covered by test_mailbox_entries.py and test_role_relay_accounts.py; the cases here are the modules'.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from conftest import AUTOMATION_APP, play_runner, writing_requests

UNKNOWN_APP = "0f0e0d0c-0b0a-4909-8807-060504030201"
MAILBOX = {"mailboxes": ["scanner@contoso.com"], "state": "enabled"}
CERTIFICATE_PASSWORD = "Cert-Pass-2026!"
BEFORE, READ = "before", "read"


@dataclass
class Case:
    name: str
    module: str
    args: dict
    expected: list
    reach: str = BEFORE
    # Environment variables the case must not inherit (a certificate case must not also get the secret).
    without_env: tuple = ()
    forbidden: list = field(default_factory=list)


def _certificate_files(directory, info):
    """Certificate files that cannot sign in, made from the automation app's real key and certificate."""
    app = next(app for tenant in info["tenants"] for app in tenant["apps"] if app["display_name"] == AUTOMATION_APP)
    key = serialization.load_pem_private_key(open(app["certificate"]["key_path"], "rb").read(), password=None)
    cert_pem = open(app["certificate"]["cert_path"], "rb").read()
    certificate = x509.load_pem_x509_certificate(cert_pem)
    files = {
        "keyless": cert_pem,
        "certificate-less": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()),
        "encrypted-pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(CERTIFICATE_PASSWORD.encode()))
        + cert_pem,
        "protected-pfx": pkcs12.serialize_key_and_certificates(
            b"app", key, certificate, None, serialization.BestAvailableEncryption(CERTIFICATE_PASSWORD.encode())),
        "garbage": b"\x00\x01 this is not a certificate \xff",
    }
    paths = {}
    for name, content in files.items():
        path = directory / (name + (".pfx" if name in ("protected-pfx", "garbage") else ".pem"))
        path.write_bytes(content)
        paths[name] = str(path)
    paths["directory"] = str(directory)
    return paths


def _cases(paths, info):
    no_secret = ("M365_CLIENT_SECRET",)
    long_upn = "a" * 300 + "@contoso.com"

    def with_certificate(path, **extra):
        return dict(MAILBOX, client_certificate_path=path, **extra)

    return [
        # -- who signs in
        Case("unknown tenant", "mailbox_smtp_auth", dict(MAILBOX, tenant_id="nosuch.onmicrosoft.com"),
             ["AADSTS90002", "nosuch.onmicrosoft.com"], READ),
        Case("unknown app", "mailbox_smtp_auth", dict(MAILBOX, client_id=UNKNOWN_APP), ["AADSTS700016", UNKNOWN_APP],
             READ),
        Case("wrong client secret", "mailbox_smtp_auth", dict(MAILBOX, client_secret="Wrong-Secret-2026"),
             ["AADSTS7000215"], READ, forbidden=["Wrong-Secret-2026"]),
        Case("malformed tenant", "mailbox_smtp_auth", dict(MAILBOX, tenant_id="contoso com/../x"),
             ["tenant_id", "contoso com/../x", "GUID", "domain"]),
        Case("client id not a GUID", "mailbox_smtp_auth", dict(MAILBOX, client_id="my relay app"),
             ["client_id", "my relay app", "GUID"]),
        Case("secret and certificate together", "mailbox_smtp_auth",
             dict(MAILBOX, client_certificate_path=paths["keyless"]), ["client_secret", "client_certificate_path"]),
        # -- certificates
        Case("missing certificate file", "mailbox_smtp_auth", with_certificate("/nonexistent/app.pem"),
             ["client_certificate_path", "/nonexistent/app.pem", "does not exist"], without_env=no_secret),
        Case("certificate path is a directory", "mailbox_smtp_auth", with_certificate(paths["directory"]),
             ["client_certificate_path", paths["directory"], "directory"], without_env=no_secret),
        Case("keyless certificate", "mailbox_smtp_auth", with_certificate(paths["keyless"]),
             [paths["keyless"], "no private key"], without_env=no_secret),
        Case("key without its certificate", "mailbox_smtp_auth", with_certificate(paths["certificate-less"]),
             [paths["certificate-less"], "no certificate"], without_env=no_secret),
        Case("encrypted PEM key without a password", "mailbox_smtp_auth", with_certificate(paths["encrypted-pem"]),
             [paths["encrypted-pem"], "client_certificate_password"], without_env=no_secret),
        Case("encrypted PEM key with a wrong password", "mailbox_smtp_auth",
             with_certificate(paths["encrypted-pem"], client_certificate_password="Wrong-Cert-Pass"),
             [paths["encrypted-pem"], "client_certificate_password"], without_env=no_secret,
             forbidden=["Wrong-Cert-Pass"]),
        Case("protected PFX without a password", "mailbox_smtp_auth", with_certificate(paths["protected-pfx"]),
             [paths["protected-pfx"], "client_certificate_password"], without_env=no_secret),
        Case("protected PFX with a wrong password", "mailbox_smtp_auth",
             with_certificate(paths["protected-pfx"], client_certificate_password="Wrong-Pfx-Pass"),
             [paths["protected-pfx"], "client_certificate_password"], without_env=no_secret,
             forbidden=["Wrong-Pfx-Pass"]),
        Case("not a certificate at all", "mailbox_smtp_auth", with_certificate(paths["garbage"]),
             [paths["garbage"], "PFX"], without_env=no_secret),
        # -- where it connects
        Case("unreachable endpoint", "mailbox_smtp_auth",
             dict(MAILBOX, authority_url="https://127.0.0.1:9", max_retries=0, timeout=5), ["127.0.0.1:9"], READ),
        Case("untrusted certificate", "mailbox_smtp_auth", dict(MAILBOX, ca_path=certifi.where()),
             ["TLS verification failed", "CERTIFICATE_VERIFY_FAILED", "ca_path"], READ),
        Case("endpoint that is not https", "mailbox_smtp_auth",
             dict(MAILBOX, graph_url=info["graph_url"].replace("https://", "http://")), ["graph_url", "https"]),
        Case("endpoint that is not a URL", "mailbox_smtp_auth", dict(MAILBOX, exchange_url="outlook.office365.com"),
             ["exchange_url", "outlook.office365.com", "https"]),
        Case("unknown cloud", "mailbox_smtp_auth", dict(MAILBOX, cloud="mars"), ["cloud", "mars", "global"]),
        Case("CA bundle that does not exist", "mailbox_smtp_auth", dict(MAILBOX, ca_path="/nonexistent/ca.pem"),
             ["ca_path", "/nonexistent/ca.pem"]),
        # -- timeouts and retries
        Case("timeout of zero", "mailbox_smtp_auth", dict(MAILBOX, timeout=0), ["timeout", "0"]),
        Case("timeout of a day", "mailbox_smtp_auth", dict(MAILBOX, timeout=86400), ["timeout", "86400"]),
        Case("timeout not a number", "mailbox_smtp_auth", dict(MAILBOX, timeout="soon"), ["timeout", "soon"]),
        Case("negative retries", "mailbox_smtp_auth", dict(MAILBOX, max_retries=-1), ["max_retries", "-1"]),
        Case("a thousand retries", "mailbox_smtp_auth", dict(MAILBOX, max_retries=1000), ["max_retries", "1000"]),
        Case("no request at a time", "mailbox_smtp_auth", dict(MAILBOX, concurrency=0), ["concurrency", "0"]),
        Case("a hundred requests at a time", "mailbox_smtp_auth", dict(MAILBOX, concurrency=100),
             ["concurrency", "100", "16"]),
        # -- what it is asked to change
        Case("unknown mailbox state", "mailbox_smtp_auth", dict(MAILBOX, state="on"), ["state", "on", "enabled"]),
        Case("unknown MFA state", "per_user_mfa", {"users": ["printer@contoso.com"], "state": "off"},
             ["state", "off", "disabled"]),
        Case("unknown security defaults state", "security_defaults", {"state": "no"}, ["state", "no", "disabled"]),
        # Ansible turns a mapping into its text for a list of strings; Exchange then finds no such mailbox.
        Case("mailboxes not a list of names", "mailbox_smtp_auth", {"mailboxes": [{"upn": "x"}], "state": "enabled"},
             ["'upn': 'x'", "not found"], READ),
        Case("empty mailbox name", "mailbox_smtp_auth", {"mailboxes": ["scanner@contoso.com", " "], "state": "enabled"},
             ["mailboxes", "empty"]),
        Case("malformed mailbox name", "mailbox_smtp_auth", {"mailboxes": ["scanner@"], "state": "enabled"},
             ["scanner@", "not found"], READ),
        Case("very long mailbox name", "mailbox_smtp_auth", {"mailboxes": [long_upn], "state": "enabled"},
             ["mailboxes", long_upn[:40]]),
        Case("malformed user", "per_user_mfa", {"users": ["not a user"], "state": "disabled"}, ["not a user"], READ),
        Case("duplicate mailbox in the role's form", "smtp_auth_info",
             {"mailboxes": ["scanner@contoso.com", "SCANNER@contoso.com"]}, ["SCANNER@contoso.com", "already declared"]),
        Case("unknown auth mode in an entry", "smtp_auth_info", {"mailboxes": [{"upn": "scanner@contoso.com",
                                                                               "auth": "kerberos"}]},
             ["scanner@contoso.com", "kerberos"]),
        Case("usage window out of range", "smtp_auth_usage_info", {"days": 45}, ["days", "45"]),
        # -- the submission test
        Case("CR/LF in the subject", "smtp_submission_test",
             {"username": "scanner@contoso.com", "password": "x", "host": "127.0.0.1", "port": 9,
              "recipient": "it-team@contoso.com", "subject": "hello\r\nBcc: everyone@contoso.com"},
             ["subject", "line break"]),
        Case("CR/LF in the sender", "smtp_submission_test",
             {"username": "scanner@contoso.com", "password": "x", "host": "127.0.0.1", "port": 9,
              "recipient": "it-team@contoso.com", "sender": "scanner@contoso.com\r\nRCPT TO:<x@y.z>"},
             ["sender", "line break"]),
        Case("CR/LF in the EHLO name", "smtp_submission_test",
             {"username": "scanner@contoso.com", "password": "x", "host": "127.0.0.1", "port": 9,
              "ehlo_name": "printer\nQUIT"}, ["ehlo_name", "line break"]),
        Case("invalid recipient", "smtp_submission_test",
             {"username": "scanner@contoso.com", "password": "x", "host": "127.0.0.1", "port": 9,
              "recipient": "it-team at contoso"}, ["recipient", "it-team at contoso"]),
        Case("port out of range", "smtp_submission_test",
             {"username": "scanner@contoso.com", "password": "x", "host": "127.0.0.1", "port": 70000},
             ["port", "70000"]),
        Case("basic test without a password", "smtp_submission_test",
             {"username": "scanner@contoso.com", "host": "127.0.0.1", "port": 9}, ["password"]),
        Case("very long username", "smtp_submission_test",
             {"username": long_upn, "password": "x", "host": "127.0.0.1", "port": 9}, ["username", long_upn[:40]]),
    ]


# The names only, for the parametrisation; the real paths and URLs exist once the emulator runs.
CASE_NAMES = [case.name for case in _cases(defaultdict(str), {"graph_url": "https://placeholder"})]


@pytest.fixture(scope="module")
def catalogue(emulator, tmp_path_factory):
    """Every case run once, grouped by the environment it needs; returns [(case, result, requests)]."""
    tmp_path = tmp_path_factory.mktemp("bad-inputs")
    certificates = tmp_path / "certificates"
    certificates.mkdir()
    info = emulator.connection_info()
    cases = _cases(_certificate_files(certificates, info), info)
    emulator.reset()
    emulator.clear_faults()
    emulator.clear_request_log()
    outcomes = []
    for without_env in sorted({case.without_env for case in cases}):
        group = [case for case in cases if case.without_env == without_env]
        play_dir = tmp_path / ("play-%d" % len(outcomes))
        play_dir.mkdir()
        run = play_runner(emulator, play_dir)
        played = run([{"name": case.name, "m365ops.smtp_auth." + case.module: case.args} for case in group],
                     without_env=without_env)
        outcomes.extend(zip(group, played.results, played.requests))
        emulator.clear_request_log()
    shutil.rmtree(certificates)
    return {case.name: (case, result, requests) for case, result, requests in outcomes}


def test_the_catalogue_is_broad():
    assert len(set(CASE_NAMES)) == len(CASE_NAMES) >= 25


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_is_refused_naming_the_culprit_without_a_write(catalogue, name):
    case, result, requests = catalogue[name]
    assert result.get("failed") is True, "%s: not refused: %s" % (case.name, result)
    message = result.get("msg", "")
    for word in case.expected:
        assert word in message, "%s: %r not in the message: %s" % (case.name, word, message)
    for word in case.forbidden:
        assert word not in str(result), "%s: %r is in the result" % (case.name, word)
    assert not writing_requests(requests), "%s wrote: %s" % (case.name, writing_requests(requests))
    if case.reach == BEFORE:
        assert requests == [], "%s sent requests before refusing: %s" % (case.name, requests)
