# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The AWX credential type in extensions/awx/: its injectors rendered the way AWX renders them, and a module
signing in to the emulator with nothing but the environment they produce.

AWX renders each ``file`` injector with a sandboxed Jinja environment over the credential's inputs (a multiline
input gets a trailing newline), writes it to a private temporary file, exposes the path as
``tower.filename.<name>``, then renders each ``env`` injector over the same namespace. Inputs a credential does
not set are simply absent from the namespace.
"""

from __future__ import annotations

import os
import stat
import tempfile
import types
from pathlib import Path

import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from conftest import AUTOMATION_APP, CONTOSO_DOMAIN, REPO

CREDENTIAL_TYPE = yaml.safe_load((REPO / "extensions" / "awx" / "credential_type.yml").read_text())
M365_VARIABLES = ("M365_TENANT_ID", "M365_CLIENT_ID", "M365_CLIENT_SECRET", "M365_CLIENT_CERTIFICATE_PATH",
                  "M365_CLIENT_CERTIFICATE_PASSWORD", "M365_CLOUD")


def render(inputs, directory):
    """The environment AWX would give a job for a credential with ``inputs``."""
    fields = {field["id"]: field for field in CREDENTIAL_TYPE["inputs"]["fields"]}
    namespace = {}
    for name, value in inputs.items():
        if fields[name].get("multiline") and value and not value.endswith("\n"):
            value += "\n"
        namespace[name] = value
    sandbox = ImmutableSandboxedEnvironment()
    files = {}
    for label, template in CREDENTIAL_TYPE["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=directory)
        with os.fdopen(handle, "w") as written:
            written.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        files[label.split(".", 1)[1]] = path
    namespace["tower"] = types.SimpleNamespace(filename=types.SimpleNamespace(**files))
    return {name: sandbox.from_string(template).render(**namespace)
            for name, template in CREDENTIAL_TYPE["injectors"]["env"].items()}


def test_the_type_declares_every_input_and_hides_the_secrets():
    fields = {field["id"]: field for field in CREDENTIAL_TYPE["inputs"]["fields"]}
    assert set(fields) == {"tenant_id", "client_id", "client_secret", "client_certificate",
                           "client_certificate_password", "cloud"}
    assert {name for name, field in fields.items() if field.get("secret")} == {
        "client_secret", "client_certificate", "client_certificate_password"}
    assert set(CREDENTIAL_TYPE["injectors"]["env"]) == set(M365_VARIABLES)
    assert CREDENTIAL_TYPE["inputs"]["required"] == ["tenant_id", "client_id"]
    assert fields["cloud"]["choices"] == ["global", "usgov_high", "usgov_dod", "china"]


@pytest.fixture
def app(tenant):
    info = tenant.connection_info()
    contoso = next(entry for entry in info["tenants"] if CONTOSO_DOMAIN in entry["domains"])
    return contoso, next(entry for entry in contoso["apps"] if entry["display_name"] == AUTOMATION_APP)


def _read_security_defaults(run_play, environment, tenant):
    # The emulator stands in for the cloud's hosts; everything about the tenant comes from the credential.
    hosts = {"M365_AUTHORITY_URL": tenant.base_url, "M365_GRAPH_URL": tenant.base_url,
             "M365_EXCHANGE_URL": tenant.base_url, "M365_CA_PATH": tenant.ca_path}
    return run_play([{"m365ops.smtp_auth.security_defaults": {"state": "enabled"}}], check=True,
                    extra_env=dict(hosts, **environment))


def test_a_secret_credential_sets_the_environment_and_signs_in(run_play, tenant, app, tmp_path):
    contoso, automation = app
    environment = render({"tenant_id": contoso["id"], "client_id": automation["client_id"],
                          "client_secret": automation["secret"], "cloud": "global"}, tmp_path)
    assert environment == {"M365_TENANT_ID": contoso["id"], "M365_CLIENT_ID": automation["client_id"],
                           "M365_CLIENT_SECRET": automation["secret"], "M365_CLIENT_CERTIFICATE_PATH": "",
                           "M365_CLIENT_CERTIFICATE_PASSWORD": "", "M365_CLOUD": "global"}
    result = _read_security_defaults(run_play, environment, tenant)[0]
    assert result.get("failed") is not True, result
    assert result["before"] == "enabled"


def test_a_certificate_credential_becomes_a_private_file_and_signs_in(run_play, tenant, app, tmp_path):
    contoso, automation = app
    pem = (Path(automation["certificate"]["key_path"]).read_text()
           + Path(automation["certificate"]["cert_path"]).read_text()).rstrip("\n")
    environment = render({"tenant_id": contoso["id"], "client_id": automation["client_id"],
                          "client_certificate": pem, "cloud": "global"}, tmp_path)
    path = environment["M365_CLIENT_CERTIFICATE_PATH"]
    assert Path(path).read_text() == pem + "\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert environment["M365_CLIENT_SECRET"] == ""
    result = _read_security_defaults(run_play, environment, tenant)[0]
    assert result.get("failed") is not True, result
    assert result["before"] == "enabled"
    # Signed in with the certificate: the token request carried a client assertion, not a secret.
    token_requests = [entry for entry in tenant.request_log if entry["path"].endswith("/oauth2/v2.0/token")]
    assert token_requests and all(entry["status"] == 200 for entry in token_requests)


def test_unset_inputs_leave_no_certificate_path_and_the_global_cloud(tmp_path):
    environment = render({"tenant_id": "contoso.onmicrosoft.com", "client_id": "6f1c2b7e-43d1-4c8e-9a77-0b4f0a3e5d21",
                          "client_secret": "s"}, tmp_path)
    assert environment["M365_CLIENT_CERTIFICATE_PATH"] == ""
    assert environment["M365_CLOUD"] == "global"
