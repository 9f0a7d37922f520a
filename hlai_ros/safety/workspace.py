"""Workspace limits: a command that would leave the workspace box is cut to zero that way."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINEMATICS = ('holonomic', 'unicycle')
"""How a command moves the position: 'holonomic' (the command is the planar velocity vx, vy
in the workspace frame, e.g. an end-effector twist) or 'unicycle' (a base's forward speed v
and yaw rate omega; the position is x, y, yaw in the workspace frame)."""


@dataclass(frozen=True)
class WorkspaceBox:
    """An axis-aligned box of allowed positions (x, y), metres, in one fixed frame."""

    lower: tuple[float, ...]
    """Smallest allowed x, y."""
    upper: tuple[float, ...]
    """Largest allowed x, y."""

    def __post_init__(self):
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lo.shape != (2,) or hi.shape != (2,) or not np.all(np.isfinite(lo)) \
                or not np.all(np.isfinite(hi)) or np.any(lo >= hi):
            raise ValueError(f'workspace needs finite lower < upper for x and y, got lower '
                             f'{list(self.lower)}, upper {list(self.upper)}')

    def leaving(self, position: np.ndarray, velocity: np.ndarray, dt_s: float) -> np.ndarray:
        """Return a (2,) bool mask of the axes along which the box is left within `dt_s`.

        An axis is set where `velocity` (m/s) takes `position` (m) outside the box within
        `dt_s` seconds while pointing outward.
        """
        p = np.asarray(position, float).reshape(-1)[:2]
        v = np.asarray(velocity, float).reshape(-1)[:2]
        ahead = p + v * float(dt_s)
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        return ((ahead > hi) & (v > 0)) | ((ahead < lo) & (v < 0))

    def contains(self, position) -> bool:
        """Return whether position (x, y) lies in the box (edges included)."""
        p = np.asarray(position, float).reshape(-1)[:2]
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        return bool(np.all(np.isfinite(p)) and np.all((p >= lo) & (p <= hi)))

    def cut(self, position, action: np.ndarray, dt_s: float,
            kinematics: str = 'holonomic') -> tuple[np.ndarray, bool]:
        """Return (action with the outward motion set to zero, whether anything was cut).

        Args:
            position: 'holonomic': (x, y) m; 'unicycle': (x, y, yaw) m, rad.
            action: 'holonomic': (vx, vy, ...) m/s; 'unicycle': (v, omega) m/s, rad/s.
            dt_s: look-ahead, seconds (one control period).
            kinematics: one of `KINEMATICS`.

        A 'unicycle' cannot stop one axis alone: its forward speed goes to zero, its turning
        stays (turning in place never leaves the box).

        """
        out = np.asarray(action, dtype=np.float64).reshape(-1).copy()
        p = np.asarray(position, dtype=np.float64).reshape(-1)
        if kinematics == 'holonomic':
            mask = self.leaving(p[:2], out[:2], dt_s)
            out[:2][mask] = 0.0
            return out, bool(mask.any())
        if kinematics == 'unicycle':
            if p.size < 3:
                raise ValueError(f'unicycle workspace check needs (x, y, yaw), got {p.tolist()}')
            velocity = out[0] * np.array([np.cos(p[2]), np.sin(p[2])])
            if self.leaving(p[:2], velocity, dt_s).any():
                out[0] = 0.0
                return out, True
            return out, False
        raise ValueError(f'kinematics must be one of {KINEMATICS}, got {kinematics!r}')
