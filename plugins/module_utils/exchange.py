# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exchange Online cmdlets through the admin API's InvokeCommand (the REST transport behind
ExchangeOnlineManagement v3)."""

from __future__ import annotations

import math
import threading
import time

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    AuthenticationError,
    ExchangeCommandError,
    ExchangeObjectNotFoundError,
    M365Error,
    PermissionDeniedError,
    TruncatedResultError,
    parse_json_body,
    plain_text,
    retries_exhausted,
    short_exception_type,
    split_exchange_detail,
)

# The arbitration mailbox real clients anchor app-only requests on; without it requests may be routed
# to a server that does not hold the tenant's configuration.
ANCHOR_MAILBOX = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s"
PAGE_SIZE = 1000
MAX_PAGES = 10000
EXCHANGE_PERMISSION = ("the Office 365 Exchange Online application permission Exchange.ManageAsApp (admin "
                       "consent granted) and the Entra role Exchange Administrator assigned to the app's "
                       "service principal")
# Sent on every page that has a next one. Microsoft's ExchangeOnlineManagement drops exactly this sentence
# while a nextLink follows (its FilterWarningsInPagination) and surfaces every other warning; on the last
# page, or with no link, it means the result really was cut short.
MORE_RESULTS_WARNING = ("There are more results available than are currently displayed. To view them, "
                        "increase the value for the ResultSize parameter.")
NOT_FOUND_EXCEPTIONS = frozenset((
    "ManagementObjectNotFoundException",
    "ManagementObjectNotFoundInOrgException",
    "RecipientNotFoundException",
))


# Exchange rations the cmdlets that change something per caller: about 120 a minute in the remote-PowerShell
# throttling policies (PowerShellMaxDestructiveCmdlets 120 per 60 s; older ExchangeMaxCmdlets 25 per 5 s), WIRE.md
# section 3. Unconfirmed for the REST transport, where a spent budget shows as 429 with Retry-After. So writes go
# out as fast as they can until one is throttled; from then on the client's writes wait out that Retry-After
# together and then go out no faster than the budget refills, so that they land instead of being refused again.
WRITES_PER_MINUTE = 120
WRITE_INTERVAL = 60.0 / WRITES_PER_MINUTE


def is_write(cmdlet):
    return not cmdlet.lower().startswith("get-")


def write_time_estimate(writes):
    """Minutes ``writes`` changing cmdlets may take at Exchange's budget, or None when they fit in one minute's."""
    return math.ceil(writes / WRITES_PER_MINUTE) if writes > WRITES_PER_MINUTE else None


class WritePacer:
    """One client's writes, across its threads: unpaced until a write is throttled, then one every
    ``interval`` seconds, none before the longest Retry-After heard."""

    def __init__(self, interval=WRITE_INTERVAL, clock=time.monotonic, sleep=time.sleep):
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.paced = False
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self):
        """Block until this write may go; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            if self.paced:
                self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)
        return slot - now

    def throttled(self, retry_after):
        """A write was refused for the budget and waits ``retry_after`` seconds before it is sent again."""
        with self._lock:
            self.paced = True
            self._next = max(self._next, self.clock() + float(retry_after or 0))


def strip_annotations(record):
    """Drop OData annotations (``@odata.context``, ``Prop@odata.type``) from one returned object."""
    return {key: value for key, value in record.items() if "@" not in key}


