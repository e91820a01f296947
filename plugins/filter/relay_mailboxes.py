# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: relay_mailboxes
short_description: Normalise and validate the relay mailbox entries of one tenant
version_added: 0.1.0
description:
  - Turns the entries of C(relay_accounts_mailboxes) into dicts with the keys C(upn), C(auth), C(state) and
    C(send_as), and C(source_ip) for C(connector) entries.
  - An entry is either a user principal name (a string) or a dict with C(upn) and optional C(auth) (V(basic),
    V(oauth) or V(connector)), C(state) and C(send_as) (V(true) also grants the relay app Send As on the mailbox;
    C(oauth) entries only).
  - A C(connector) entry is a device that relays without SMTP AUTH through the tenant's inbound connector; it may
    set C(source_ip), the public IPv4 address its mail comes from (one address, not a range; C(connector)
    entries only).
  - Every problem found (unknown key, bad value, malformed or duplicate user principal name) is collected and
    the filter fails once, naming each offending entry by its position and its user principal name, so an
    inventory typo stops the play before any request reaches the tenant.
  - With O(strict=false) the filter does not fail but returns the entries and the problems as data, one line
    per bad entry, so a task can print them with M(ansible.builtin.fail) (the C(relay_accounts) role does).
  - User principal names are lower-cased, because Microsoft 365 compares them without regard to case and a
    duplicate in different case would otherwise be applied twice.
  - The same parser checks the O(m365ops.smtp_auth.smtp_auth_info#module:mailboxes) of
    M(m365ops.smtp_auth.smtp_auth_info), so an entry means the same to the role and to the troubleshooting
    tools.
positional: _input, default_auth
options:
  _input:
    description: The list of mailbox entries, as written in the inventory.
    type: list
    elements: raw
    required: true
  default_auth:
    description: The authentication mode of entries that do not set C(auth).
    type: str
    choices: [basic, oauth, connector]
    default: basic
  variable_name:
    description: The variable name used in error messages.
    type: str
    default: relay_accounts_mailboxes
  strict:
    description:
      - V(true) fails when an entry is bad, with every problem in the message.
      - V(false) returns a dict with C(entries) and C(errors) instead of failing.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Normalise the mailbox entries
  ansible.builtin.set_fact:
    relay_mailboxes: "{{ relay_accounts_mailboxes | m365ops.smtp_auth.relay_mailboxes }}"
  vars:
    relay_accounts_mailboxes:
      - scanner@contoso.com
      - upn: old-copier@contoso.com
        state: absent
# relay_mailboxes:
#   - {upn: scanner@contoso.com, auth: basic, state: present}
#   - {upn: old-copier@contoso.com, auth: basic, state: absent}

- name: Collect the problems instead of failing, and print them one per line
  ansible.builtin.fail:
    msg: "{{ (['Invalid relay mailboxes:'] + checked.errors) | join('\\n- ') }}"
  vars:
    checked: "{{ relay_accounts_mailboxes | m365ops.smtp_auth.relay_mailboxes(strict=false) }}"
  when: checked.errors | length > 0
"""

RETURN = r"""
_value:
  description:
    - One dict per entry, in the order given.
    - With O(strict=false), a dict with C(entries) (that list, without the bad entries) and C(errors) (one line
      per problem, naming the entry; empty when every entry is good).
  type: raw
  contains:
    upn:
      description: The user principal name, lower-cased.
      type: str
    auth:
      description: C(basic) or C(oauth).
      type: str
    state:
      description: C(present) or C(absent).
      type: str
    send_as:
      description: Whether the relay app also gets Send As on the mailbox (C(oauth) entries; V(false) otherwise).
      type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import parse_entries, problems_message


def relay_mailboxes(entries, default_auth="basic", variable_name="relay_accounts_mailboxes", strict=True):
    """Return the entries as ``{upn, auth, state, send_as}`` dicts or fail listing every bad entry; see DOCUMENTATION."""
    try:
        parsed, problems = parse_entries(entries, default_auth, variable_name)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from error
    normalised = [entry.as_dict() for entry in parsed]
    if not strict:
        return {"entries": normalised, "errors": problems}
    if problems:
        raise AnsibleFilterError(problems_message(problems))
    return normalised


class FilterModule:
    def filters(self):
        return {"relay_mailboxes": relay_mailboxes}
