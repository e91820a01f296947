#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: mailbox_smtp_auth
short_description: Turn SMTP AUTH on or off for Exchange Online mailboxes
version_added: 1.0.0
description:
  - Reads each mailbox's C(SmtpClientAuthenticationDisabled) with C(Get-CASMailbox) and runs C(Set-CASMailbox) only
    for the mailboxes that differ from O(state).
  - The mailbox switch wins over the organisation-wide one (M(m365ops.smtp_auth.org_smtp_auth)), so relay mailboxes
    can use SMTP AUTH while it stays off for everybody else.
  - An unknown mailbox makes the task fail naming it; the other mailboxes are still read, changed and reported.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  mailboxes:
    description:
      - Mailboxes to manage, by primary SMTP address, user principal name, alias or object id. A single string is
        accepted.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(enabled) allows SMTP AUTH for the mailboxes whatever the organisation says; V(disabled) refuses it.
      - V(inherit) clears the mailbox switch so the mailbox follows the organisation-wide setting.
    type: str
    required: true
    choices: [disabled, enabled, inherit]
  exclusive:
    description:
      - Only with O(state=enabled). Mailboxes of the tenant that have SMTP AUTH explicitly enabled but are not listed
        in O(mailboxes) are set to V(inherit), so the list is the complete set of SMTP AUTH relay mailboxes.
      - Those mailboxes appear in RV(results) with C(undeclared=true).
      - Reads every mailbox of the tenant.
    type: bool
    default: false
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the mailboxes and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows each mailbox's state before and after.
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role."
  - Up to 200 mailboxes are read and changed 10 cmdlets to an Exchange admin API C($batch) request; more, or
    O(exclusive=true), are read from the tenant's whole mailbox list, fetched once. Where the service does not
    answer C($batch), cmdlets go one by one (and more than 25 mailboxes are read from the list).
  - Whether Exchange Online clears the switch when sent an empty value (V(inherit)) through its admin API is not
    documented. The module reads the mailbox again after clearing it and fails clearly if the switch was not cleared.
seealso:
  - module: m365ops.smtp_auth.org_smtp_auth
  - module: m365ops.smtp_auth.mailbox_license_info
"""

EXAMPLES = r"""
- name: Allow SMTP AUTH for the relay mailboxes
  m365ops.smtp_auth.mailbox_smtp_auth:
    mailboxes:
      - scanner@contoso.com
      - printer@contoso.com
    state: enabled

- name: These are the only relay mailboxes; others explicitly enabled go back to the organisation's setting
  m365ops.smtp_auth.mailbox_smtp_auth:
    mailboxes: "{{ relay_mailboxes }}"
    state: enabled
    exclusive: true

- name: Let a retired device's mailbox follow the organisation again
  m365ops.smtp_auth.mailbox_smtp_auth:
    mailboxes: legacy-relay@contoso.com
    state: inherit
"""

RETURN = r"""
results:
  description: One entry per mailbox, in the order given, then the undeclared ones (O(exclusive=true)).
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: The mailbox as given (undeclared mailboxes by primary SMTP address).
      type: str
      sample: scanner@contoso.com
    found:
      description: Whether the mailbox exists.
      type: bool
      sample: true
    before:
      description: SMTP AUTH of the mailbox before the task; V(inherit) means it follows the organisation.
      type: str
      sample: disabled
    after:
      description: SMTP AUTH of the mailbox after the task (in check mode, what it would be).
      type: str
      sample: enabled
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
    undeclared:
      description: Present and true for mailboxes set back to inherit by O(exclusive=true).
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

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import (
    bulk_result,
    item_result,
    unique,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module

SWITCH = "SmtpClientAuthenticationDisabled"


def plan(module, identities, desired, exclusive):
    """Read every mailbox and return the per-mailbox results, each marked changed when it drifts."""
    exchange = module.exchange
    tenant = module.settings.tenant_id
    listing = services.list_cas_mailboxes(exchange) if exclusive else None
    lookups = services.read_cas_mailboxes(exchange, identities, listing=listing)
    results = []
    declared = set()
    for lookup in lookups:
        if not lookup.found:
            results.append(item_result(lookup.identity, found=False, failed=True,
                                       msg="mailbox %s not found in tenant %s" % (lookup.identity, tenant)))
            continue
        declared.update(services.mailbox_names(lookup.record))
        before = services.mailbox_state(lookup.record.get(SWITCH))
        results.append(item_result(lookup.identity, before=before, after=desired, changed=before != desired))
    for record in listing or []:
        names = services.mailbox_names(record)
        if record.get(SWITCH) is False and not names & declared:
            identity = record.get("PrimarySmtpAddress") or record.get("Identity")
            results.append(item_result(identity, before="enabled", after="inherit", changed=True, undeclared=True))
    return results


def apply(module, results):
    """Write the drifting mailboxes (in batches where the service takes them) and record each outcome on its result."""
    exchange = module.exchange
    pending = [item for item in results if item["changed"]]
    errors = services.write_mailbox_smtp_auth(exchange, [(item["identity"], item["after"]) for item in pending])
    for item, error in zip(pending, errors):
        if error is not None:
            refuse(module, item, error)
    cleared = [item for item in pending if item["after"] == "inherit" and not item["failed"]]
    if cleared:
        # Clearing with JSON null is not confirmed against the live service: believe the tenant, not the 200.
        lookups = services.read_cas_mailboxes(exchange, [item["identity"] for item in cleared])
        for item, lookup in zip(cleared, lookups):
            now = services.mailbox_state(lookup.record.get(SWITCH)) if lookup.found else None
            if now != "inherit":
                refuse(module, item, None, now)


def refuse(module, item, error, now=None):
    item["changed"] = error is None and now != item["before"]
    item["failed"] = True
    if item["after"] == "inherit":
        observed = ("refused it: %s" % error) if error else "accepted it but the switch is still %s" % now
        item["msg"] = ("clearing SmtpClientAuthenticationDisabled (state inherit, sent as null) for %s in tenant "
                       "%s failed: Exchange Online %s. Set state enabled or disabled explicitly, or clear the switch "
                       "with Set-CASMailbox -SmtpClientAuthenticationDisabled $null in PowerShell."
                       % (item["identity"], module.settings.tenant_id, observed))
        item["after"] = now or item["before"]
    else:
        item["msg"] = str(error)
        item["after"] = item["before"]


def manage(module):
    desired = module.params["state"]
    exclusive = module.params["exclusive"]
    if exclusive and desired != "enabled":
        module.fail("exclusive=true is only allowed with state=enabled", results=[])
    identities = unique(module.params["mailboxes"], warn=module.warn)
    results = plan(module, identities, desired, exclusive)
    if not module.check_mode:
        apply(module, results)
    return bulk_result(results, "mailboxes", module.settings.tenant_id)


def main():
    module = M365Module(
        argument_spec=dict(
            mailboxes=dict(type="list", elements="str", required=True),
            state=dict(type="str", required=True, choices=["disabled", "enabled", "inherit"]),
            exclusive=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
