# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One HTTP session per run: explicit TLS verification, per-request timeouts and visible retries."""

from __future__ import annotations

import errno
import math
import re
import threading
import time
import traceback
import uuid

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
)

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    from urllib3.util.retry import Retry
except ImportError:
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    Retry = object  # lets the class below be defined; the module base fails before it is used

# 429 is throttling; 503 and 504 are what the services answer when a front end is overloaded. Microsoft
# did not run a throttled request, and every write this collection sends sets a value (PATCH, Set-*), so
# replaying one is safe: POST is retried too (InvokeCommand and $batch are POSTs).
RETRY_STATUSES = frozenset((429, 503, 504))
THROTTLING_STATUSES = frozenset((429, 503))
# The default longest Retry-After waited out (the max_retry_wait option): a play waits, it does not hang for an
# hour. A longer one fails the request (RetryWaitRefused) instead of being shortened, which would only be
# throttled again.
MAX_RETRY_AFTER = 300
BACKOFF_FACTOR = 1.0
_FRACTIONAL_SECONDS = re.compile(r"^\s*[0-9]*\.[0-9]+\s*$")
_SECONDS = re.compile(r"^\s*[0-9]*\.?[0-9]+\s*$")


class RetryWaitRefused(Exception):
    """A Retry-After longer than the run may wait. Raised from inside urllib3 before it sleeps; send() turns
    it into ThrottledError (or ServiceUnavailableError for a 503)."""

    def __init__(self, method, url, status, seconds, limit):
        super().__init__("%s %s answered HTTP %s with Retry-After %s s" % (method, url, status, seconds))
        self.method, self.url, self.status, self.seconds, self.limit = method, url, status, seconds, limit


class RetryEvents:
    """Every retry of the run, in the order they happened, so modules can return them (shown at -v).
    ``announce(event)``, when given, hears of each wait as it starts (a module logs it: it cannot print mid-run)."""

    def __init__(self, announce=None):
        self._lock = threading.Lock()
        self._events = []
        self.announce = announce
        # Clients that act on a retry as it is decided (the Exchange client's write pacing), in the thread of the
        # request that is retried.
        self.listeners = []

    def record(self, method, url, status=None, wait=0.0, reason=None):
        event = {"method": method, "url": url, "status": status, "wait": round(float(wait or 0), 3)}
        if reason:
            event["reason"] = reason
        with self._lock:
            self._events.append(event)
        if self.announce is not None:
            self.announce(dict(event))
        for listener in self.listeners:
            listener(dict(event))

    def summary(self):
        """What the run's retries cost, for a warning: counts by kind, total and longest wait; None if none."""
        events = self.as_list()
        if not events:
            return None
        longest = max(events, key=lambda event: event["wait"])
        return {"throttled": sum(1 for event in events if event.get("status") == 429),
                "unavailable": sum(1 for event in events if event.get("status") in (503, 504)),
                "waited": round(sum(event["wait"] for event in events), 3), "longest": longest}

    def as_list(self):
        with self._lock:
            return [dict(event) for event in self._events]

    def __len__(self):
        with self._lock:
            return len(self._events)


