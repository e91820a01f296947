# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Who signed in with SMTP AUTH: Entra ID sign-in logs read from Graph and summed up per account.

The log needs ``AuditLog.Read.All`` and an Entra ID P1 or P2 licence in the tenant, and keeps 30 days. When it
cannot be read, ``unavailable_reason`` says why, so that a caller reports "unknown" and never "nobody".
Internal to this collection.
"""

from __future__ import annotations

import datetime
from urllib.parse import quote

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._services import PERMISSIONS
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error, TruncatedResultError

SIGN_INS_PATH = "auditLogs/signIns"
# The portal and Log Analytics call the client app "Authenticated SMTP"; other callers of the API filter on
# "SMTP". Which one the API returns is not confirmed, so both are asked for.
SMTP_CLIENT_APPS = ("Authenticated SMTP", "SMTP")
RETENTION_DAYS = 30
PAGE_SIZE = 1000
# 1000 pages of 1000 sign-ins: far above what devices make in 30 days, and a bound on a runaway nextLink chain.
MAX_PAGES = 1000
# Basic authentication signs in to Office 365 Exchange Online itself; an XOAUTH2 token belongs to the client app.
EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
LICENCE = "an Entra ID P1 or P2 licence"


def iso(moment):
    """A UTC moment as Graph writes it: ``2026-11-01T00:00:00Z``."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window(days, now=None):
    """``(since, until)``: the last ``days`` days up to ``now`` (default: this second, UTC)."""
    until = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0)
    return until - datetime.timedelta(days=days), until


def sign_ins_filter(since, client_apps=SMTP_CLIENT_APPS):
    """The ``$filter`` for sign-ins of the given client apps since ``since``."""
    apps = " or ".join("clientAppUsed eq '%s'" % name.replace("'", "''") for name in client_apps)
    if len(client_apps) > 1:
        apps = "(%s)" % apps
    return "%s and createdDateTime ge %s" % (apps, iso(since))


def sign_ins_path(filter_text, top=PAGE_SIZE):
    """The first page's path, the query encoded here (spaces as %20) rather than left to the HTTP library."""
    return "%s?$filter=%s&$top=%d" % (SIGN_INS_PATH, quote(filter_text, safe=""), top)


def _get(graph, path):
    return graph.get(path, operation="reading the sign-in logs", permission=PERMISSIONS["sign_in_read"]) or {}


def _licence_missing(error):
    text = ("%s %s" % (error.code or "", error.message)).lower()
    return error.code == NON_PREMIUM_CODE or "premium licen" in text


def smtp_sign_ins(graph, since):
    """Every SMTP AUTH sign-in since ``since``, page by page, following ``@odata.nextLink``.

    One query asks for both client app names. A service that refuses the combined filter (HTTP 400) is asked
    once per name instead: the two answers cannot overlap, since a sign-in has one client app.
    """
    try:
        firsts = [_get(graph, sign_ins_path(sign_ins_filter(since)))]
    except M365Error as error:
        if error.status != 400 or _licence_missing(error):
            raise
        firsts = [_get(graph, sign_ins_path(sign_ins_filter(since, (name,)))) for name in SMTP_CLIENT_APPS]
    for page in firsts:
        for _page_number in range(MAX_PAGES):
            yield from page.get("value") or []
            if not page.get("@odata.nextLink"):
                break
            page = _get(graph, page["@odata.nextLink"])
        else:
            raise TruncatedResultError("the sign-in logs of tenant %s still had more pages after %d pages of %d; "
                                       "ask for fewer days" % (graph.settings.tenant_id, MAX_PAGES, PAGE_SIZE))


def unavailable_reason(error):
    """Why the sign-in logs cannot be read, for an error that means they are out of reach (no licence, no
    permission); None for any other error."""
    if _licence_missing(error):
        return ("the tenant lacks %s, which the sign-in log API needs (Microsoft Graph answered %s)"
                % (LICENCE, error.code or error.status))
    if error.status == 403:
        return ("the app lacks the Microsoft Graph application permission %s (with admin consent), which reading "
                "the sign-in logs needs (Microsoft Graph answered %s)" % (PERMISSIONS["sign_in_read"],
                                                                          error.code or error.status))
    return None


