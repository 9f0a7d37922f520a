r"""The graph on a physical robot: no simulator, contract topics remapped onto its drivers.

    ros2 launch hlai_ros robot.launch.py task:=<task> image:=/camera/color/image_raw \\
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info \\
        command:=/diff_drive_controller/cmd_vel_unstamped

Runs ``perception``, the learned nodes (``world_model``, ``cost_critic``,
``mpc_actor`` with ``controller:=mpc``), ``recorder`` with ``record:=DIR``, and always the
``command_gate``: the only node that publishes on the robot's command topic. The actor's
command goes to the gate's input (``/hlai/actor_command``; with ``controller:=none`` another
process, e.g. a teleop, publishes there); the gate applies the velocity, acceleration and
workspace limits, the command watchdog and the e-stop (``/hlai/estop``, released by the
``/command_gate/release_estop`` service). ``view:=true`` streams the graph into rerun (the
web viewer on http://127.0.0.1:9090). Its limits are read-only parameters bounded by the
task's action range (``config/<task>.yaml``, section ``command_gate``): no parameter change
can remove them while the graph runs (nor can ``params_file:=``, a ROS 2 parameter file
over the task's, checked before any node starts). Nodes use the wall clock (no ``use_sim_time``).
"""
import sys

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from hlai_ros.contract import ACTOR_COMMAND, CAMERA_DEPTH, CAMERA_INFO, CAMERA_RGB
from hlai_ros.graph import (
    LAUNCH_ARGUMENTS,
    PARAMS_FILE_ARGUMENT,
    calm_teardown,
    checked_build,
    launch_node_arguments,
    options_from_launch,
)
from hlai_ros.tasks import check_task, get_task
from launch import LaunchDescription

ARGUMENTS = {
    'task': LAUNCH_ARGUMENTS['task'],
    'record': ('', 'bag directory to record into; empty: no recorder'),
    'online': ('', 'online learning folder (world_model writes, mpc_actor hot-reloads); '
                   'empty: off'),
    'controller': ('mpc', f'mpc (the learned actor) or none (another process publishes on '
                          f'{ACTOR_COMMAND.name}); the command_gate runs either way'),
    'image': (CAMERA_RGB.name, "the driver's colour image topic (rgb8/bgr8)"),
    'depth': (CAMERA_DEPTH.name, "the driver's depth topic (32FC1 m or 16UC1 mm)"),
    'camera_info': (CAMERA_INFO.name, "the driver's camera_info topic"),
    'proprio': ('', "the robot's proprioception topic (joint states or odometry); empty: the "
                "contract's name for the task's robot"),
    'command': ('', "where the gated commands go (e.g. MoveIt Servo's twist or a base's "
                "cmd_vel); empty: the contract's name for the task's robot"),
    'model': LAUNCH_ARGUMENTS['model'],
    'view': LAUNCH_ARGUMENTS['view'],
    'params_file': PARAMS_FILE_ARGUMENT,
}


def _nodes(context, *args, **kwargs):
    values = dict(context.launch_configurations)
    task = check_task(values['task'])
    robot = get_task(task).embodiment
    remaps = [(CAMERA_RGB.name, values['image']), (CAMERA_DEPTH.name, values['depth']),
              (CAMERA_INFO.name, values['camera_info']),
              (robot.proprio.name, values['proprio'] or robot.proprio.name),
              (robot.command.name, values['command'] or robot.command.name)]
    remaps = tuple((a, b) for a, b in remaps if a != b)
    options = options_from_launch({'task': task, 'record': values['record'],
                                   'online': values['online'], 'model': values['model'],
                                   'use_sim_time': 'false', 'controller': values['controller'],
                                   'view': values['view']},
                                  target='robot', remappings=remaps)
    notes = []
    # every node's own checks, of the arguments and the parameter file, before any starts
    specs = checked_build(options, values['params_file'], notes)
    for note in notes:  # the file's settings that the arguments replace
        print(note, file=sys.stderr)
    if 'command_gate' not in [s.name for s in specs]:
        raise RuntimeError('a robot graph without the command_gate must never be launched')
    return [Node(**launch_node_arguments(spec, task)) for spec in specs]


def generate_launch_description():
    """Declare the arguments; build the nodes once they are known."""
    calm_teardown()
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
