"""Record a running graph (simulated or real) into a rosbag2 MCAP bag that `hlai train` loads.

    ros2 launch hlai_ros record.launch.py task:=<task> record:=/data/run1 use_sim_time:=false

The recorder's parameters come from `hlai_ros.graph.recorder_node`, as in `hlai run --record`;
``view:=true`` adds the live view (`hlai_ros.graph.view_node`, rerun), as ``hlai run --view``.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from hlai_ros.graph import (
    LAUNCH_ARGUMENTS,
    calm_teardown,
    check_flag,
    checked,
    launch_node_arguments,
    recorder_node,
    view_node,
)
from hlai_ros.tasks import check_task
from launch import LaunchDescription

ARGUMENTS = {
    'task': LAUNCH_ARGUMENTS['task'],
    'record': ('', 'bag directory to create (required)'),
    'use_sim_time': ('false', 'stamp headerless messages with /clock time'),
    'view': LAUNCH_ARGUMENTS['view'],
}


def _nodes(context, *args, **kwargs):
    values = dict(context.launch_configurations)
    check_task(values['task'])
    if not values.get('record'):
        raise ValueError('record:=<bag directory> is required')
    sim_time = check_flag('use_sim_time', values['use_sim_time'])
    specs = [recorder_node(values['task'], values['record'], sim_time)]
    if check_flag('view', values['view']):
        specs.append(view_node(values['task'], sim_time))
    specs = checked(specs, values['task'])  # every node's own checks, before any starts
    return [Node(**launch_node_arguments(spec, values['task'])) for spec in specs]


def generate_launch_description():
    """Declare the arguments; build the recorder once they are known."""
    calm_teardown()
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
