# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_report
short_description: Wrap drift report rows into the report document of one tenant
version_added: 0.1.0
description:
  - Builds the JSON report document described by C(docs/report.schema.json) of the collection from the rows
    that P(m365ops.smtp_auth.drift_rows#filter) returns, with a summary that counts rows by status.
  - C(schema_version) changes only when a field is removed or changes meaning; new optional fields keep it.
positional: _input
options:
  _input:
    description: The rows of one tenant.
    type: list
    elements: dict
    required: true
  tenant:
    description: The tenant name.
    type: str
    required: true
  mode:
    description: C(check) for a drift report, C(apply) for a report of what a run changed.
    type: str
    choices: [check, apply]
    required: true
  generated_at:
    description: When the report was made, ISO 8601 in UTC.
    type: str
    required: true
  entries:
    description:
      - The tenant's mailbox entries, normalised (P(m365ops.smtp_auth.relay_mailboxes#filter)). Every present
        C(basic) entry is listed in C(basic_auth_retirement) with the inventory changes that move it to OAuth or
        to connector relay, and every present C(connector) entry in C(connector_relay) with the settings its
        device needs.
    type: list
    elements: dict
    default: []
  connector:
    description: The tenant's inbound connector as declared (C(relay_accounts_connector)), named in C(connector_relay).
    type: dict
  usage:
    description:
      - The result of M(m365ops.smtp_auth.smtp_auth_usage_info) for the tenant, with the entries as its
        C(declared); the report then has a C(usage) section. Omit it (or give an empty or skipped result) for no
        such section.
    type: dict
"""

EXAMPLES = r"""
- name: Write the JSON report
  ansible.builtin.copy:
    content: >-
      {{ rows | m365ops.smtp_auth.drift_report(tenant=inventory_hostname,
                                                mode='check',
                                                generated_at=now(utc=true).strftime('%Y-%m-%dT%H:%M:%SZ'))
         | ansible.builtin.to_nice_json }}
    dest: reports/contoso.json
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The report document.
  type: dict
  contains:
    schema_version:
      description: The version of the report schema, currently 1.
      type: int
    tenant:
      description: The tenant name.
      type: str
    mode:
      description: check or apply.
      type: str
    generated_at:
      description: When the report was made.
      type: str
    summary:
      description: Row counts by status, plus C(total) and C(clean) (no drift and no error).
      type: dict
    rows:
      description: The rows, as given.
      type: list
      elements: dict
    basic_auth_retirement:
      description:
        - Present only when a present entry uses C(basic). C(date) (Microsoft turns Basic auth for SMTP AUTH off
          by default at the end of December 2026), C(reply) (what those devices then get) and C(mailboxes), each
          with C(mailbox), C(inventory_change) (the entry that moves it to OAuth) and C(connector_change) (the
          entry that moves it to the tenant's inbound connector, for a device that cannot do OAuth).
      type: dict
    connector_relay:
      description:
        - Present only when a present entry uses C(connector). C(connector) (its name) and C(devices), each with
          C(mailbox), C(source_ip), and what to type into the device - C(host) (the tenant's MX endpoint,
          C(<domain-with-dashes>.mail.protection.outlook.com)), C(port) (25), C(authentication) (V(none)), C(tls)
          and C(from) (the entry's address, in an accepted domain).
      type: dict
    usage:
      description:
        - Present only when O(usage) is given. C(status) (V(read) or V(unknown)), C(reason) when unknown, C(days),
          C(undeclared) (accounts that used SMTP AUTH and are not declared; each with C(user_principal_name),
          C(sign_ins), C(last_sign_in), C(source_ips)) and C(unused) (declared present entries nobody used).
      type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_probe import MX_PORT, mx_host

SCHEMA_VERSION = 1
STATUSES = ("compliant", "drift", "changed", "error")
# Exchange Team blog, 2026-01-27: Basic auth for SMTP AUTH is turned off by default for existing tenants at the
# end of December 2026 (admins can turn it back on until the final removal in the second half of 2027).
BASIC_AUTH_OFF_BY_DEFAULT = "2026-12-31"
BASIC_AUTH_RETIRED_REPLY = "550 5.7.30 Basic authentication is not supported for Client Submission."


def basic_auth_retirement(entries):
    """Every present basic entry with the one-line inventory change that moves it to OAuth, or None."""
    basic = [entry["upn"] for entry in entries or [] if entry.get("state") == "present" and entry.get("auth") == "basic"]
    if not basic:
        return None
    return {
        "date": BASIC_AUTH_OFF_BY_DEFAULT,
        "reply": BASIC_AUTH_RETIRED_REPLY,
        "mailboxes": [{"mailbox": upn, "inventory_change": "- {upn: %s, auth: oauth}" % upn,
                       "connector_change": "- {upn: %s, auth: connector, source_ip: <the device's public IPv4 "
                                           "address>}" % upn} for upn in basic],
    }


def connector_relay(entries, connector=None):
    """What to type into each device of a present connector entry, or None when there is none."""
    relayed = [entry for entry in entries or [] if entry.get("state") == "present" and entry.get("auth") == "connector"]
    if not relayed:
        return None
    return {
        "connector": (connector or {}).get("name"),
        "devices": [{"mailbox": entry["upn"], "source_ip": entry.get("source_ip"),
                     "host": mx_host(entry["upn"].rpartition("@")[2]), "port": MX_PORT, "authentication": "none",
                     "tls": "STARTTLS when the device offers it (TLS 1.2 or later)", "from": entry["upn"]}
                    for entry in relayed],
    }


def usage_section(usage, entries):
    """The usage section from an smtp_auth_usage_info result: who uses SMTP AUTH undeclared, who is unused."""
    if usage.get("status") != "read":
        return {"status": "unknown", "reason": usage.get("reason") or usage.get("msg") or "the sign-in logs were "
                "not read", "days": (usage.get("window") or {}).get("days")}
    present = {entry["upn"].lower() for entry in entries or [] if entry.get("state") == "present"}
    used = {str(account.get("user_principal_name")).lower() for account in usage.get("accounts") or []}
    undeclared = [{key: account.get(key) for key in ("user_principal_name", "sign_ins", "last_sign_in", "source_ips")}
                  for account in usage.get("accounts") or []
                  if str(account.get("user_principal_name")).lower() not in present]
    return {"status": "read", "days": (usage.get("window") or {}).get("days"), "undeclared": undeclared,
            "unused": sorted(present - used)}


def summarise(rows):
    summary = {status: 0 for status in STATUSES}
    for row in rows:
        status = row.get("status")
        if status not in summary:
            raise AnsibleFilterError("drift_report: row %r has an unknown status %r" % (row, status))
        summary[status] += 1
    summary["total"] = len(rows)
    summary["clean"] = summary["drift"] == 0 and summary["error"] == 0
    return summary


def drift_report(rows, tenant, mode, generated_at, entries=None, usage=None, connector=None):
    """Return the report document of one tenant; see DOCUMENTATION."""
    if mode not in ("check", "apply"):
        raise AnsibleFilterError("drift_report: mode must be check or apply, got %r" % (mode,))
    rows = list(rows or [])
    report = {
        "schema_version": SCHEMA_VERSION,
        "tenant": tenant,
        "mode": mode,
        "generated_at": generated_at,
        "summary": summarise(rows),
        "rows": rows,
    }
    retirement = basic_auth_retirement(entries)
    if retirement:
        report["basic_auth_retirement"] = retirement
    relay = connector_relay(entries, connector)
    if relay:
        report["connector_relay"] = relay
    if usage and not usage.get("skipped"):
        report["usage"] = usage_section(usage, entries)
    return report


class FilterModule:
    def filters(self):
        return {"drift_report": drift_report}
