"""Simulation graph on a ROS 2 install: the world in the loop.

    ros2 launch hlai_ros sim.launch.py task:=<task> use_sim_time:=true gui:=false record:=/data
    ros2 launch hlai_ros sim.launch.py task:=cliff view:=true   # rerun: http://127.0.0.1:9090
    ros2 launch hlai_ros sim.launch.py task:=cliff params_file:=my_cliff.yaml

The learned ``mpc_actor`` closes the loop (``controller:=mpc``, the default, on the shipped
model or ``model:=DIR``; ``controller:=scripted`` for the privileged baseline). A thin
description: the node set, parameters and remaps come from `hlai_ros.graph`, the same
source that `hlai run` starts (a test checks that the two agree). ``params_file:=FILE``, a
ROS 2 parameter file in the form of ``config/<task>.yaml``, goes over the task's file, under
the other arguments; it is checked with the nodes' own checks before any node starts, as
``hlai run --params-file`` checks it.
"""
import sys

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from hlai_ros.graph import (
    LAUNCH_ARGUMENTS,
    PARAMS_FILE_ARGUMENT,
    calm_teardown,
    checked_build,
    launch_node_arguments,
    options_from_launch,
)
from launch import LaunchDescription

ARGUMENTS = {**LAUNCH_ARGUMENTS, 'params_file': PARAMS_FILE_ARGUMENT}


def _nodes(context, *args, **kwargs):
    values = dict(context.launch_configurations)
    options = options_from_launch(values, target='sim')
    notes = []
    # every node's own checks, of the arguments and the parameter file, before any starts
    specs = checked_build(options, values.get('params_file', ''), notes)
    for note in notes:  # the file's settings that the arguments replace
        print(note, file=sys.stderr)
    return [Node(**launch_node_arguments(spec, options.task)) for spec in specs]


def generate_launch_description():
    """Declare the arguments; build the nodes once they are known."""
    calm_teardown()
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
