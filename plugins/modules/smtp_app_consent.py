#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: smtp_app_consent
short_description: Grant an app the SMTP.SendAsApp permission of Office 365 Exchange Online
version_added: 1.1.0
description:
  - An app that sends mail with OAuth (XOAUTH2) needs the application permission C(SMTP.SendAsApp) of
    "Office 365 Exchange Online", with admin consent; without it every XOAUTH2 login is refused with
    C(535 5.7.3 Authentication unsuccessful).
  - Admin consent to an application permission is an app role assignment from the app's enterprise application
    to the Office 365 Exchange Online service principal. The module reads the app's role assignments and creates
    or deletes only that one; the app's other permissions are not touched.
  - The role's id is read from the resource's C(appRoles) by its value C(SMTP.SendAsApp), never assumed.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  app_id:
    description:
      - Application (client) id of the app that sends mail, a GUID. The app must have an enterprise application
        (service principal) in the tenant.
    type: str
    required: true
  state:
    description:
      - V(present) grants C(SMTP.SendAsApp); V(absent) takes it away.
    type: str
    choices: [absent, present]
    default: present
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the app's role assignments and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows whether the permission is granted before and after.
notes:
  - "Permissions: the Microsoft Graph application permissions Application.Read.All (to read the service principals
    and their role assignments) and AppRoleAssignment.ReadWrite.All (to grant or take away the permission)."
  - A token already issued to the app keeps the roles it was issued with until it expires, about an hour. A login
    right after a change may still see the old state.
seealso:
  - module: m365ops.smtp_auth.exchange_service_principal
  - module: m365ops.smtp_auth.mailbox_permission
"""

EXAMPLES = r"""
- name: Let the relay app send mail with OAuth
  m365ops.smtp_auth.smtp_app_consent:
    app_id: "{{ relay_app_id }}"

- name: The relay app may no longer send mail with OAuth
  m365ops.smtp_auth.smtp_app_consent:
    app_id: "{{ relay_app_id }}"
    state: absent
"""

RETURN = r"""
before:
  description: Whether the app held SMTP.SendAsApp before the task.
  returned: success
  type: bool
  sample: false
after:
  description: Whether the app holds SMTP.SendAsApp after the task (in check mode, would hold).
  returned: success
  type: bool
  sample: true
assignment_id:
  description: Id of the app role assignment that grants the permission after the task; null when it is not granted,
    or in check mode before it is made.
  returned: success
  type: str
  sample: Wm7BLr7SUE-lQy7ZnPJYI9tQ5bzz-bBDtnmpFGg0BY4
app_role_id:
  description: Id of the SMTP.SendAsApp app role of Office 365 Exchange Online in this tenant.
  returned: success
  type: str
  sample: 2a5d5af1-8b8d-4a57-9c4b-b2b1c5d0f6e3
principal_id:
  description: Object id of the app's enterprise application (the assignment's principal).
  returned: success
  type: str
  sample: 0d4b5a8c-1f4e-4a8e-8d7c-2b9e6f3a1c55
resource_id:
  description: Object id of the Office 365 Exchange Online service principal (the assignment's resource).
  returned: success
  type: str
  sample: 8a2f1e0b-6c3d-4e5f-9a1b-2c3d4e5f6a7b
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
  sample: {"type": "PermissionDeniedError", "status": 403, "permission": "AppRoleAssignment.ReadWrite.All and Application.Read.All"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _relay_app as relay
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import read_compare_write_setting
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def manage(module):
    app_id = module.params["app_id"]
    problems = relay.guid_problems(module.params, "app_id")
    if problems:
        module.fail("; ".join(problems))
    consent = relay.read_consent(module.graph, app_id)

    def write(granted):
        if granted:
            consent.assignment = relay.grant_consent(module.graph, consent)
        else:
            relay.revoke_consent(module.graph, consent)
            consent.assignment = None

    result = read_compare_write_setting("granted", module.params["state"] == "present",
                                        read=lambda: consent.assignment is not None, write=write,
                                        check_mode=module.check_mode)
    result.update(assignment_id=(consent.assignment or {}).get("id") if result["after"] else None,
                  app_role_id=consent.app_role_id, principal_id=consent.client["id"],
                  resource_id=consent.resource["id"])
    return result


def main():
    module = M365Module(
        argument_spec=dict(
            app_id=dict(type="str", required=True),
            state=dict(type="str", choices=["absent", "present"], default="present"),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
