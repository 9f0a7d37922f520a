"""The mpc_actor node in a real process over DDS.

Contract, e-stop, bad input, stale state, profiles, and the simulator holding zero velocity
once the actor dies.
"""
import json
import os
import signal
import subprocess
import sys

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry, Path
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from std_msgs.msg import Bool, Float32MultiArray, String
from std_srvs.srv import Trigger
import torch

from hlai_ros.nodes.convert import stamp_ns, state_message
from hlai_ros.perception.cliff import STATE_NAMES, CliffScene
from hlai_ros.tasks.cliff import CliffTask

pytestmark = pytest.mark.ros

SMALL_PROFILE = ('cost_critic:\n  ros__parameters:\n    planner.horizon: 6\n'
                 '    planner.samples: 16\n    planner.iterations: 1\n')
"""A small planner: these tests check the node's behaviour, not the plan's quality."""


@pytest.fixture
def small(tmp_path):
    """Parameters of an actor with a small planner: its profile_file, one torch thread."""
    path = tmp_path / 'small_profile.yaml'
    path.write_text(SMALL_PROFILE)
    return (f'profile_file:={path}', 'torch_threads:=1')


def cliff_state(x=0.0, y=0.0, yaw=0.0, goal=(1.0, 0.0)):
    """A labelled cliff state as perception publishes it: odometry, goal, scene."""
    scene = CliffScene(np.array([-2.0, 2.0, -2.0, 2.0]), 0.5, np.array([[0.0, 1.2]]),
                       np.array([0.2]), np.array([0.3]))
    names, scene_values = CliffTask.scene_entries(scene)
    values = np.concatenate([[x, y, yaw, 0.0, 0.0, *goal], scene_values]).astype(np.float32)
    return state_message(STATE_NAMES + names, values)


def actor_status(diagnostics, node: str = 'mpc_actor') -> dict:
    """Key-value pairs of the newest status of the actor `node`, {} before any."""
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name.startswith(f'{node}:'):
                return dict({kv.key: kv.value for kv in status.values}, _level=status.level)
    return {}


PRIVATE = '/mpc_actor_test'
"""Namespace the contract test's actor talks on, so that no other node of the session's
domain (a test's process still shutting down) can answer or command in its place."""
TOPICS = ('/hlai/state', '/cmd_vel', '/hlai/plan', '/hlai/estop', '/hlai/episode', '/goal_pose',
          '/hlai/cost_profile')


