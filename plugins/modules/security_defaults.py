#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: security_defaults
short_description: Turn Microsoft Entra security defaults on or off
version_added: 1.0.0
description:
  - Reads the tenant's security defaults policy and changes it only when it differs from O(state).
  - Security defaults block basic authentication, so SMTP AUTH with a password fails with
    C(535 5.7.139 ... user is locked by your organization's security defaults policy) while they are on.
  - Tenants that use Conditional Access instead must keep security defaults off; this module only sets the switch.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  state:
    description:
      - V(disabled) turns security defaults off (needed for basic SMTP AUTH); V(enabled) turns them on.
    type: str
    required: true
    choices: [disabled, enabled]
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the policy and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows the policy state before and after.
notes:
  - "Permissions: Microsoft Graph C(Policy.Read.All) to read; C(Policy.ReadWrite.SecurityDefaults) to change
    (least privileged; the older pair C(Policy.Read.All) and C(Policy.ReadWrite.ConditionalAccess) works too)."
seealso:
  - module: m365ops.smtp_auth.org_smtp_auth
  - module: m365ops.smtp_auth.per_user_mfa
"""

EXAMPLES = r"""
- name: Turn security defaults off so relay devices can use SMTP AUTH
  m365ops.smtp_auth.security_defaults:
    tenant_id: contoso.onmicrosoft.com
    client_id: "{{ m365_client_id }}"
    client_secret: "{{ m365_client_secret }}"
    state: disabled

- name: Report drift only (connection from M365_* environment variables)
  m365ops.smtp_auth.security_defaults:
    state: disabled
  check_mode: true
  register: security_defaults
"""

RETURN = r"""
before:
  description: State of security defaults before the task.
  returned: success
  type: str
  sample: enabled
after:
  description: State of security defaults after the task (in check mode, what it would be).
  returned: success
  type: str
  sample: disabled
retries:
  description: Requests retried because of throttling or unavailability.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "PATCH", "url": "https://graph.microsoft.com/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", "status": 429, "wait": 2.0}]
error:
  description: What failed, when the task failed because of Microsoft 365.
  returned: failure
  type: dict
  sample: {"type": "PermissionDeniedError", "status": 403, "permission": "Policy.ReadWrite.SecurityDefaults"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import read_compare_write_setting
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def manage(module):
    return read_compare_write_setting("security_defaults", module.params["state"],
                                      read=lambda: services.read_security_defaults(module.graph),
                                      write=lambda state: services.write_security_defaults(module.graph, state),
                                      check_mode=module.check_mode)


def main():
    module = M365Module(
        argument_spec=dict(state=dict(type="str", required=True, choices=["disabled", "enabled"])),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
