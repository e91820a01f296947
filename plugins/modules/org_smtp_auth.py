#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: org_smtp_auth
short_description: Turn SMTP AUTH on or off for the whole Exchange Online organisation
version_added: 1.0.0
description:
  - Reads C(SmtpClientAuthenticationDisabled) from C(Get-TransportConfig) and runs C(Set-TransportConfig) only when it
    differs from O(state).
  - Tenants created after January 2020 have SMTP AUTH off organisation-wide; submission then fails with
    C(535 5.7.139 ... SmtpClientAuthentication is disabled for the Tenant) unless a mailbox turns it on for itself.
  - To keep SMTP AUTH off for everybody but a few relay mailboxes, leave this V(disabled) and use
    M(m365ops.smtp_auth.mailbox_smtp_auth) with O(m365ops.smtp_auth.mailbox_smtp_auth#module:state=enabled).
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  state:
    description:
      - V(enabled) allows SMTP AUTH for every mailbox that does not turn it off itself; V(disabled) refuses it for
        every mailbox that does not turn it on itself.
    type: str
    required: true
    choices: [disabled, enabled]
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the transport configuration and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows the organisation-wide state before and after.
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role."
seealso:
  - module: m365ops.smtp_auth.mailbox_smtp_auth
"""

EXAMPLES = r"""
- name: Keep SMTP AUTH off organisation-wide (relay mailboxes are enabled one by one)
  m365ops.smtp_auth.org_smtp_auth:
    state: disabled

- name: Allow SMTP AUTH organisation-wide
  m365ops.smtp_auth.org_smtp_auth:
    tenant_id: contoso.onmicrosoft.com
    client_id: "{{ m365_client_id }}"
    client_certificate_path: /etc/m365ops/automation.pem
    state: enabled
"""

RETURN = r"""
before:
  description: Organisation-wide SMTP AUTH before the task.
  returned: success
  type: str
  sample: disabled
after:
  description: Organisation-wide SMTP AUTH after the task (in check mode, what it would be).
  returned: success
  type: str
  sample: enabled
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
  sample: {"type": "PermissionDeniedError", "status": 403, "permission": "Exchange.ManageAsApp + Exchange Administrator role"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import read_compare_write_setting
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def manage(module):
    return read_compare_write_setting("smtp_auth", module.params["state"],
                                      read=lambda: services.read_org_smtp_auth(module.exchange),
                                      write=lambda state: services.write_org_smtp_auth(module.exchange, state),
                                      check_mode=module.check_mode)


def main():
    module = M365Module(
        argument_spec=dict(state=dict(type="str", required=True, choices=["disabled", "enabled"])),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
