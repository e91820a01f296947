# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reads and writes of the settings the SMTP AUTH article names, shared by modules, role and diagnostics.

Each function takes a GraphClient or ExchangeClient and speaks in the collection's state words
(``enabled``/``disabled``/``inherit``, ``disabled``/``enabled``/``enforced``); the wire values stay here.
"""

from __future__ import annotations

from urllib.parse import quote
from dataclasses import dataclass, field

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._batching import map_concurrently
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._app_permissions import PERMISSIONS
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._cmdlets import CmdletCall
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error, NotFoundError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import BatchUnavailable
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import BatchRequest

SECURITY_DEFAULTS_PATH = "policies/identitySecurityDefaultsEnforcementPolicy"
CONDITIONAL_ACCESS_PATH = "identity/conditionalAccess/policies"

# Asking for this many mailboxes or fewer reads them one Get-CASMailbox -Identity at a time (a few in
# parallel); more than this reads the whole tenant in one paged listing. 25 single reads at 4 in flight
# cost about 7 round trips, the same as a 7000-mailbox listing at 1000 per page.
MAILBOX_LISTING_THRESHOLD = 25
# Where the admin API answers $batch, up to this many mailboxes are read 10 to a batch: 200 are 20 requests (5
# round trips at 4 in flight), as many requests as listing a 20,000-mailbox tenant and fewer round trips.
MAILBOX_BATCH_THRESHOLD = 200
# Licences of more users than this are read from one paged /users listing instead of per-user $batch items:
# 400 users are 20 batches, as many requests as listing about 20,000 users at the most Graph sends per page
# (999 for /users, its "$top" documentation; assignedPlans is a $select-able property of user).
LICENSE_LISTING_THRESHOLD = 400
USERS_PAGE_MAX = 999
LICENSE_FIELDS = "id,userPrincipalName,assignedPlans"

# The enabled service plans that give a user an Exchange Online mailbox. ``service: "exchange"`` alone is not
# enough: Defender for Office 365, Bookings, records management, Exchange Foundation and others carry it too and
# give no mailbox. Plan ids from Microsoft's licensing service plan reference (the GOV ones as listed by Maester).
MAILBOX_PLAN_NAMES = {
    "9aaf7827-d63c-4b61-89c3-182f06f82e5c": "EXCHANGE_S_STANDARD",
    "efb87545-963c-4e0d-99df-69c6916d9eb0": "EXCHANGE_S_ENTERPRISE",
    "4a82b400-a79f-41a4-b4e2-e94f5787b113": "EXCHANGE_S_DESKLESS",
    "1126bef5-da20-4f07-b45e-ad25d2581aa8": "EXCHANGE_S_ESSENTIALS",
    "e9b4930a-925f-45e2-ac2a-3f7788ca6fdd": "EXCHANGE_S_STANDARD_GOV",
    "8c3069c0-ccdb-44be-ab77-986203a67df2": "EXCHANGE_S_ENTERPRISE_GOV",
}
# Names of a few common exchange-service plans that give no mailbox, so a result can show them by name.
OTHER_EXCHANGE_PLAN_NAMES = {
    "113feb6c-3fe4-4440-bddc-54d774bf0318": "EXCHANGE_S_FOUNDATION",
    "f20fedf3-f3c3-43c3-8267-2bfdd51c0939": "ATP_ENTERPRISE",
    "199a5c09-e0ca-4e37-8f7c-b05d533e1ea2": "MICROSOFTBOOKINGS",
}

# A user set to "enabled" who registers a method turns "enforced" on their own.
MFA_SATISFIED_BY = {"enabled": ("enforced",)}

# Keys of a CASMailbox record that an operator may use to name the mailbox.
_MAILBOX_NAME_KEYS = ("PrimarySmtpAddress", "UserPrincipalName", "Identity", "Name", "Alias", "SamAccountName",
                      "ExternalDirectoryObjectId", "Guid", "DistinguishedName")
# What a tenant-wide listing asks for, by cmdlet: a CAS mailbox has some 30 properties and a listing of 20,000 of
# them is the biggest read of a run; these are all the collection reads from it.
LISTING_FIELDS = {
    "Get-CASMailbox": _MAILBOX_NAME_KEYS + ("EmailAddresses", "SmtpClientAuthenticationDisabled"),
}


@dataclass
class Lookup:
    """What a read found for one identity: the record, or that it does not exist, or the error."""

    identity: str
    found: bool
    record: dict = field(default_factory=dict)
    error: M365Error | None = None


# ---- state words -------------------------------------------------------------------------------------

def mailbox_state(switch):
    """``SmtpClientAuthenticationDisabled`` -> state word: null follows the org (``inherit``)."""
    if switch is None:
        return "inherit"
    return "disabled" if switch else "enabled"


def mailbox_switch(state):
    return {"inherit": None, "disabled": True, "enabled": False}[state]


def org_state(disabled):
    return "disabled" if disabled else "enabled"


# ---- security defaults (Graph) ----------------------------------------------------------------------

# Each Graph read is a request builder and a parser of its reply, so the setting modules and the readiness
# check read a setting the same way, and one $batch can carry reads of several kinds.

def security_defaults_request():
    return BatchRequest("GET", SECURITY_DEFAULTS_PATH, operation="reading the security defaults policy",
                        permission=PERMISSIONS["security_defaults_read"])


def parse_security_defaults(policy):
    return "enabled" if (policy or {}).get("isEnabled") else "disabled"


def read_security_defaults(graph):
    request = security_defaults_request()
    return parse_security_defaults(graph.get(request.url, operation=request.operation, permission=request.permission))


def write_security_defaults(graph, state):
    graph.patch(SECURITY_DEFAULTS_PATH, {"isEnabled": state == "enabled"},
                operation="changing the security defaults policy",
                permission=PERMISSIONS["security_defaults_write"])


# ---- organisation-wide SMTP AUTH (Exchange) ---------------------------------------------------------

def read_org_smtp_auth(exchange):
    records = exchange.invoke("Get-TransportConfig")
    if not records:
        raise M365Error("Get-TransportConfig returned nothing for tenant %s" % exchange.settings.tenant_id)
    return org_state(bool(records[0].get("SmtpClientAuthenticationDisabled")))


def write_org_smtp_auth(exchange, state):
    exchange.invoke("Set-TransportConfig", {"SmtpClientAuthenticationDisabled": state == "disabled"})


# ---- mailbox SMTP AUTH switches (Exchange) ----------------------------------------------------------

def mailbox_names(record):
    """Every lower-cased name a CASMailbox record answers to."""
    names = set()
    for key in _MAILBOX_NAME_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value:
            names.add(value.lower())
    for address in record.get("EmailAddresses") or []:
        if isinstance(address, str) and ":" in address:
            names.add(address.split(":", 1)[1].lower())
    return names


def list_cas_mailboxes(exchange):
    """Every CAS mailbox of the tenant, all pages."""
    return exchange.invoke("Get-CASMailbox", unlimited=True, select=LISTING_FIELDS["Get-CASMailbox"])


def read_mailboxes(exchange, cmdlet, identities, threshold=None, concurrency=None, listing=None):
    """A Lookup per identity, in order, from a per-mailbox Get-* cmdlet (Get-CASMailbox, Get-User, ...). Few
    identities are read by identity (10 to an admin API $batch where the service answers it, else one by one);
    more than ``threshold``, or a ``listing`` already fetched, are matched against the tenant-wide list (one
    paged request instead of one per mailbox)."""
    identities = list(identities)
    batched = exchange.batches is not False and len(identities) > 1
    limit = threshold if threshold is not None else MAILBOX_BATCH_THRESHOLD if batched else MAILBOX_LISTING_THRESHOLD
    if listing is None and batched and len(identities) <= limit:
        try:
            calls = [CmdletCall(cmdlet, {"Identity": identity}, identity) for identity in identities]
            return [_lookup(identity, result.records, result.error)
                    for identity, result in zip(identities, exchange.invoke_many(calls, fallback=False))]
        except BatchUnavailable:
            if threshold is None:
                limit = MAILBOX_LISTING_THRESHOLD
    if listing is None and len(identities) > limit:
        listing = exchange.invoke(cmdlet, unlimited=True, select=LISTING_FIELDS.get(cmdlet))
    if listing is not None:
        index = {}
        for record in listing:
            for name in mailbox_names(record):
                index.setdefault(name, record)
        return [Lookup(identity, identity.lower() in index, index.get(identity.lower(), {}))
                for identity in identities]
    return map_concurrently(identities, lambda identity: _read_one_mailbox(exchange, cmdlet, identity),
                            concurrency or exchange.concurrency)


def _lookup(identity, records, error):
    if isinstance(error, NotFoundError) or (error is None and not records):
        return Lookup(identity, False)
    if error is not None:
        raise error
    return Lookup(identity, True, records[0])


def read_cas_mailboxes(exchange, identities, **options):
    return read_mailboxes(exchange, "Get-CASMailbox", identities, **options)


def _read_one_mailbox(exchange, cmdlet, identity):
    try:
        records = exchange.invoke(cmdlet, {"Identity": identity}, identity=identity)
    except NotFoundError as error:
        return _lookup(identity, [], error)
    return _lookup(identity, records, None)


def write_mailbox_smtp_auth(exchange, changes):
    """Set each ``(identity, state)`` mailbox switch (10 to a $batch where the admin API answers it); ``inherit``
    sends JSON null, which clears it to follow the organisation. Returns one error or None per change, in order:
    the error about that mailbox (not found, refused by the cmdlet); any other is raised."""
    calls = [CmdletCall("Set-CASMailbox", {"Identity": identity, "SmtpClientAuthenticationDisabled": mailbox_switch(state)},
                        identity) for identity, state in changes]
    return [result.error for result in exchange.invoke_many(calls)]


# ---- per-user MFA (Graph beta) ----------------------------------------------------------------------

def user_path(user):
    """``users/{id|upn}`` with the identity escaped (guest UPNs carry ``#EXT#``)."""
    return "users/%s" % quote(str(user), safe="@")


def _mfa_path(user):
    return user_path(user) + "/authentication/requirements"


def mfa_request(user):
    return BatchRequest("GET", _mfa_path(user), operation="reading per-user MFA of %s" % user,
                        permission=PERMISSIONS["mfa_read"], identity=user)


def parse_mfa_state(requirements):
    return (requirements or {}).get("perUserMfaState")


def read_lookups(graph, users, build_request, parse, version="v1.0"):
    """One ``$batch`` read per user: a Lookup with ``record = parse(body)``; unknown users are ``found: False``,
    any other error is raised."""
    lookups = []
    for user, result in zip(users, graph.batch([build_request(user) for user in users], version=version)):
        if isinstance(result.error, NotFoundError):
            lookups.append(Lookup(user, False))
        elif result.error is not None:
            raise result.error
        else:
            lookups.append(Lookup(user, True, parse(result.body or {})))
    return lookups


def read_mfa_states(graph, users):
    """A Lookup per user with ``record = {"state": ...}``; unknown users are ``found: False``."""
    # Per-user MFA exists on beta only.
    return read_lookups(graph, users, mfa_request, lambda body: {"state": parse_mfa_state(body)}, version="beta")


def write_mfa_states(graph, changes):
    """PATCH each ``(user, state)``; returns one error or None per change, in order."""
    requests = [BatchRequest("PATCH", _mfa_path(user), body={"perUserMfaState": state},
                             operation="setting per-user MFA of %s to %s" % (user, state),
                             permission=PERMISSIONS["mfa_write"], identity=user) for user, state in changes]
    return [result.error for result in graph.batch(requests, version="beta")]


# ---- licences (Graph) -------------------------------------------------------------------------------

def exchange_plans(assigned_plans):
    """The enabled plans of service ``exchange``, split into those that give a mailbox and the others, each
    as ``[{service_plan_id, name}]`` (``name`` None for a plan id this collection does not know)."""
    mailbox, other = [], []
    for plan in assigned_plans or []:
        if str(plan.get("service") or "").lower() != "exchange" or plan.get("capabilityStatus") != "Enabled":
            continue
        plan_id = str(plan.get("servicePlanId") or "").lower()
        if plan_id in MAILBOX_PLAN_NAMES:
            mailbox.append({"service_plan_id": plan_id, "name": MAILBOX_PLAN_NAMES[plan_id]})
        else:
            other.append({"service_plan_id": plan_id, "name": OTHER_EXCHANGE_PLAN_NAMES.get(plan_id)})
    return mailbox, other


def license_record(user):
    """What the licence read found for one Graph user object."""
    mailbox, other = exchange_plans(user.get("assignedPlans"))
    return {
        "user_id": user.get("id"),
        "user_principal_name": user.get("userPrincipalName"),
        "licensed": bool(mailbox),
        "mailbox_plans": mailbox,
        "other_exchange_plans": other,
    }


def license_request(user):
    return BatchRequest("GET", user_path(user) + "?$select=" + LICENSE_FIELDS,
                        operation="reading the licences of %s" % user, permission=PERMISSIONS["user_read"],
                        identity=user)


def read_license_info(graph, users, threshold=LICENSE_LISTING_THRESHOLD):
    """A Lookup per user with ``record = license_record(...)``: per-user ``$batch`` reads for a few users, one
    paged ``/users`` listing for many (matched by object id or user principal name, the two keys
    ``/users/{key}`` accepts)."""
    users = list(users)
    if len(users) <= threshold:
        return read_lookups(graph, users, license_request, license_record)
    index = {}
    for user in graph.list("users", params={"$select": LICENSE_FIELDS, "$top": str(USERS_PAGE_MAX)},
                           operation="listing the users' licences", permission=PERMISSIONS["user_read"]):
        for key in (user.get("id"), user.get("userPrincipalName")):
            if isinstance(key, str) and key:
                index.setdefault(key.lower(), user)
    return [Lookup(user, True, license_record(index[str(user).lower()])) if str(user).lower() in index
            else Lookup(user, False) for user in users]


# ---- Conditional Access (Graph, diagnosis only) ------------------------------------------------------

def conditional_access_request():
    return BatchRequest("GET", CONDITIONAL_ACCESS_PATH, operation="reading the Conditional Access policies",
                        permission=PERMISSIONS["conditional_access_read"])
