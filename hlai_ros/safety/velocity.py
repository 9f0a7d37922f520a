"""Velocity limits: every component of a command clipped to a symmetric bound."""
from __future__ import annotations

import numpy as np


def limit_velocity(action: np.ndarray, max_velocity) -> np.ndarray:
    """Return `action` (A,) with component i clipped to [-max_velocity[i], max_velocity[i]].

    Units are the command's own (m/s for linear, rad/s for angular components). A non-finite
    component becomes 0: NaN must never reach a driver, and clipping would keep it NaN.

    Raises:
        ValueError: `max_velocity` is not (A,) of finite values > 0.

    """
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    bound = np.asarray(max_velocity, dtype=np.float64).reshape(-1)
    if bound.shape != action.shape or not np.all(np.isfinite(bound)) or np.any(bound <= 0):
        raise ValueError(f'max_velocity must be {action.shape[0]} finite values > 0 (one per '
                         f'command component), got {bound.tolist()}')
    safe = np.where(np.isfinite(action), action, 0.0)
    return np.clip(safe, -bound, bound)
