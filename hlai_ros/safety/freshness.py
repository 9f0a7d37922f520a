"""Freshness of message stamps: stale, from the future, or out of order."""
from __future__ import annotations

from dataclasses import dataclass
import math

FRESH, UNSTAMPED, STALE, FUTURE, OUT_OF_ORDER = (
    'fresh', 'unstamped', 'stale', 'future', 'out of order')
"""Verdicts of `StampCheck.check`; only FRESH and UNSTAMPED may be used."""


@dataclass(frozen=True)
class FreshnessLimits:
    """What counts as a usable stamp."""

    max_age_s: float = 0.5
    """A stamp older than this against the receiver's clock is stale, seconds."""
    max_future_s: float = 0.1
    """A stamp ahead of the receiver's clock by more than this is from the future, seconds
    (clock offsets between machines stay below it)."""
    allow_repeat: bool = True
    """Whether a stamp equal to the last one is accepted (a republished frame)."""

    def __post_init__(self):
        for name in ('max_age_s', 'max_future_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be finite and > 0, got {value}')


class StampCheck:
    """Judges the stamps of one stream against the receiver's clock and the last stamp.

    Args:
        limits: `FreshnessLimits`.

    A stamp of 0 (never set) is UNSTAMPED: the caller decides (e.g. a Twist-like command
    uses its arrival time). Only accepted stamps advance the order, so one stamp from the
    far future cannot lock out every later message.

    """

    def __init__(self, limits: FreshnessLimits = FreshnessLimits()):
        self.limits = limits
        self.last_ns = -1
        """Last accepted stamp, nanoseconds (-1: none)."""

    def check(self, stamp_ns: int, now_ns: int) -> str:
        """Return the verdict for a message stamped `stamp_ns`, received at `now_ns`."""
        stamp_ns, now_ns = int(stamp_ns), int(now_ns)
        if stamp_ns == 0:
            return UNSTAMPED
        if stamp_ns - now_ns > self.limits.max_future_s * 1e9:
            return FUTURE
        if now_ns - stamp_ns > self.limits.max_age_s * 1e9:
            return STALE
        if stamp_ns < self.last_ns or (stamp_ns == self.last_ns
                                       and not self.limits.allow_repeat):
            return OUT_OF_ORDER
        self.last_ns = stamp_ns
        return FRESH

    def fault(self, stamp_ns: int, now_ns: int, allow_unstamped: bool = True) -> str:
        """'' for a usable stamp of a stream, else the input fault: ``'<verdict>: ...'``.

        While the clock reads 0 or less (no /clock yet) only the order is checked; when it
        jumps back behind the last stamp (a replayed bag looped), the order restarts.
        """
        t, now = int(stamp_ns), int(now_ns)
        if now <= 0:
            verdict = FRESH if t >= self.last_ns else OUT_OF_ORDER
            if verdict == FRESH:
                self.last_ns = t
        else:
            if self.last_ns > now + self.limits.max_future_s * 1e9:
                self.reset()
            verdict = self.check(t, now)
        if verdict == FRESH or (verdict == UNSTAMPED and allow_unstamped):
            return ''
        return (f'{verdict}: stamp {t * 1e-9:.3f} s, clock {now * 1e-9:.3f} s, last '
                f'{self.last_ns * 1e-9:.3f} s')

    def reset(self) -> None:
        """Forget the last stamp (a new episode, a clock that jumped back)."""
        self.last_ns = -1
