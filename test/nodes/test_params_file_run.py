"""``hlai run --params-file`` as real processes: a bad file starts nothing, a good one is used.

A good file's settings reach the running nodes: the cost profile that the configurator
publishes and the actor reports applying, and the simulator's episode limit; the graph's own
settings (``--seed``) and ``--set`` win over the file.
"""
import json
import subprocess
import sys

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String
from test_mpc_actor import actor_status

pytestmark = pytest.mark.ros
HLAI = [sys.executable, '-m', 'hlai_ros.cli', 'run', '--task', 'cliff']


def test_a_bad_file_exits_non_zero_with_its_message_and_starts_no_node(tmp_path, ros_env):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('mpc_actor:\n  ros__parameters:\n    deadline_s: fast\n')
    logs = tmp_path / 'logs'
    result = subprocess.run(HLAI + ['--params-file', str(bad), '--log-dir', str(logs)],
                            capture_output=True, text=True, env=ros_env, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == (  # the last line (pybullet says hello first)
        f'hlai run: parameter file {bad}: node mpc_actor: parameter deadline_s must be a float '
        "(default 0.0), got 'fast'"), result.stderr
    assert 'Traceback' not in result.stderr
    assert not logs.exists() and result.stdout == ''  # no node started, no episode


def test_a_good_file_reaches_the_running_nodes_under_the_options_and_set(tmp_path, ros_env,
                                                                          probe):
    good = tmp_path / 'good.yaml'
    good.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: 2.5\n'
                    '    planner: {horizon: 8, samples: 64, iterations: 1}\n'
                    'sim:\n  ros__parameters:\n    max_steps: 4\n    seed: 7\n')
    profiles, diagnostics = [], []
    probe.create_subscription(String, '/hlai/cost_profile', profiles.append, QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 100)
    runner = subprocess.Popen(
        HLAI + ['--episodes', '2', '--seed', '3', '--params-file', str(good),
                '--set', 'cost_critic.planner.samples=32', '--json', '--timeout', '150',
                '--log-dir', str(tmp_path / 'logs'), '--out', str(tmp_path / 'out')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ros_env)
    try:
        probe.spin_until(lambda: profiles and actor_status(diagnostics).get('profile')
                         == profiles[-1].data, 150, 'the actor applying the profile')
        out, err = runner.communicate(timeout=150)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(10)
    assert runner.returncode == 0, err[-3000:]
    assert (f'hlai run: parameter file {good}: the arguments or --set replace '
            'cost_critic.planner.samples, sim.seed\n') in err
    profile = json.loads(profiles[-1].data)
    assert profile['weights.goal'] == 2.5 and profile['planner.horizon'] == 8  # the file's
    assert profile['planner.samples'] == 32  # --set wins over the file
    assert profile['weights.fall'] == 30.0  # the task's file, where the file says nothing
    summary = json.loads(out.strip().splitlines()[-1])
    assert [(o['seed'], o['steps']) for o in summary['outcomes']] == [(3, 4), (4, 4)], summary
