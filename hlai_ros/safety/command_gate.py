"""The `command_gate` node's settings, ROS-free: the robot's limits, bounded by the robot's own.

`CommandGateConfig` holds the node's parameters (all read-only) and checks them against the
task's embodiment; `CommandGateConfig.limits` is the `SafetyLimits` of its `SafetyGate`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hlai_ros.safety.gate import SafetyLimits

RO = {'read_only': True}


@dataclass(frozen=True)
class CommandGateConfig:
    """Parameters of the `command_gate` node (all fixed for the node's life)."""

    task: str = field(default='', metadata=RO)
    """Registered task (required): its robot's command, limits and pose are gated."""
    max_velocity: tuple[float, ...] = field(default=(), metadata=RO)
    """Largest absolute value of each command component (m/s, rad/s), at most the robot's
    `max_velocity` (its action range); empty: that range."""
    max_acceleration: tuple[float, ...] = field(default=(), metadata=RO)
    """Largest change per second of each component (m/s^2, rad/s^2), finite and > 0; empty:
    the robot's `max_acceleration`."""
    workspace_lower: tuple[float, ...] = field(default=(), metadata=RO)
    """Smallest allowed position x, y, m (the robot's pose labels, in its state frame);
    empty (with workspace_upper): no workspace check."""
    workspace_upper: tuple[float, ...] = field(default=(), metadata=RO)
    """Largest allowed position x, y, m."""
    command_timeout_s: float = field(default=0.5, metadata=RO)
    """Watchdog: no fresh command for this long (wall clock, s) -> zero; in (0, 2]."""
    position_timeout_s: float = field(default=0.5, metadata=RO)
    """With a workspace: no /hlai/state for this long (s) -> zero; in (0, 2]."""
    position_labels: tuple[str, ...] = field(default=(), metadata=RO)
    """Labels of the position in /hlai/state; empty: the robot's `pose_labels`."""
    control_hz: float = field(default=10.0, metadata=RO)
    """Control rate: the workspace look-ahead is one period; lockstep's acceleration step."""
    rate_hz: float = field(default=20.0, metadata=RO)
    """Rate of the watchdog check and of the zero commands while the input is silent, Hz."""
    lockstep: bool = field(default=False, metadata=RO)
    """The command steps a lockstep simulator: no invented commands while the input lives."""
    stamped_output: bool = field(default=False, metadata=RO)
    """Publish geometry_msgs/TwistStamped where the robot's command is a Twist (newer diff
    drives)."""
    estop_hold_s: float = field(default=0.5, metadata=RO)
    """A release is refused until this long after the last True on /hlai/estop, s."""

    def __post_init__(self):
        from hlai_ros.tasks import check_task, get_task
        check_task(self.task)
        body = get_task(self.task).embodiment
        ceiling = np.asarray(body.max_velocity)
        if self.max_velocity and (len(self.max_velocity) != ceiling.size or not np.all(
                np.asarray(self.max_velocity) <= ceiling)):
            raise ValueError(f'max_velocity must be {ceiling.size} values, each at most the '
                             f'action range {ceiling.tolist()}, got {list(self.max_velocity)}')
        for name in ('command_timeout_s', 'position_timeout_s'):
            if not 0 < getattr(self, name) <= 2.0:
                raise ValueError(f'{name} must be in (0, 2] s, got {getattr(self, name)}')
        if not (0 < self.control_hz <= 1000 and 0 < self.rate_hz <= 1000):
            raise ValueError('control_hz and rate_hz must be in (0, 1000]')
        if self.position_labels and len(self.position_labels) != len(body.pose_labels):
            raise ValueError(f'position_labels needs {len(body.pose_labels)} labels, '
                             f'got {list(self.position_labels)}')
        self.limits  # noqa: B018 - validates the limits themselves

    @property
    def limits(self) -> SafetyLimits:
        """The `SafetyLimits` these parameters describe (raises ValueError if invalid)."""
        from hlai_ros.tasks import get_task
        body = get_task(self.task).embodiment
        return SafetyLimits(
            max_velocity=tuple(self.max_velocity or body.max_velocity),
            max_acceleration=tuple(self.max_acceleration or body.max_acceleration),
            command_timeout_s=self.command_timeout_s,
            workspace_lower=tuple(self.workspace_lower),
            workspace_upper=tuple(self.workspace_upper), kinematics=body.kinematics,
            position_timeout_s=self.position_timeout_s, period_s=1.0 / self.control_hz)
