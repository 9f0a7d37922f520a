"""The cost_critic node in a real process: cost toward the goal, runtime weights, critic."""
import math

import pytest

from hlai_ros.nodes.cost_critic import check_weight, profile_weights

pytestmark = pytest.mark.ros
CLIFF_STATE = ('x', 'y', 'yaw', 'v', 'omega', 'goal_x', 'goal_y')


def test_profile_weights_fill_defaults_and_refuse_bad_values(tmp_path):
    terms = {'goal': 1.0, 'fall': 30.0}
    path = tmp_path / 'profile.yaml'
    path.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: 0.5\n')
    assert profile_weights(path, terms, terms) == {'goal': 0.5, 'fall': 30.0}
    path.write_text('cost_critic:\n  ros__parameters:\n    weights: {fall: -2.0}\n')
    with pytest.raises(ValueError, match='weights.fall must be a finite number >= 0'):
        profile_weights(path, terms, terms)
    path.write_text('sim:\n  ros__parameters: {}\n')
    with pytest.raises(ValueError, match='cost_critic'):
        profile_weights(path, terms, terms)
    assert 'no cost term' in check_weight('reach', 1.0, terms)
    assert check_weight('goal', math.nan, terms)


def test_cost_critic_node_cost_falls_toward_the_goal_and_follows_the_configurator(
        probe, start_node, tmp_path, set_parameter):
    import torch
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import Float32, Float32MultiArray
    from std_srvs.srv import Trigger

    from hlai_ros.actor.checkpoint import save_critic
    from hlai_ros.cost.critic import Critic
    from hlai_ros.nodes.convert import state_message

    models = tmp_path / 'models'  # no critic yet
    models.mkdir()
    got = {'cost': [], 'critic': [], 'diag': []}
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
    assert not bad.successful and 'weights.goal must be a finite number >= 0' in bad.reason
    assert cost_of(0.0) == pytest.approx(base, rel=1e-6)
    assert set_param('weights.goal', 3.0).successful
    assert cost_of(0.0) == pytest.approx(3.0 * base, rel=0.02)  # goal term dominates here

    # a cost profile file + ~/reload switch the weights back; a critic appears on reload
    profile = tmp_path / 'cautious.yaml'
    profile.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: 0.5\n')
    assert not set_param('profile_file', str(tmp_path / 'missing.yaml')).successful
    assert set_param('profile_file', str(profile)).successful
    critic = Critic(6)
    save_critic(critic, models)
    reload = probe.create_client(Trigger, '/cost_critic/reload')
    assert reload.wait_for_service(timeout_sec=10)
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
