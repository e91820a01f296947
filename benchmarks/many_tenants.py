# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Many tenants in one play: N emulated tenants of M mailboxes, one inventory host each, run with forks.

Builds a seed document of its own (the seed format of emulator/README.md), starts the emulator as a separate
process, runs the enable playbook (apply) and then the drift report (check mode) over an inventory of one host
per tenant, and prints the wall time and the requests each run sent. Figures, not a test.

    python benchmarks/many_tenants.py --tenants 20 --mailboxes 1000 --declared 100 --forks 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

NAMESPACE = uuid.UUID("5b1f3d2e-8c4a-4e6f-9a0b-1c2d3e4f5a6b")
PERMISSIONS = {
    "graph_permissions": ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess",
                          "Policy.ReadWrite.AuthenticationMethod", "User.Read.All", "RoleManagement.Read.Directory"],
    "exchange_permissions": ["Exchange.ManageAsApp"],
    "directory_roles": ["Exchange Administrator"],
}


def _id(*parts):
    return str(uuid.uuid5(NAMESPACE, "/".join(str(part) for part in parts)))


def seed(tenants, mailboxes):
    """Tenants whose relay mailboxes all have their own SMTP AUTH switch off, behind security defaults."""
    document = {"behaviour": {}, "tenants": []}
    for number in range(tenants):
        name = "tenant%02d" % number
        document["tenants"].append({
            "name": name, "id": _id(name), "domains": ["%s.onmicrosoft.com" % name, "%s.example" % name],
            "security_defaults_enabled": True, "transport_smtp_auth_disabled": True,
            "apps": [dict(PERMISSIONS, client_id=_id(name, "app"), display_name="m365ops automation",
                          object_id=_id(name, "app", "registration"),
                          service_principal_id=_id(name, "app", "principal"),
                          secrets=["benchmark-secret-%s" % name])],
            "users": [{"user_principal_name": "relay%04d@%s.example" % (index, name), "id": _id(name, index),
                       "display_name": "Relay device %d" % index, "licenses": ["EXCHANGE_S_STANDARD"],
                       "smtp_client_authentication_disabled": True} for index in range(mailboxes)],
        })
    return document


def inventory(info, declared):
    hosts = {}
    for tenant in info["tenants"]:
        app = tenant["apps"][0]
        hosts[tenant["name"]] = {
            "relay_accounts_mailboxes": ["relay%04d@%s.example" % (index, tenant["name"]) for index in range(declared)],
            "relay_accounts_connection": {
                "tenant_id": tenant["id"], "client_id": app["client_id"], "client_secret": app["secret"],
                "authority_url": info["authority_url"], "graph_url": info["graph_url"],
                "exchange_url": info["exchange_url"], "ca_path": info["ca_path"]},
        }
    return {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                    "children": {"m365_tenants": {"hosts": hosts}}}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--mailboxes", type=int, default=1000, help="mailboxes per tenant")
    parser.add_argument("--declared", type=int, default=100, help="relay mailboxes declared per tenant")
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=0, help="delay the emulator adds to every request")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="many-tenants-") as name:
        directory = Path(name)
        seed_path = directory / "seed.yaml"
        seed_path.write_text(yaml.safe_dump(seed(options.tenants, options.mailboxes), sort_keys=False))
        process, info = common.start_emulator(directory, seed_path=seed_path, latency_ms=options.latency_ms)
        try:
            (directory / "hosts.yml").write_text(yaml.safe_dump(inventory(info, options.declared)))
            session = common.control_session(info)
            print("%d tenants x %d mailboxes, %d declared per tenant, forks %d, latency %d ms"
                  % (options.tenants, options.mailboxes, options.declared, options.forks, options.latency_ms))
            for label, playbook, arguments in (
                    ("apply (m365ops.smtp_auth.enable)", "m365ops.smtp_auth.enable", ()),
                    ("drift report after (check mode)", "m365ops.smtp_auth.enable", ("--check", "--diff"))):
                common.clear_request_log(session, info)
                seconds, completed = common.run_playbook(directory, directory / "hosts.yml", playbook, *arguments,
                                                         forks=options.forks)
                if completed.returncode != 0:
                    print(completed.stdout[-3000:], completed.stderr[-2000:], sep="\n")
                    raise SystemExit("%s failed (exit %d)" % (label, completed.returncode))
                log = common.request_log(session, info)
                per_tenant = Counter(entry["tenant"] for entry in log if entry["tenant"])
                writes = sum(1 for entry in log if entry.get("wrote"))
                print("%-34s %7.1f s  %6d requests (%d writes), %d to %d per tenant"
                      % (label, seconds, len(log), writes, min(per_tenant.values(), default=0),
                         max(per_tenant.values(), default=0)))
        finally:
            common.stop_emulator(process)


if __name__ == "__main__":
    main()
