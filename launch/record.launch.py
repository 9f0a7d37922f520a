"""Record a running graph (simulated or real) into a rosbag2 MCAP bag that `hlai train` loads.

    ros2 launch hlai_ros record.launch.py task:=<task> record:=/data/run1 use_sim_time:=false

The recorder's parameters come from `hlai_ros.graph.recorder_node`, as in `hlai run --record`;
``view:=true`` adds the live view (`hlai_ros.graph.view_node`, rerun), as ``hlai run --view``;
``params_file:=FILE`` (e.g. ``recorder: ros__parameters: flush_period_s: 0.2``) goes over
the task's parameter file and is checked before any node starts.
"""
import sys

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from hlai_ros.graph import (
    LAUNCH_ARGUMENTS,
    PARAMS_FILE_ARGUMENT,
    calm_teardown,
    check_flag,
    checked_specs,
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
    'params_file': PARAMS_FILE_ARGUMENT,
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
    # every node's own checks, of the arguments and the parameter file, before any starts
    notes = []
    specs = checked_specs(specs, values['task'], values['params_file'], notes)
    for note in notes:  # the file's settings that the arguments replace
        print(note, file=sys.stderr)
    return [Node(**launch_node_arguments(spec, values['task'])) for spec in specs]


def generate_launch_description():
    """Declare the arguments; build the recorder once they are known."""
    calm_teardown()
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
