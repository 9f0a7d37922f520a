"""Acceleration (rate) limits: how much each command component may change per second."""
from __future__ import annotations

import numpy as np


class AccelerationLimiter:
    """Limits the change of each component between consecutive commands.

    Args:
        max_acceleration: (A,) largest change of each component per second (m/s^2 for linear,
            rad/s^2 for angular components), finite and > 0.

    The limiter remembers the last command it let out. A stop (e-stop, watchdog, workspace
    edge) bypasses it through `reset`: stopping at once is always the safe choice, as in
    twist_mux and ros2_control timeouts.

    """

    def __init__(self, max_acceleration):
        self.max_acceleration = np.asarray(max_acceleration, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(self.max_acceleration)) or np.any(self.max_acceleration <= 0):
            raise ValueError(f'max_acceleration must be finite values > 0, got '
                             f'{self.max_acceleration.tolist()}')
        self.previous = np.zeros_like(self.max_acceleration)
        """The last command let out (A,); zero at start."""

    def limit(self, action: np.ndarray, dt_s: float) -> np.ndarray:
        """Return `action` (A,) moved at most max_acceleration * dt_s from the previous one.

        Raises:
            ValueError: `action` has the wrong shape, or dt_s is not finite and >= 0.

        """
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.previous.shape:
            raise ValueError(f'expected a command of {self.previous.size} components, got '
                             f'shape {action.shape}')
        if not (np.isfinite(dt_s) and dt_s >= 0):
            raise ValueError(f'dt_s must be finite and >= 0, got {dt_s}')
        step = self.max_acceleration * float(dt_s)
        out = np.clip(action, self.previous - step, self.previous + step)
        self.previous = out
        return out.copy()

    def reset(self, action=None) -> None:
        """Take `action` (default zero) as the last command let out."""
        self.previous = (np.zeros_like(self.previous) if action is None
                         else np.asarray(action, dtype=np.float64).reshape(self.previous.shape))
