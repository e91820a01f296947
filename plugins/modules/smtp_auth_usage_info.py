#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: smtp_auth_usage_info
short_description: Tell which accounts signed in with SMTP AUTH, from the Entra ID sign-in logs
version_added: 1.1.0
description:
  - Reads the Entra ID sign-in logs of the last O(days) days for the client app C(Authenticated SMTP) (also asked
    for as C(SMTP); which name Microsoft Graph returns is not confirmed) and sums them up per account, with the
    source addresses, whether each attempt succeeded, and the refusal of the last one.
  - With O(declared), tells which accounts use SMTP AUTH without being declared in inventory, and which declared
    ones nobody signed in as. Before Microsoft turns basic authentication for SMTP AUTH off, this is the list of
    devices that will break.
  - When the logs cannot be read (no permission, or no Entra ID P1 or P2 licence in the tenant), the task does
    not fail and does not answer "nobody". RV(status) is then V(unknown) and RV(reason) says why.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  days:
    description:
      - How many days back to look, from 1 to 30 (Entra ID keeps sign-ins for 30 days).
    type: int
    default: 30
  declared:
    description:
      - The accounts inventory declares as SMTP AUTH users, by user principal name.
      - An entry is a string, or a dict with C(upn) (required), C(auth) and C(state), which is the shape of the
        role variable C(relay_accounts_mailboxes); it can be passed as it is, checked by the same parser. Entries
        with C(state=absent) are retired devices and do not count as declared.
      - When not given, nothing is compared and RV(undeclared) and RV(unused) are null.
    type: list
    elements: raw
  include_failures:
    description:
      - Whether refused sign-ins count. With V(false), an account whose every attempt was refused is not listed
        (and, when declared, is in RV(unused)).
    type: bool
    default: true
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
  - "Permissions: Microsoft Graph C(AuditLog.Read.All), and an Entra ID P1 or P2 licence in the tenant."
  - Sign-ins reach the log a few minutes after they happen.
  - RV(accounts[].auth) is a guess from each sign-in. A password in its authentication details, or a sign-in to
    Office 365 Exchange Online itself, is V(basic); a sign-in by another app (the one an XOAUTH2 token was issued
    to) is V(oauth).
seealso:
  - module: m365ops.smtp_auth.smtp_auth_info
  - module: m365ops.smtp_auth.mailbox_smtp_auth
"""

EXAMPLES = r"""
- name: Who used SMTP AUTH in the last week
  m365ops.smtp_auth.smtp_auth_usage_info:
    days: 7
  register: usage

- name: Compare with the relay accounts the inventory declares
  m365ops.smtp_auth.smtp_auth_usage_info:
    declared: "{{ relay_accounts_mailboxes }}"
  register: usage

- name: Name the devices nobody declared
  ansible.builtin.debug:
    msg: "Undeclared SMTP AUTH users: {{ usage.undeclared | join(', ') }}"
  when: usage.status == 'read' and usage.undeclared
"""

RETURN = r"""
status:
  description: V(read) when the sign-in logs were read; V(unknown) when they could not be (see RV(reason)).
  returned: success
  type: str
  sample: read
reason:
  description:
    - Why the sign-in logs could not be read, naming the missing permission (C(AuditLog.Read.All)) or licence
      (an Entra ID P1 or P2 licence). Null when RV(status) is V(read).
  returned: success
  type: str
  sample: null
window:
  description: The time looked at.
  returned: success
  type: dict
  contains:
    from:
      description: Start, UTC.
      type: str
      sample: "2026-11-01T00:00:00Z"
    to:
      description: End (when the module ran), UTC.
      type: str
      sample: "2026-12-01T00:00:00Z"
    days:
      description: O(days).
      type: int
      sample: 30
