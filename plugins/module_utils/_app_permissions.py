# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the automation app must hold for each step of the relay_accounts role, and whether its tokens show it.

The needs are named by the keys of ``PERMISSIONS`` below (the one permission table, which the clients' 403
messages use too), so a step's needs and the 403 message of the operation that would fail say the same thing.
The check reads the app-only tokens' own claims: ``roles`` (application permissions of the token's resource) and
``wids`` (directory role template ids).
Nothing here verifies a token: it was just issued to this process by Entra ID, and only its payload is read.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

# What each read and write needs, named in errors and in "unreadable" findings. One table for every module;
# it lives here, apart from the clients, so that the role's plan (a filter on the controller) reads it without the
# HTTP stack.
PERMISSIONS = {
    "security_defaults_read": "Policy.Read.All",
    # The least privileged permission (Graph v1.0 reference); the older pair still works and is named second.
    "security_defaults_write": ("Policy.ReadWrite.SecurityDefaults (or the older pair Policy.Read.All and "
                                "Policy.ReadWrite.ConditionalAccess)"),
    "mfa_read": "Policy.Read.All",
    "mfa_write": "Policy.ReadWrite.AuthenticationMethod",
    "user_read": "User.Read.All",
    "conditional_access_read": "Policy.Read.All",
    "group_membership_read": "GroupMember.Read.All",
    # Without it Graph still lists the roles, but as bare ids with roleTemplateId null ("limited information").
    "role_membership_read": "RoleManagement.Read.Directory (or Directory.Read.All)",
    "exchange": "Exchange.ManageAsApp (Office 365 Exchange Online) and the Exchange Administrator role",
    # The relay app's enterprise application and its consent (Graph).
    "service_principal_read": "Application.Read.All",
    # Graph v1.0 "Grant an appRoleAssignment to a service principal": both, least privileged.
    "app_role_assignment_write": "AppRoleAssignment.ReadWrite.All and Application.Read.All",
    # Sign-in logs also need an Entra ID P1 or P2 licence in the tenant.
    "sign_in_read": "AuditLog.Read.All",
}

EXCHANGE = "exchange"
EXCHANGE_APP_PERMISSION = "Exchange.ManageAsApp"

# Directory role template ids, as the ``wids`` claim carries them (Microsoft Entra built-in roles reference).
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
ROLE_NAMES = {EXCHANGE_ADMINISTRATOR: "Exchange Administrator", GLOBAL_ADMINISTRATOR: "Global Administrator",
              GLOBAL_READER: "Global Reader"}
# Roles Exchange Online's app-only authentication accepts for the cmdlets the role runs: any of them reads,
# only the administrators change anything.
EXCHANGE_ROLES = {"read": (EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER),
                  "write": (EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR)}

