#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: relay_report
short_description: Make and write the drift or apply report of one tenant from the relay_accounts steps
version_added: 1.4.0
description:
  - The report step of the C(m365ops.smtp_auth.relay_accounts) role, usable on its own after the same steps.
  - Reads the result of each step of a plan made by P(m365ops.smtp_auth.relay_plan#filter) from the variable the
    step registered (its C(register)), turns them into rows (P(m365ops.smtp_auth.drift_rows#filter)) and a report
    (P(m365ops.smtp_auth.drift_report#filter)), and writes the report as JSON, Markdown
    (P(m365ops.smtp_auth.drift_markdown#filter)) and JUnit XML (P(m365ops.smtp_auth.drift_junit#filter)).
  - A step whose variable is not set or empty was not reached, and its rows say so.
  - Each file is replaced whole (written beside it, then renamed), so a reader never sees half a report.
  - Runs on the controller and writes there. Writing reports is output, not a change to the tenant, so it never
    reports a change, and it writes in check mode too.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  plan:
    description: The plan of the steps, as P(m365ops.smtp_auth.relay_plan#filter) returns it.
    type: dict
    required: true
  tenant:
    description: The tenant name, written into every row and used as the name of the report files.
    type: str
    required: true
  check_mode:
    description: Whether the steps ran in check mode. The report is then a drift report, otherwise an apply report.
    type: bool
    default: false
  entries:
    description: The tenant's mailbox entries, normalised (P(m365ops.smtp_auth.relay_mailboxes#filter)).
    type: list
    elements: dict
    default: []
  connector:
    description: The tenant's inbound connector as declared, named in the connector relay section.
    type: dict
  usage:
    description: The result of M(m365ops.smtp_auth.smtp_auth_usage_info), for the report's usage section.
    type: dict
  dest:
    description:
      - The directory the report files go to, C(<tenant>.json), C(<tenant>.md) and C(<tenant>.xml), made when
        missing. Without it no file is written and only the summary is returned.
    type: path
  formats:
    description: The files to write.
    type: list
    elements: str
    choices: [json, markdown, junit]
    default: [json, markdown, junit]
attributes:
  check_mode:
    support: full
    description: Reads no tenant; writes the report files in check mode too.
  diff_mode:
    support: none
    description: Report files are output, not managed state.
"""

EXAMPLES = r"""
- name: Write the report of the tenant
  m365ops.smtp_auth.relay_report:
    plan: "{{ plan }}"
    tenant: contoso
    check_mode: "{{ ansible_check_mode }}"
    entries: "{{ entries }}"
    dest: reports
  register: report

- name: Say how the tenant stands
  ansible.builtin.debug:
    msg: "{{ report.summary.drift }} setting(s) in drift, {{ report.summary.error }} error(s)"
"""

RETURN = r"""
summary:
  description: Row counts by status (C(compliant), C(drift), C(changed), C(error)), C(total), and C(clean).
  returned: always
  type: dict
  sample: {compliant: 3, drift: 1, changed: 0, error: 0, total: 4, clean: false}
changes:
  description: What changed (apply) or would change (check mode), by setting, each with its mailboxes.
  returned: always
  type: list
  elements: dict
  sample: [{setting: mailbox_smtp_auth, mailboxes: [scanner@contoso.com]}]
errors:
  description: The message of each C(error) row.
  returned: always
  type: list
  elements: str
files:
  description: The report files written.
  returned: always
  type: list
  elements: str
"""