accounts:
  description: One entry per account that signed in with SMTP AUTH, sorted by user principal name. Null when RV(status)
    is V(unknown).
  returned: success
  type: list
  elements: dict
  contains:
    user_principal_name:
      description: The account, lower-cased.
      type: str
      sample: legacy-relay@contoso.com
    sign_ins:
      description: Number of sign-ins.
      type: int
      sample: 3
    successes:
      description: Number of successful sign-ins.
      type: int
      sample: 3
    failures:
      description: Number of refused sign-ins.
      type: int
      sample: 0
    last_sign_in:
      description: Time of the last sign-in, as the log gives it.
      type: str
      sample: "2026-11-30T22:00:00Z"
    last_success:
      description: Time of the last successful sign-in; null when none succeeded.
      type: str
      sample: "2026-11-30T22:00:00Z"
    source_ips:
      description: The addresses the sign-ins came from, sorted.
      type: list
      elements: str
      sample: ["203.0.113.10"]
    app_ids:
      description: Client ids of the apps that XOAUTH2 tokens were issued to, sorted; empty for basic authentication.
      type: list
      elements: str
      sample: []
    auth:
      description: V(basic), V(oauth), V(mixed) (both in the window) or V(unknown), guessed from the sign-ins.
      type: str
      sample: basic
    last_error:
      description: C(code) and C(reason) of the last sign-in when it was refused; null when it succeeded.
      type: dict
      sample: {"code": 50126, "reason": "Error validating credentials due to invalid username or password."}
    declared:
      description: Whether O(declared) names the account; null when O(declared) was not given.
      type: bool
      sample: false
undeclared:
  description: Accounts that signed in with SMTP AUTH but are not in O(declared). Null without O(declared), or when
    RV(status) is V(unknown).
  returned: success
  type: list
  elements: str
  sample: ["legacy-relay@contoso.com"]
unused:
  description: Accounts in O(declared) with no SMTP AUTH sign-in in the window. Null without O(declared), or when
    RV(status) is V(unknown).
  returned: success
  type: list
  elements: str
  sample: ["backup@contoso.com"]
client_app_names:
  description: The client app names the sign-ins carried (C(Authenticated SMTP), C(SMTP)). Null when RV(status) is
    V(unknown).
  returned: success
  type: list
  elements: str
  sample: ["Authenticated SMTP"]
retries:
  description: Requests retried because of throttling or unavailability.
  returned: always
  type: list
  elements: dict
  sample: []
error:
  description: What failed, when the task failed because of Microsoft 365.
  returned: failure
  type: dict
  sample: {"type": "M365Error", "status": 500}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _sign_ins as sign_ins
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import parse_entries, problems_message
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module

UNREAD = {"accounts": None, "undeclared": None, "unused": None, "client_app_names": None}


def declared_accounts(module):
    """The user principal names inventory declares (entries in use, not retired), or None when not given."""
    if module.params["declared"] is None:
        return None
    entries, problems = parse_entries(module.params["declared"], variable_name="declared")
    if problems:
        module.fail(problems_message(problems), status="unknown", reason=None, **UNREAD)
    return [entry.upn for entry in entries if entry.state == "present"]


def report(module):
    days = module.params["days"]
    if not 1 <= days <= sign_ins.RETENTION_DAYS:
        module.fail("days must be from 1 to %d (Entra ID keeps sign-ins for %d days), got %d"
                    % (sign_ins.RETENTION_DAYS, sign_ins.RETENTION_DAYS, days), status="unknown", reason=None, **UNREAD)
    declared = declared_accounts(module)
    since, until = sign_ins.window(days)
    result = {"changed": False, "window": {"from": sign_ins.iso(since), "to": sign_ins.iso(until), "days": days}}
    try:
        accounts, client_app_names = sign_ins.summarise(sign_ins.smtp_sign_ins(module.graph, since),
                                                        include_failures=module.params["include_failures"])
    except M365Error as error:
        reason = sign_ins.unavailable_reason(error)
        if reason is None:
            raise
        module.warn("Who uses SMTP AUTH in tenant %s is unknown: %s." % (module.settings.tenant_id, reason))
        return dict(result, status="unknown", reason=reason, **UNREAD)
    undeclared, unused = sign_ins.compare_declared(accounts, declared)
    return dict(result, status="read", reason=None, accounts=accounts, undeclared=undeclared, unused=unused,
                client_app_names=client_app_names)


def main():
    module = M365Module(
        argument_spec=dict(
            days=dict(type="int", default=30),
            declared=dict(type="list", elements="raw"),
            include_failures=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    module.run(report)


if __name__ == "__main__":
    main()
