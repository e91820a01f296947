#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: smtp_auth_info
short_description: Tell, per mailbox, whether SMTP AUTH can work and what blocks it
version_added: 1.0.0
description:
  - For each mailbox, reads every setting that decides whether authenticated SMTP submission (SMTP AUTH) can
    work, and returns a verdict - V(ok), V(blocked) with the list of blockers, or V(unknown) when a setting
    could not be read.
  - "Each blocker names the setting, its value, the exact reply Microsoft's submission endpoint answers because of
    it (for example C(535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the
    Mailbox. ...)) and the fix: the module of this collection (with its arguments) or role variable to use, or
    the manual step."
  - "Blockers for a password (O(auth_mode=basic)): the organisation-wide switch (followed by mailboxes whose own
    switch is not set), the mailbox switch, security defaults, legacy per-user MFA, the authentication policy
    (the user's, or the organisation's default, with C(AllowBasicAuthSmtp) false), enabled Conditional Access
    policies that block legacy authentication for the user, no Exchange mailbox licence, mailbox not found."
  - "Blockers for OAuth (O(auth_mode=oauth)): both SMTP AUTH switches, no licence, mailbox not found, then the
    first of these that the app misses, in the order a token meets them: no admin-consented C(SMTP.SendAsApp)
    (M(m365ops.smtp_auth.smtp_app_consent)), not registered in Exchange Online, or registered with its app
    registration's object id instead of its enterprise application's
    (M(m365ops.smtp_auth.exchange_service_principal)), no C(FullAccess) on the mailbox
    (M(m365ops.smtp_auth.mailbox_permission)). Security defaults, per-user MFA and authentication policies do
    not block OAuth."
  - "For a device that relays without AUTH through an inbound connector (V(connector)): nothing about a mailbox
    decides it, only whether an enabled inbound connector of type C(OnPremises) lists the entry's C(source_ip)
    (or, for an entry without one, relays by certificate). Otherwise the blocker is C(no_connector_covers), naming
    each connector and the addresses it lists (M(m365ops.smtp_auth.inbound_connector)); the device would get
    C(550 5.7.64 TenantAttribution; Relay Access Denied). One C(Get-InboundConnector) for all such entries."
  - A setting the app may not read (missing permission) is reported in RV(mailboxes[].unreadable) with the
    permission it needs; everything else is still read and judged. Unknown is never reported as ok.
  - "Requests: one Microsoft Graph C($batch) per 20 reads (tenant policies, licences and per-user MFA together)
    and one Exchange Online cmdlet per setting - per mailbox for up to 25 mailboxes, one tenant-wide listing
    above that."
  - The verdict of Microsoft's own submission endpoint can be tested with M(m365ops.smtp_auth.smtp_submission_test).
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  mailboxes:
    description:
      - The mailboxes to check, by user principal name (the name a device signs in with).
      - An entry is a string, or a dict with C(upn) (required), C(auth) (V(basic), V(oauth) or V(connector),
        default O(auth_mode)), C(state) (V(present), the default, or V(absent)) and, for V(connector), C(source_ip)
        (the public IPv4 address the device's mail comes from). This is the shape of the role
        variable C(relay_accounts_mailboxes), which can be passed as it is, checked by the same parser.
      - An entry with V(absent) state is a retired mailbox. It is not read nor judged (SMTP AUTH is meant to be
        off for it), and is listed in RV(retired) instead of RV(mailboxes).
      - Entries are checked before any request. An unknown key, a bad value, a malformed user principal name or
        one declared twice (in any case, whatever its C(auth)) fails the task, naming each bad entry by its
        position and user principal name, one line each.
    type: list
    elements: raw
    required: true
  auth_mode:
    description:
      - How the devices authenticate, for entries that do not say. V(basic) is a password (C(AUTH LOGIN)),
        V(oauth) is an OAuth token (C(XOAUTH2)), V(connector) is no authentication at all (relay through an
        inbound connector).
    type: str
    choices: [basic, oauth, connector]
    default: basic
  oauth_client_id:
    description:
      - Application (client) id of the app whose tokens the devices use for V(oauth) mailboxes.
      - Defaults to O(client_id), the app this module signs in as.
    type: str
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
notes:
  - "Permissions, all read-only: Microsoft Graph C(Policy.Read.All) (security defaults, Conditional Access,
    per-user MFA) and C(User.Read.All) (licences); Exchange Online C(Exchange.ManageAsApp) with a role that may
    run the C(Get-*) cmdlets (for example Exchange Administrator or View-Only Organization Management). Conditional
    Access policies that target groups also need C(GroupMember.Read.All); policies that target directory roles
    need C(RoleManagement.Read.Directory) (or C(Directory.Read.All)), since role conditions hold role template
    ids and Graph hides a role's C(roleTemplateId) from an app without it. OAuth mailboxes also need
    C(Application.Read.All) (the relay app's enterprise application and its consent)."
  - Microsoft does not document which blocker it reports first when several apply, nor what an unlicensed
    account gets; this module lists every blocker it finds, and the licence blocker lists both replies seen.
  - "Basic authentication for SMTP AUTH is being retired (December 2026 for existing tenants); after that, a
    mailbox with no blocker here still gets C(550 5.7.30) for a password. Plan OAuth."
seealso:
  - module: m365ops.smtp_auth.smtp_submission_test
  - module: m365ops.smtp_auth.mailbox_smtp_auth
  - module: m365ops.smtp_auth.org_smtp_auth
  - module: m365ops.smtp_auth.security_defaults
  - module: m365ops.smtp_auth.per_user_mfa
"""

EXAMPLES = r"""
- name: Find out why the printers cannot send
  m365ops.smtp_auth.smtp_auth_info:
    mailboxes:
      - printer@contoso.com
      - scanner@contoso.com
      - upn: notify@contoso.com
        auth: oauth
  register: smtp_auth

- name: Show what blocks each mailbox and how to fix it
  ansible.builtin.debug:
    msg: "{{ smtp_auth.mailboxes | map(attribute='summary') | list }}"

- name: Fail when any mailbox is not ready
  ansible.builtin.assert:
    that: smtp_auth.mailboxes | rejectattr('verdict', 'equalto', 'ok') | list | length == 0
    fail_msg: "Not ready: {{ smtp_auth.mailboxes | rejectattr('verdict', 'equalto', 'ok') | map(attribute='identity') | join(', ') }}"
"""

RETURN = r"""
mailboxes:
  description: One entry per mailbox, in the order given, without the retired (V(absent)) ones.
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: The mailbox as given (without surrounding spaces).
      type: str
      sample: printer@contoso.com
    auth_mode:
      description: The authentication judged, V(basic), V(oauth) or V(connector).
      type: str
      sample: basic
    found:
      description:
        - Whether the account and its mailbox exist (null when that could not be read, and for V(connector)
          entries, which need no mailbox).
      type: bool
      sample: true
    verdict:
      description:
        - V(ok) when nothing blocks SMTP AUTH, V(blocked) when at least one setting does, V(unknown) when nothing
          blocks it among the settings that could be read but some could not.
      type: str
      sample: blocked
    blockers:
      description: Every setting that blocks SMTP AUTH for the mailbox.
      type: list
      elements: dict
      contains:
        blocker:
          description: >-
            Name of the blocker - V(org_smtp_auth_disabled), V(mailbox_smtp_auth_disabled),
            V(security_defaults_enabled), V(per_user_mfa), V(authentication_policy), V(conditional_access),
            V(no_exchange_license), V(mailbox_not_found), V(service_principal_not_registered) or V(no_full_access).
          type: str
          sample: per_user_mfa
        setting:
          description: Where the value lives, in the words of Microsoft's admin tools.
          type: str
          sample: perUserMfaState
        value:
          description: The value that blocks.
          type: raw
          sample: enforced
        detail:
          description: More about the value (which policy, where it comes from), when there is more.
          type: str
          returned: when there is more to say
          sample: Policy 'Block Basic SMTP' (assigned to the user) has AllowBasicAuthSmtp false.
        reply:
          description: The reply line Microsoft's submission endpoint answers because of this setting.
          type: str
          sample: >-
            535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated
            successfully. Contact your administrator.
        replies:
          description: Every reply line this setting is known to produce (more than one where Microsoft's
            behaviour is not documented).
          type: list
          elements: str
        auth_modes:
          description: The authentication modes this setting blocks.
          type: list
          elements: str
          sample: [basic]
        cause:
          description: Why the setting blocks SMTP AUTH.
          type: str
        fix:
          description: What to run, in words.
          type: str
          sample: "Turn per-user MFA off for the account: module per_user_mfa with users: [printer@contoso.com] and state: disabled."
        fix_module:
          description: The module of this collection that fixes it, or null when the fix is a manual step.
          type: str
          sample: m365ops.smtp_auth.per_user_mfa
        fix_arguments:
          description: The arguments to give RV(mailboxes[].blockers[].fix_module) for this mailbox.
          type: dict
          sample: {"users": ["printer@contoso.com"], "state": "disabled"}
        fix_role_variables:
          description: The variables of the role C(m365ops.smtp_auth.relay_accounts) that fix it.
          type: list
          elements: str
          sample: [relay_accounts_mailboxes, relay_accounts_disable_per_user_mfa]
        alternative_fix_module:
          description: A second module that also fixes it (for the organisation switch, the organisation-wide fix).
          type: str
          returned: for org_smtp_auth_disabled
          sample: m365ops.smtp_auth.org_smtp_auth
        alternative_fix_arguments:
          description: The arguments of RV(mailboxes[].blockers[].alternative_fix_module).
          type: dict
          returned: for org_smtp_auth_disabled
          sample: {"state": "enabled"}
    unreadable:
      description: Settings that could not be read, with the permission the app needs to read them.
      type: list
      elements: dict
      contains:
        setting:
          description: The setting.
          type: str
          sample: per-user MFA
        permission:
          description: The permission that was missing, when the service said so.
          type: str
          sample: Policy.Read.All
        message:
          description: The error.
          type: str
    settings:
      description: The values read for the mailbox, in the state words of the setting modules.
      type: dict
      sample:
        org_smtp_auth: disabled
        mailbox_smtp_auth: enabled
        security_defaults: disabled
        per_user_mfa: enforced
        authentication_policy: null
        mailbox_plans: [EXCHANGE_S_STANDARD]
        conditional_access_blocking: []
    summary:
      description: One paragraph - what fails, why, what to run.
      type: str
      sample: >-
        printer@contoso.com: SMTP AUTH with a password (AUTH LOGIN) is blocked by 1 setting(s). perUserMfaState is
        enforced, so Microsoft answers "535 5.7.139 ...". Fix: Turn per-user MFA off for the account ...
retired:
  description: The mailboxes given with V(absent) state, as given, in the order given; none of them was read.
  returned: always
  type: list
  elements: str
  sample: [old-copier@contoso.com]
tenant:
  description: The tenant-wide settings that were read (null when not needed, V(unreadable) when refused).
  returned: always
  type: dict
  sample:
    org_smtp_auth: disabled
    security_defaults: enabled
    default_authentication_policy: null
    conditional_access_policies_blocking_legacy_auth: [Block legacy authentication for kiosk devices]
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
  sample: {"type": "AuthenticationError", "aadsts_code": "AADSTS7000215"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _smtp_readiness as smtp_readiness
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import (
    AUTH_MODES,
    parse_entries,
    problems_message,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def entries_from(module):
    """``([(identity, auth_mode)] to judge, [retired identities], {identity: source_ip} of connector entries)``;
    bad entries fail the task naming each."""
    parsed, problems = parse_entries(module.params["mailboxes"], module.params["auth_mode"], "mailboxes")
    if problems:
        module.fail(problems_message(problems), mailboxes=[], retired=[])
    judged = [(entry.as_written, entry.auth) for entry in parsed if entry.state == "present"]
    retired = [entry.as_written for entry in parsed if entry.state == "absent"]
    sources = {entry.as_written: entry.source_ip for entry in parsed if entry.auth == "connector"}
    return judged, retired, sources


def report(module):
    entries, retired, sources = entries_from(module)
    if not entries:
        return {"changed": False, "mailboxes": [], "retired": retired,
                "tenant": smtp_readiness.tenant_settings(smtp_readiness.Facts())}
    oauth_app_id = module.params["oauth_client_id"] or module.settings.client_id
    facts = smtp_readiness.gather(module.graph, module.exchange, entries, oauth_app_id)
    mailboxes = smtp_readiness.evaluate(facts, entries, oauth_app_id=oauth_app_id, sources=sources)
    for mailbox in mailboxes:
        if mailbox["unreadable"]:
            module.warn("%s in tenant %s: %d setting(s) could not be read, so the verdict is %s: %s"
                        % (mailbox["identity"], module.settings.tenant_id, len(mailbox["unreadable"]),
                           mailbox["verdict"], "; ".join(item["message"] for item in mailbox["unreadable"])))
    return {"changed": False, "mailboxes": mailboxes, "retired": retired,
            "tenant": smtp_readiness.tenant_settings(facts)}


def main():
    module = M365Module(
        argument_spec=dict(
            mailboxes=dict(type="list", elements="raw", required=True),
            auth_mode=dict(type="str", default="basic", choices=list(AUTH_MODES)),
            oauth_client_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    module.run(report)


if __name__ == "__main__":
    main()
