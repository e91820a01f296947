#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: app_permissions_info
short_description: Tell whether the automation app holds the permissions a run of the collection needs
version_added: 1.0.0
description:
  - Gets the app's app-only tokens for Microsoft Graph and for Exchange Online (only those O(needs) asks for)
    and reads what their claims grant, without sending any other request to the tenant.
  - Microsoft Graph application permissions are read from the Graph token's C(roles) claim; C(Exchange.ManageAsApp)
    from the Exchange Online token's C(roles); the directory roles from the Exchange Online token's C(wids) claim
    (directory role template ids). Exchange needs both C(Exchange.ManageAsApp) and a directory role (Exchange
    Administrator or Global Administrator to change anything; Global Reader is enough to read).
  - When a token carries no C(wids) claim, the directory role is reported as C(unknown), with a warning, and is
    never claimed to be missing; Exchange then decides at the first cmdlet.
  - The tokens are only decoded, never verified and never returned.
  - The relay_accounts role runs this module before its first write with the needs of every planned step.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  needs:
    description:
      - What each step needs, as the relay_plan filter gives it in each step's C(permissions).
    type: list
    elements: dict
    required: true
    suboptions:
      step:
        description: The step that needs the permissions, named in the result.
        type: str
        required: true
      read:
        description:
          - Permission keys the step needs to read (V(user_read), V(security_defaults_read), V(mfa_read),
            V(service_principal_read), V(sign_in_read), V(exchange)).
        type: list
        elements: str
        default: []
      write:
        description:
          - Permission keys the step needs to change the tenant (V(security_defaults_write), V(mfa_write),
            V(app_role_assignment_write), V(exchange)).
        type: list
        elements: str
        default: []
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Only gets tokens; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to compare.
notes:
  - "Permissions: none of its own; it reports on the ones the app holds."
  - Permissions granted through Exchange Online's own role assignments for applications, rather than through an
    Entra directory role, do not show in C(wids); such an app is reported without the directory role.
seealso:
  - module: m365ops.smtp_auth.smtp_auth_info
"""

EXAMPLES = r"""
- name: Check the app can turn security defaults off and set the mailbox switches
  m365ops.smtp_auth.app_permissions_info:
    needs:
      - {step: security_defaults, read: [security_defaults_read], write: [security_defaults_write]}
      - {step: mailbox_smtp_auth, read: [exchange], write: [exchange]}
  register: app_permissions

- name: Stop when something is missing
  ansible.builtin.fail:
    msg: "{{ app_permissions.missing_summary | join('; ') }}"
  when: app_permissions.missing | length > 0
"""

RETURN = r"""
checks:
  description: One check per step, access and permission, in the order of O(needs).
  returned: success
  type: list
  elements: dict
  contains:
    step:
      description: The step that needs it.
      type: str
      sample: mailbox_smtp_auth
    access:
      description: V(read) or V(write).
      type: str
      sample: write
    permission:
      description: What is needed, in words.
      type: str
      sample: Exchange.ManageAsApp
    verdict:
      description: V(held), V(missing) or V(unknown) (the token does not show it).
      type: str
      sample: held
    reason:
      description: Why the verdict is not V(held); null otherwise.
      type: str
      sample: null
missing:
  description: The checks whose verdict is V(missing).
  returned: success
  type: list
  elements: dict
  sample: []
unknown:
  description: The checks whose verdict is V(unknown).
  returned: success
  type: list
  elements: dict
  sample: []
missing_summary:
  description: One line per missing permission naming every step (and access) that needs it.
  returned: success
  type: list
  elements: str
  sample: ["the Exchange Administrator directory role (or Global Administrator), needed by: mailbox_smtp_auth (write)"]
graph_permissions:
  description: The application permissions in the Microsoft Graph token (empty when Graph was not needed).
  returned: success
  type: list
  elements: str
  sample: ["Policy.Read.All", "User.Read.All"]
exchange_permissions:
  description: The application permissions in the Exchange Online token (empty when Exchange was not needed).
  returned: success
  type: list
  elements: str
  sample: ["Exchange.ManageAsApp"]
directory_roles:
  description:
    - Directory role template ids in the Exchange Online token's C(wids), or null when it has none (or Exchange
      was not needed).
  returned: success
  type: list
  elements: str
  sample: ["29232cdf-9323-42fd-ade2-1d097af3e4de"]
retries:
  description: Requests retried because of throttling or unavailability.
  returned: always
  type: list
  elements: dict
  sample: []
error:
  description: What failed, when a token could not be had.
  returned: failure
  type: dict
  sample: {"type": "AuthenticationError", "aadsts_code": 7000215}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _app_permissions as permissions
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def grants(module, needs):
    """The Graph and the Exchange Online grants, read from tokens of the resources the needs name (asked for at
    once: a run that needs both waits for one round trip)."""
    scopes = {False: module.settings.endpoints.graph_scope, True: module.settings.endpoints.exchange_scope}
    wanted = [exchange for exchange in (False, True) if permissions.needs_resource(needs, exchange)]
    tokens = dict(zip(wanted, module.tokens([scopes[exchange] for exchange in wanted])))
    return [permissions.Grants.from_token(tokens[exchange]) if exchange in tokens
            else permissions.Grants(frozenset(), None, True) for exchange in (False, True)]


def report(module):
    needs = module.params["needs"]
    unknown_keys = permissions.unknown_needs(needs)
    if unknown_keys:
        module.fail("unknown permission keys in needs: %s; known: %s"
                    % (", ".join(unknown_keys), ", ".join(sorted(permissions.KNOWN_NEEDS))))
    graph, exchange = grants(module, needs)
    checks = permissions.evaluate(needs, graph, exchange)
    for line in permissions.describe(checks, "unknown", with_reason=True):
        module.warn("Tenant %s: cannot tell whether app %s holds %s"
                    % (module.settings.tenant_id, module.settings.client_id, line))
    return {"changed": False, "checks": checks,
            "missing": [check for check in checks if check["verdict"] == "missing"],
            "unknown": [check for check in checks if check["verdict"] == "unknown"],
            "missing_summary": permissions.describe(checks, "missing"),
            "graph_permissions": sorted(graph.permissions), "exchange_permissions": sorted(exchange.permissions),
            "directory_roles": None if exchange.directory_roles is None else sorted(exchange.directory_roles)}


def main():
    needs = dict(step=dict(type="str", required=True), read=dict(type="list", elements="str", default=[]),
                 write=dict(type="list", elements="str", default=[]))
    module = M365Module(argument_spec=dict(needs=dict(type="list", elements="dict", required=True, options=needs)),
                        supports_check_mode=True)
    module.run(report)


if __name__ == "__main__":
    main()
