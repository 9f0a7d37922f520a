"""Simulation graph on a ROS 2 install: the world in the loop.

    ros2 launch hlai_ros sim.launch.py task:=<task> use_sim_time:=true gui:=false record:=/data
    ros2 launch hlai_ros sim.launch.py task:=cliff view:=true   # rerun: http://127.0.0.1:9090

The learned ``mpc_actor`` closes the loop (``controller:=mpc``, the default, on the shipped
model or ``model:=DIR``; ``controller:=scripted`` for the privileged baseline). A thin
description: the node set, parameters and remaps come from `hlai_ros.graph`, the same
source that `hlai run` starts (a test checks that the two agree).
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from hlai_ros.graph import (
    LAUNCH_ARGUMENTS,
    build,
    calm_teardown,
    checked,
    launch_node_arguments,
    options_from_launch,
)
from launch import LaunchDescription


def _nodes(context, *args, **kwargs):
    options = options_from_launch(dict(context.launch_configurations), target='sim')
    specs = checked(build(options), options.task)  # every node's own checks, before any starts
    return [Node(**launch_node_arguments(spec, options.task)) for spec in specs]


def generate_launch_description():
    """Declare the arguments; build the nodes once they are known."""
    calm_teardown()
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in LAUNCH_ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
