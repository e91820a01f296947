# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The mailbox entries operators declare, parsed once for the role's filter and the modules that take them.

An entry is a user principal name, or a mapping with ``upn`` (required), ``auth`` (``basic``, ``oauth`` or
``connector``), ``state`` (``present`` or ``absent``), for ``oauth`` ``send_as`` (also grant the relay app Send
As) and for ``connector`` ``source_ip`` (the public IPv4 address the device's mail comes from). A ``connector``
entry is a device that cannot sign in at all: it relays without AUTH through the tenant's inbound connector, and
its ``upn`` is the From address it sends as.
``parse_entries`` checks every entry and collects every problem, one line each, naming the entry by its
position and its user principal name, so that whoever wrote the list can fix it in one go. Internal to this collection: other collections should not import it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

AUTH_MODES = ("basic", "oauth", "connector")
# The modes that sign in with SMTP AUTH (and need its switches); connector relay sends without AUTH.
SMTP_AUTH_MODES = ("basic", "oauth")
STATES = ("present", "absent")
ENTRY_KEYS = ("upn", "auth", "state", "send_as", "source_ip")

# Deliberately stricter than RFC 5322: a relay mailbox UPN has a dot-atom local part and a DNS domain with at
# least one dot. Quoted local parts are legal in mail but not in a UPN, so refusing them catches typos early.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
UPN_PATTERN = re.compile(r"^%s(?:\.%s)*@%s(?:\.%s)+$" % (_ATOM, _ATOM, _LABEL, _LABEL))


@dataclass
class MailboxEntry:
    """One good entry. ``upn`` is lower-cased (Microsoft 365 compares user principal names without regard to
    case); ``as_written`` keeps the spelling of the inventory for messages and lookups keyed by it."""

    upn: str
    as_written: str
    auth: str
    state: str
    position: int
    send_as: bool = False
    source_ip: str | None = None

    def as_dict(self):
        entry = {"upn": self.upn, "auth": self.auth, "state": self.state, "send_as": self.send_as}
        if self.auth == "connector":
            entry["source_ip"] = self.source_ip
        return entry


def is_user_principal_name(value):
    return isinstance(value, str) and bool(UPN_PATTERN.match(value))


def described_type(value):
    """A value's type in the words of YAML, with its article: ``a number``, ``a mapping``, ``null``.

    ansible-core 2.19 hands plugins and modules tagged subclasses of the native types (``_AnsibleTaggedInt``,
    ...), whose class names mean nothing to whoever wrote the inventory.
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


def _where(variable_name, position, entry):
    upn = entry.get("upn") if isinstance(entry, Mapping) else entry
    if isinstance(upn, str) and upn:
        return "%s[%d] (%s)" % (variable_name, position, upn)
    return "%s[%d]" % (variable_name, position)


def parse_entries(entries, default_auth="basic", variable_name="mailboxes"):
    """Return ``(good entries as MailboxEntry, problems)``, each problem one line naming its entry.

    ``None`` is no entry. A user principal name declared twice (in any case) is a problem at its second
    declaration, whatever its ``auth`` or ``state``: one mailbox, one declaration. Raises ``ValueError`` for a
    ``default_auth`` outside ``AUTH_MODES``, which is the caller's mistake, not the inventory's.
    """
    if default_auth not in AUTH_MODES:
        raise ValueError("default_auth must be one of %s, got %r" % (", ".join(AUTH_MODES), default_auth))
    if entries is None:
        return [], []
    if not isinstance(entries, (list, tuple)):
        return [], ["%s must be a list of user principal names or mappings, got %s"
                    % (variable_name, described_type(entries))]

    parsed, problems, seen = [], [], {}
    for position, entry in enumerate(entries):
        where = _where(variable_name, position, entry)
        problems_before = len(problems)
        if isinstance(entry, str):
            entry = {"upn": entry}
        if not isinstance(entry, Mapping):
            problems.append("%s: must be a user principal name or a mapping, got %s" % (where, described_type(entry)))
            continue

        unknown = sorted(str(key) for key in entry if key not in ENTRY_KEYS)
        if unknown:
            problems.append("%s: unknown key(s) %s; allowed keys are %s"
                            % (where, ", ".join(unknown), ", ".join(ENTRY_KEYS)))

        as_written = entry.get("upn")
        if not isinstance(as_written, str) or not as_written.strip():
            problems.append("%s: 'upn' is required and must be a user principal name" % where)
            continue
        as_written = as_written.strip()
        if not is_user_principal_name(as_written):
            problems.append("%s: %r is not a valid user principal name (expected name@domain.tld)"
                            % (where, as_written))
            continue
        upn = as_written.lower()

        auth = entry.get("auth")
        if auth is None:
            auth = default_auth
        if auth not in AUTH_MODES:
            problems.append("%s: auth must be one of %s, got %r" % (where, ", ".join(AUTH_MODES), auth))
        state = entry.get("state")
        if state is None:
            state = "present"
        if state not in STATES:
            problems.append("%s: state must be one of %s, got %r" % (where, ", ".join(STATES), state))

        send_as = entry.get("send_as", False)
        if not isinstance(send_as, bool):
            problems.append("%s: send_as must be true or false, got %s" % (where, described_type(send_as)))
        elif send_as and auth != "oauth":
            problems.append("%s: send_as grants the relay app Send As, which only auth 'oauth' uses" % where)

        source_ip, problem = _source_ip(entry.get("source_ip"), auth)
        if problem:
            problems.append("%s: %s" % (where, problem))

        if upn in seen:
            problems.append("%s: %s is already declared at %s[%d]" % (where, upn, variable_name, seen[upn]))
            continue
        seen[upn] = position
        if len(problems) == problems_before:
            parsed.append(MailboxEntry(upn, str(as_written), str(auth), str(state), position, send_as, source_ip))
    return parsed, problems


def _source_ip(value, auth):
    """``(address, problem)``: the canonical IPv4 address of a connector entry's ``source_ip``."""
    if value is None:
        return None, None
    if auth != "connector":
        return None, "source_ip is the address a device relays from, which only auth 'connector' uses"
    if not isinstance(value, str):
        return None, "source_ip must be an IPv4 address such as 203.0.113.25, got %s" % described_type(value)
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None, "source_ip %r is not an IPv4 address (one address, such as 203.0.113.25, not a range)" % value
    if address.version != 4:
        return None, "source_ip %r is IPv6, which inbound connectors do not support" % value
    return str(address), None


def problems_message(problems):
    """The problems of ``parse_entries`` as one message: a count, then one line per problem."""
    return "%d invalid mailbox entr%s:\n- %s" % (
        len(problems), "y" if len(problems) == 1 else "ies", "\n- ".join(problems))
