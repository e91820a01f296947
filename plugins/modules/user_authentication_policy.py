#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: user_authentication_policy
short_description: Assign an Exchange Online authentication policy to users, or clear it
version_added: 1.1.0
description:
  - Reads each user's C(AuthenticationPolicy) with C(Get-User) and runs C(Set-User -AuthenticationPolicy) only for
    the users that differ from what is asked.
  - A user with no policy of their own follows the organisation's default policy
    (C(Get-OrganizationConfig DefaultAuthenticationPolicy)), if there is one.
  - Before any write, the policy is checked to exist; an unknown policy fails the task naming it.
  - An unknown user makes the task fail naming it; the other users are still read, changed and reported.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  users:
    description:
      - Users to manage, by user principal name, alias or object id. A single string is accepted.
      - Repeats (in any case) are dropped; an empty list is refused.
    type: list
    elements: str
    required: true
  policy:
    description:
      - Name of the authentication policy (see M(m365ops.smtp_auth.authentication_policy)).
      - Required with O(state=present).
      - With O(state=absent), only users assigned exactly this policy are cleared; without it, every listed user's
        policy is cleared.
    type: str
  state:
    description:
      - V(present) assigns O(policy) to every user.
      - V(absent) clears the users' own policy (sent as null), so they follow the organisation's default.
    type: str
    choices: [absent, present]
    default: present
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the policy and the users and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows each user's policy before and after (null is none of their own).
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role."
  - Up to 200 users are read 10 cmdlets to an Exchange admin API C($batch) request (one by one, up to 25, where
    the service does not answer C($batch)); more read the tenant's whole user list once. Changes go 10 to a
    C($batch) the same way.
  - C(Get-User) may show the policy by name or by distinguished name (C(CN=<name>,...)); both are compared by name.
  - Whether Exchange Online clears the policy when sent an empty value through its admin API is not documented.
    The module reads the users again after clearing and fails clearly for any whose policy is still set.
seealso:
  - module: m365ops.smtp_auth.authentication_policy
  - module: m365ops.smtp_auth.smtp_auth_info
"""

EXAMPLES = r"""
- name: Let the relay accounts use basic authentication for SMTP AUTH
  m365ops.smtp_auth.user_authentication_policy:
    users:
      - scanner@contoso.com
      - printer@contoso.com
    policy: Allow Basic SMTP

- name: Retired devices follow the organisation's default policy again
  m365ops.smtp_auth.user_authentication_policy:
    users: "{{ retired_relay_accounts }}"
    policy: Allow Basic SMTP
    state: absent
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
      sample: scanner@contoso.com
    found:
      description: Whether the user exists.
      type: bool
      sample: true
    before:
      description: The user's own policy before the task; null when none (the organisation's default applies).
      type: str
      sample: null
    after:
      description: The user's own policy after the task (in check mode, what it would be).
      type: str
      sample: Allow Basic SMTP
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
  description: Requests retried because of throttling or unavailability.
  returned: always
  type: list
  elements: dict
  sample: []
error:
  description: What failed, when the task failed as a whole because of Microsoft 365.
  returned: failure
  type: dict
  sample: {"type": "PermissionDeniedError", "status": 403}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth_policies as auth_policies
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import bulk_result, item_result, unique
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def wanted_policy(module):
    """The policy to assign, spelt as Exchange Online spells it; None to clear. An unknown one fails the task."""
    policy = module.params["policy"]
    if module.params["state"] == "absent":
        return None
    record = auth_policies.read_policy(module.exchange, policy)
    if record is None:
        module.fail("authentication policy '%s' does not exist in tenant %s, so it cannot be assigned; create it "
                    "first (m365ops.smtp_auth.authentication_policy). No user was changed."
                    % (policy, module.settings.tenant_id), results=[])
    return auth_policies.parse_policy(record)["name"]


def desired(before, wanted, only):
    """A user's policy after the task. ``wanted`` None clears; ``only`` (with state absent) clears only that one."""
    if wanted is None and only and not auth_policies.same_policy(before, only):
        return before
    return before if auth_policies.same_policy(before, wanted) else wanted


def plan(module, users, wanted):
    results = []
    for lookup in auth_policies.read_users(module.exchange, users):
        if not lookup.found:
            results.append(item_result(lookup.identity, found=False, failed=True, msg="user %s not found in tenant %s"
                                       % (lookup.identity, module.settings.tenant_id)))
            continue
        before = auth_policies.user_policy(lookup.record)
        after = desired(before, wanted, module.params["policy"])
        results.append(item_result(lookup.identity, before=before, after=after, changed=after != before))
    return results


def apply(module, results):
    exchange = module.exchange
    pending = [item for item in results if item["changed"]]

    outcomes = exchange.invoke_many([auth_policies.set_user_policy_command(item["identity"], item["after"])
                                     for item in pending])
    for item, outcome in zip(pending, outcomes):
        if outcome.error is not None:
            item.update(changed=False, failed=True, after=item["before"], msg=str(outcome.error))
    cleared = [item for item in pending if item["after"] is None and not item["failed"]]
    # Clearing with JSON null is not confirmed against the live service: believe the tenant, not the 200.
    for item, lookup in zip(cleared, auth_policies.read_users(exchange, [item["identity"] for item in cleared])):
        still = auth_policies.user_policy(lookup.record)
        if still is not None:
            item.update(failed=True, changed=not auth_policies.same_policy(still, item["before"]), after=still,
                        msg="clearing the authentication policy of %s (sent as null) in tenant %s failed: Exchange "
                        "Online accepted it but the user still has '%s'. Clear it with Set-User -AuthenticationPolicy "
                        "$null in PowerShell." % (item["identity"], module.settings.tenant_id, still))


def manage(module):
    users = unique(module.params["users"], "users", module.warn)
    if not users or not all(users):
        module.fail("users must name at least one user, and no empty name", results=[])
    wanted = wanted_policy(module)
    results = plan(module, users, wanted)
    if not module.check_mode:
        apply(module, results)
    # Null (no policy of their own) is a value here, so the diff keeps it rather than skipping the user.
    found = [item for item in results if item["found"]]
    return bulk_result(results, "users", module.settings.tenant_id,
                       {"before": {item["identity"]: item["before"] for item in found},
                        "after": {item["identity"]: item["after"] for item in found}})


def main():
    module = M365Module(
        argument_spec=dict(
            users=dict(type="list", elements="str", required=True),
            policy=dict(type="str"),
            state=dict(type="str", default="present", choices=["absent", "present"]),
        ),
        required_if=[("state", "present", ("policy",))],
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