class ExchangeClient:
    def __init__(self, session, tokens, settings, events=None):
        self.session = session
        self.tokens = tokens
        self.settings = settings
        self.scope = settings.endpoints.exchange_scope
        self.url = "%s/adminapi/beta/%s/InvokeCommand" % (settings.exchange_base, settings.tenant_id)
        self.events = events
        # Cmdlets in flight at once when a module reads or writes mailboxes one by one.
        self.concurrency = settings.concurrency
        self.pacer = WritePacer()
        # The cmdlet a thread is sending, so that a retry decided in that thread is known to be a write's.
        self._sending = threading.local()
        if events is not None:
            events.listeners.append(self._heard_retry)
        # Warnings returned by writes ("no settings were modified", ...): kept for the task result.
        self.write_warnings = []

    def _headers(self, cmdlet):
        return {
            "Accept": "application/json",
            "X-AnchorMailbox": ANCHOR_MAILBOX % self.settings.tenant_id,
            "Prefer": "odata.maxpagesize=%d" % PAGE_SIZE,
            "X-CmdletName": cmdlet,
            "X-ResponseFormat": "json",
        }

    def invoke(self, cmdlet, parameters=None, unlimited=False, identity=None):
        """Run ``cmdlet`` and return its objects (annotations stripped), all pages of them.

        ``unlimited`` adds ``ResultSize: Unlimited`` (only for cmdlets that accept it). ``identity`` is what a
        not-found error names. A read (Get-*) that comes back with warnings or an expired page raises
        TruncatedResultError: a partial list would otherwise look like drift.
        """
        parameters = dict(parameters or {})
        if unlimited:
            parameters["ResultSize"] = "Unlimited"
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}
        is_read = cmdlet.lower().startswith("get-")
        identity = identity or parameters.get("Identity")

        records = []
        url = self.url
        for _page_number in range(MAX_PAGES):
            reply = self._post(cmdlet, url, body, identity)
            next_link = reply.get("@odata.nextLink")
            warnings = [text for text in (reply.get("@adminapi.warnings") or [])
                        if text and not (next_link and text.strip() == MORE_RESULTS_WARNING)]
            if warnings:
                if is_read:
                    raise TruncatedResultError(
                        "%s in tenant %s returned warnings, so its result may be incomplete; nothing was "
                        "changed: %s" % (cmdlet, self.settings.tenant_id, "; ".join(warnings)),
                        cmdlet=cmdlet, warnings=warnings)
                self.write_warnings.extend("%s: %s" % (cmdlet, text) for text in warnings)
            value = reply.get("value")
            if isinstance(value, list):
                records.extend(strip_annotations(item) for item in value if isinstance(item, dict))
            elif isinstance(value, dict):
                records.append(strip_annotations(value))
            url = next_link
            if not url:
                return records
        raise M365Error("%s kept returning pages after %s pages" % (cmdlet, MAX_PAGES))

    def _heard_retry(self, event):
        cmdlet = getattr(self._sending, "cmdlet", None)
        if cmdlet and is_write(cmdlet) and event.get("status") == 429:
            self.pacer.throttled(event.get("wait"))

    def _post(self, cmdlet, url, body, identity):
        writing = is_write(cmdlet)
        if writing:
            self.pacer.wait()
        self._sending.cmdlet = cmdlet
        try:
            response = transport.send_with_token(self.session, self.tokens, self.scope, "POST", url,
                                                 headers=self._headers(cmdlet), events=self.events, json=body)
        finally:
            self._sending.cmdlet = None
        decoded = parse_json_body(response.text)
        if response.status_code < 400:
            if not isinstance(decoded, dict):
                raise M365Error("%s in tenant %s: HTTP %s with a body that is not JSON"
                                % (cmdlet, self.settings.tenant_id, response.status_code),
                                status=response.status_code)
            return decoded
        raise self._error(cmdlet, response, decoded, identity)

    def _error(self, cmdlet, response, decoded, identity):
        status = response.status_code
        tenant = self.settings.tenant_id
        request_id = response.headers.get("request-id") or response.headers.get("client-request-id")
        error = decoded.get("error") if isinstance(decoded, dict) else None
        error = error if isinstance(error, dict) else {}
        outer = error.get("message") or plain_text(response.text) or "HTTP %s" % status
        details = error.get("details") or []
        detail = details[0].get("message") if details and isinstance(details[0], dict) else None
        error_id, exception_type, text = split_exchange_detail(detail or outer)
        code = error.get("code")

        if status in (401, 403):
            if status == 401:
                reason = "rejected the app's token (the app may lack Exchange.ManageAsApp)"
            else:
                reason = "refused the operation"
            message = ("Exchange Online %s for %s in tenant %s (HTTP %s: %s). The app needs %s."
                       % (reason, cmdlet, tenant, status, text or outer, EXCHANGE_PERMISSION))
            if status == 401 and "audience" in (text or "").lower():
                return AuthenticationError(message, status=status, code=code, request_id=request_id)
            return PermissionDeniedError(message, status=status, code=code, request_id=request_id,
                                         permission="Exchange.ManageAsApp + Exchange Administrator role",
                                         operation=cmdlet)
        if status in transport.THROTTLING_STATUSES:
            return retries_exhausted("Exchange Online", "%s in tenant %s" % (cmdlet, tenant), status, text or outer,
                                     code=code, request_id=request_id, retry_after=response.headers.get("Retry-After"))
        if status == 400 and "pagination" in (outer + " " + (text or "")).lower():
            return TruncatedResultError(
                "%s in tenant %s could not fetch its next page (%s); the result would be incomplete, so "
                "nothing was changed" % (cmdlet, tenant, text or outer),
                status=status, code=code, request_id=request_id, cmdlet=cmdlet)
        short_type = short_exception_type(exception_type)
        # A captured not-found is HTTP 404 with code NotFound and the exception inside details[0].message;
        # the status and code alone are enough when a detail comes in another form.
        if short_type in NOT_FOUND_EXCEPTIONS or (status == 404 and code == "NotFound"):
            return ExchangeObjectNotFoundError(
                "%s: %s not found in tenant %s (%s)" % (cmdlet, identity or "object", tenant, text),
                identity=identity, status=status, code=code, request_id=request_id, cmdlet=cmdlet,
                error_id=error_id, exception_type=exception_type, text=text)
        return ExchangeCommandError(
            "%s failed in tenant %s%s: %s%s" % (
                cmdlet, tenant, " for %s" % identity if identity else "", text or outer,
                " (%s)" % short_type if short_type else ""),
            status=status, code=code, request_id=request_id, cmdlet=cmdlet, error_id=error_id,
            exception_type=exception_type, text=text)
