#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: mailbox_license_info
short_description: Tell whether mailboxes hold an Exchange Online mailbox licence
version_added: 1.0.0
description:
  - For each user, reads the assigned service plans from Microsoft Graph and reports whether one of them is an
    enabled Exchange Online mailbox plan (for example C(EXCHANGE_S_STANDARD) or C(EXCHANGE_S_ENTERPRISE)).
  - C(EXCHANGE_S_FOUNDATION), which comes with many non-mailbox licences, does not count.
  - SMTP AUTH needs a licensed mailbox; an unlicensed account cannot submit mail.
  - An unknown user makes the task fail naming it; the other users are still reported.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  mailboxes:
    description:
      - Users to look up, by user principal name or object id. A single string is accepted.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to compare.
notes:
  - "Permissions: Microsoft Graph C(User.Read.All)."
seealso:
  - module: m365ops.smtp_auth.mailbox_smtp_auth
"""

EXAMPLES = r"""
- name: Check the relay mailboxes are licensed
  m365ops.smtp_auth.mailbox_license_info:
    mailboxes:
      - scanner@contoso.com
      - backup@contoso.com
  register: licences

- name: Stop when a relay mailbox has no mailbox licence
  ansible.builtin.assert:
    that: licences.mailboxes | rejectattr('licensed') | list | length == 0
    fail_msg: "Unlicensed: {{ licences.mailboxes | rejectattr('licensed') | map(attribute='identity') | join(', ') }}"
"""

RETURN = r"""
mailboxes:
  description: One entry per mailbox, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: The mailbox as given.
      type: str
      sample: scanner@contoso.com
    found:
      description: Whether the user exists.
      type: bool
      sample: true
    user_id:
      description: Object id of the user.
      type: str
      sample: c0ffee00-0000-4000-8000-000000000002
    user_principal_name:
      description: User principal name of the user.
      type: str
      sample: scanner@contoso.com
    licensed:
      description: Whether an enabled Exchange Online mailbox plan is assigned.
      type: bool
      sample: true
    mailbox_plans:
      description: The enabled Exchange Online mailbox plans.
      type: list
      elements: dict
      contains:
        service_plan_id:
          description: Service plan id.
          type: str
          sample: 9aaf7827-d63c-4b61-89c3-182f06f82e5c
        name:
          description: Service plan name, when known to the collection.
          type: str
          sample: EXCHANGE_S_STANDARD
    other_exchange_plans:
      description:
        - The enabled plans of service C(exchange) that give no mailbox (Exchange Foundation, Defender for
          Office 365, Bookings, ...), or that the collection does not know as a mailbox plan.
        - A user with only these is not licensed for a mailbox. An unknown plan id is listed here so that it
          can be checked against Microsoft's licensing service plan reference.
      type: list
      elements: dict
      contains:
        service_plan_id:
          description: Service plan id.
          type: str
          sample: f20fedf3-f3c3-43c3-8267-2bfdd51c0939
        name:
          description: Service plan name, when known to the collection; null otherwise.
          type: str
          sample: ATP_ENTERPRISE
unlicensed:
  description:
    - The mailboxes as given that cannot use SMTP AUTH, in the order given - not found, or without an enabled
      Exchange Online mailbox plan. Empty when every mailbox is licensed.
    - The names from O(mailboxes) for which RV(mailboxes[].licensed) is V(false), for a playbook that acts only
      on the licensed ones without going through every entry.
  returned: always
  type: list
  elements: str
  sample: [old-copier@contoso.com]
  version_added: 1.4.0
retries:
  description: Requests retried because of throttling or unavailability, including throttled batch items.
  returned: always
  type: list
  elements: dict
  sample: []
error:
  description: What failed, when the task failed as a whole because of Microsoft 365.
  returned: failure
  type: dict
  sample: {"type": "PermissionDeniedError", "status": 403, "permission": "User.Read.All"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import unique
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def report(module):
    tenant = module.settings.tenant_id
    mailboxes = []
    for lookup in services.read_license_info(module.graph, unique(module.params["mailboxes"], warn=module.warn)):
        entry = {"identity": lookup.identity, "found": lookup.found, "user_id": None, "user_principal_name": None,
                 "licensed": False, "mailbox_plans": [], "other_exchange_plans": []}
        entry.update(lookup.record)
        mailboxes.append(entry)
    result = {"changed": False, "mailboxes": mailboxes,
              "unlicensed": [entry["identity"] for entry in mailboxes if not entry["licensed"]]}
    missing = [entry["identity"] for entry in mailboxes if not entry["found"]]
    if missing:
        result.update(failed=True, msg="not found in tenant %s: %s" % (tenant, ", ".join(missing)))
    return result


def main():
    module = M365Module(
        argument_spec=dict(mailboxes=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    module.run(report)


if __name__ == "__main__":
    main()
