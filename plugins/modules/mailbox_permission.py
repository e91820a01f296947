#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: mailbox_permission
short_description: Grant or take away FullAccess and SendAs on Exchange Online mailboxes for one trustee
version_added: 1.1.0
description:
  - Reads each mailbox's permissions (C(Get-MailboxPermission) for V(FullAccess), C(Get-RecipientPermission) for
    V(SendAs)) and runs C(Add-MailboxPermission), C(Remove-MailboxPermission), C(Add-RecipientPermission) or
    C(Remove-RecipientPermission) only where the O(trustee) holds a right it should not, or lacks one it should.
  - An app that sends with OAuth (XOAUTH2, SMTP.SendAsApp) needs V(FullAccess) on every mailbox it sends as; without
    it the login is refused with C(535 5.7.3 Authentication unsuccessful).
  - An unknown mailbox makes the task fail naming it; the other mailboxes are still read, changed and reported.
  - Only explicit Allow entries are managed. The mailbox's own C(NT AUTHORITY\SELF) entry, inherited entries and
    Deny entries are never changed.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  mailboxes:
    description:
      - Mailboxes to manage, by primary SMTP address, user principal name, alias or object id. A single string is
        accepted. Repeats (compared without regard to case) are dropped; an empty list is refused.
    type: list
    elements: str
    required: true
  trustee:
    description:
      - Who holds the rights.
      - A service principal registered in Exchange Online, by its app (client) id, object id or display name; it
        must be registered first (M(m365ops.smtp_auth.exchange_service_principal)). A GUID that is not a registered
        service principal is refused.
      - Or any other Exchange identity, such as a user principal name. Name users by the user principal name, as
        C(Get-MailboxPermission) shows them.
    type: str
    required: true
  access_rights:
    description:
      - The rights to manage. Rights not listed are neither read nor changed.
      - Documented trustees of V(SendAs) are mailbox users, mail users and security groups; an OAuth app needs
        V(FullAccess) only.
    type: list
    elements: str
    choices: [FullAccess, SendAs]
    default: [FullAccess]
  state:
    description:
      - V(present) grants O(access_rights) to O(trustee) on every mailbox; V(absent) takes them away.
    type: str
    choices: [absent, present]
    default: present
  exclusive:
    description:
      - Only with O(state=present). Also take O(access_rights) away from every other trustee that holds them
        explicitly on these mailboxes, so O(trustee) is the only one. Other mailboxes are not touched.
      - The trustees taken away appear in RV(results) as C(undeclared_trustees).
    type: bool
    default: false
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the permissions and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows, per mailbox, the rights of O(trustee) (and of undeclared trustees) before and after.
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role."
  - How C(Get-MailboxPermission) shows a service principal is not documented; an entry counts as the trustee's when
    it names the service principal's display name, identity, object id or app id.
  - With more than 25 mailboxes and without O(exclusive), V(SendAs) is read in one C(Get-RecipientPermission -Trustee)
    listing instead of once per mailbox. V(FullAccess) is read once per mailbox, a few at a time.
seealso:
  - module: m365ops.smtp_auth.exchange_service_principal
  - module: m365ops.smtp_auth.smtp_app_consent
"""

EXAMPLES = r"""
- name: Let the relay app send as the notification mailboxes with OAuth
  m365ops.smtp_auth.mailbox_permission:
    mailboxes:
      - notify@contoso.com
      - alerts@contoso.com
    trustee: "{{ relay_app_id }}"

- name: The relay app is the only one with FullAccess on the notification mailbox
  m365ops.smtp_auth.mailbox_permission:
    mailboxes: notify@contoso.com
    trustee: "{{ relay_app_id }}"
    exclusive: true

- name: A retired device's mailbox no longer lets the relay app in
  m365ops.smtp_auth.mailbox_permission:
    mailboxes: old-copier@contoso.com
    trustee: "{{ relay_app_id }}"
    access_rights: [FullAccess, SendAs]
    state: absent
"""

RETURN = r"""
results:
  description: One entry per mailbox, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: The mailbox as given.
      type: str
      sample: notify@contoso.com
    found:
      description: Whether the mailbox exists.
      type: bool
      sample: true
    before:
      description: The rights among O(access_rights) that O(trustee) held before the task.
      type: list
      elements: str
      sample: []
    after:
      description: The rights among O(access_rights) that O(trustee) holds after the task (in check mode, would hold).
      type: list
      elements: str
      sample: [FullAccess]
    changed:
      description: Whether this mailbox was (or in check mode would be) changed.
      type: bool
      sample: true
    failed:
      description: Whether this mailbox could not be read or changed.
      type: bool
      sample: false
    msg:
      description: Why this mailbox failed; empty otherwise.
      type: str
      sample: ""
    undeclared_trustees:
      description: With O(exclusive=true), the other trustees whose rights were (or would be) taken away.
      type: list
      elements: dict
      sample: [{"trustee": "old-scanner-app", "access_rights": ["FullAccess"]}]
trustee:
  description: The trustee as resolved.
  returned: success
  type: dict
  contains:
    identity:
      description: The identity sent to Exchange Online in writes.
      type: str
      sample: 6f1c2b7e-43d1-4c8e-9a77-0b4f0a3e5d21
    service_principal:
      description: Whether O(trustee) is an Exchange service principal.
      type: bool
      sample: true
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

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _relay_app as relay
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import bulk_result, item_result, unique
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import ExchangeCommandError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def ordered(rights):
    return [right for right in relay.ACCESS_RIGHTS if right in rights]