@pytest.fixture
def private_actor(tmp_path):
    """Start an mpc_actor named mpc_actor_test with its topics under PRIVATE; kill at the end."""
    args = [sys.executable, '-m', 'hlai_ros.nodes.mpc_actor', '--ros-args', '-r',
            '__node:=mpc_actor_test', '-p', 'task:=cliff']
    procs = []

    def start(*params):
        cmd = list(args)
        for p in params:
            cmd += ['-p', p]
        for topic in TOPICS:
            cmd += ['-r', f'{topic}:={PRIVATE}{topic}']
        log = open(tmp_path / 'mpc_actor_test.log', 'wb')
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      env=dict(os.environ, PYTHONUNBUFFERED='1'),
                                      start_new_session=True))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_actor_answers_states_keeps_the_contract_latches_estop_and_stops_on_stale_state(
        probe, private_actor, small):
    from rclpy.qos import DurabilityPolicy, QoSProfile

    # enforce_deadline off: on a loaded test machine a plan may take longer than 100 ms
    actor = private_actor(*small, 'use_sim_time:=false', 'state_timeout_s:=2.0',
                          'reload_period_s:=0.0', 'enforce_deadline:=false')
    got = {'cmd': [], 'plan': [], 'diag': []}
    probe.create_subscription(Twist, PRIVATE + '/cmd_vel', got['cmd'].append, 50)
    probe.create_subscription(Path, PRIVATE + '/hlai/plan', got['plan'].append, 50)
    probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 50)
    state_pub = probe.create_publisher(Float32MultiArray, PRIVATE + '/hlai/state', 10)
    estop_pub = probe.create_publisher(Bool, PRIVATE + '/hlai/estop', 10)
    episode_pub = probe.create_publisher(String, PRIVATE + '/hlai/episode', 10)

    def status():
        return actor_status(got['diag'], 'mpc_actor_test')

    probe.spin_until(lambda: state_pub.get_subscription_count() > 0, 60, 'the actor')
    probe.spin_until(lambda: estop_pub.get_subscription_count() > 0, 10, 'the e-stop sub')
    episode_pub.publish(String(data=json.dumps({'event': 'start', 'episode': 0})))

    def answer(msg, what):
        n = len(got['cmd'])
        state_pub.publish(msg)
        probe.spin_until(lambda: len(got['cmd']) > n, 30, what)
        return got['cmd'][n]

    # Goal straight ahead, nothing in the way: the actor drives forward.
    first = answer(cliff_state(), 'a command answering the state')
    for k in range(1, 4):
        cmd = answer(cliff_state(x=0.02 * k), f'command {k}')
    assert first.linear.x > 0.05 and cmd.linear.x > 0.05, (first, cmd)
    probe.spin_until(lambda: len(got['plan']) >= 4, 10, '/hlai/plan')
    stamps = [stamp_ns(p.header.stamp) for p in got['plan']]
    assert stamps == sorted(stamps) and stamps[0] > 0
    plan = got['plan'][-1]
    assert plan.header.frame_id == 'odom' and len(plan.poses) == 6 + 1
    assert plan.poses[-1].pose.position.x > plan.poses[0].pose.position.x  # heads for the goal

    # E-stop: zero at once, every state answered with zero, latched until released.
    n = len(got['cmd'])
    estop_pub.publish(Bool(data=True))
    probe.spin_until(lambda: len(got['cmd']) > n, 10, 'the e-stop zero command')
    assert got['cmd'][n].linear.x == 0.0 and got['cmd'][n].angular.z == 0.0
    for k in range(3):
        cmd = answer(cliff_state(x=0.1), 'a command under e-stop')
        assert cmd.linear.x == 0.0 and cmd.angular.z == 0.0
    probe.spin_until(lambda: status().get('estop') == 'True', 10,
                     'e-stop in diagnostics')
    estop_pub.publish(Bool(data=False))  # not a release: the stop stays latched
    probe.spin_for(0.6)
    cmd = answer(cliff_state(x=0.1), 'a command after false on /hlai/estop')
    assert cmd.linear.x == 0.0 and cmd.angular.z == 0.0
    release = probe.create_client(Trigger, '/mpc_actor_test/release_estop')
    assert release.wait_for_service(timeout_sec=10)
    future = release.call_async(Trigger.Request())
    probe.spin_until(future.done, 10, 'the release service')
    assert future.result().success, future.result().message
    assert answer(cliff_state(x=0.1), 'a command after release').linear.x > 0.05

    # A state that cannot be mapped, or is not finite, gets a zero command.
    bad = state_message(('x', 'y'), np.zeros(2))
    cmd = answer(bad, 'the answer to a state without the task labels')
    assert cmd.linear.x == 0.0 and cmd.angular.z == 0.0
    nan = cliff_state(x=float('nan'))
    cmd = answer(nan, 'the answer to a NaN state')
    assert cmd.linear.x == 0.0 and cmd.angular.z == 0.0

    # Stale: without state for longer than state_timeout_s the watchdog publishes zeros.
    answer(cliff_state(x=0.1), 'a fresh command')
    n = len(got['cmd'])
    probe.spin_until(lambda: len(got['cmd']) >= n + 3, 10, 'watchdog zero commands')
    assert all(c.linear.x == 0.0 and c.angular.z == 0.0 for c in got['cmd'][n:])
    probe.spin_until(lambda: status().get('stale') == 'True', 10,
                     'stale in diagnostics')
    assert answer(cliff_state(x=0.1), 'a command on fresh state').linear.x > 0.05

    # Parameters: an invalid value is refused with its reason; a deadline no plan can meet
    # makes every answer the policy's action, or zero without a policy; misses are counted.
    client = AsyncParameterClient(probe, 'mpc_actor_test')
    assert client.wait_for_services(20)

    def set_parameters(*params):
        future = client.set_parameters([Parameter(k, value=v) for k, v in params])
        probe.spin_until(future.done, 20, 'the parameter service')
        return future.result().results

    (refused,) = set_parameters(('deadline_s', -1.0))
    assert not refused.successful and 'deadline_s must be a finite' in refused.reason, refused
    (gone,) = set_parameters(('samples', 16))  # planner settings are the profile's now
    assert not gone.successful

    # Profiles on /hlai/cost_profile: a bad one is refused and counted, the plan unchanged;
    # a good one is applied from the next plan on (here a shorter horizon).
    profile_pub = probe.create_publisher(String, PRIVATE + '/hlai/cost_profile', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    probe.spin_until(lambda: profile_pub.get_subscription_count() > 0, 10, 'the profile sub')
    profile_pub.publish(String(data=json.dumps({'planner.samples': 1})))
    probe.spin_until(lambda: status().get('profile_refusals') == '1', 10, 'a refused profile')
    assert 'samples >= 2' in status()['profile_error'], status()
    assert json.loads(status()['profile'])['planner.horizon'] == 6
    answer(cliff_state(x=0.1), 'a command after the refused profile')
    probe.spin_until(lambda: len(got['plan'][-1].poses) == 6 + 1, 10, 'the old horizon')
    profile_pub.publish(String(data=json.dumps({'planner.horizon': 4})))
    probe.spin_until(lambda: json.loads(status().get('profile', '{}')).get('planner.horizon')
                     == 4, 10, 'the new profile in diagnostics')
    assert status()['profile_error'] == '' and status()['profile_refusals'] == '1'
    n = len(got['plan'])
    answer(cliff_state(x=0.1), 'a command with the new profile')
    probe.spin_until(lambda: len(got['plan']) > n, 10, 'a plan with the new profile')
    assert len(got['plan'][-1].poses) == 4 + 1
    assert all(r.successful for r in set_parameters(('deadline_s', 1e-6),
                                                    ('enforce_deadline', True)))
    probe.spin_until(lambda: 'policy' in status(), 10, 'a status')
    misses, fallbacks = (int(status()[k]) for k in ('deadline_misses', 'fallbacks'))
    policy = status()['policy'] == 'True'  # the model folder may hold a trained policy
    for k in range(3):
        cmd = answer(cliff_state(x=0.1), 'an answer past the deadline')
        if not policy:
            assert cmd.linear.x == 0.0 and cmd.angular.z == 0.0
        assert abs(cmd.linear.x) <= 0.5 and abs(cmd.angular.z) <= 1.0
    probe.spin_until(lambda: int(status()['deadline_misses']) >= misses + 3
                     and int(status()['fallbacks']) >= fallbacks + 3,
                     10, 'deadline misses and fallbacks in diagnostics')

    final = status()
    for key in ('plan_ms', 'deadline_misses', 'model', 'reloads', 'state_faults', 'device'):
        assert key in final, final
    assert int(final['state_faults']) >= 2 and final['model'].endswith('models/cliff')
    assert actor.poll() is None


def test_simulator_holds_zero_velocity_when_the_actor_dies(probe, start_node, small):
    start_node('sim', 'cliff', 'mode:=realtime', 'seed:=3',
               'wait_for_nodes:=["perception", "mpc_actor"]', 'command_timeout_s:=0.5')
    start_node('perception', 'cliff', 'use_sim_time:=true')
    actor = start_node('mpc_actor', 'cliff', *small, 'use_sim_time:=true',
                       'reload_period_s:=0.0')
    odom, cmds = [], []
    probe.create_subscription(Odometry, '/odom', odom.append, 50)
    probe.create_subscription(Twist, '/cmd_vel', cmds.append, 50)
    probe.spin_until(lambda: sum(abs(c.linear.x) > 0.05 for c in cmds) >= 5, 90,
                     'the actor driving the robot')
    probe.spin_until(lambda: odom and abs(odom[-1].twist.twist.linear.x) > 0.05, 20,
                     'the robot moving')
    os.kill(actor.pid, signal.SIGKILL)
    actor.wait(10)
    n = len(odom)
    # command_timeout_s (0.5 s of simulated time) later the sim commands zero velocity
    probe.spin_until(lambda: len(odom) >= n + 30, 30, 'odometry after the actor died')
    after = odom[n + 20:]
    assert all(abs(o.twist.twist.linear.x) < 0.02 and abs(o.twist.twist.angular.z) < 0.05
               for o in after), [(o.twist.twist.linear.x, o.twist.twist.angular.z)
                                 for o in after]


def test_push_actor_sends_stamped_world_frame_twists_within_bounds(probe, start_node,
                                                                   tmp_path, small):
    from geometry_msgs.msg import TwistStamped

    from hlai_ros.perception.push import STATE_NAMES as PUSH_NAMES
    from hlai_ros.tasks import get_task
    from hlai_ros.world_model.checkpoint import save_world_model
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.model import WorldModel

    task = get_task('push')  # a small untrained model (with the task's identity) is enough
    torch.manual_seed(0)
    save_world_model(WorldModel(WorldModelConfig(
        state_dim=task.state_dim, action_dim=task.action_dim, latent_dim=2, ensemble_size=2,
        hidden_sizes=(16, 16))), tmp_path / 'push', {'identity': task.identity('state')})
    start_node('mpc_actor', 'push', f'model:={tmp_path / "push"}', *small,
               'use_sim_time:=false', 'enforce_deadline:=false', 'reload_period_s:=0.0')
    cmds, plans = [], []
    probe.create_subscription(TwistStamped, '/servo_node/delta_twist_cmds', cmds.append, 50)
    probe.create_subscription(Path, '/hlai/plan', plans.append, 50)
    state_pub = probe.create_publisher(Float32MultiArray, '/hlai/state', 10)
    probe.spin_until(lambda: state_pub.get_subscription_count() > 0, 60, 'the push actor')
    state = dict(ee_x=0.45, ee_y=0.0, obj_x=0.55, obj_y=0.0, obj_vx=0.0, obj_vy=0.0,
                 goal_x=0.65, goal_y=0.1)
    for k in range(4):
        n = len(cmds)
        state_pub.publish(state_message(PUSH_NAMES, [state.get(name, 0.0)
                                                     for name in PUSH_NAMES]))
        probe.spin_until(lambda: len(cmds) > n, 30, f'push command {k}')
    stamps = [stamp_ns(c.header.stamp) for c in cmds]
    assert stamps == sorted(stamps) and stamps[0] > 0
    for c in cmds:
        assert c.header.frame_id == 'world'
        assert abs(c.twist.linear.x) <= 0.2 + 1e-6 and abs(c.twist.linear.y) <= 0.2 + 1e-6
        assert c.twist.linear.z == 0.0 and c.twist.angular.z == 0.0
    probe.spin_until(lambda: plans, 10, '/hlai/plan')
    assert plans[-1].header.frame_id == 'world' and len(plans[-1].poses) == 6 + 1
