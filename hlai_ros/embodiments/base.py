"""What a robot is to the stack: its command, proprioception, frames, bounds and safety limits.

An `Embodiment` is written once per robot (`hlai_ros.embodiments.panda`, `...husky`) and
registered by name (`hlai_ros.embodiments.register`); a task names the embodiment it runs on,
and every layer that needs to talk to the robot (the sim and gate nodes, the recorder, the bag
loader and writer, the actor) asks the embodiment instead of spelling a topic or a field.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlai_ros.contract import WORLD_FRAME, Topic
from hlai_ros.data import messages
from hlai_ros.data import proprio as proprio_codec

PROPRIO_CODECS = ('joint_state', 'odometry')
KINEMATICS = ('holonomic', 'unicycle')


@dataclass(frozen=True)
class Embodiment:
    """A robot: command and proprioception topics with their codecs, frames, bounds, limits."""

    name: str
    """Registered name, e.g. the robot's model."""
    command: Topic
    """Velocity command topic and type (Twist or TwistStamped)."""
    command_role: str
    """The command's role in `hlai_ros.contract.TopicNames` (remappable on load)."""
    command_fields: tuple[str, ...]
    """Twist fields that carry the action, in action order, e.g. ``('linear.x', 'linear.y')``."""
    action_names: tuple[str, ...]
    """Names of the action's components, in order."""
    action_low: tuple[float, ...]
    """Lower action bounds, SI units (m/s, rad/s)."""
    action_high: tuple[float, ...]
    """Upper action bounds."""
    proprio: Topic
    """Proprioception topic and type."""
    proprio_role: str
    """The proprioception's role in `hlai_ros.contract.TopicNames`."""
    proprio_codec: str
    """'joint_state' (sensor_msgs/JointState) or 'odometry' (nav_msgs/Odometry)."""
    proprio_names: tuple[str, ...]
    """Labels of the proprioception vector (`hlai_ros.data.proprio`)."""
    state_frame: str
    """Frame of the positions this robot's states are measured in (REP-105)."""
    goal_frames: tuple[str, ...]
    """Frames a goal pose may be given in ('' is taken as the world frame)."""
    kinematics: str
    """'holonomic' (planar velocity) or 'unicycle' (forward speed and yaw rate)."""
    pose_labels: tuple[str, ...]
    """Labels of the robot's pose in ``/hlai/state`` (x, y[, yaw]) for the safety gate."""
    max_acceleration: tuple[float, ...]
    """Default safety limit of each command component's change per second."""
    command_frame: str = WORLD_FRAME
    """Frame of a stamped command."""

    def __post_init__(self):
        n = len(self.command_fields)
        if not (len(self.action_names) == len(self.action_low) == len(self.action_high) == n
                == len(self.max_acceleration)):
            raise ValueError(f'embodiment {self.name!r}: command fields, action names, bounds '
                             'and acceleration limits must have the same length')
        if not np.all(np.asarray(self.action_low) < np.asarray(self.action_high)):
            raise ValueError(f'embodiment {self.name!r}: action_low must be below action_high')
        if self.proprio_codec not in PROPRIO_CODECS:
            raise ValueError(f'embodiment {self.name!r}: proprio_codec must be one of '
                             f'{PROPRIO_CODECS}, got {self.proprio_codec!r}')
        if self.kinematics not in KINEMATICS:
            raise ValueError(f'embodiment {self.name!r}: kinematics must be one of {KINEMATICS}')

    @property
    def action_dim(self) -> int:
        """Number of action components."""
        return len(self.command_fields)

    @property
    def command_stamped(self) -> bool:
        """Whether the command carries a header."""
        return self.command.msgtype.endswith('TwistStamped')

    @property
    def max_velocity(self) -> tuple[float, ...]:
        """Largest magnitude of each command component: the action bounds."""
        return tuple(max(abs(lo), abs(hi)) for lo, hi in zip(self.action_low, self.action_high))

    def encode_command(self, action: np.ndarray, stamp_ns: int, stamped: bool | None = None):
        """The command message (typestore) carrying `action` (A,)."""
        stamped = self.command_stamped if stamped is None else stamped
        return messages.twist_command(action, self.command_fields, stamp_ns, stamped,
                                      self.command_frame)

    def decode_command(self, msg) -> np.ndarray:
        """The action (A,) float32 of a Twist or TwistStamped command message."""
        return messages.twist_to_action(msg, self.command_fields)

    def encode_proprio(self, names, vector: np.ndarray, stamp_ns: int):
        """The proprioception message (typestore) of a labelled vector."""
        if self.proprio_codec == 'joint_state':
            return proprio_codec.joint_state_from_vector(names, vector, stamp_ns)
        return proprio_codec.odometry_from_vector(names, vector, stamp_ns)

    def decode_proprio(self, msg, names) -> np.ndarray:
        """The labelled proprioception vector of a message (rclpy or typestore)."""
        if self.proprio_codec == 'joint_state':
            return proprio_codec.vector_from_joint_state(msg, names)
        return proprio_codec.vector_from_odometry(msg, names)
