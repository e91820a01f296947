#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: exchange_service_principal
short_description: Register an Entra app in Exchange Online as a service principal, for SMTP with OAuth
version_added: 1.1.0
description:
  - An app that sends mail with OAuth (XOAUTH2, SMTP.SendAsApp) must be registered in Exchange Online with
    C(New-ServicePrincipal -AppId -ObjectId) before it can be given rights on a mailbox
    (M(m365ops.smtp_auth.mailbox_permission)); otherwise every login is refused with
    C(535 5.7.3 Authentication unsuccessful).
  - The object id must be the one of the app's B(enterprise application) (its service principal in Microsoft
    Entra), not the one of the app registration. The module looks it up in Microsoft Graph and refuses an
    O(object_id) that is not it.
  - Reads C(Get-ServicePrincipal) and runs C(New-ServicePrincipal), C(Set-ServicePrincipal) or
    C(Remove-ServicePrincipal) only when the registration differs from what is asked.
  - A registration made with a wrong object id is removed and made again with the right one; mailbox rights given
    to the old registration must then be given again.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  app_id:
    description:
      - Application (client) id of the app, a GUID.
    type: str
    required: true
  object_id:
    description:
      - Object id of the app's enterprise application (service principal) in this tenant.
      - Looked up in Microsoft Graph when left out. When given, it must be that id; the app registration's object
        id is refused.
    type: str
  display_name:
    description:
      - Display name of the registration in Exchange Online.
      - When left out, a new registration takes the enterprise application's display name and an existing one
        keeps its own.
    type: str
  state:
    description:
      - V(present) registers the app; V(absent) removes its registration from Exchange Online (the app and its
        enterprise application in Entra are not touched).
    type: str
    choices: [absent, present]
    default: present
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the registration and the enterprise application and reports what would change; sends no
      writing request.
  diff_mode:
    support: full
    description: Shows the registration before and after.
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role; with O(state=present) also the
    Microsoft Graph application permission Application.Read.All, to look up the enterprise application."
seealso:
  - module: m365ops.smtp_auth.smtp_app_consent
  - module: m365ops.smtp_auth.mailbox_permission
"""

EXAMPLES = r"""
- name: Register the relay app in Exchange Online (object id looked up in Graph)
  m365ops.smtp_auth.exchange_service_principal:
    app_id: "{{ relay_app_id }}"
    display_name: SMTP relay

- name: The relay app is retired
  m365ops.smtp_auth.exchange_service_principal:
    app_id: "{{ relay_app_id }}"
    state: absent
"""

RETURN = r"""
before:
  description: The registration before the task; null when there was none.
  returned: success
  type: dict
  sample: null
after:
  description: The registration after the task (in check mode, what it would be); null when there is none.
  returned: success
  type: dict
  sample: {"app_id": "6f1c2b7e-43d1-4c8e-9a77-0b4f0a3e5d21", "object_id": "0d4b5a8c-1f4e-4a8e-8d7c-2b9e6f3a1c55",
           "display_name": "SMTP relay", "identity": "0d4b5a8c-1f4e-4a8e-8d7c-2b9e6f3a1c55"}
  contains:
    app_id:
      description: Application (client) id.
      type: str
    object_id:
      description: Object id of the enterprise application the registration points to.
      type: str
    display_name:
      description: Display name in Exchange Online.
      type: str
    identity:
      description: Identity of the registration in Exchange Online, what mailbox permissions name; null in check mode
        before it exists.
      type: str
service_principal:
  description: The registration after the task, the same as RV(after).
  returned: success
  type: dict
replaced:
  description: Whether a registration made with a wrong object id was (or in check mode would be) removed and
    made again.
  returned: success
  type: bool
  sample: false
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
  sample: {"type": "PermissionDeniedError", "status": 403, "permission": "Application.Read.All"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _relay_app as relay
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import setting_result
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def desired_registration(module, app_id, before):
    """What the registration should be, from the enterprise application Graph knows; refuses a wrong object_id."""
    graph = module.graph
    enterprise = relay.read_enterprise_application(graph, app_id)
    object_id = module.params["object_id"]
    if object_id and object_id.lower() != str(enterprise["id"]).lower():
        registration = relay.read_app_registration(graph, app_id)
        module.fail(relay.wrong_object_id_message(app_id, object_id, enterprise, registration,
                                                  module.settings.tenant_id), changed=False, before=before)
    desired = dict(before or {}, app_id=(before or {}).get("app_id") or app_id)
    if str(desired.get("object_id")).lower() != str(enterprise["id"]).lower():
        desired.update(object_id=enterprise["id"], identity=None)
    desired["display_name"] = (module.params["display_name"] or desired.get("display_name")
                               or enterprise["display_name"])
    return desired


def manage(module):
    app_id = module.params["app_id"]
    problems = relay.guid_problems(module.params, "app_id", "object_id")
    if problems:
        module.fail("; ".join(problems))
    exchange = module.exchange
    before = relay.service_principal_state(
        relay.find_exchange_service_principal(relay.read_exchange_service_principals(exchange), app_id))
    after = None
    if module.params["state"] == "present":
        after = desired_registration(module, app_id, before)
    replaced = bool(before and after and before["object_id"] != after["object_id"])
    if replaced:
        module.warn("The Exchange Online service principal of app %s was made with object id %s, which is not its "
                    "enterprise application's (%s); it is %sremoved and made again. Grant its mailbox rights again."
                    % (app_id, before["object_id"], after["object_id"], "to be " if module.check_mode else ""))
    if not module.check_mode:
        if before and (after is None or replaced):
            relay.remove_exchange_service_principal(exchange, before["identity"])
        if after and (before is None or replaced):
            after = relay.service_principal_state(relay.new_exchange_service_principal(
                exchange, app_id, after["object_id"], after["display_name"])) or after
        elif after and after["display_name"] != before["display_name"]:
            relay.set_exchange_service_principal_name(exchange, before["identity"], after["display_name"])
    result = setting_result("service_principal", before, after, before != after)
    result.update(service_principal=after, replaced=replaced)
    return result


def main():
    module = M365Module(
        argument_spec=dict(
            app_id=dict(type="str", required=True),
            object_id=dict(type="str"),
            display_name=dict(type="str"),
            state=dict(type="str", choices=["absent", "present"], default="present"),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
