# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exchange authentication policies: which basic-auth protocols a policy allows, which policy a user has, and
which one the organisation falls back to.

Each cmdlet is built by a function returning a ``Command`` and each reply is read by a parser, so the setting
modules and the readiness check send and read exactly the same thing. Reads keep Exchange's records as they came;
the parsers turn them into the collection's words. Internal to this collection.
"""

from __future__ import annotations

import re

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._cmdlets import CmdletCall as Command

SWITCH_PREFIX = "AllowBasicAuth"
SMTP_SWITCH = "AllowBasicAuthSmtp"

# An RDN value ends at the first comma that is not escaped with a backslash.
_FIRST_RDN = re.compile(r"^\s*CN=((?:\\.|[^,\\])*),", re.IGNORECASE)


# ---- names ------------------------------------------------------------------------------------------

def policy_name(value):
    """A policy's name from what Exchange shows: the name itself, or a distinguished name
    (``CN=<name>,CN=Auth Policies,...``; which of the two Get-User shows is not confirmed). Empty is None."""
    if value is None:
        return None
    text = str(value).strip()
    match = _FIRST_RDN.match(text)
    if match:
        text = re.sub(r"\\(.)", r"\1", match.group(1)).strip()
    return text or None


def policy_key(value):
    """The case-insensitive key of a policy name or distinguished name (None for no policy)."""
    name = policy_name(value)
    return name.lower() if name else None


def same_policy(first, second):
    return policy_key(first) == policy_key(second)


# ---- commands ---------------------------------------------------------------------------------------

def get_policy_command(name=None):
    """Get-AuthenticationPolicy, of one policy or (without ``name``) of them all."""
    return Command("Get-AuthenticationPolicy", {"Identity": name} if name else {}, identity=name)


def new_policy_command(name, allow_basic_auth_smtp):
    """A new policy blocks every basic-auth protocol but the ones it is given: here only SMTP is said."""
    return Command("New-AuthenticationPolicy", {"Name": name, SMTP_SWITCH: bool(allow_basic_auth_smtp)},
                   identity=name)


def set_smtp_command(name, allow_basic_auth_smtp):
    """Set-AuthenticationPolicy with the SMTP switch alone, so no other protocol of the policy is touched."""
    return Command("Set-AuthenticationPolicy", {"Identity": name, SMTP_SWITCH: bool(allow_basic_auth_smtp)},
                   identity=name)


def remove_policy_command(name):
    return Command("Remove-AuthenticationPolicy", {"Identity": name, "Confirm": False}, identity=name)


def set_user_policy_command(user, policy):
    """Assign ``policy`` to ``user``; None is sent as JSON null, which clears it (the user then follows the
    organisation's default policy)."""
    return Command("Set-User", {"Identity": user, "AuthenticationPolicy": policy}, identity=user)


# ---- parsers ----------------------------------------------------------------------------------------

def allows_basic_smtp(record):
    """Whether a Get-AuthenticationPolicy record lets basic auth through for SMTP AUTH (absent means no)."""
    return bool((record or {}).get(SMTP_SWITCH))


def parse_policy(record):
    """``{name, allow_basic_auth_smtp}`` of one Get-AuthenticationPolicy record."""
    return {"name": policy_name(record.get("Name") or record.get("Identity")),
            "allow_basic_auth_smtp": allows_basic_smtp(record)}


def other_protocols(record):
    """The policy's other basic-auth switches, keyed by protocol in snake case (``AllowBasicAuthActiveSync`` ->
    ``active_sync``)."""
    protocols = {}
    for key, value in (record or {}).items():
        if key.startswith(SWITCH_PREFIX) and key != SMTP_SWITCH:
            protocol = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", key[len(SWITCH_PREFIX):]).lower()
            protocols[protocol] = bool(value)
    return dict(sorted(protocols.items()))


def user_policy(record):
    """The policy name a Get-User record shows as assigned, or None when it follows the organisation."""
    return policy_name((record or {}).get("AuthenticationPolicy"))


def index_policies(records):
    """Get-AuthenticationPolicy records keyed by ``policy_key`` of their name."""
    return {policy_key(record.get("Name") or record.get("Identity")): record for record in records or []}


# ---- reads and writes -------------------------------------------------------------------------------

def read_policy(exchange, name):
    """One policy's record, or None when the tenant has no policy of that name."""
    try:
        records = get_policy_command(name).run(exchange)
    except NotFoundError:
        return None
    return records[0] if records else None


def read_policies(exchange):
    """Every policy of the tenant, as ``index_policies``."""
    return index_policies(get_policy_command().run(exchange))


def read_default_policy(exchange):
    """The organisation's default policy name (applies to users with none of their own), or None."""
    records = Command("Get-OrganizationConfig").run(exchange)
    return policy_name(records[0].get("DefaultAuthenticationPolicy")) if records else None


def read_users(exchange, identities, **options):
    """A ``services.Lookup`` per identity holding its Get-User record (read one by one, or matched against one
    listing when there are many); read the policy with ``user_policy``."""
    return services.read_mailboxes(exchange, "Get-User", identities, **options)
