"""The perception node in a real process: a labelled /hlai/state close to ground truth."""
import json

import numpy as np
import pytest

from hlai_ros.nodes.convert import state_from_message
from hlai_ros.perception.cliff import STATE_NAMES
from hlai_ros.tasks.cliff import PLATFORM_NAMES

pytestmark = pytest.mark.ros


def test_perception_publishes_labelled_state_close_to_ground_truth(probe, start_node):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped, Twist
    from std_msgs.msg import Float32MultiArray, String

    got = {'state': [], 'gt': [], 'pose': [], 'diag': []}
    probe.create_subscription(Float32MultiArray, '/hlai/state', got['state'].append, 10)
    probe.create_subscription(String, '/ground_truth/state', got['gt'].append, 10)
    probe.create_subscription(PoseStamped, '/hlai/robot_pose', got['pose'].append, 10)
    probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 10)
    command = probe.create_publisher(Twist, '/cmd_vel', 10)
    start_node('perception', 'cliff', 'use_sim_time:=true')
    start_node('sim', 'cliff', 'seed:=5', f'wait_for_nodes:=[{probe.get_name()},perception]')

    # lockstep: command the next step only once the state of this one has arrived; the
    # latest state and ground truth then describe the same observation (a republished frame
    # repeats both)
    pairs = []
    for k in range(8):
        seen = len(got['state']), len(got['gt'])
        probe.spin_until(lambda: len(got['state']) > seen[0] and len(got['gt']) > seen[1],
                         40 if k == 0 else 10, f'state {k}')
        probe.spin_for(0.05)
        pairs.append((got['state'][-1], json.loads(got['gt'][-1].data)))
        msg = Twist()
        msg.linear.x, msg.angular.z = 0.4, 0.3
        command.publish(msg)
    probe.spin_until(lambda: any(s.name.startswith('perception') for d in got['diag']
                                 for s in d.status), 10, 'perception /diagnostics')

    for msg, gt in pairs:
        names, state = state_from_message(msg)
        assert names[:len(STATE_NAMES)] == STATE_NAMES
        assert names[len(STATE_NAMES):][:5] == PLATFORM_NAMES  # the perceived scene follows
        s = dict(zip(names, state.tolist()))
        assert abs(s['x'] - gt['base_position'][0]) < 1e-3
        assert abs(s['y'] - gt['base_position'][1]) < 1e-3
        assert abs(np.angle(np.exp(1j * (s['yaw'] - gt['base_rpy'][2])))) < 1e-3
        assert np.allclose([s['goal_x'], s['goal_y']], gt['goal'], atol=1e-5)
    moved = pairs[-1][1]['base_position'][:2]
    assert np.linalg.norm(np.subtract(moved, pairs[0][1]['base_position'][:2])) > 0.02
    pose = got['pose'][-1]
    assert pose.header.frame_id == 'odom'
    names = {s.name for d in got['diag'] for s in d.status}
    assert 'perception: state estimate' in names, names
