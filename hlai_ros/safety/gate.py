"""The safety gate: one command in, the command that is safe to send out.

Order of the checks in `SafetyGate.output`, each able only to make the command smaller:

1. e-stop latched -> zero (reason ``estop``);
2. no fresh command within ``command_timeout_s`` (the watchdog) -> zero (``timeout``);
3. velocity limits: each component clipped to ``max_velocity`` (``velocity``);
4. acceleration limits: change per second at most ``max_acceleration`` (``acceleration``);
5. workspace: the motion that would leave the box within one period is cut to zero
   (``workspace``); without a position younger than ``position_timeout_s`` the command is
   zero (``no position``), since the box cannot be checked.

Stops (1, 2, 5) bypass the acceleration limit: stopping at once is the safe choice.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from hlai_ros.safety.acceleration import AccelerationLimiter
from hlai_ros.safety.estop import EStopLatch
from hlai_ros.safety.velocity import limit_velocity
from hlai_ros.safety.watchdog import Watchdog
from hlai_ros.safety.workspace import KINEMATICS, WorkspaceBox

OK, ESTOP, TIMEOUT, VELOCITY, ACCELERATION, WORKSPACE, NO_POSITION = (
    'ok', 'estop', 'timeout', 'velocity', 'acceleration', 'workspace', 'no position')
"""Reasons `SafetyGate.output` gives; ESTOP, TIMEOUT and NO_POSITION mean a zero command."""


@dataclass(frozen=True)
class SafetyLimits:
    """Limits of one robot's command (A components)."""

    max_velocity: tuple[float, ...]
    """Largest absolute value of each command component (m/s or rad/s), finite and > 0."""
    max_acceleration: tuple[float, ...]
    """Largest change of each component per second (m/s^2 or rad/s^2), finite and > 0."""
    command_timeout_s: float = 0.5
    """The watchdog: a command older than this (wall clock, s) is replaced by zero."""
    workspace_lower: tuple[float, ...] = ()
    """Smallest allowed position x, y (m); empty with `workspace_upper`: no workspace check."""
    workspace_upper: tuple[float, ...] = ()
    """Largest allowed position x, y (m)."""
    kinematics: str = 'holonomic'
    """How the command moves the position (`hlai_ros.safety.workspace.KINEMATICS`)."""
    position_timeout_s: float = 0.5
    """With a workspace: a position older than this (s) cannot vouch for the command."""
    period_s: float = 0.1
    """Control period, s: the workspace look-ahead."""

    def __post_init__(self):
        v, a = np.asarray(self.max_velocity, float), np.asarray(self.max_acceleration, float)
        if v.ndim != 1 or v.size == 0 or v.shape != a.shape:
            raise ValueError(f'max_velocity and max_acceleration need one value per command '
                             f'component, got {list(self.max_velocity)} and '
                             f'{list(self.max_acceleration)}')
        for name, values in (('max_velocity', v), ('max_acceleration', a)):
            if not np.all(np.isfinite(values)) or np.any(values <= 0):
                raise ValueError(f'{name} must be finite and > 0, got {values.tolist()}')
        for name in ('command_timeout_s', 'position_timeout_s', 'period_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be finite and > 0, got {value}')
        if bool(self.workspace_lower) != bool(self.workspace_upper):
            raise ValueError('give both workspace_lower and workspace_upper, or neither')
        if self.workspace_lower:
            WorkspaceBox(tuple(self.workspace_lower), tuple(self.workspace_upper))
        if self.kinematics not in KINEMATICS:
            raise ValueError(f'kinematics must be one of {KINEMATICS}, got {self.kinematics!r}')

    @property
    def workspace(self) -> WorkspaceBox | None:
        """The workspace box, or None when unchecked."""
        if not self.workspace_lower:
            return None
        return WorkspaceBox(tuple(self.workspace_lower), tuple(self.workspace_upper))


class SafetyGate:
    """Applies `SafetyLimits`, the watchdog and the e-stop latch; see the module docstring.

    Args:
        limits: `SafetyLimits`.
        estop: an `EStopLatch` to share (default: a new one).

    Times are seconds on the caller's monotonic (wall) clock.

    """

    def __init__(self, limits: SafetyLimits, estop: EStopLatch | None = None):
        self.limits = limits
        self.size = len(limits.max_velocity)
        self.watchdog = Watchdog(limits.command_timeout_s)
        self.estop = estop or EStopLatch()
        self.accel = AccelerationLimiter(limits.max_acceleration)
        self.command = np.zeros(self.size)
        """The last accepted upstream command (A,)."""
        self.position = None
        self.position_s = -math.inf
        self.counts = {r: 0 for r in (OK, ESTOP, TIMEOUT, VELOCITY, ACCELERATION, WORKSPACE,
                                      NO_POSITION)}
        """How many outputs each reason decided."""
        self.refused = 0
        """Upstream commands refused (wrong size or non-finite)."""

    def accept(self, action, now_s: float) -> str:
        """Take a new upstream command (A,); return '' or why it was refused.

        A refused command does not feed the watchdog: a stream of bad commands ends in zero.
        """
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.size,):
            self.refused += 1
            return f'expected {self.size} command components, got {action.size}'
        if not np.all(np.isfinite(action)):
            self.refused += 1
            return f'non-finite command {action.tolist()}'
        self.command = action
        self.watchdog.feed(now_s)
        return ''

    def update_position(self, position, now_s: float) -> str:
        """Take the current position ((x, y) or (x, y, yaw)); return '' or why refused."""
        p = np.asarray(position, dtype=np.float64).reshape(-1)
        need = 3 if self.limits.kinematics == 'unicycle' else 2
        if p.size < need or not np.all(np.isfinite(p[:need])):
            return f'position needs {need} finite values, got {p.tolist()}'
        self.position, self.position_s = p[:need], float(now_s)
        return ''

    def output(self, now_s: float, dt_s: float) -> tuple[np.ndarray, str]:
        """Return (the safe command (A,), the reason that decided it) for time `now_s`.

        Args:
            now_s: the caller's clock, seconds.
            dt_s: time since the previous output, seconds (for the acceleration limit).

        """
        if self.estop.engaged:
            return self._stop(ESTOP)
        if self.watchdog.expired(now_s):
            return self._stop(TIMEOUT)
        reason = OK
        out = limit_velocity(self.command, self.limits.max_velocity)
        if not np.array_equal(out, self.command):
            reason = VELOCITY
        wanted = out
        out = self.accel.limit(out, max(float(dt_s), 0.0))
        if reason == OK and not np.array_equal(out, wanted):
            reason = ACCELERATION
        box = self.limits.workspace
        if box is not None:
            if self.position is None or now_s - self.position_s > self.limits.position_timeout_s:
                return self._stop(NO_POSITION)
            out, cut = box.cut(self.position, out, self.limits.period_s, self.limits.kinematics)
            if cut:
                self.accel.reset(out)
                reason = WORKSPACE
        self.counts[reason] += 1
        return out, reason

    def _stop(self, reason: str) -> tuple[np.ndarray, str]:
        self.accel.reset()
        self.counts[reason] += 1
        return np.zeros(self.size), reason
