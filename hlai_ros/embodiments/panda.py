"""The Franka Panda arm, commanded by its end-effector's planar velocity (MoveIt Servo style).

Proprioception: ``sensor_msgs/JointState`` of the seven arm joints (positions, then velocities).
Command: ``geometry_msgs/TwistStamped`` in ``world`` whose ``linear.x, linear.y`` (m/s) move
the end-effector in the table plane at a fixed height; bounds ±0.2 m/s (``sim/push.yaml``
``action.max_speed``). The safety gate watches the end-effector position ``ee_x, ee_y``.
"""
from hlai_ros.contract import ARM_COMMAND, JOINT_STATES, WORLD_FRAME
from hlai_ros.embodiments import register
from hlai_ros.embodiments.base import Embodiment

ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
"""The arm's joints, base to wrist."""

PANDA = register(Embodiment(
    name='panda',
    command=ARM_COMMAND, command_role='arm_command', command_fields=('linear.x', 'linear.y'),
    action_names=('ee_vx', 'ee_vy'), action_low=(-0.2, -0.2), action_high=(0.2, 0.2),
    proprio=JOINT_STATES, proprio_role='joint_states', proprio_codec='joint_state',
    proprio_names=tuple(f'{j}.position' for j in ARM_JOINTS)
    + tuple(f'{j}.velocity' for j in ARM_JOINTS),
    state_frame=WORLD_FRAME, goal_frames=('', WORLD_FRAME), kinematics='holonomic',
    pose_labels=('ee_x', 'ee_y'), max_acceleration=(1.0, 1.0)))
