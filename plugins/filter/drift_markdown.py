# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_markdown
short_description: Render a drift report as Markdown
version_added: 1.4.0
description:
  - Renders one report document made by P(m365ops.smtp_auth.drift_report#filter) as Markdown for a pull-request
    comment or a ticket, the Markdown report of the C(m365ops.smtp_auth.relay_accounts) role.
  - A summary line, one table row per report row (with the fix), and the sections the report has - the end of
    Basic auth for SMTP AUTH, the devices that relay through the inbound connector and who uses SMTP AUTH.
  - Table cells escape C(|) and fold line breaks, so no value can break a row.
positional: _input
options:
  _input:
    description: One report document.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the Markdown report
  ansible.builtin.copy:
    content: "{{ report | m365ops.smtp_auth.drift_markdown }}"
    dest: reports/contoso.md
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The Markdown document, ending with a line break.
  type: str
"""

from ansible.errors import AnsibleFilterError

STATUS_LABELS = {"compliant": "compliant", "drift": "**drift**", "changed": "changed", "error": "**error**"}


def cell(value):
    """One table cell: nothing for None, "|" escaped, line breaks folded."""
    return ("" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _column in header) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _status(row):
    label = STATUS_LABELS.get(row.get("status"), cell(row.get("status")))
    return label + (": " + cell(row["message"]) if row.get("message") else "")


def _rows_section(report):
    summary = report["summary"]
    kind = "drift report" if report.get("mode") == "check" else "apply report"
    lines = ["## SMTP AUTH %s: %s" % (kind, report.get("tenant")),
             "",
             "%s: %s compliant, %s drift, %s changed, %s error (%s checks), %s, %s mode." % (
                 "Clean" if summary["clean"] else "Not clean", summary["compliant"], summary["drift"],
                 summary["changed"], summary["error"], summary["total"], report.get("generated_at"),
                 report.get("mode"))]
    if summary["drift"] > 0:
        lines += ["", "Run `ansible-playbook m365ops.smtp_auth.enable` for this tenant to fix the drift, or apply the "
                  "fixes below by hand."]
    lines.append("")
    lines += _table(("Mailbox", "Auth", "Setting", "Desired", "Actual", "Status", "Fix"), (
        (cell(row.get("mailbox") or "(tenant-wide)"), cell(row.get("auth")), cell(row.get("setting")),
         cell(row.get("desired")), cell(row.get("actual")), _status(row), cell(row.get("fix")))
        for row in report.get("rows") or ()))
    return lines


def _retirement_section(retirement):
    return ["", "### Basic auth for SMTP AUTH ends", "",
            "Microsoft turns Basic auth for SMTP AUTH off by default on %s; these mailboxes then get `%s`. Move each "
            "to OAuth (XOAUTH2) by changing its entry in `relay_accounts_mailboxes` (and declaring "
            "`relay_accounts_oauth_app` once for the tenant), or, if its device cannot do OAuth, to relay through the "
            "tenant's inbound connector (declaring `relay_accounts_connector` once for the tenant):"
            % (retirement.get("date"), retirement.get("reply")),
            ""] + _table(("Mailbox", "Change to OAuth", "Or to connector relay"), (
                (cell(item.get("mailbox")), "`%s`" % cell(item.get("inventory_change")),
                 "`%s`" % cell(item.get("connector_change"))) for item in retirement.get("mailboxes") or ()))


def _connector_section(relay):
    title = "### Devices that relay through the inbound connector"
    if relay.get("connector"):
        title += " (%s)" % cell(relay["connector"])
    return ["", title, "",
            "Type these into each device. It sends without signing in; Exchange Online accepts its mail because it "
            "comes from an address the connector lists.",
            ""] + _table(("Device (From address)", "Sends from", "SMTP server", "Port", "Authentication", "TLS"), (
                (cell(device.get("from")), cell(device.get("source_ip") or "certificate"), cell(device.get("host")),
                 str(device.get("port")), cell(device.get("authentication")), cell(device.get("tls")))
                for device in relay.get("devices") or ()))


def _usage_section(usage):
    title = "### Who uses SMTP AUTH"
    if usage.get("days"):
        title += " (last %s days)" % usage["days"]
    lines = ["", title, ""]
    if usage.get("status") != "read":
        return lines + ["Unknown: %s" % cell(usage.get("reason"))]
    if usage.get("undeclared"):
        lines += ["Signed in with SMTP AUTH but not declared in the inventory:", ""]
        lines += _table(("Account", "Sign-ins", "Last", "Source IPs"), (
            (cell(account.get("user_principal_name")), cell(account.get("sign_ins")),
             cell(account.get("last_sign_in")), cell(", ".join(account.get("source_ips") or ())))
            for account in usage["undeclared"]))
    else:
        lines.append("Every account that signed in with SMTP AUTH is declared.")
    lines.append("")
    if usage.get("unused"):
        lines.append("Declared but not used: %s." % ", ".join(usage["unused"]))
    else:
        lines.append("Every declared mailbox was used.")
    return lines


def drift_markdown(report):
    """Return the Markdown of one report; see DOCUMENTATION."""
    if not isinstance(report, dict) or not isinstance(report.get("summary"), dict):
        raise AnsibleFilterError("drift_markdown expects a report made by drift_report, got %s"
                                 % type(report).__name__)
    lines = _rows_section(report)
    if "basic_auth_retirement" in report:
        lines += _retirement_section(report["basic_auth_retirement"])
    if "connector_relay" in report:
        lines += _connector_section(report["connector_relay"])
    if "usage" in report:
        lines += _usage_section(report["usage"])
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self):
        return {"drift_markdown": drift_markdown}