def plan(lookups, trustee, rights, present, exclusive, tenant):
    """Per mailbox: its result and the writes (``{right, grant, trustee}``) that bring it to the desired state."""
    planned = []
    for lookup in lookups:
        if not lookup.found:
            planned.append((item_result(lookup.identity, found=False, failed=True,
                                        msg="mailbox %s not found in tenant %s" % (lookup.identity, tenant)), []))
            continue
        held = {right for right in rights if right in relay.held_rights(lookup.record[right], trustee.names)}
        steps = [{"right": right, "grant": present, "trustee": trustee.identity}
                 for right in rights if (right in held) != present]
        extra = {}
        if exclusive:
            others = {}
            for right in rights:
                for other in relay.other_grants(lookup.record[right], trustee.names, right):
                    others.setdefault(other, []).append(right)
                    steps.append({"right": right, "grant": False, "trustee": other})
            extra["undeclared_trustees"] = [{"trustee": other, "access_rights": granted}
                                            for other, granted in others.items()]
        item = item_result(lookup.identity, before=ordered(held), after=ordered(held), **extra)
        planned.append((item, steps))
    return planned


def apply(module, planned):
    """Run each mailbox's writes in order, a few mailboxes at a time; a refused write fails that mailbox only."""
    exchange = module.exchange

    def write(entry):
        item, steps = entry
        for step in steps:
            change = relay.grant_right if step["grant"] else relay.revoke_right
            try:
                change(exchange, item["identity"], step["right"], step["trustee"])
            except ExchangeCommandError as error:
                item.update(failed=True, msg="%s %s for %s: %s" % ("granting" if step["grant"] else "removing",
                                                                   step["right"], step["trustee"], error))
                return
            step["done"] = True

    services.map_concurrently([entry for entry in planned if entry[1]], write, exchange.concurrency)


def settle(planned, trustee, check_mode):
    """Set each result's ``after`` and ``changed`` from the writes done (in check mode, all of them) and build
    the diff: per mailbox, each trustee's rights."""
    diff = {"before": {}, "after": {}}
    for item, steps in planned:
        if not item["found"]:
            continue
        before = {trustee.given: item["before"]}
        before.update((other["trustee"], other["access_rights"]) for other in item.get("undeclared_trustees", []))
        after = {name: set(granted) for name, granted in before.items()}
        for step in steps:
            if check_mode or step.get("done"):
                key = trustee.given if step["trustee"] == trustee.identity else step["trustee"]
                (after[key].add if step["grant"] else after[key].discard)(step["right"])
                item["changed"] = True
        item["after"] = ordered(after[trustee.given])
        diff["before"][item["identity"]] = before
        diff["after"][item["identity"]] = {name: ordered(granted) for name, granted in after.items()}
    return diff


def manage(module):
    params = module.params
    tenant = module.settings.tenant_id
    mailboxes = unique(params["mailboxes"], warn=module.warn)
    rights = ordered(params["access_rights"])
    present = params["state"] == "present"
    if not mailboxes or not rights:
        module.fail("mailboxes and access_rights must each name at least one", results=[])
    if params["exclusive"] and not present:
        module.fail("exclusive=true is only allowed with state=present", results=[])
    trustee = relay.resolve_trustee(module.exchange, params["trustee"])
    if trustee.principal is None and relay.is_guid(trustee.given):
        unregistered = ("trustee %s is not a service principal registered in Exchange Online in tenant %s; register "
                        "the app first with m365ops.smtp_auth.exchange_service_principal (app_id: %s)"
                        % (trustee.given, tenant, trustee.given))
        # An app that is not registered holds no right anywhere: nothing to take away, and in check mode (where
        # the step before would register it) every right is reported as missing.
        if present and not module.check_mode:
            module.fail(unregistered, results=[])
        if present:
            module.warn(unregistered + "; every right is reported as missing")
    # Each mailbox's list is read whole, not narrowed with -User: that costs the same request, and a trustee
    # Exchange cannot resolve would come back as a not-found that reads like a missing mailbox. The trustee only
    # narrows the one tenant-wide SendAs listing read for many mailboxes.
    lookups = relay.read_permissions(module.exchange, mailboxes, rights,
                                     trustee=None if params["exclusive"] else trustee.identity)
    planned = plan(lookups, trustee, rights, present, params["exclusive"], tenant)
    if not module.check_mode:
        apply(module, planned)
    diff = settle(planned, trustee, module.check_mode)
    results = [item for item, _steps in planned]
    return bulk_result(results, "mailboxes", tenant, diff,
                       trustee={"identity": trustee.identity, "service_principal": trustee.principal is not None})


def main():
    module = M365Module(
        argument_spec=dict(
            mailboxes=dict(type="list", elements="str", required=True),
            trustee=dict(type="str", required=True),
            access_rights=dict(type="list", elements="str", choices=list(relay.ACCESS_RIGHTS), default=["FullAccess"]),
            state=dict(type="str", choices=["absent", "present"], default="present"),
            exclusive=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