# ---- summing up ---------------------------------------------------------------------------------------

def _moment(text):
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def auth_guess(sign_in):
    """``basic`` or ``oauth`` when the sign-in shows it, else ``unknown``.

    A password in ``authenticationDetails`` is basic. Otherwise the app tells: basic authentication signs in to
    Exchange Online itself, an XOAUTH2 token was issued to another app.
    """
    for detail in sign_in.get("authenticationDetails") or []:
        if "password" in str((detail or {}).get("authenticationMethod") or "").lower():
            return "basic"
    app_id = str(sign_in.get("appId") or "").lower()
    if not app_id:
        return "unknown"
    return "basic" if app_id == EXCHANGE_ONLINE_APP_ID else "oauth"


def _account_auth(guesses):
    known = guesses - {"unknown"}
    if len(known) > 1:
        return "mixed"
    return known.pop() if known else "unknown"


def summarise(sign_ins, include_failures=True):
    """``(accounts, client_app_names)``: one summary per user principal name (lower-cased, sorted), and the client
    app names the sign-ins carried."""
    tallies = {}
    client_apps = set()
    for sign_in in sign_ins:
        status = sign_in.get("status") or {}
        succeeded = str(status.get("errorCode")) == "0"
        name = str(sign_in.get("userPrincipalName") or sign_in.get("userId") or "").strip().lower()
        if not name or not (succeeded or include_failures):
            continue
        client_apps.add(sign_in.get("clientAppUsed"))
        tally = tallies.setdefault(name, {"sign_ins": 0, "successes": 0, "last": None, "last_success": None,
                                          "ips": set(), "app_ids": set(), "auth": set()})
        moment = _moment(sign_in.get("createdDateTime"))
        tally["sign_ins"] += 1
        tally["successes"] += succeeded
        guess = auth_guess(sign_in)
        tally["auth"].add(guess)
        if sign_in.get("ipAddress"):
            tally["ips"].add(sign_in["ipAddress"])
        if guess == "oauth":
            tally["app_ids"].add(str(sign_in.get("appId")).lower())
        if _later(moment, tally["last"]):
            tally["last"] = (moment, sign_in, succeeded)
        if succeeded and _later(moment, tally["last_success"]):
            tally["last_success"] = (moment, sign_in)
    accounts = [_account(name, tallies[name]) for name in sorted(tallies)]
    return accounts, sorted(name for name in client_apps if name)


def _later(moment, kept):
    """Whether a sign-in at ``moment`` is the latest so far, against ``kept`` (``(moment, ...)`` or None). The log
    comes newest first, but nothing promises it: times are compared, not positions."""
    if kept is None or kept[0] is None:
        return True
    return moment is not None and moment >= kept[0]


def _account(name, tally):
    _moment_seen, last, succeeded = tally["last"]
    status = last.get("status") or {}
    return {
        "user_principal_name": name,
        "sign_ins": tally["sign_ins"],
        "successes": tally["successes"],
        "failures": tally["sign_ins"] - tally["successes"],
        "last_sign_in": last.get("createdDateTime"),
        "last_success": tally["last_success"][1].get("createdDateTime") if tally["last_success"] else None,
        "source_ips": sorted(tally["ips"]),
        "app_ids": sorted(tally["app_ids"]),
        "auth": _account_auth(tally["auth"]),
        "last_error": None if succeeded else {"code": status.get("errorCode"), "reason": status.get("failureReason")},
    }


def compare_declared(accounts, declared):
    """Mark each account ``declared`` and return ``(undeclared, unused)``: accounts that used SMTP AUTH without
    being declared, and declared names nobody signed in as. ``declared`` None compares nothing: each account's
    ``declared`` is None and so are both lists."""
    if declared is None:
        for account in accounts:
            account["declared"] = None
        return None, None
    declared = {name.lower() for name in declared}
    for account in accounts:
        account["declared"] = account["user_principal_name"] in declared
    used = {account["user_principal_name"] for account in accounts}
    return ([account["user_principal_name"] for account in accounts if not account["declared"]],
            sorted(declared - used))
