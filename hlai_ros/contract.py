"""The topic contract: names, message types, QoS and frames of the ROS graph and of bags.

The one source of truth for `hlai collect`, the bag loader, the launch files and every node
(DESIGN.md, "Topic contract"); no other module spells a contract topic. Every name here is a
default that a node may remap; the loader accepts a mapping of its own. Type strings use the
ROS 2 form ``package/msg/Name`` that rosbag2 stores. QoS is described without rclpy
(`QoS`); the node layer turns it into an rclpy profile (`hlai_ros.nodes.convert.qos_profile`).
Which proprioception and command topics a robot uses is its embodiment's
(`hlai_ros.embodiments`), not a table here.

Goals come as a pose (`GOAL`, the state representation) or as an image (`GOAL_IMAGE` and
`GOAL_DEPTH`, the latent representation). The sim node publishes both at each episode start;
on a robot the user publishes them: a pose from RViz, or a goal image captured with the
robot's own camera (colour and depth under one stamp, in the camera's frame, latched).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QoS:
    """A QoS profile in words (rclpy-free): queue depth and whether late joiners get the last."""

    depth: int = 10
    """History depth (keep last)."""
    latched: bool = False
    """Transient-local durability: a subscriber that joins late gets the last message."""


SENSOR_QOS = QoS(depth=2)
"""Sensor streams: a slow reader works on the newest frames."""
COMMAND_QOS = QoS(depth=10)
"""Commands and markers."""
LATCHED_QOS = QoS(depth=1, latched=True)
"""Goals, extrinsics, profiles: the last one holds until replaced."""


@dataclass(frozen=True)
class Topic:
    """A topic name, the message type it carries and its QoS."""

    name: str
    """Topic name, e.g. ``/camera/image_raw``."""
    msgtype: str
    """ROS 2 message type, e.g. ``sensor_msgs/msg/Image``."""
    qos: QoS = COMMAND_QOS
    """QoS both ends use."""


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
GOAL = Topic('/goal_pose', 'geometry_msgs/msg/PoseStamped', LATCHED_QOS)
"""Goal position in the ``world`` frame."""
GOAL_IMAGE = Topic('/goal_image', 'sensor_msgs/msg/Image', LATCHED_QOS)
"""Goal image (the latent representation's goal): the scene as it should look with the task
done, encoding ``rgb8``, in the camera's frame and size. In simulation the sim node renders it
(`HlaiWorld.goal_observation`) and publishes it at each episode start, and again when the goal
moves; on a robot the user captures one with the robot's camera and publishes it, with
`GOAL_DEPTH` under the same stamp and frame (latched: publish once, it holds until replaced)."""
GOAL_DEPTH = Topic('/goal_image/depth', 'sensor_msgs/msg/Image', LATCHED_QOS)
"""Depth of the goal image, ``32FC1`` in metres; same stamp and frame as `GOAL_IMAGE`."""
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

# -- the learned stack's own topics ------------------------------------------------------------
STATE = Topic('/hlai/state', 'std_msgs/msg/Float32MultiArray', QoS(depth=1))
"""Perception's labelled state (one ``MultiArrayDimension`` label per entry); depth 1: a slow
reader plans on the newest state."""
LATENT = Topic('/hlai/latent', 'std_msgs/msg/Float32MultiArray', QoS(depth=1))
"""Perception's latent in latent mode (a model folder with a learned encoder): one
``MultiArrayDimension`` per part, in order ``map`` (the image latent map, flattened),
``keypoints`` (x, y per keypoint) and ``proprio_latent``, each with its size
(`hlai_ros.latent.node_core.latent_layout`); depth 1 like `STATE`."""
LATENT_GOAL = Topic('/hlai/latent_goal', 'std_msgs/msg/Float32MultiArray', LATCHED_QOS)
"""The goal image's latent (`GOAL_IMAGE` + `GOAL_DEPTH` through the same encoder), laid out
as `LATENT`; latched: the actor plans towards the last one."""
PLAN = Topic('/hlai/plan', 'nav_msgs/msg/Path')
"""The actor's planned path (ensemble mean of the task's pose labels)."""
IMAGINED = Topic('/hlai/imagined', 'visualization_msgs/msg/MarkerArray')
"""The world model's imagined rollouts, one line strip per ensemble member."""
COST = Topic('/hlai/cost', 'std_msgs/msg/Float32')
"""Task cost of the current state."""
CRITIC = Topic('/hlai/critic', 'std_msgs/msg/Float32')
"""The critic's cost-to-go of the current state."""
SURPRISE = Topic('/hlai/surprise', 'std_msgs/msg/Float32')
"""How badly the world model predicted the last transition."""
ESTOP = Topic('/hlai/estop', 'std_msgs/msg/Bool')
"""True latches the e-stop of the actor and the gate."""
PROFILE = Topic('/hlai/cost_profile', 'std_msgs/msg/String', LATCHED_QOS)
"""The cost profile in effect (JSON of `hlai_ros.cost.profile.CostProfile`), published by the
configurator (the ``cost_critic`` node) and applied by the actor, so both always agree."""
ACTOR_COMMAND = Topic('/hlai/actor_command', '')
"""Where the ``command_gate`` listens: the controller's command topic is remapped here (the
type is the embodiment's command type)."""
OBJECT_POSE = Topic('/hlai/object_pose', 'geometry_msgs/msg/PoseStamped')
"""The perceived pose of the object a task moves, for RViz (the task says which pose)."""
ROBOT_POSE = Topic('/hlai/robot_pose', 'geometry_msgs/msg/PoseStamped')
"""The perceived pose of a mobile robot, for RViz."""
CAMERA_EXTRINSICS = Topic('/hlai/camera_extrinsics', 'geometry_msgs/msg/TransformStamped',
                          LATCHED_QOS)
"""``world`` -> camera optical frame, for robots without tf2 (the sim publishes it)."""
DIAGNOSTICS = Topic('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray')
"""Every node's status."""

COMMAND_TYPES = {
    ARM_COMMAND.name: ('geometry_msgs/msg/TwistStamped',),
    BASE_COMMAND.name: ('geometry_msgs/msg/Twist', 'geometry_msgs/msg/TwistStamped'),
}
"""Message types accepted on load for each command topic (DESIGN.md allows either for cmd_vel)."""


def sensor_topics(embodiment) -> tuple[Topic, ...]:
    """Return the topics a recording of an embodiment must carry to yield observations."""
    return (CAMERA_RGB, CAMERA_DEPTH, CAMERA_INFO, embodiment.proprio)


def episode_topics(embodiment) -> tuple[Topic, ...]:
    """Return every topic that `hlai collect` writes for an embodiment, in writing order."""
    return (TF_STATIC, EPISODE, CLOCK, CAMERA_RGB, CAMERA_DEPTH, CAMERA_INFO, embodiment.proprio,
            GOAL, GOAL_IMAGE, GOAL_DEPTH, GROUND_TRUTH, embodiment.command)


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
    goal_image: str = GOAL_IMAGE.name
    """Goal image, colour (the latent representation's goal)."""
    goal_depth: str = GOAL_DEPTH.name
    """Goal image, depth."""
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
