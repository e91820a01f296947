#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: authentication_policy
short_description: Allow or block basic authentication for SMTP AUTH in an Exchange Online authentication policy
version_added: 1.1.0
description:
  - Reads the policy with C(Get-AuthenticationPolicy) and creates it (C(New-AuthenticationPolicy)), changes its
    C(AllowBasicAuthSmtp) (C(Set-AuthenticationPolicy)) or removes it (C(Remove-AuthenticationPolicy)) only when it
    differs from what is asked.
  - A user whose authentication policy (their own, or the organisation's default when they have none) has
    C(AllowBasicAuthSmtp) false is refused with C(535 5.7.139 Authentication unsuccessful, basic authentication is
    disabled.) whatever the SMTP AUTH switches say. OAuth (XOAUTH2) is not affected by authentication policies.
  - Only C(AllowBasicAuthSmtp) is ever sent for an existing policy; its other protocols' switches are left as they
    are, and returned in RV(other_protocols).
  - Assign the policy to users with M(m365ops.smtp_auth.user_authentication_policy).
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  name:
    description:
      - Name of the authentication policy.
    type: str
    required: true
  allow_basic_auth_smtp:
    description:
      - Whether the policy lets basic authentication (a password) through for SMTP AUTH.
      - When not given, an existing policy keeps its value, and a new one is created with V(false).
      - Exchange Online creates a new policy with basic authentication blocked for B(every) protocol (IMAP, POP,
        ActiveSync, Exchange Web Services, ...); this module only sets SMTP. A user moved to a new policy loses
        basic authentication for every other protocol.
    type: bool
  state:
    description:
      - V(present) makes sure the policy exists with O(allow_basic_auth_smtp).
      - V(absent) removes it. Exchange Online refuses to remove the organisation's default policy; the module then
        fails with Exchange's own words.
    type: str
    choices: [absent, present]
    default: present
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the policy and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows the policy's name and C(AllowBasicAuthSmtp) before and after.
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role."
seealso:
  - module: m365ops.smtp_auth.user_authentication_policy
  - module: m365ops.smtp_auth.smtp_auth_info
"""

EXAMPLES = r"""
- name: A policy for relay accounts that still send with a password
  m365ops.smtp_auth.authentication_policy:
    name: Allow Basic SMTP
    allow_basic_auth_smtp: true

- name: Block basic SMTP AUTH in an existing policy, leaving its other protocols alone
  m365ops.smtp_auth.authentication_policy:
    name: Block Basic Auth
    allow_basic_auth_smtp: false

- name: Remove a policy nobody uses any more
  m365ops.smtp_auth.authentication_policy:
    name: Allow Basic SMTP
    state: absent
"""

RETURN = r"""
before:
  description: The policy before the task; null when it did not exist.
  returned: success
  type: dict
  sample: {"name": "Allow Basic SMTP", "allow_basic_auth_smtp": false}
  contains:
    name:
      description: Name of the policy, as Exchange Online spells it.
      type: str
    allow_basic_auth_smtp:
      description: Whether basic authentication is allowed for SMTP AUTH.
      type: bool
after:
  description: The policy after the task (in check mode, what it would be); null when it is absent.
  returned: success
  type: dict
  sample: {"name": "Allow Basic SMTP", "allow_basic_auth_smtp": true}
other_protocols:
  description:
    - The policy's other basic-authentication switches (C(AllowBasicAuthImap) as C(imap), ...), as Exchange Online
      returned them. This module never changes them.
    - Null when the policy is absent, or is new and Exchange Online did not print it (always in check mode).
  returned: success
  type: dict
  sample: {"active_sync": false, "imap": false, "pop": false, "web_services": false}
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
  sample: {"type": "ExchangeCommandError", "status": 400, "cmdlet": "Remove-AuthenticationPolicy"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth_policies as auth_policies
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import ExchangeCommandError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def desired_policy(module, before):
    """What the policy should be, in the shape of ``before`` (None for absent)."""
    if module.params["state"] == "absent":
        return None
    allow = module.params["allow_basic_auth_smtp"]
    if before is None:
        return {"name": module.params["name"], "allow_basic_auth_smtp": bool(allow)}
    return dict(before, allow_basic_auth_smtp=before["allow_basic_auth_smtp"] if allow is None else allow)


def write(module, before, after):
    """The one command that turns ``before`` into ``after``; returns the policy record it printed, if any."""
    exchange = module.exchange
    if before is None:
        return next(iter(auth_policies.new_policy_command(after["name"], after["allow_basic_auth_smtp"])
                         .run(exchange)), None)
    if after is not None:
        auth_policies.set_smtp_command(before["name"], after["allow_basic_auth_smtp"]).run(exchange)
        return None
    try:
        auth_policies.remove_policy_command(before["name"]).run(exchange)
    except ExchangeCommandError as error:
        module.fail("Exchange Online refused to remove authentication policy '%s' in tenant %s: %s. The "
                    "organisation's default policy (Get-OrganizationConfig DefaultAuthenticationPolicy) cannot be "
                    "removed until another one is the default; users still assigned the policy can be moved with "
                    "m365ops.smtp_auth.user_authentication_policy." % (
                        before["name"], module.settings.tenant_id, error.text or error),
                    changed=False, before=before, after=before, error=error.to_dict())
    return None


def manage(module):
    record = auth_policies.read_policy(module.exchange, module.params["name"])
    before = auth_policies.parse_policy(record) if record is not None else None
    after = desired_policy(module, before)
    changed = before != after
    printed = None
    if changed and not module.check_mode:
        printed = write(module, before, after)
    shown = record if before is not None else printed
    return {"changed": changed, "before": before, "after": after,
            "other_protocols": auth_policies.other_protocols(shown) if after is not None and shown else None,
            "diff": {"before": before or {}, "after": after or {}}}


def main():
    module = M365Module(
        argument_spec=dict(
            name=dict(type="str", required=True),
            allow_basic_auth_smtp=dict(type="bool"),
            state=dict(type="str", default="present", choices=["absent", "present"]),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
