# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exchange Online cmdlets through the admin API's InvokeCommand (the REST transport behind
ExchangeOnlineManagement v3)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._batching import BatchRunner, header, map_concurrently
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._cmdlets import cmdlet_input
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
# The admin API also takes OData JSON batches at {exchange}/adminapi/beta/{tenant}/$batch. Microsoft's module
# does not use them, but CIPP sends its bulk cmdlets that way in production (its New-ExoBulkRequest): chunks of
# 10, each item {"id", "method": "POST", "url": the full InvokeCommand URL, "headers", "body": the CmdletInput},
# the reply {"responses": [{"id", "body": what InvokeCommand answers}]} matched by id. The service's own limit per
# batch is not published; 10 is what that caller sends. A service that does not answer $batch that way is found
# out by the first chunks (a refused batch ran nothing, so no cmdlet is lost or sent twice), and from then on
# cmdlets go one by one.
BATCH_SIZE = 10
# An outer reply with one of these statuses means the endpoint is missing or refused the batch as such, not that a
# cmdlet failed: the cmdlets are then sent one by one. 401/403 and throttling are answered as for InvokeCommand.
BATCH_MISSING_STATUSES = frozenset((400, 404, 405, 406, 415, 501))
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

    def wait(self, writes=1):
        """Block until ``writes`` writes (a batch of them) may go; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            if self.paced:
                self._next = slot + self.interval * writes
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


@dataclass
class CmdletResult:
    """What one cmdlet of a bulk run returned: its objects, or the error about that object (not found, refused
    by the cmdlet, a read cut short). Errors about the run itself (permission, throttling, transport) are raised."""

    records: list = field(default_factory=list)
    error: M365Error | None = None


ITEM_ERRORS = (ExchangeCommandError, TruncatedResultError)


class BatchUnavailable(Exception):
    """The service does not answer the admin API's $batch; the cmdlets may be sent one by one instead."""