# Which application permissions in a Graph token's ``roles`` satisfy each Graph entry of PERMISSIONS: any one
# alternative, all of its permissions. The first alternative is the least privileged one (the one named in
# messages); the others are the higher ones Graph's reference pages list for the same call.
_DIRECTORY_READ = (("Directory.Read.All",), ("Directory.ReadWrite.All",))
GRAPH_GRANTS = {
    "security_defaults_read": (("Policy.Read.All",),),
    "security_defaults_write": (("Policy.ReadWrite.SecurityDefaults",),
                                ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess")),
    "mfa_read": (("Policy.Read.All",),),
    "mfa_write": (("Policy.ReadWrite.AuthenticationMethod",),),
    "user_read": (("User.Read.All",), ("User.ReadWrite.All",)) + _DIRECTORY_READ,
    "service_principal_read": (("Application.Read.All",), ("Application.ReadWrite.All",)) + _DIRECTORY_READ,
    "app_role_assignment_write": tuple(("AppRoleAssignment.ReadWrite.All",) + reader for reader in (
        ("Application.Read.All",), ("Application.ReadWrite.All",), ("Directory.Read.All",))),
    "sign_in_read": (("AuditLog.Read.All",),),
}

_EXCHANGE_ONLY = {"read": [EXCHANGE], "write": [EXCHANGE]}
# What each step of the relay_plan needs: ``read`` for what its module reads (check mode too), ``write`` for
# what it changes. The app_permissions step itself only decodes tokens.
STEP_PERMISSIONS = {
    "app_permissions": {"read": [], "write": []},
    "license": {"read": ["user_read"], "write": []},
    "security_defaults": {"read": ["security_defaults_read"], "write": ["security_defaults_write"]},
    "basic_auth_policy": _EXCHANGE_ONLY,
    "basic_auth_policy_users": _EXCHANGE_ONLY,
    "org_smtp_auth": _EXCHANGE_ONLY,
    "inbound_connector": _EXCHANGE_ONLY,
    "smtp_app_consent": {"read": ["service_principal_read"], "write": ["app_role_assignment_write"]},
    "exchange_service_principal": {"read": ["service_principal_read", EXCHANGE], "write": [EXCHANGE]},
    "full_access": _EXCHANGE_ONLY,
    "send_as": _EXCHANGE_ONLY,
    "retired_permissions": _EXCHANGE_ONLY,
    "retired_mailbox_smtp_auth": _EXCHANGE_ONLY,
    "mailbox_smtp_auth": _EXCHANGE_ONLY,
    "per_user_mfa": {"read": ["mfa_read"], "write": ["mfa_write"]},
}
KNOWN_NEEDS = set(GRAPH_GRANTS) | {EXCHANGE}


def step_needs(step):
    """The ``{step, read, write}`` a planned step needs (lists of PERMISSIONS keys)."""
    needs = STEP_PERMISSIONS[step]
    return {"step": step, "read": list(needs["read"]), "write": list(needs["write"])}


def unknown_needs(needs):
    """Every permission key in ``needs`` this module does not know, named with its step."""
    return ["%s (step %s)" % (key, need["step"]) for need in needs for access in ("read", "write")
            for key in need.get(access) or [] if key not in KNOWN_NEEDS]


def token_claims(token):
    """The payload of a JWT access token, unverified; None when the token is not a readable JWT."""
    parts = str(token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


@dataclass(frozen=True)
class Grants:
    """What one token shows: its application permissions, and its directory roles (None when ``wids`` is absent
    or the token could not be read; ``readable`` False in the latter case)."""

    permissions: frozenset
    directory_roles: frozenset | None
    readable: bool

    @classmethod
    def from_token(cls, token):
        claims = token_claims(token)
        if claims is None:
            return cls(frozenset(), None, False)
        roles = claims.get("roles") or []
        wids = claims.get("wids")
        return cls(frozenset(str(role) for role in roles if isinstance(roles, list)),
                   frozenset(str(wid).lower() for wid in wids) if isinstance(wids, list) else None, True)


def _check(step, access, permission, verdict, reason=None):
    return {"step": step, "access": access, "permission": permission, "verdict": verdict, "reason": reason}


def _graph_check(step, access, key, graph):
    named = PERMISSIONS[key]
    if not graph.readable:
        return _check(step, access, named, "unknown", "the Microsoft Graph token is not a readable JWT")
    held = any(set(alternative) <= graph.permissions for alternative in GRAPH_GRANTS[key])
    return _check(step, access, named, "held" if held else "missing",
                  None if held else "not in the Microsoft Graph token's roles")


def _exchange_checks(step, access, exchange):
    if not exchange.readable:
        reason = "the Exchange Online token is not a readable JWT"
        return [_check(step, access, EXCHANGE_APP_PERMISSION, "unknown", reason),
                _check(step, access, role_requirement(access), "unknown", reason)]
    held = EXCHANGE_APP_PERMISSION in exchange.permissions
    checks = [_check(step, access, EXCHANGE_APP_PERMISSION, "held" if held else "missing",
                     None if held else "not in the Exchange Online token's roles")]
    if exchange.directory_roles is None:
        checks.append(_check(step, access, role_requirement(access), "unknown",
                             "the Exchange Online token carries no wids claim, so its directory roles cannot be "
                             "seen; Exchange decides at the first cmdlet"))
    else:
        has_role = bool(exchange.directory_roles & set(EXCHANGE_ROLES[access]))
        checks.append(_check(step, access, role_requirement(access), "held" if has_role else "missing",
                             None if has_role else "no such role in the Exchange Online token's wids"))
    return checks


def role_requirement(access):
    names = [ROLE_NAMES[template] for template in EXCHANGE_ROLES[access]]
    return "the %s directory role (or %s)" % (names[0], " or ".join(names[1:]))


def evaluate(needs, graph, exchange):
    """One check per step, access and permission: ``verdict`` held, missing or unknown. ``graph``/``exchange``
    are the Grants of each token (None when no need asks for that resource)."""
    checks = []
    for need in needs:
        for access in ("read", "write"):
            for key in need.get(access) or []:
                if key == EXCHANGE:
                    checks.extend(_exchange_checks(need["step"], access, exchange))
                else:
                    checks.append(_graph_check(need["step"], access, key, graph))
    return checks


def needs_resource(needs, exchange):
    """Whether any need asks for Exchange (``exchange=True``) or for Graph (``exchange=False``)."""
    return any((key == EXCHANGE) == exchange for need in needs for access in ("read", "write")
               for key in need.get(access) or [])


def describe(checks, verdict, with_reason=False):
    """One line per permission with ``verdict``, naming the steps (and whether to read or to write) that need it,
    and with ``with_reason`` why the verdict is what it is."""
    by_permission = {}
    for check in checks:
        if check["verdict"] == verdict:
            key = (check["permission"], check["reason"] if with_reason else None)
            by_permission.setdefault(key, []).append("%s (%s)" % (check["step"], check["access"]))
    return ["%s, needed by: %s%s" % (permission, ", ".join(dict.fromkeys(steps)), ": %s" % reason if reason else "")
            for (permission, reason), steps in by_permission.items()]
