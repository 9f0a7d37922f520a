"""`hlai run` end to end: the closed loop over DDS, recording, composition, clean Ctrl-C."""
import json
import os
from pathlib import Path
import select
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros

SMALL_ACTOR = ('--set', 'cost_critic.planner.horizon=8', '--set',
               'cost_critic.planner.samples=32', '--set', 'cost_critic.planner.iterations=1')
"""A small planner for the learned actor: these tests check the runner, not the plans."""


def _hlai(env, *args, **kwargs):
    return subprocess.run([sys.executable, '-m', 'hlai_ros.cli', *args], capture_output=True,
                          text=True, env=env, **kwargs)


def _python_loop(task: str, seeds) -> list[tuple[bool, object, int]]:
    """Run the pure-Python loop with the same scripted baseline: (success, failure, steps)."""
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    from hlai_ros.sim.scripted import make_scripted

    env = make(task, config=world_config(task, render_camera=False))
    controller = make_scripted(task)
    out = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        controller.reset()
        done, steps = False, 0
        while not done:
            obs, _, terminated, truncated, info = env.step(controller.act(obs, info))
            done, steps = terminated or truncated, steps + 1
        out.append((bool(info['is_success']), info['failure'], steps))
    env.close()
    return out


def test_run_cliff_scripted_matches_python_loop(tmp_path, ros_env):
    result = _hlai(ros_env, 'run', '--task', 'cliff', '--controller', 'scripted',
                   '--episodes', '2', '--seed', '0', '--json', '--timeout', '90',
                   '--log-dir', str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary['episodes'] == 2
    assert 0.0 <= summary['success_rate'] <= 1.0 and 0.0 <= summary['failure_rate'] <= 1.0
    assert sum(line.startswith('episode ') for line in lines) == 2
    graph = [(o['success'], o['failure'], o['steps']) for o in summary['outcomes']]
    assert graph == _python_loop('cliff', [0, 1]), 'lockstep graph differs from the Python loop'


def test_run_without_a_trained_model_says_what_to_do(tmp_path, ros_env):
    result = _hlai(ros_env, 'run', '--task', 'push', '--model', str(tmp_path / 'none'),
                   timeout=60)
    assert result.returncode == 2
    assert 'no trained push model' in result.stderr and 'hlai train' in result.stderr
    result = _hlai(ros_env, 'run', '--task', 'cliff', '--set', 'mpc_actor.horizon', timeout=60)
    assert result.returncode == 2 and 'NODE.PARAM=VALUE' in result.stderr
    result = _hlai(ros_env, 'run', '--task', 'cliff', '--set', 'mpc_actor.horizon=8',
                   timeout=60)
    assert result.returncode == 2 and 'set cost_critic.planner.horizon' in result.stderr


def test_run_composed_with_recording_loads_for_training(tmp_path, ros_env):
    from hlai_ros.data import load_episodes

    result = _hlai(ros_env, 'run', '--task', 'cliff', '--episodes', '1', '--seed', '1',
                   '--compose', '--record', str(tmp_path / 'bags'), '--json', '--timeout', '150',
                   '--log-dir', str(tmp_path / 'logs'), '--out', str(tmp_path / 'out'),
                   *SMALL_ACTOR, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary['compose'] is True and summary['episodes'] == 1
    assert summary['controller'] == 'mpc'  # the learned actor closes the loop by default
    assert summary['picture'] and Path(summary['picture']).stat().st_size > 0
    episodes = load_episodes(summary['bag'], cache=False)
    assert len(episodes) == 1
    episode = episodes[0]
    steps = summary['outcomes'][0]['steps']
    assert episode.metadata['task'] == 'cliff' and episode.metadata['seed'] == 1
    assert episode.metadata['ended'] is True
    assert episode.actions.shape == (steps, 2)
    assert episode.action_valid.all()


def _descendants(pid: int) -> set[int]:
    children = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, set()).add(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


@pytest.mark.parametrize('compose', [False, True], ids=['processes', 'composed'])
def test_sigint_stops_every_node(tmp_path, ros_env, compose):
    """A terminal's Ctrl-C, twice: every node exits 0, the bag is finished, none is left.

    The SIGINTs go to the runner's process group, as a terminal sends them.
    """
    runner = subprocess.Popen(
        [sys.executable, '-m', 'hlai_ros.cli', 'run', '--task', 'cliff', '--episodes', '50',
         '--record', str(tmp_path / 'bags'), '--log-dir', str(tmp_path / 'logs'),
         '--out', str(tmp_path / 'out'), '--json']
        # the runner's shutdown does not depend on the controller: the quicker scripted
        # baseline in separate processes, the learned actor composed
        + (['--compose', *SMALL_ACTOR] if compose else ['--controller', 'scripted']),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ros_env,
        start_new_session=True)
    try:
        ready, _, _ = select.select([runner.stdout], [], [], 150)
        assert ready, 'no episode finished within 150 s'
        line = runner.stdout.readline()  # the first episode's outcome: the loop is running
        assert line.startswith('episode 0'), line
        nodes = _descendants(runner.pid)
        # monitor, sim, perception, actor, recorder; or one composed process
        assert len(nodes) >= (1 if compose else 5)
        # A user's Ctrl-C a second after the outcome: messages still queued in the recorder's
        # subscription at the signal may be lost (composed, every node stops at once), so
        # the end marker gets a moment to arrive (the recorder's promise is "at most the
        # last second").
        time.sleep(1.0)
        os.killpg(runner.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(runner.pid, signal.SIGINT)  # impatient: again, during the shutdown
        assert runner.wait(60) == 130
        out = runner.stdout.read()  # through the stream's buffer (readline above filled it)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in nodes):
            time.sleep(0.1)
        assert not [p for p in nodes if _alive(p)], 'orphan node processes'
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(5)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary['interrupted'] and set(summary['exit_codes'].values()) == {0}, summary
    for log in (tmp_path / 'logs').iterdir():
        assert 'Traceback' not in log.read_text(errors='replace'), log
    report = os.environ.get('HLAI_SHUTDOWN_REPORT')
    if report:
        with open(report, 'a') as handle:
            handle.write(json.dumps({'how': 'ctrl-c under hlai run'
                                     + (' --compose' if compose else ''),
                                     'shutdown_s': summary['stop_s']}) + '\n')
    from hlai_ros.data import load_episodes
    (bag,) = (tmp_path / 'bags').iterdir()
    assert (bag / 'metadata.yaml').is_file()
    episodes = load_episodes(tmp_path / 'bags', cache=False)
    assert episodes and episodes[0].metadata['ended'] is True


def test_run_refuses_bad_parameters_before_starting_and_names_a_dead_node(tmp_path, ros_env):
    for setting, message in (
            ('mpc_actor.deadline_s=-1', 'node mpc_actor: invalid parameters: deadline_s'),
            ('mpc_actor.foo=1', "node mpc_actor: unknown parameters ['foo']"),
            ('perception.sync_tolerance_s="x"', 'node perception: parameter sync_tolerance_s')):
        result = _hlai(ros_env, 'run', '--task', 'cliff', '--set', setting, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert 'nodes [' not in result.stderr and 'Traceback' not in result.stderr
    # A model that passes the runner's check but that the actor refuses: the run stops,
    # exits 1 and says which node died and why.
    model = tmp_path / 'model'
    model.mkdir()
    (model / 'world_model.json').write_text('{"not": "a model"}')
    result = _hlai(ros_env, 'run', '--task', 'cliff', '--model', str(model), '--episodes', '1',
                   '--timeout', '120', '--log-dir', str(tmp_path / 'logs'), timeout=180)
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()
    assert any(line.startswith('hlai run: node mpc_actor died (exit code 2): [ERROR] node '
                               'mpc_actor:') for line in last[-3:]), result.stderr[-2000:]
