"""Injected failures: the next ``count`` requests that match (or a ``ratio`` of them) get a status (429, 503, ...)
instead of an answer."""

from __future__ import annotations

import itertools
import random
import re
import threading
from typing import Any

from .http import Request

# Codes and sentences of the error a fault answers with, in the owning service's shape, unless it gives a body.
STATUS_TEXT = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("generalException", "An unexpected error occurred."),
    502: ("badGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Retry after the time in Retry-After."),
    504: ("gatewayTimeout", "The gateway timed out."),
}
FIELDS = ("path", "method", "cmdlet", "status", "count", "retry_after", "body", "headers", "ratio", "seed")


class Fault:
    """``path`` is searched in the request path; ``method`` and ``cmdlet`` (the operation the owning service
    names, an Exchange cmdlet) must match in full, case-insensitively."""

    _ids = itertools.count(1)

    def __init__(self, spec: dict[str, Any]):
        unknown = set(spec) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; allowed: {sorted(FIELDS)}")
        self.id = next(self._ids)
        self.spec = {key: spec.get(key) for key in ("path", "method", "cmdlet")}
        try:
            self.path = re.compile(spec["path"]) if spec.get("path") else None
            self.method = re.compile(spec["method"], re.I) if spec.get("method") else None
            self.cmdlet = re.compile(spec["cmdlet"], re.I) if spec.get("cmdlet") else None
        except re.error as exc:
            raise ValueError(f"fault: invalid regular expression: {exc}") from None
        self.status = spec.get("status", 429)
        if not isinstance(self.status, int) or not 400 <= self.status <= 599:
            raise ValueError("fault: status must be an integer from 400 to 599")
        self.remaining = spec.get("count", 1)
        if self.remaining is not None and (not isinstance(self.remaining, int) or self.remaining < 1):
            raise ValueError("fault: count must be a positive integer, or null for every matching request")
        self.retry_after = spec.get("retry_after", 1)
        # Fractional seconds are allowed: Exchange's own client parses Retry-After as a double.
        if self.retry_after is not None and (isinstance(self.retry_after, bool)
                                             or not isinstance(self.retry_after, (int, float))
                                             or self.retry_after < 0):
            raise ValueError("fault: retry_after must be a non-negative number of seconds (1.5 is allowed) or null")
        self.body = spec.get("body")
        self.headers = spec.get("headers") or {}
        if not isinstance(self.headers, dict):
            raise ValueError("fault: headers must be a mapping")
        # A storm: each matching request is hit with probability ``ratio``, drawn from a generator seeded with
        # ``seed``, so the same sequence of requests meets the same faults. Random, not every n-th: an even
        # pattern lines up with a client's own rhythm ($batch then its item) and hits the same request forever.
        self.ratio = spec.get("ratio", 1)
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not 0 < self.ratio <= 1:
            raise ValueError("fault: ratio must be a number greater than 0 and at most 1")
        self.seed = spec.get("seed", 0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("fault: seed must be an integer")
        self._draws = random.Random(self.seed)  # test traffic: reproducible, not secret
        self.seen = 0
        self.hits = 0

    def strikes(self) -> bool:
        """Whether this matching request is one the fault answers (call once per matching request)."""
        self.seen += 1
        return self.ratio >= 1 or self._draws.random() < self.ratio

    def matches(self, request: Request, operation: str | None) -> bool:
        if self.path and not self.path.search(request.path):
            return False
        if self.method and not self.method.fullmatch(request.method):
            return False
        if self.cmdlet and not (operation and self.cmdlet.fullmatch(operation)):
            return False
        return True

    def reply_headers(self) -> dict[str, str]:
        headers = {str(key): str(value) for key, value in self.headers.items()}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def reply_text(self) -> tuple[str, str]:
        return STATUS_TEXT.get(self.status, ("Fault", f"Injected fault {self.status}."))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec, "status": self.status, "count": self.remaining,
                "retry_after": self.retry_after, "body": self.body, "headers": self.headers, "ratio": self.ratio,
                "seed": self.seed, "seen": self.seen, "hits": self.hits}


class Faults:
    """The faults in force, oldest first; the first that matches a request is used."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(spec)
        with self.lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        with self.lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return True
        return False

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [fault.describe() for fault in self._faults]

    def take(self, request: Request, operation: str | None) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.matches(request, operation):
                    if not fault.strikes():
                        # Spared by this fault's ratio: later faults do not see the request either.
                        return None
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def __len__(self) -> int:
        with self.lock:
            return len(self._faults)
