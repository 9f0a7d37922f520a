"""The configurator reaches the actor: cost_critic and mpc_actor in separate processes.

Setting a weight on ``cost_critic`` changes the profile it publishes on /hlai/cost_profile,
the cost it reports and the command the actor computes for the same state, and the actor's
diagnostics name the very profile cost_critic published. A model folder trained for another
task is refused, at start (the node stops naming both identities) and on hot reload (the old
model stays).
"""
import json
import shutil

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Float32, Float32MultiArray, String
from test_mpc_actor import actor_status, cliff_state

from hlai_ros.paths import model_dir

pytestmark = pytest.mark.ros
PLANNER = ('planner.horizon:=8', 'planner.samples:=64', 'planner.iterations:=2')
"""A small planner, set on the configurator: the actor plans with what it publishes."""
ACTOR = ('use_sim_time:=false', 'enforce_deadline:=false', 'reload_period_s:=0.0',
         'state_timeout_s:=60.0', 'torch_threads:=1')
"""No fallback, reload or watchdog zeros: every command here is a plan's."""


def test_a_weight_set_on_the_configurator_changes_cost_and_command_and_the_actor_agrees(
        probe, start_node, set_parameter):
    got = {'cmd': [], 'cost': [], 'profile': [], 'diag': []}
    probe.create_subscription(Twist, '/cmd_vel', got['cmd'].append, 50)
    probe.create_subscription(Float32, '/hlai/cost', got['cost'].append, 50)
    probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 100)
    probe.create_subscription(String, '/hlai/cost_profile', got['profile'].append, QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    state_pub = probe.create_publisher(Float32MultiArray, '/hlai/state', 10)
    critic = start_node('cost_critic', 'cliff', *PLANNER)
    actor = start_node('mpc_actor', 'cliff', *ACTOR)
    probe.spin_until(lambda: state_pub.get_subscription_count() >= 2, 90, 'both nodes')

    def agreed():
        """The profile cost_critic published last, once the actor reports the same."""
        probe.spin_until(lambda: got['profile'] and actor_status(got['diag']).get('profile')
                         == got['profile'][-1].data, 20, 'the actor applying the profile')
        return json.loads(got['profile'][-1].data)

    def drive(what):
        """(mean forward command of the last plans, cost) for one fixed state."""
        cmds, costs = [], []
        for k in range(6):
            n, m = len(got['cmd']), len(got['cost'])
            state_pub.publish(cliff_state())
            probe.spin_until(lambda: len(got['cmd']) > n and len(got['cost']) > m, 30,
                             f'{what}: answer {k}')
            cmds.append(got['cmd'][n].linear.x)
            costs.append(got['cost'][m].data)
        assert np.ptp(costs) < 1e-6, costs  # the same state: the same cost
        return float(np.mean(cmds[2:])), costs[-1]  # after the warm start has settled

    profile = agreed()
    assert profile['planner.horizon'] == 8 and profile['weights.goal'] == 1.0
    forward, cost = drive('goal weight 1')
    assert forward > 0.1, forward  # the goal 1 m ahead: the actor drives to it

    assert set_parameter('cost_critic', 'weights.goal', 0.0).successful
    profile = agreed()
    assert profile['weights.goal'] == 0.0 and profile['planner.horizon'] == 8
    idle, no_goal_cost = drive('goal weight 0')
    assert no_goal_cost < 0.1 * cost, (cost, no_goal_cost)
    assert abs(idle) < 0.5 * forward, (forward, idle)  # nothing to gain: it barely moves

    assert set_parameter('cost_critic', 'weights.goal', 3.0).successful
    assert agreed()['weights.goal'] == 3.0
    eager, triple_cost = drive('goal weight 3')
    assert triple_cost == pytest.approx(3.0 * cost, rel=0.02)
    assert eager > 0.1, eager
    refused = set_parameter('cost_critic', 'planner.samples', 1)
    assert not refused.successful and 'samples' in refused.reason
    assert json.loads(got['profile'][-1].data)['planner.samples'] == 64
    status = actor_status(got['diag'])
    assert status['profile_refusals'] == '0' and status['profile_digest']
    assert critic.poll() is None and actor.poll() is None


def test_the_actor_refuses_a_model_of_another_task(probe, start_node, tmp_path):
    push = str(model_dir() / 'push')
    refused = start_node('mpc_actor', 'cliff', f'model:={push}', 'reload_period_s:=0.0')
    assert refused.wait(90) != 0
    log = refused.log_path.read_text()
    assert "task 'push' on 'panda'" in log and "task 'cliff' on 'husky'" in log, log[-3000:]

    # hot reload: a push model appearing in the watched folder is refused, the old one stays
    watch = tmp_path / 'watch'
    watch.mkdir()
    diag, cmds = [], []
    probe.create_subscription(DiagnosticArray, '/diagnostics', diag.append, 100)
    probe.create_subscription(Twist, '/cmd_vel', cmds.append, 50)
    state_pub = probe.create_publisher(Float32MultiArray, '/hlai/state', 10)
    actor = start_node('mpc_actor', 'cliff', f'watch:={watch}', 'reload_period_s:=0.2',
                       *ACTOR[:2], 'state_timeout_s:=60.0')
    probe.spin_until(lambda: state_pub.get_subscription_count() > 0, 90, 'the actor')
    for path in sorted(model_dir().joinpath('push').glob('world_model*'),
                       key=lambda p: p.suffix == '.json'):  # the JSON last: its commit point
        shutil.copy(path, watch / path.name)
    probe.spin_until(lambda: actor_status(diag).get('reload_error'), 20, 'the refusal')
    status = actor_status(diag)
    assert "task 'push' on 'panda'" in status['reload_error'], status
    assert "task 'cliff' on 'husky'" in status['reload_error'], status
    assert status['reloads'] == '0' and status['model'].endswith('models/cliff')
    n = len(cmds)
    state_pub.publish(cliff_state())
    probe.spin_until(lambda: len(cmds) > n, 30, 'a command from the old model')
    assert cmds[n].linear.x > 0.05
    assert actor.poll() is None
