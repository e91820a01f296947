# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_junit
short_description: Render drift reports as JUnit XML
version_added: 0.1.0
description:
  - Renders one or more report documents made by P(m365ops.smtp_auth.drift_report#filter) as JUnit XML, so CI
    dashboards show drift as failing tests.
  - Each tenant is a C(testsuite); each row (mailbox x setting) is a C(testcase) whose C(classname) is the
    tenant and whose C(name) is the mailbox (or C(tenant-wide)) and the setting.
  - C(drift) rows become C(failure) elements and C(error) rows C(error) elements, both carrying the fix.
    C(compliant) and C(changed) rows pass; a C(changed) row says what was changed in its C(system-out).
positional: _input
options:
  _input:
    description: One report document, or a list of them.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Write the JUnit report
  ansible.builtin.copy:
    content: "{{ report | m365ops.smtp_auth.drift_junit }}"
    dest: reports/contoso.xml
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The JUnit XML document, with an XML declaration.
  type: str
"""

from xml.etree import ElementTree

from ansible.errors import AnsibleFilterError

TENANT_WIDE = "tenant-wide"


def _text(value):
    return "" if value is None else str(value)


def _describe(row):
    return "%s: desired %s, actual %s" % (row["setting"], _text(row.get("desired")), _text(row.get("actual")) or "unknown")


def _suite(report):
    rows = report.get("rows") or []
    tenant = _text(report.get("tenant"))
    suite = ElementTree.Element("testsuite", {
        "name": tenant,
        "tests": str(len(rows)),
        "failures": str(sum(1 for row in rows if row.get("status") == "drift")),
        "errors": str(sum(1 for row in rows if row.get("status") == "error")),
        "skipped": "0",
        "timestamp": _text(report.get("generated_at")),
    })
    for row in rows:
        case = ElementTree.SubElement(suite, "testcase", {
            "classname": tenant,
            "name": "%s: %s" % (row.get("mailbox") or TENANT_WIDE, row.get("setting")),
        })
        status = row.get("status")
        detail = _describe(row)
        if row.get("message"):
            detail += "\n" + _text(row["message"])
        if row.get("fix"):
            detail += "\nFix: " + _text(row["fix"])
        if status == "drift":
            failure = ElementTree.SubElement(case, "failure", {"type": "drift", "message": _describe(row)})
            failure.text = detail
        elif status == "error":
            error = ElementTree.SubElement(case, "error", {
                "type": "error", "message": _text(row.get("message")) or _describe(row)})
            error.text = detail
        elif status == "changed":
            ElementTree.SubElement(case, "system-out").text = "changed from %s to %s" % (
                _text(row.get("actual")) or "unknown", _text(row.get("desired")))
    return suite


def drift_junit(reports):
    """Return the JUnit XML of one report or a list of reports; see DOCUMENTATION."""
    if isinstance(reports, dict):
        reports = [reports]
    if not isinstance(reports, (list, tuple)):
        raise AnsibleFilterError("drift_junit expects a report or a list of reports, got %s" % type(reports).__name__)
    root = ElementTree.Element("testsuites", {"name": "m365ops.smtp_auth drift"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for report in reports:
        if not isinstance(report, dict):
            raise AnsibleFilterError("drift_junit: a report must be a dict, got %s" % type(report).__name__)
        suite = _suite(report)
        for key in totals:
            totals[key] += int(suite.get(key))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


class FilterModule:
    def filters(self):
        return {"drift_junit": drift_junit}
