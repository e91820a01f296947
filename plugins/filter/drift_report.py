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
"""

from ansible.errors import AnsibleFilterError

SCHEMA_VERSION = 1
STATUSES = ("compliant", "drift", "changed", "error")


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


def drift_report(rows, tenant, mode, generated_at):
    """Return the report document of one tenant; see DOCUMENTATION."""
    if mode not in ("check", "apply"):
        raise AnsibleFilterError("drift_report: mode must be check or apply, got %r" % (mode,))
    rows = list(rows or [])
    return {
        "schema_version": SCHEMA_VERSION,
        "tenant": tenant,
        "mode": mode,
        "generated_at": generated_at,
        "summary": summarise(rows),
        "rows": rows,
    }


class FilterModule:
    def filters(self):
        return {"drift_report": drift_report}
