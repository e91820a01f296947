#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: per_user_mfa
short_description: Set the legacy per-user MFA state of Microsoft Entra users
version_added: 1.0.0
description:
  - Reads each user's per-user (legacy) MFA state and changes only the users that differ from O(state).
  - Per-user MFA makes basic SMTP AUTH fail with
    C(535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully).
  - A user set to V(enabled) who registers an MFA method becomes V(enforced) by itself, so a desired V(enabled) is
    satisfied by V(enforced) and is not reported as drift.
  - Reads and writes go through Microsoft Graph JSON batching (20 users per request).
  - An unknown user makes the task fail naming it; the other users are still read, changed and reported.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  users:
    description:
      - Users to manage, by user principal name or object id. A single string is accepted.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(disabled) turns per-user MFA off (what relay accounts using basic SMTP AUTH need).
      - V(enabled) asks the user to register for MFA; V(enforced) requires it.
    type: str
    required: true
    choices: [disabled, enabled, enforced]
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the users and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows each user's state before and after.
notes:
  - "Permissions: Microsoft Graph C(Policy.Read.All) to read, C(Policy.ReadWrite.AuthenticationMethod) to change."
  - Uses the Microsoft Graph beta endpoint C(/users/{id}/authentication/requirements), the only API for this setting.
seealso:
  - module: m365ops.smtp_auth.security_defaults
"""

EXAMPLES = r"""
- name: Relay accounts must not have per-user MFA
  m365ops.smtp_auth.per_user_mfa:
    users:
      - scanner@contoso.com
      - printer@contoso.com
    state: disabled
"""

RETURN = r"""
results:
  description: One entry per user, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: The user as given.
      type: str
      sample: printer@contoso.com
    found:
      description: Whether the user exists.
      type: bool
      sample: true
    before:
      description: Per-user MFA state before the task.
      type: str
      sample: enforced
    after:
      description: Per-user MFA state after the task (in check mode, what it would be).
      type: str
      sample: disabled
    changed:
      description: Whether this user was (or in check mode would be) changed.
      type: bool
      sample: true
    failed:
      description: Whether this user could not be read or changed.
      type: bool
      sample: false
    msg:
      description: Why this user failed; empty otherwise.
      type: str
      sample: ""
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
  sample: {"type": "PermissionDeniedError", "status": 403, "permission": "Policy.ReadWrite.AuthenticationMethod"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import (
    bulk_result,
    is_satisfied,
    item_result,
    unique,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import PermissionDeniedError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def manage(module):
    desired = module.params["state"]
    tenant = module.settings.tenant_id
    users = unique(module.params["users"], "users", module.warn)
    results = []
    for lookup in services.read_mfa_states(module.graph, users):
        if not lookup.found:
            results.append(item_result(lookup.identity, found=False, failed=True,
                                       msg="user %s not found in tenant %s" % (lookup.identity, tenant)))
            continue
        before = lookup.record["state"]
        satisfied = is_satisfied(desired, before, services.MFA_SATISFIED_BY)
        results.append(item_result(lookup.identity, before=before, after=before if satisfied else desired,
                                   changed=not satisfied))

    pending = [item for item in results if item["changed"]]
    if pending and not module.check_mode:
        errors = services.write_mfa_states(module.graph, [(item["identity"], item["after"]) for item in pending])
        for item, error in zip(pending, errors):
            if isinstance(error, PermissionDeniedError):
                raise error  # the same for every user: one clear failure naming the permission
            if error is not None:
                item.update(changed=False, failed=True, after=item["before"], msg=str(error))

    return bulk_result(results, "users", tenant)


def main():
    module = M365Module(
        argument_spec=dict(
            users=dict(type="list", elements="str", required=True),
            state=dict(type="str", required=True, choices=["disabled", "enabled", "enforced"]),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
