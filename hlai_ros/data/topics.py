"""The topic contract: names, message types and frames of the ROS graph and of episode bags.

One source of truth for `hlai collect`, the bag loader and the ROS nodes (DESIGN.md, "Topic
contract"). Every name here is a default that a node may remap; the loader accepts a mapping of
its own. Type strings use the ROS 2 form ``package/msg/Name`` that rosbag2 stores.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A topic name and the message type it carries."""

    name: str
    """Topic name, e.g. ``/camera/image_raw``."""
    msgtype: str
    """ROS 2 message type, e.g. ``sensor_msgs/msg/Image``."""


# -- sensors ------------------------------------------------------------------------------------
CAMERA_RGB = Topic('/camera/image_raw', 'sensor_msgs/msg/Image')
"""Colour image, encoding ``rgb8``."""
CAMERA_DEPTH = Topic('/camera/depth/image_raw', 'sensor_msgs/msg/Image')
"""Depth image, encoding ``32FC1`` in metres (``16UC1`` millimetres is accepted on load)."""
CAMERA_INFO = Topic('/camera/camera_info', 'sensor_msgs/msg/CameraInfo')
"""Intrinsics of the camera; shares stamp and frame with both images."""
JOINT_STATES = Topic('/joint_states', 'sensor_msgs/msg/JointState')
"""Arm proprioception (push): joint positions and velocities."""
ODOM = Topic('/odom', 'nav_msgs/msg/Odometry')
"""Mobile-base proprioception (cliff): pose in ``odom`` and body-frame twist."""
CLOCK = Topic('/clock', 'rosgraph_msgs/msg/Clock')
"""Simulation time (``use_sim_time``)."""
GOAL = Topic('/goal_pose', 'geometry_msgs/msg/PoseStamped')
"""Goal position in the ``world`` frame."""
TF_STATIC = Topic('/tf_static', 'tf2_msgs/msg/TFMessage')
"""Static transforms; carries ``world`` -> camera optical frame (the calibrated extrinsics)."""

# -- commands -----------------------------------------------------------------------------------
ARM_COMMAND = Topic('/servo_node/delta_twist_cmds', 'geometry_msgs/msg/TwistStamped')
"""End-effector velocity command (MoveIt Servo style): linear x, y in m/s, frame ``world``."""
BASE_COMMAND = Topic('/cmd_vel', 'geometry_msgs/msg/Twist')
"""Base velocity command: linear.x in m/s, angular.z in rad/s (TwistStamped accepted on load)."""

# -- episode bookkeeping and evaluation-only data -----------------------------------------------
EPISODE = Topic('/hlai/episode', 'std_msgs/msg/String')
"""JSON episode markers: {"event": "start"|"end", "episode": i, "task": ..., "seed": ...}."""
GROUND_TRUTH_PREFIX = '/ground_truth/'
"""Namespace of privileged simulator state; only evaluation may read it."""
GROUND_TRUTH = Topic(GROUND_TRUTH_PREFIX + 'state', 'std_msgs/msg/String')
"""JSON of the world's ``info['ground_truth']`` at each control step."""

# -- frames (REP-103 / REP-105) -----------------------------------------------------------------
WORLD_FRAME = 'world'
CAMERA_FRAME = 'camera_optical_frame'
ODOM_FRAME = 'odom'
BASE_FRAME = 'base_link'

# -- per task -----------------------------------------------------------------------------------
PROPRIO_TOPIC = {'push': JOINT_STATES, 'cliff': ODOM}
"""Proprioception topic of each task."""
COMMAND_TOPIC = {'push': ARM_COMMAND, 'cliff': BASE_COMMAND}
"""Command topic of each task."""
COMMAND_TYPES = {
    ARM_COMMAND.name: ('geometry_msgs/msg/TwistStamped',),
    BASE_COMMAND.name: ('geometry_msgs/msg/Twist', 'geometry_msgs/msg/TwistStamped'),
}
"""Message types accepted on load for each command topic (DESIGN.md allows either for cmd_vel)."""


def sensor_topics(task: str) -> tuple[Topic, ...]:
    """Return the topics a recording of `task` must carry to yield observations."""
    _check_task(task)
    return (CAMERA_RGB, CAMERA_DEPTH, CAMERA_INFO, PROPRIO_TOPIC[task])


def episode_topics(task: str) -> tuple[Topic, ...]:
    """Return every topic that `hlai collect` writes for `task`, in writing order."""
    _check_task(task)
    return (TF_STATIC, EPISODE, CLOCK, CAMERA_RGB, CAMERA_DEPTH, CAMERA_INFO, PROPRIO_TOPIC[task],
            GOAL, GROUND_TRUTH, COMMAND_TOPIC[task])


def _check_task(task: str) -> None:
    if task not in PROPRIO_TOPIC:
        raise ValueError(f'unknown task {task!r}; choose one of {sorted(PROPRIO_TOPIC)}')


@dataclass(frozen=True)
class TopicNames:
    """Topic names a recording uses, by role; defaults are the contract's (remap for a robot)."""

    rgb: str = CAMERA_RGB.name
    """Colour image."""
    depth: str = CAMERA_DEPTH.name
    """Depth image."""
    camera_info: str = CAMERA_INFO.name
    """Camera intrinsics."""
    joint_states: str = JOINT_STATES.name
    """Arm proprioception."""
    odom: str = ODOM.name
    """Base proprioception."""
    clock: str = CLOCK.name
    """Simulation time."""
    goal: str = GOAL.name
    """Goal pose."""
    tf_static: str = TF_STATIC.name
    """Static transforms (camera extrinsics)."""
    arm_command: str = ARM_COMMAND.name
    """Arm end-effector velocity command."""
    base_command: str = BASE_COMMAND.name
    """Base velocity command."""
    episode: str = EPISODE.name
    """Episode markers."""
    ground_truth: str = GROUND_TRUTH.name
    """Privileged state, evaluation only."""
