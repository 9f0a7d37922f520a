"""Confidence intervals for closed-loop results: means of returns and rates of outcomes."""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence

# two-sided 95% Student t quantiles for small samples (df 1..30); the normal 1.96 beyond
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval (mean, low, high); a single value has a zero width."""
    n = len(values)
    if n == 0:
        raise ValueError('mean_interval needs at least one value')
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    q = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    half = q * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def rate_interval(successes: int, trials: int) -> tuple[float, float, float]:
    """Rate and 95% Wilson score interval (rate, low, high)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f'need 0 <= successes <= trials and trials > 0, got {successes}, '
                         f'{trials}')
    z = 1.959964
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ControllerSummary:
    """Closed-loop outcome of one controller over seeded episodes."""

    name: str
    """Controller name (random, scripted, planner, ...)."""
    episodes: int
    """Number of episodes."""
    mean_return: float
    """Mean undiscounted return."""
    return_interval: tuple[float, float]
    """95% interval of the mean return."""
    success_rate: float | None
    """Fraction of episodes that succeeded; None where the env reports no success."""
    success_interval: tuple[float, float] | None
    """95% Wilson interval of the success rate."""
    failure_rate: float | None
    """Fraction of episodes that failed (falls, collisions); None where not reported."""
    failure_interval: tuple[float, float] | None
    """95% Wilson interval of the failure rate."""
    mean_step_ms: float
    """Mean wall time of the controller per step, milliseconds."""

    def to_dict(self) -> dict:
        """Plain JSON-able values."""
        return {
            'episodes': self.episodes, 'mean_return': self.mean_return,
            'return_ci95': list(self.return_interval), 'success_rate': self.success_rate,
            'success_ci95': None if self.success_interval is None else list(
                self.success_interval),
            'failure_rate': self.failure_rate,
            'failure_ci95': None if self.failure_interval is None else list(
                self.failure_interval),
            'mean_step_ms': self.mean_step_ms,
        }


def summarise(name: str, returns: Sequence[float], successes: Sequence[bool | None],
              failures: Sequence[bool | None], step_ms: float) -> ControllerSummary:
    """Summarise per-episode returns and outcomes (None: the env did not say)."""
    mean, lo, hi = mean_interval(list(returns))

    def rate(flags):
        known = [bool(f) for f in flags if f is not None]
        if not known:
            return None, None
        p, a, b = rate_interval(sum(known), len(known))
        return p, (a, b)

    s, s_ci = rate(successes)
    f, f_ci = rate(failures)
    return ControllerSummary(name, len(returns), mean, (lo, hi), s, s_ci, f, f_ci, step_ms)
