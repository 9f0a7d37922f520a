"""The cost_critic node (the configurator) in a real process: cost, profile, critic."""
import json

import pytest

from hlai_ros.cost.profile import read_profile
from hlai_ros.tasks import get_task

pytestmark = pytest.mark.ros
CLIFF_STATE = ('x', 'y', 'yaw', 'v', 'omega', 'goal_x', 'goal_y')


def test_read_profile_fills_defaults_and_refuses_bad_values(tmp_path):
    base = get_task('cliff').default_profile()
    path = tmp_path / 'profile.yaml'
    path.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: 0.5\n'
                    '    planner.horizon: 6\n    model_path: ""\n')
    profile = read_profile(path, base)
    assert profile.terms['goal'].weight == 0.5 and profile.planner.horizon == 6
    assert profile.terms['fall'] == base.terms['fall']
    path.write_text('cost_critic:\n  ros__parameters:\n    weights.fall: -2.0\n')
    with pytest.raises(ValueError, match='weights.fall.*finite number >= 0'):
        read_profile(path, base)
    path.write_text('cost_critic:\n  ros__parameters:\n    weights.reach: 1.0\n')
    with pytest.raises(ValueError, match='no cost term'):
        read_profile(path, base)
    path.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: .nan\n')
    with pytest.raises(ValueError, match='weights.goal'):
        read_profile(path, base)
    path.write_text('sim:\n  ros__parameters: {}\n')
    with pytest.raises(ValueError, match='cost_critic'):
        read_profile(path, base)


def test_cost_critic_node_cost_falls_toward_the_goal_and_follows_the_configurator(
        probe, start_node, tmp_path, set_parameter):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import Float32, Float32MultiArray, String
    from std_srvs.srv import Trigger
    import torch

    from hlai_ros.actor.checkpoint import save_critic
    from hlai_ros.cost.critic import Critic
    from hlai_ros.nodes.convert import state_message

    identity = {'identity': get_task('cliff').identity('state')}

    models = tmp_path / 'models'  # no critic yet
    models.mkdir()
    got = {'cost': [], 'critic': [], 'diag': [], 'profile': []}
    probe.create_subscription(String, '/hlai/cost_profile', got['profile'].append, QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    probe.create_subscription(Float32, '/hlai/cost', got['cost'].append, 50)
    probe.create_subscription(Float32, '/hlai/critic', got['critic'].append, 50)
    probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 50)
    state_pub = probe.create_publisher(Float32MultiArray, '/hlai/state', 10)
    goal_pub = probe.create_publisher(PoseStamped, '/goal_pose', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    goal = PoseStamped()
    goal.header.frame_id = 'world'
    goal.pose.position.x, goal.pose.position.y = 1.0, 0.0
    goal_pub.publish(goal)  # latched: it reaches the node whenever it starts
    node = start_node('cost_critic', 'cliff', f'model_path:={models}')
    probe.spin_until(lambda: state_pub.get_subscription_count() > 0
                     and probe.count_publishers('/hlai/cost') > 0, 60, 'cost_critic up')
    probe.spin_for(0.5)

    def cost_of(x: float, goal_in_state=(5.0, 5.0)) -> float:
        # the state carries another goal: the node must measure against /goal_pose
        n = len(got['cost'])
        state_pub.publish(state_message(CLIFF_STATE, [x, 0.0, 0.0, 0.0, 0.0, *goal_in_state]))
        probe.spin_until(lambda: len(got['cost']) > n, 10, f'the cost at x={x}')
        return got['cost'][-1].data

    costs = [cost_of(x) for x in (-0.6, -0.3, 0.0, 0.3, 0.6, 0.9)]
    assert all(a > b for a, b in zip(costs, costs[1:])), costs
    assert got['critic'] == []  # no critic in the model directory: silent
    probe.spin_until(lambda: any('no critic in' in s.message for d in got['diag']
                                 for s in d.status), 10, 'diagnostics saying there is no critic')

    def set_param(name, value):
        return set_parameter('cost_critic', name, value)

    base = cost_of(0.0)
    bad = set_param('weights.goal', -1.0)
    assert not bad.successful and 'weights.goal' in bad.reason
    assert 'finite number >= 0' in bad.reason, bad.reason
    assert cost_of(0.0) == pytest.approx(base, rel=1e-6)
    probe.spin_until(lambda: got['profile'], 10, 'the latched profile')
    assert json.loads(got['profile'][-1].data)['weights.goal'] == 1.0  # config/cliff.yaml
    assert set_param('weights.goal', 3.0).successful
    probe.spin_until(lambda: json.loads(got['profile'][-1].data)['weights.goal'] == 3.0, 10,
                     'the new profile published')
    assert not set_param('planner.samples', 1).successful  # checked as a whole profile
    assert set_param('enabled.fall', False).successful
    assert not json.loads(got['profile'][-1].data)['enabled.fall']
    assert cost_of(0.0) == pytest.approx(3.0 * base, rel=0.02)  # goal term dominates here

    # a cost profile file + ~/reload switch the weights back; a critic appears on reload
    profile = tmp_path / 'cautious.yaml'
    profile.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: 0.5\n')
    assert not set_param('profile_file', str(tmp_path / 'missing.yaml')).successful
    assert set_param('profile_file', str(profile)).successful
    save_critic(Critic(6), models)  # no identity: refused on reload, and said so
    reload = probe.create_client(Trigger, '/cost_critic/reload')
    assert reload.wait_for_service(timeout_sec=10)
    future = reload.call_async(Trigger.Request())
    probe.spin_until(future.done, 10, 'the reload service')
    assert 'critic in' in future.result().message and 'not loaded' in future.result().message
    critic = Critic(6)
    save_critic(critic, models, identity)
    future = reload.call_async(Trigger.Request())
    probe.spin_until(future.done, 10, 'the reload service')
    assert future.result().success, future.result().message
    assert 'goal=0.5' in future.result().message
    assert cost_of(0.0) == pytest.approx(0.5 * base, rel=0.02)
    probe.spin_until(lambda: len(got['critic']) > 0, 10, 'a value on /hlai/critic')
    with torch.no_grad():
        expected = float(critic(torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]),
                                torch.tensor([1.0, 0.0]))[0])
    assert got['critic'][-1].data == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert node.poll() is None