class ExchangeClient:
    def __init__(self, session, tokens, settings, events=None):
        self.session = session
        self.tokens = tokens
        self.settings = settings
        self.scope = settings.endpoints.exchange_scope
        self.url = "%s/adminapi/beta/%s/InvokeCommand" % (settings.exchange_base, settings.tenant_id)
        self.batch_url = "%s/adminapi/beta/%s/$batch" % (settings.exchange_base, settings.tenant_id)
        # Whether the service answers $batch: None until the first chunk tells.
        self.batches = None
        self._batch_lock = threading.Lock()
        self.runner = BatchRunner("Exchange $batch", BATCH_SIZE, settings, tokens, self.scope, events=events)
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

    def invoke(self, cmdlet, parameters=None, unlimited=False, identity=None, select=None):
        """Run ``cmdlet`` and return its objects (annotations stripped), all pages of them.

        ``unlimited`` adds ``ResultSize: Unlimited`` (only for cmdlets that accept it). ``select`` names the only
        properties wanted (``$select`` on the URL, as CIPP sends it in production; a service that ignores it sends
        every property, which is read the same). ``identity`` is what a not-found error names. A read (Get-*)
        that comes back with warnings or an expired page raises TruncatedResultError: a partial list would
        otherwise look like drift.
        """
        parameters = dict(parameters or {})
        if unlimited:
            parameters["ResultSize"] = "Unlimited"
        body = cmdlet_input(cmdlet, parameters)
        identity = identity or parameters.get("Identity")
        if select:
            # Which properties the admin API's $select accepts for each cmdlet is not published: a listing refused
            # for it (400, not a paging error) is read again with every property.
            try:
                return self._collect(cmdlet, self._post(cmdlet, self.url + "?$select=" + ",".join(select), body,
                                                        identity), body, identity)
            except M365Error as error:
                if error.status != 400 or isinstance(error, TruncatedResultError):
                    raise
                if self.events is not None:
                    self.events.record("POST", self.url, status=400,
                                       reason="$select refused (%s); read again with every property" % error)
        return self._collect(cmdlet, self._post(cmdlet, self.url, body, identity), body, identity)

    def _collect(self, cmdlet, reply, body, identity):
        """The objects of ``reply`` and of every page after it."""
        is_read = not is_write(cmdlet)
        records = []
        for _page_number in range(MAX_PAGES):
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
            if not next_link:
                return records
            reply = self._post(cmdlet, next_link, body, identity)
        raise M365Error("%s kept returning pages after %s pages" % (cmdlet, MAX_PAGES))

    # ---- many cmdlets at once ----------------------------------------------------------------------

    def invoke_many(self, calls, fallback=True):
        """Run every CmdletCall and return a CmdletResult for each, in order: through $batch, a few chunks in
        flight, when the service answers it, else one by one (a few in flight). With ``fallback`` false a service
        without $batch raises BatchUnavailable instead, so that a caller can choose another way to read."""
        calls = list(calls)
        if len(calls) > 1 and self.batches is not False:
            try:
                return self._invoke_batched(calls)
            except BatchUnavailable:
                if not fallback:
                    raise
        return map_concurrently(calls, self._invoke_one, self.concurrency)

    def _invoke_one(self, call):
        try:
            return CmdletResult(self.invoke(call.cmdlet, call.parameters, identity=call.identity))
        except ITEM_ERRORS as error:
            return CmdletResult(error=error)

    def _invoke_batched(self, calls):
        writing = any(is_write(call.cmdlet) for call in calls)
        return self.runner.run(
            len(calls),
            send=lambda indexes: self._post_batch(calls, indexes),
            settle=lambda index, status, headers, body, error: self._settle(calls[index], status, headers, body,
                                                                            error),
            describe=lambda index: ("POST", "%s:%s" % (self.batch_url, calls[index].cmdlet)),
            concurrency=self.concurrency,
            throttled=self.pacer.throttled if writing else None)

    def _batch_item(self, index, call):
        headers = self._headers(call.cmdlet)
        headers["Content-Type"] = "application/json"
        return {"id": str(index), "method": "POST", "url": self.url, "headers": headers,
                "body": call.body}

    def _post_batch(self, calls, indexes):
        writes = [calls[index].cmdlet for index in indexes if is_write(calls[index].cmdlet)]
        if writes:
            self.pacer.wait(len(writes))
        # A 429 on the batch itself paces the client's writes as a throttled single write does.
        self._sending.cmdlet = writes[0] if writes else None
        # odata.continue-on-error, as CIPP sends it: without it an OData batch may stop at the first failed cmdlet
        # and leave the rest unanswered (those would be sent again, alone).
        headers = {"Accept": "application/json", "X-AnchorMailbox": ANCHOR_MAILBOX % self.settings.tenant_id,
                   "Prefer": "odata.maxpagesize=%d, odata.continue-on-error" % PAGE_SIZE}
        payload = {"requests": [self._batch_item(index, calls[index]) for index in indexes]}
        try:
            response = transport.send_with_token(self.session, self.tokens, self.scope, "POST", self.batch_url,
                                                 headers=headers, events=self.events, json=payload)
        finally:
            self._sending.cmdlet = None
        decoded = parse_json_body(response.text)
        items = decoded.get("responses") if isinstance(decoded, dict) else None
        if response.status_code < 300 and isinstance(items, list):
            self.batches = True
            return {str(item.get("id")): item for item in items if isinstance(item, dict)}
        if self.batches is not True and (response.status_code < 300 or response.status_code in BATCH_MISSING_STATUSES):
            with self._batch_lock:
                first_to_hear, self.batches = self.batches is None, False
            if first_to_hear and self.events is not None:
                self.events.record("POST", self.batch_url, status=response.status_code,
                                   reason="the admin API did not answer $batch; cmdlets are sent one by one")
            raise BatchUnavailable()
        raise self._error("$batch of %s" % ", ".join(sorted(set(calls[index].cmdlet for index in indexes))),
                          response.status_code, response.headers, response.text, decoded, None)

    def _settle(self, call, status, headers, body, error):
        """The CmdletResult of one item; an error about the run itself is raised, as for a single cmdlet."""
        if error is None and status >= 400:
            decoded = body if isinstance(body, dict) else parse_json_body(body) if isinstance(body, str) else None
            text = body if isinstance(body, str) else ""
            error = self._error(call.cmdlet, status, headers, text, decoded,
                                call.identity or (call.parameters or {}).get("Identity"))
        if error is None:
            if body is None:
                return CmdletResult()
            if not isinstance(body, dict):
                error = M365Error("%s in tenant %s: HTTP %s with a body that is not JSON"
                                  % (call.cmdlet, self.settings.tenant_id, status), status=status)
            else:
                try:
                    return CmdletResult(self._collect(call.cmdlet, body, call.body, call.identity))
                except ITEM_ERRORS as item_error:
                    error = item_error
        if isinstance(error, ITEM_ERRORS):
            return CmdletResult(error=error)
        raise error

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
        raise self._error(cmdlet, response.status_code, response.headers, response.text, decoded, identity)

    def _error(self, cmdlet, status, headers, text_body, decoded, identity):
        tenant = self.settings.tenant_id
        request_id = header(headers, "request-id") or header(headers, "client-request-id")
        error = decoded.get("error") if isinstance(decoded, dict) else None
        error = error if isinstance(error, dict) else {}
        outer = error.get("message") or plain_text(text_body) or "HTTP %s" % status
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
                                     code=code, request_id=request_id, retry_after=header(headers, "Retry-After"))
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
