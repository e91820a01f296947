"""Exchange's cmdlet budgets per caller, as a behaviour switch (``exchange_cmdlet_budget``).

The remote-PowerShell throttling policies rationed "destructive" cmdlets (Set-*, New-*, Add-*, Remove-*, ...) to
about 120 a minute per caller and all cmdlets to 25 per 5 s in older defaults (WIRE.md section 3). Whether the
REST transport keeps them is not confirmed; where it throttles, it answers 429 with Retry-After. So a budget
here is a sliding window per tenant and app: a cmdlet past it is not run and gets 429 with the seconds until
the oldest cmdlet of the window leaves it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable

DESTRUCTIVE_VERBS = ("set-", "new-", "add-", "remove-", "enable-", "disable-")
# switch value -> the windows that apply: (name, counts every cmdlet?, behaviour key of [cmdlets, seconds])
MODES = {
    "off": (),
    "destructive": (("destructive", False, "exchange_destructive_budget"),),
    "cmdlets": (("cmdlets", True, "exchange_cmdlets_budget"),),
    "both": (("destructive", False, "exchange_destructive_budget"), ("cmdlets", True, "exchange_cmdlets_budget")),
}


def is_destructive(cmdlet: str) -> bool:
    return cmdlet.lower().startswith(DESTRUCTIVE_VERBS)


class CmdletBudget:
    """Sliding windows of admitted cmdlets, per (tenant, app, window name)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str, str], deque[float]] = {}

    def admit(self, behaviour: dict, tenant: str, app: str, cmdlet: str) -> int | None:
        """None when ``cmdlet`` may run now (and it is counted), else the whole seconds to wait."""
        mode = behaviour.get("exchange_cmdlet_budget") or "off"
        if mode not in MODES:
            raise ValueError(f"exchange_cmdlet_budget must be one of {', '.join(MODES)}, not {mode!r}")
        windows = []
        for name, every_cmdlet, key in MODES[mode]:
            if every_cmdlet or is_destructive(cmdlet):
                limit, seconds = behaviour[key]
                windows.append(((tenant, app, name), int(limit), float(seconds)))
        if not windows:
            return None
        with self._lock:
            now = self.clock()
            wait = 0.0
            for key, limit, seconds in windows:
                window = self._windows.setdefault(key, deque())
                while window and window[0] <= now - seconds:
                    window.popleft()
                if len(window) >= limit:
                    wait = max(wait, window[0] + seconds - now)
            if wait > 0:
                return max(1, math.ceil(wait))
            for key, _limit, _seconds in windows:
                self._windows[key].append(now)
            return None
