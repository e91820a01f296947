"""The request log: what the tenant would have seen, bounded, oldest first."""

from __future__ import annotations

import collections
import itertools
import threading

from .http import LogEntry

DEFAULT_LOG_SIZE = 100_000


class RequestLog:
    def __init__(self, size: int = DEFAULT_LOG_SIZE):
        self._entries: collections.deque[LogEntry] = collections.deque(maxlen=size)
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def record(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def since(self, seq: int = 0) -> list[LogEntry]:
        with self._lock:
            return [entry for entry in self._entries if entry["seq"] > seq]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
