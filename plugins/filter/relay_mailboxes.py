# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: relay_mailboxes
short_description: Normalise and validate the relay mailbox entries of one tenant
version_added: 0.1.0
description:
  - Turns the entries of C(relay_accounts_mailboxes) into dicts with the keys C(upn), C(auth) and C(state).
  - An entry is either a user principal name (a string) or a dict with C(upn) and optional C(auth) and C(state).
  - Every problem found (unknown key, bad value, malformed or duplicate user principal name) is collected and
    the filter fails once, naming each offending entry by its position and its user principal name, so an
    inventory typo stops the play before any request reaches the tenant.
  - With O(strict=false) the filter does not fail but returns the entries and the problems as data, one line
    per bad entry, so a task can print them with M(ansible.builtin.fail) (the C(relay_accounts) role does).
  - User principal names are lower-cased, because Microsoft 365 compares them without regard to case and a
    duplicate in different case would otherwise be applied twice.
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
    choices: [basic, oauth]
    default: basic
  variable_name:
    description: The variable name used in error messages.
    type: str
    default: relay_accounts_mailboxes
  strict:
    description:
      - V(true) fails on the first call with every problem in the message.
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
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

ALLOWED_KEYS = ("upn", "auth", "state")
AUTH_MODES = ("basic", "oauth")
STATES = ("present", "absent")

# Deliberately stricter than RFC 5322: a relay mailbox UPN has a dot-atom local part and a DNS domain with at
# least one dot. Quoted local parts are legal in mail but not in a UPN, so refusing them catches typos early.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
UPN_PATTERN = re.compile(r"^%s(?:\.%s)*@%s(?:\.%s)+$" % (_ATOM, _ATOM, _LABEL, _LABEL))


def described_type(value):
    """A value's type in the words of YAML, with its article: ``a number``, ``a mapping``, ``null``.

    ansible-core 2.19 hands plugins tagged subclasses of the native types (``_AnsibleTaggedInt``, ...), whose
    class names mean nothing to whoever wrote the inventory.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % next((cls.__name__ for cls in type(value).__mro__ if not cls.__name__.startswith("_")), "value")


def _describe(index, entry, variable_name):
    upn = entry.get("upn") if isinstance(entry, Mapping) else entry
    if isinstance(upn, str) and upn:
        return "%s[%d] (%s)" % (variable_name, index, upn)
    return "%s[%d]" % (variable_name, index)


def parse_entries(entries, default_auth="basic", variable_name="relay_accounts_mailboxes"):
    """Return ``(entries as {upn, auth, state} dicts, problems)``; each problem is one line naming its entry."""
    if default_auth not in AUTH_MODES:
        raise AnsibleFilterError("default_auth must be one of %s, got %r" % (", ".join(AUTH_MODES), default_auth))
    if entries is None:
        entries = []
    if not isinstance(entries, (list, tuple)):
        return [], ["%s must be a list of user principal names or mappings, got %s"
                    % (variable_name, described_type(entries))]

    problems = []
    normalised = []
    seen = {}
    for index, entry in enumerate(entries):
        where = _describe(index, entry, variable_name)
        problems_before = len(problems)
        if isinstance(entry, str):
            entry = {"upn": entry}
        if not isinstance(entry, Mapping):
            problems.append("%s: must be a user principal name or a mapping, got %s" % (where, described_type(entry)))
            continue

        unknown = sorted(to_text(key) for key in entry if key not in ALLOWED_KEYS)
        if unknown:
            problems.append("%s: unknown key(s) %s; allowed keys are %s"
                            % (where, ", ".join(unknown), ", ".join(ALLOWED_KEYS)))

        upn = entry.get("upn")
        if not isinstance(upn, str) or not upn.strip():
            problems.append("%s: 'upn' is required and must be a user principal name" % where)
            continue
        upn = upn.strip()
        if not UPN_PATTERN.match(upn):
            problems.append("%s: %r is not a valid user principal name (expected name@domain.tld)" % (where, upn))
            continue
        upn = upn.lower()

        auth = entry.get("auth", default_auth)
        if auth is None:
            auth = default_auth
        if auth not in AUTH_MODES:
            problems.append("%s: auth must be one of %s, got %r" % (where, ", ".join(AUTH_MODES), auth))
        state = entry.get("state", "present")
        if state is None:
            state = "present"
        if state not in STATES:
            problems.append("%s: state must be one of %s, got %r" % (where, ", ".join(STATES), state))

        if upn in seen:
            problems.append("%s: %s is already declared at %s[%d]" % (where, upn, variable_name, seen[upn]))
            continue
        seen[upn] = index
        if len(problems) == problems_before:
            normalised.append({"upn": upn, "auth": auth, "state": state})
    return normalised, problems


def relay_mailboxes(entries, default_auth="basic", variable_name="relay_accounts_mailboxes", strict=True):
    """Return the entries as ``{upn, auth, state}`` dicts or fail listing every bad entry; see DOCUMENTATION."""
    normalised, problems = parse_entries(entries, default_auth, variable_name)
    if not strict:
        return {"entries": normalised, "errors": problems}
    if problems:
        raise AnsibleFilterError("%d invalid mailbox entr%s:\n- %s" % (
            len(problems), "y" if len(problems) == 1 else "ies", "\n- ".join(problems)))
    return normalised


class FilterModule:
    def filters(self):
        return {"relay_mailboxes": relay_mailboxes}
