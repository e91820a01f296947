# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: relay_plan
short_description: Decide which steps of the relay_accounts role run, and for which mailboxes
version_added: 0.1.0
description:
  - Computes, once per tenant, the plan of the C(relay_accounts) role from its normalised mailbox entries
    (the output of P(m365ops.smtp_auth.relay_mailboxes#filter)) and its switches.
  - The plan is a dict from step name to step, in the order the steps run. A step that is switched off, or has
    no mailbox to act on, is left out. The role's tasks run a step when its name is in the plan, and the report
    turns every step of the plan into rows, so a step in the plan whose result is missing was not reached.
  - "Steps, in order: V(app_permissions) (the automation app holds what every other planned step needs; only
    with O(check_permissions)), V(license) (licence check of the present mailboxes), V(security_defaults) (off; only when
    a present mailbox uses C(basic)), V(basic_auth_policy) and V(basic_auth_policy_users) (an authentication
    policy that allows basic SMTP AUTH, assigned to the present C(basic) mailboxes; only with O(basic_auth_policy)),
    V(org_smtp_auth) (on), V(inbound_connector) (the tenant's inbound connector for the C(connector) entries,
    which relay without SMTP AUTH; only with O(connector)), V(smtp_app_consent), V(exchange_service_principal) (the relay app consented to
    C(SMTP.SendAsApp) and registered in Exchange; only when a present mailbox uses C(oauth)), V(full_access) and
    V(send_as) (the relay app's rights on the present C(oauth) mailboxes, Send As where the entry asks),
    V(retired_permissions) (those rights taken away from absent C(oauth) mailboxes),
    V(retired_mailbox_smtp_auth) (SMTP AUTH off for absent mailboxes; before the next step, so that exclusive
    mode does not see a retired mailbox as undeclared), V(mailbox_smtp_auth) (SMTP AUTH on for present
    mailboxes, and exclusive mode) and V(per_user_mfa) (off; present C(basic) mailboxes)."
  - Security defaults and per-user MFA are never planned for C(oauth) mailboxes, which they do not block.
  - C(connector) entries get no SMTP AUTH step at all (no licence check, no switch, no MFA). They send without
    AUTH, and their device only needs the inbound connector to list its address.
positional: _input
options:
  _input:
    description: The mailbox entries, normalised (dicts with C(upn), C(auth) and C(state)).
    type: list
    elements: dict
    required: true
  check_license:
    description: Whether to check the licences (C(relay_accounts_check_license)).
    type: bool
    default: true
  disable_security_defaults:
    description: Whether to turn security defaults off (C(relay_accounts_disable_security_defaults)).
    type: bool
    default: true
  enable_org_smtp_auth:
    description: Whether to turn SMTP AUTH on for the organisation (C(relay_accounts_enable_org_smtp_auth)).
    type: bool
    default: false
  enable_mailbox_smtp_auth:
    description: Whether to set the mailbox SMTP AUTH switches (C(relay_accounts_enable_mailbox_smtp_auth)).
    type: bool
    default: true
  disable_per_user_mfa:
    description: Whether to turn legacy per-user MFA off (C(relay_accounts_disable_per_user_mfa)).
    type: bool
    default: true
  exclusive:
    description:
      - Whether the declared list is complete (C(relay_accounts_exclusive)); the V(mailbox_smtp_auth) step then
        runs even without a present mailbox, to set undeclared ones back to C(inherit).
    type: bool
    default: false
  oauth_app_id:
    description:
      - The application (client) id of the relay app that C(oauth) mailboxes authenticate with
        (C(relay_accounts_oauth_app.app_id)). Required when an entry uses C(oauth).
    type: str
  basic_auth_policy:
    description:
      - The name of an authentication policy that allows basic SMTP AUTH, to assign to the present C(basic)
        mailboxes (C(relay_accounts_basic_auth_policy)); empty plans no such step.
    type: str
  connector:
    description:
      - The tenant's inbound connector for the C(connector) entries (C(relay_accounts_connector)), a dict with
        C(name) and the options of M(m365ops.smtp_auth.inbound_connector); empty plans no such step. Required
        when a present entry uses C(connector).
    type: dict
  check_permissions:
    description:
      - Whether to plan the V(app_permissions) step first (C(relay_accounts_check_permissions)), which checks the
        automation app's tokens against the C(permissions) of every other planned step.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Plan the steps of a tenant
  ansible.builtin.set_fact:
    plan: >-
      {{ relay_accounts_mailboxes | m365ops.smtp_auth.relay_mailboxes
         | m365ops.smtp_auth.relay_plan(enable_org_smtp_auth=false, exclusive=true) }}

- name: Run a step only when it is planned
  m365ops.smtp_auth.per_user_mfa:
    users: "{{ plan.per_user_mfa.mailboxes }}"
    state: disabled
  register: per_user_mfa_result
  when: "'per_user_mfa' in plan"
"""

RETURN = r"""
_value:
  description: The planned steps by name, in the order they run.
  type: dict
  contains:
    step:
      description: The step's name (its key in the plan).
      type: str
    setting:
      description:
        - The setting the step checks or sets, as P(m365ops.smtp_auth.drift_rows#filter) knows it.
      type: str
    desired:
      description: What the step wants, in the words of the setting's module (C(licensed) for the licence check).
      type: str
    mailboxes:
      description: The user principal names the step acts on; empty for a tenant-wide setting.
      type: list
      elements: str
    register:
      description: The name of the variable the role registers the step's result in.
      type: str
    app_id:
      description: For the OAuth steps, the relay app's application (client) id.
      type: str
    policy:
      description: For the authentication policy steps, the policy's name.
      type: str
    connector:
      description: For V(inbound_connector), the connector as declared (C(name), C(sender_ip_addresses), ...).
      type: dict
    sources:
      description: For V(inbound_connector), the declared C(source_ip) of each present C(connector) entry.
      type: dict
    access_rights:
      description: For V(full_access), V(send_as) and V(retired_permissions), the rights granted or taken away.
      type: list
      elements: str
    exclusive:
      description: For V(mailbox_smtp_auth), whether undeclared mailboxes are reported and set back.
      type: bool
    declared_elsewhere:
      description: For V(mailbox_smtp_auth), the mailboxes another step manages (the retired ones).
      type: list
      elements: str
    permissions:
      description:
        - What the step's module needs from the automation app, C({step, read, write}), each a list of permission
          keys (V(exchange) for Exchange.ManageAsApp and an Exchange directory role); what
          P(m365ops.smtp_auth.app_permissions_info#module) takes as O(m365ops.smtp_auth.app_permissions_info#module:needs).
      type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._app_permissions import step_needs
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import SMTP_AUTH_MODES

# Where the role registers each step's result; the task of a step uses the same name in its register.
REGISTER_PREFIX = "_relay_accounts_"


def _step(name, setting, desired, mailboxes, register, **extra):
    step = {"step": name, "setting": setting, "desired": desired, "mailboxes": list(mailboxes),
            "register": REGISTER_PREFIX + register, "permissions": step_needs(name)}
    step.update(extra)
    return step


def _switched_on(**switches):
    """The switches as booleans: ``false`` given with ``-e name=false`` is a string, and a true one in Python."""
    try:
        return {name: boolean(value, strict=True) for name, value in switches.items()}
    except TypeError as error:
        raise AnsibleFilterError("relay_plan: %s" % error) from error


def relay_plan(entries, check_license=True, disable_security_defaults=True, enable_org_smtp_auth=False,
               enable_mailbox_smtp_auth=True, disable_per_user_mfa=True, exclusive=False, oauth_app_id=None,
               basic_auth_policy=None, check_permissions=True, connector=None):
    """Return the plan of one tenant; see DOCUMENTATION."""
    if not isinstance(entries, (list, tuple)) or not all(
            isinstance(entry, Mapping) and {"upn", "auth", "state"} <= set(entry) for entry in entries):
        raise AnsibleFilterError("relay_plan expects the entries normalised by relay_mailboxes")
    on = _switched_on(check_license=check_license, disable_security_defaults=disable_security_defaults,
                      enable_org_smtp_auth=enable_org_smtp_auth, enable_mailbox_smtp_auth=enable_mailbox_smtp_auth,
                      disable_per_user_mfa=disable_per_user_mfa, exclusive=exclusive,
                      check_permissions=check_permissions)

    def upns(state, auth=None, send_as=None):
        # Without ``auth``: the entries that sign in with SMTP AUTH (connector entries send without it).
        return [entry["upn"] for entry in entries if entry["state"] == state
                and (entry["auth"] == auth if auth else entry["auth"] in SMTP_AUTH_MODES)
                and send_as in (None, bool(entry.get("send_as")))]

    basic, oauth, present, absent = upns("present", "basic"), upns("present", "oauth"), upns("present"), upns("absent")
    relayed = [entry for entry in entries if entry["state"] == "present" and entry["auth"] == "connector"]
    connector = connector if isinstance(connector, Mapping) else {}
    if relayed and not connector.get("name"):
        raise AnsibleFilterError("relay_plan: connector mailboxes need connector (relay_accounts_connector.name)")
    retired_oauth = upns("absent", "oauth")
    if (oauth or retired_oauth) and not oauth_app_id:
        raise AnsibleFilterError("relay_plan: oauth mailboxes need oauth_app_id (relay_accounts_oauth_app.app_id)")
    app = {"app_id": oauth_app_id}
    policy = {"policy": basic_auth_policy}

    steps = []
    if on["check_license"] and present:
        steps.append(_step("license", "license", "licensed", present, "license"))
    if on["disable_security_defaults"] and basic:
        steps.append(_step("security_defaults", "security_defaults", "disabled", [], "security_defaults"))
    if basic_auth_policy and basic:
        steps.append(_step("basic_auth_policy", "authentication_policy", "allows_basic_smtp", [],
                           "basic_auth_policy", **policy))
        steps.append(_step("basic_auth_policy_users", "user_authentication_policy", basic_auth_policy, basic,
                           "basic_auth_policy_users", **policy))
    if on["enable_org_smtp_auth"]:
        steps.append(_step("org_smtp_auth", "org_smtp_auth", "enabled", [], "org_smtp_auth"))
    if connector.get("name"):
        steps.append(_step("inbound_connector", "inbound_connector", "present",
                           [entry["upn"] for entry in relayed], "inbound_connector", connector=dict(connector),
                           sources={entry["upn"]: entry.get("source_ip") for entry in relayed}))
    if oauth:
        steps.append(_step("smtp_app_consent", "smtp_app_consent", "granted", [], "smtp_app_consent", **app))
        steps.append(_step("exchange_service_principal", "exchange_service_principal", "registered", [],
                           "exchange_service_principal", **app))
        steps.append(_step("full_access", "mailbox_permission", "FullAccess", oauth, "full_access",
                           access_rights=["FullAccess"], **app))
    if upns("present", "oauth", True):
        steps.append(_step("send_as", "mailbox_permission", "SendAs", upns("present", "oauth", True), "send_as",
                           access_rights=["SendAs"], **app))
    if retired_oauth:
        steps.append(_step("retired_permissions", "mailbox_permission", "none", retired_oauth, "retired_permissions",
                           access_rights=["FullAccess", "SendAs"], **app))
    if on["enable_mailbox_smtp_auth"] and absent:
        steps.append(_step("retired_mailbox_smtp_auth", "mailbox_smtp_auth", "disabled", absent, "retired"))
    if on["enable_mailbox_smtp_auth"] and (present or on["exclusive"]):
        steps.append(_step("mailbox_smtp_auth", "mailbox_smtp_auth", "enabled", present, "smtp_auth",
                           exclusive=on["exclusive"], declared_elsewhere=absent))
    if on["disable_per_user_mfa"] and basic:
        steps.append(_step("per_user_mfa", "per_user_mfa", "disabled", basic, "per_user_mfa"))
    if on["check_permissions"] and steps:
        # First, so that an app that cannot do the whole plan stops before the first write.
        steps.insert(0, _step("app_permissions", "app_permissions", "held", [], "app_permissions"))
    return {step["step"]: step for step in steps}


class FilterModule:
    def filters(self):
        return {"relay_plan": relay_plan}
