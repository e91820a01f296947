# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""JSON batching as Graph's ``$batch`` and the Exchange admin API's ``$batch`` share it: requests go out in
chunks, a few chunks at a time; each item of a reply is settled on its own, and the items that were throttled,
or refused for a token that stopped working, are sent again (alone) after the wait they ask for."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error


def item_status(reply):
    """An item's status; when a reply item has none, what its body says (an ``error`` object is a failure)."""
    try:
        status = int(reply.get("status") or 0)
    except (TypeError, ValueError):
        status = 0
    if status:
        return status
    return 400 if isinstance(reply.get("body"), dict) and "error" in reply["body"] else 200


def header(headers, name):
    """One header of a batch item or a reply (a plain dict there), whatever its case; None when absent."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def retry_after_seconds(headers, default):
    """An item's Retry-After in seconds (fractions kept), or ``default`` when it has none or it is not a number."""
    value = header(headers, "Retry-After")
    if value is None:
        return default
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return default


def map_concurrently(items, function, concurrency):
    """``function`` over ``items`` with at most ``concurrency`` in flight (the connection option, as the clients
    hold it); results in input order. The first
    error that is not about one item (permission, throttling, transport) is raised."""
    if len(items) <= 1 or concurrency <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(function, items))


class BatchRunner:
    """Runs ``count`` requests through a batch endpoint for one client.

    ``send(indexes)`` posts one chunk (the items of those request indexes, each with its index as id) and returns
    the reply's items by id; ``settle(index, status, headers, body)`` turns one final item reply into the result
    kept for that request; ``describe(index)`` gives ``(method, url)`` for retry events and errors. ``label``
    names the endpoint in messages ("Graph $batch").
    """

    def __init__(self, label, size, settings, tokens, scope, events=None, sleep=None):
        self.label = label
        self.size = size
        self.settings = settings
        self.tokens = tokens
        self.scope = scope
        self.events = events
        self.sleep = sleep or transport.sleep

    def chunks(self, count):
        return [list(range(start, min(start + self.size, count))) for start in range(0, count, self.size)]

    def run(self, count, send, settle, describe, concurrency, throttled=None):
        """One result per request, in the order given. ``throttled(seconds)``, when given, hears of each wait for
        throttled items before it starts."""
        results = [None] * count
        chunks = self.chunks(count)
        workers = max(1, min(concurrency, len(chunks)))
        if workers == 1:
            for chunk in chunks:
                self._run_chunk(chunk, results, send, settle, describe, throttled)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(self._run_chunk, chunk, results, send, settle, describe, throttled)
                           for chunk in chunks]
                for future in futures:
                    future.result()  # re-raises a chunk's error (401, transport) in the caller
        return results

    def _run_chunk(self, indexes, results, send, settle, describe, throttled_hook):
        pending = list(indexes)
        renewed = False
        attempt = 0
        while pending:
            token = self.tokens.token(self.scope)  # what the post below carries (the cache answers it)
            replies = send(pending)
            refused, throttled, unanswered = [], [], []
            for index in pending:
                reply = replies.get(str(index))
                if reply is None:
                    # A batch that stopped early (at a failed item) did not run the rest: they go again, bounded.
                    if attempt < self.settings.max_retries:
                        unanswered.append(index)
                        continue
                    method, url = describe(index)
                    results[index] = settle(index, 0, {}, None, M365Error(
                        "%s reply had no response for request %s (%s %s)" % (self.label, index, method, url)))
                    continue
                status = item_status(reply)
                headers = reply.get("headers") or {}
                if status == 401 and not renewed:
                    # A token that stopped working mid-run is refused item by item inside a 200 reply, so those
                    # items get one more try with a new token.
                    refused.append(index)
                    continue
                if status in transport.THROTTLING_STATUSES and attempt < self.settings.max_retries:
                    throttled.append((index, status,
                                      retry_after_seconds(headers, transport.BACKOFF_FACTOR * 2 ** attempt)))
                    continue
                results[index] = settle(index, status, headers, reply.get("body"), None)
            if refused:
                renewed = True
                if self.events is not None:
                    self.events.record("POST", self.label, status=401,
                                       reason="token refused; %d item(s) retried once with a new token" % len(refused))
                self.tokens.token(self.scope, refused=token)
            if throttled:
                throttled = self._wait_for(throttled, results, settle, describe, throttled_hook)
            if throttled or unanswered:
                attempt += 1
            pending = refused + unanswered + [index for index, _status, _seconds in throttled]

    def _wait_for(self, throttled, results, settle, describe, hook):
        """Wait out the longest Retry-After of ``throttled``; returns the items to send again (none when the wait
        is longer than max_retry_wait: then they fail, as a single request would, instead of being shortened)."""
        wait = max(seconds for _index, _status, seconds in throttled)
        if wait > self.settings.max_retry_wait:
            for index, status, seconds in throttled:
                method, url = describe(index)
                refused = transport.RetryWaitRefused(method, url, status, seconds, self.settings.max_retry_wait)
                results[index] = settle(index, status, {}, None, transport.refused_wait_error(refused))
            return []
        for index, status, _seconds in throttled:
            if self.events is not None:
                method, url = describe(index)
                self.events.record(method, url, status=status, wait=wait, reason="batch item throttled")
        if hook is not None:
            hook(wait)
        self.sleep(wait)
        return throttled
