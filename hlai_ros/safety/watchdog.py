"""The command watchdog: no fresh command within the timeout means the command is zero."""
from __future__ import annotations

import math


class Watchdog:
    """Tracks the time of the last fresh input against a timeout.

    Args:
        timeout_s: longest allowed age of the last input, seconds (> 0).

    Times are seconds on one monotonic clock chosen by the caller (a node uses the wall clock,
    so a paused simulation or a stopped /clock cannot keep an old command alive). Never fed
    counts as expired.

    """

    def __init__(self, timeout_s: float):
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f'timeout_s must be finite and > 0, got {timeout_s}')
        self.timeout_s = float(timeout_s)
        self.last_s = -math.inf
        """Time of the last `feed`, seconds (-inf: never)."""
        self.expiries = 0
        """How many times the watchdog went from fresh to expired."""
        self._was_expired = True

    def feed(self, now_s: float) -> None:
        """Record a fresh input at `now_s`."""
        self.last_s = float(now_s)
        self._was_expired = False

    def age(self, now_s: float) -> float:
        """Return seconds since the last input (inf: never fed)."""
        return float(now_s) - self.last_s

    def expired(self, now_s: float) -> bool:
        """Return whether the last input is older than the timeout (or there was none)."""
        expired = self.age(now_s) > self.timeout_s
        if expired and not self._was_expired:
            self.expiries += 1
        self._was_expired = expired
        return expired
