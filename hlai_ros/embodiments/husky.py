"""The Clearpath Husky, a skid-steered base commanded by ``cmd_vel``.

Proprioception: ``nav_msgs/Odometry`` (pose in ``odom``, twist in ``base_link``), labelled
``x, y, yaw, v, omega``. Command: ``geometry_msgs/Twist`` whose ``linear.x`` (m/s, bounds ±0.5)
and ``angular.z`` (rad/s, ±1.0) drive it (``sim/cliff.yaml`` ``action``). The safety gate
watches its pose ``x, y, yaw`` in ``odom``.
"""
from hlai_ros.contract import BASE_COMMAND, BASE_FRAME, ODOM, ODOM_FRAME, WORLD_FRAME
from hlai_ros.embodiments import register
from hlai_ros.embodiments.base import Embodiment

HUSKY = register(Embodiment(
    name='husky',
    command=BASE_COMMAND, command_role='base_command', command_fields=('linear.x', 'angular.z'),
    action_names=('v', 'omega'), action_low=(-0.5, -1.0), action_high=(0.5, 1.0),
    proprio=ODOM, proprio_role='odom', proprio_codec='odometry',
    proprio_names=('x', 'y', 'yaw', 'v', 'omega'),
    state_frame=ODOM_FRAME, goal_frames=('', WORLD_FRAME, ODOM_FRAME), kinematics='unicycle',
    pose_labels=('x', 'y', 'yaw'), max_acceleration=(1.0, 2.0), command_frame=BASE_FRAME))
