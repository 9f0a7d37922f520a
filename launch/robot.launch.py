r"""The graph on a physical robot: no simulator, contract topics remapped onto its drivers.

    ros2 launch hlai_ros robot.launch.py task:=cliff image:=/camera/color/image_raw \\
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info

What runs today: ``perception`` (and ``recorder`` with ``record:=DIR``). The learned nodes
(``world_model``, ``cost_critic``, ``mpc_actor``) are added by `hlai_ros.graph.build` once they
exist; the ``mpc_actor`` will carry the safety layer (velocity, acceleration and workspace
limits, the command watchdog, the e-stop), which this file must then keep switched on.
Nothing here publishes commands yet: there is no controller on a robot until the actor exists
(the scripted baseline reads simulator ground truth and is refused for robots).
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from hlai_ros.data.topics import (
    CAMERA_DEPTH,
    CAMERA_INFO,
    CAMERA_RGB,
    COMMAND_TOPIC,
    PROPRIO_TOPIC,
)
from hlai_ros.graph import build, launch_node_arguments, options_from_launch
from launch import LaunchDescription

ARGUMENTS = {
    'task': ('push', 'push or cliff'),
    'record': ('', 'bag directory to record into; empty: no recorder'),
    'image': (CAMERA_RGB.name, "the driver's colour image topic (rgb8/bgr8)"),
    'depth': (CAMERA_DEPTH.name, "the driver's depth topic (32FC1 m or 16UC1 mm)"),
    'camera_info': (CAMERA_INFO.name, "the driver's camera_info topic"),
    'proprio': ('', "joint states (push) or odometry (cliff); empty: the contract's name"),
    'command': ('', "where commands go (MoveIt Servo twist or the base's cmd_vel); empty: the "
                "contract's name"),
}


def _nodes(context, *args, **kwargs):
    values = dict(context.launch_configurations)
    task = values['task']
    remaps = [(CAMERA_RGB.name, values['image']), (CAMERA_DEPTH.name, values['depth']),
              (CAMERA_INFO.name, values['camera_info']),
              (PROPRIO_TOPIC[task].name, values['proprio'] or PROPRIO_TOPIC[task].name),
              (COMMAND_TOPIC[task].name, values['command'] or COMMAND_TOPIC[task].name)]
    remaps = tuple((a, b) for a, b in remaps if a != b)
    options = options_from_launch({'task': task, 'record': values['record'],
                                   'use_sim_time': 'false', 'controller': 'none'},
                                  target='robot', remappings=remaps)
    # PLACE FOR THE ACTOR: switch controller to 'mpc' here once the mpc_actor node exists,
    # with its limits and watchdog parameters fixed (read-only) in config/<task>.yaml.
    return [Node(**launch_node_arguments(spec, task)) for spec in build(options)]


def generate_launch_description():
    """Declare the arguments; build the nodes once they are known."""
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