class RecordingRetry(Retry):
    """urllib3's Retry that also records each retry it decides on (method, URL, status, wait)."""

    def __init__(self, *args, events=None, max_wait=MAX_RETRY_AFTER, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = events
        self.max_wait = max_wait

    def new(self, **kwargs):
        retry = super().new(**kwargs)
        retry.events = self.events
        retry.max_wait = self.max_wait
        return retry

    def parse_retry_after(self, retry_after):
        # Microsoft's Exchange module parses Retry-After as a double, so a fractional value may come;
        # urllib3 accepts only whole seconds or an HTTP date and raises on anything else. Round up.
        if _FRACTIONAL_SECONDS.match(retry_after):
            retry_after = str(math.ceil(float(retry_after)))
        return super().parse_retry_after(retry_after)

    def asked_wait(self, response):
        """The Retry-After a response asks for, in seconds, as sent: newer urllib3 caps it (at 6 hours) itself."""
        value = response.headers.get("Retry-After") if response.headers is not None else None
        if value is None:
            return None
        if _SECONDS.match(value):
            return float(value)
        return self.get_retry_after(response)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and connection_refused(error):
            # Nothing listens there: waiting and trying again only delays the same answer.
            raise MaxRetryError(_pool, url, error)
        retry = super().increment(method=method, url=url, response=response, error=error, _pool=_pool,
                                  _stacktrace=_stacktrace)
        if response is not None and retry.respect_retry_after_header:
            asked = retry.asked_wait(response)
            if asked is not None and asked > self.max_wait:
                response.drain_conn()  # the connection goes back to the pool, as urllib3 does before a retry
                raise RetryWaitRefused(method, _full_url(_pool, url), getattr(response, "status", None), asked,
                                       self.max_wait)
        if self.events is not None:
            # The same choice urllib3's sleep() makes next: Retry-After when given, else backoff.
            wait = None
            if response is not None and retry.respect_retry_after_header:
                wait = retry.get_retry_after(response)
            if not wait:
                wait = retry.get_backoff_time()
            status = getattr(response, "status", None)
            reason = type(error).__name__ if error is not None else None
            self.events.record(method, _full_url(_pool, url), status=status, wait=wait, reason=reason)
        return retry


def connection_refused(error):
    """Whether urllib3's ``error`` is a refused TCP connection (ECONNREFUSED), as opposed to DNS or a timeout."""
    if not isinstance(error, NewConnectionError):
        return False
    cause = error.__cause__ or error.__context__
    return isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED


def _full_url(pool, url):
    if pool is not None and url and url.startswith("/"):
        port = "" if pool.port in (None, 443, 80) else ":%s" % pool.port
        return "%s://%s%s%s" % (pool.scheme, pool.host, port, url)
    return url


def build_retry(max_retries, events=None, max_wait=MAX_RETRY_AFTER):
    return RecordingRetry(
        total=max_retries,
        connect=max_retries,
        # A read timeout may have happened after the service acted; the per-request timeout is the
        # operator's ceiling, so it is not multiplied by retries.
        read=0,
        status=max_retries,
        other=0,
        redirect=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,
        backoff_factor=BACKOFF_FACTOR,
        respect_retry_after_header=True,
        # After the last retry the caller gets the 429/503 itself and raises ThrottledError with its text.
        raise_on_status=False,
        events=events,
        max_wait=max_wait,
    )


if REQUESTS_IMPORT_ERROR is None:
    class M365Session(requests.Session):
        """A Session that applies a default timeout; MSAL is handed this same object as its http_client."""

        def __init__(self, timeout):
            super().__init__()
            self.default_timeout = timeout

        def request(self, method, url, **kwargs):
            kwargs.setdefault("timeout", self.default_timeout)
            return super().request(method, url, **kwargs)
else:
    M365Session = None


def build_session(settings, events=None):
    """The run's only Session, with a connection pool per host large enough for ``settings.concurrency``
    requests in flight (plus the token requests beside them). ``trust_env`` is off so that REQUESTS_CA_BUNDLE, proxies and .netrc from
    the environment cannot silently replace the verification the operator asked for."""
    session = M365Session(settings.timeout)
    session.trust_env = False
    session.verify = settings.verify
    pool_size = max(10, settings.concurrency + 2)
    adapter = HTTPAdapter(max_retries=build_retry(settings.max_retries, events, settings.max_retry_wait),
                          pool_connections=pool_size,
                          pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "m365ops.smtp_auth"
    return session


def send(session, method, url, **kwargs):
    """``session.request`` with transport failures raised as TransportError and a client-request-id set."""
    headers = dict(kwargs.pop("headers", None) or {})
    headers.setdefault("client-request-id", str(uuid.uuid4()))
    try:
        return session.request(method, url, headers=headers, **kwargs)
    except RetryWaitRefused as error:
        raise refused_wait_error(error) from error
    except requests.exceptions.RequestException as error:
        raise transport_error(url, error, kwargs.get("timeout") or getattr(session, "default_timeout", "?")) from error


def send_with_token(session, tokens, scope, method, url, headers=None, events=None, **kwargs):
    """``send`` with the app's bearer token for ``scope``. A 401 gets one fresh token and one more try: a token
    can stop working before its expiry (revoked, signing keys rolled over, a clock running ahead, a long run whose
    token outlived the service's view of it), and that must not fail the run. A second 401 is the caller's to
    report: then the app really lacks what the service asks for."""
    headers = dict(headers or {})
    token = tokens.token(scope)
    headers["Authorization"] = "Bearer " + token
    response = send(session, method, url, headers=headers, **kwargs)
    if response.status_code != 401:
        return response
    if events is not None:
        events.record(method, url, status=401, reason="token refused; retried once with a new token")
    headers["Authorization"] = "Bearer " + tokens.token(scope, refused=token)
    return send(session, method, url, headers=headers, **kwargs)


def transport_error(url, error, timeout):
    """The TransportError that says what went wrong reaching ``url``, for a requests exception."""
    if isinstance(error, requests.exceptions.SSLError):
        return TransportError("TLS verification failed for %s: %s (set ca_path or M365_CA_PATH to the bundle of "
                              "the CA that issued its certificate)" % (url, _root_cause(error)), url=url)
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return TransportError("Timed out connecting to %s" % url, url=url)
    if isinstance(error, requests.exceptions.Timeout):
        return TransportError("No answer from %s within the timeout of %s seconds" % (url, timeout), url=url)
    if isinstance(error, requests.exceptions.ConnectionError):
        if connection_refused(getattr(error.args[0], "reason", None) if error.args else None):
            return TransportError("Could not connect to %s: the connection was refused (nothing accepts connections "
                                  "at that host and port; check the URL). Not retried." % url, url=url)
        return TransportError("Could not connect to %s: %s" % (url, _root_cause(error)), url=url)
    return TransportError("Request to %s failed: %s" % (url, _root_cause(error)), url=url)


def refused_wait_error(refused):
    """The error for a Retry-After longer than max_retry_wait: throttled (429) or unavailable (503, 504)."""
    kind = ServiceUnavailableError if refused.status in (503, 504) else ThrottledError
    what = "unavailable" if refused.status in (503, 504) else "throttled"
    return kind("%s was %s and asked to wait %s seconds before a retry, longer than max_retry_wait (%s s); not "
                "waiting. Run again later, or raise max_retry_wait (M365_MAX_RETRY_WAIT) to wait it out."
                % (refused.url, what, _seconds(refused.seconds), refused.limit),
                status=refused.status, retry_after=refused.seconds)


def _seconds(value):
    return ("%d" % value) if float(value).is_integer() else ("%.1f" % value)


def _root_cause(error):
    cause = error
    for _depth in range(10):  # exception chains are short; the bound only guards against a cycle
        inner = cause.__cause__ or cause.__context__
        if inner is None:
            break
        cause = inner
    text = str(cause) or type(cause).__name__
    # urllib3 wraps the interesting part ("Name or service not known") in a long pool description.
    return text.split(": ", 1)[-1] if "HTTPSConnectionPool" in text else text


def sleep(seconds):
    """Indirection so tests of batch retries can count waits instead of waiting."""
    time.sleep(seconds)
