"""The launch files under the real ``ros2 launch``, from the colcon-installed package.

A user's view (README of ../shared/ros2-launch): every launch file's ``--show-args``; bad
arguments and parameter files (``params_file:=``) refused as ``hlai run`` refuses them;
``sim.launch.py`` next to ``record.launch.py`` to a successful cliff episode, then a
terminal's Ctrl-C; ``robot.launch.py`` against the stand-in driver with the ``ros2`` CLI verbs,
then SIGTERM to each node. A clean shutdown is
every node exiting 0 ("process has finished cleanly") without a traceback, also when a second
signal arrives during it, and a finished bag. Each node's shutdown time is measured (target
2 s) and, with ``HLAI_SHUTDOWN_REPORT=FILE``, appended to FILE as JSON lines.
Skipped, saying why, where the real launch is not installed (`ros2_install`).
"""
from concurrent.futures import ThreadPoolExecutor
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import pytest

from hlai_ros.graph import CONTROLLERS, LAUNCH_ARGUMENTS, MODES, check_choice, check_integer
from hlai_ros.tasks import check_task

pytestmark = pytest.mark.ros
HERE = Path(__file__).resolve().parent
STARTED = re.compile(r'\[INFO\] \[(\w+)-\d+\]: process started with pid \[(\d+)\]')
CLEAN = '[INFO] [{}-{}]: process has finished cleanly [pid {}]'
ARGUMENTS = {
    'sim.launch.py': set(LAUNCH_ARGUMENTS) | {'params_file'},
    'record.launch.py': {'task', 'record', 'use_sim_time', 'view', 'params_file'},
    'robot.launch.py': {'task', 'record', 'online', 'controller', 'image', 'depth',
                        'camera_info', 'proprio', 'command', 'model', 'view', 'params_file'},
}


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


class Launch:
    """``ros2 launch hlai_ros ARGS`` in its own process group (a terminal's), output to a file."""

    def __init__(self, install, log: Path, *args: str):
        self.log = log
        with open(log, 'wb') as out:
            self.proc = subprocess.Popen([install.ros2, 'launch', 'hlai_ros', *args],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         env=install.env, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors='replace')

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            assert self.proc.poll() is None, f'launch exited:\n{self.text()[-3000:]}'
            time.sleep(0.2)
        raise AssertionError(f'no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}')

    def nodes(self) -> dict[str, tuple[int, int]]:
        """{node: (launch's process number, pid)} of the started processes."""
        text = self.text()
        out = {}
        for match in STARTED.finditer(text):
            number = re.search(rf'\[{match[1]}-(\d+)\]: process started', text)[1]
            out[match[1]] = (int(number), int(match[2]))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _shutdown_times(pids: dict[str, int], start: float, until: float,
                    out: dict | None = None) -> dict:
    """Seconds from `start` until each process is gone (None: still there at `until`).

    Polls until `until` (monotonic) or all are gone; `out` carries on an earlier poll.
    """
    out = {} if out is None else out
    while len(out) < len(pids) and time.monotonic() < until:
        for name, pid in pids.items():
            if name not in out and not _alive(pid):
                out[name] = round(time.monotonic() - start, 2)
        time.sleep(0.01)
    return {name: out.get(name) for name in pids}


def _report(how: str, times: dict) -> None:
    path = os.environ.get('HLAI_SHUTDOWN_REPORT')
    if path:
        with open(path, 'a') as out:
            out.write(json.dumps({'how': how, 'shutdown_s': times}) + '\n')


def _assert_clean(launches, nodes, times):
    text = ''.join(launch.text() for launch in launches)
    assert 'Traceback' not in text, text[-4000:]
    for name, (number, pid) in nodes.items():
        assert CLEAN.format(name, number, pid) in text, f'{name} did not exit 0:\n{text[-3000:]}'
    slow = {name: t for name, t in times.items() if t is None or t > 10}
    assert not slow, f'nodes slow to stop (target 2 s): {slow}'


def _assert_finished_bag(bag: Path):
    from rosbags.rosbag2 import Reader
    assert (bag / 'metadata.yaml').is_file(), sorted(os.listdir(bag))
    with Reader(bag) as reader:  # the summary and footer: rosbags reads it whole
        count = sum(1 for _ in reader.messages())
        assert count > 0 and count == reader.message_count


def test_show_args_of_every_launch_file(ros2_install):
    def show(name):
        return subprocess.run([ros2_install.ros2, 'launch', 'hlai_ros', name, '--show-args'],
                              env=ros2_install.env, capture_output=True, text=True,
                              timeout=120)
    with ThreadPoolExecutor(3) as pool:
        results = dict(zip(ARGUMENTS, pool.map(show, ARGUMENTS)))
    for name, result in results.items():
        assert result.returncode == 0, result.stdout + result.stderr
        shown = set(re.findall(r"^\s+'(\w+)':", result.stdout, re.M))
        assert shown == ARGUMENTS[name], name


def _message(check, *args) -> str:
    with pytest.raises(ValueError) as refused:
        check(*args)
    return str(refused.value)


def test_bad_arguments_are_refused_alike_before_anything_starts(ros2_install, tmp_path):
    existing = tmp_path / 'existing_bag'
    existing.mkdir()
    task = _message(check_task, 'juggle')
    controller = _message(check_choice, 'controller', 'fly', CONTROLLERS)
    mode = _message(check_choice, 'mode', 'fast', MODES)
    seed = _message(check_integer, 'seed', 'x', 0)
    bag = f'node recorder: bag {existing} exists already; choose a new path'
    bad_value = tmp_path / 'bad_value.yaml'  # the actor's own check refuses it
    bad_value.write_text('mpc_actor:\n  ros__parameters:\n    deadline_s: -1.0\n')
    value = f'parameter file {bad_value}: node mpc_actor: invalid parameters: deadline_s must be'
    bad_node = tmp_path / 'bad_node.yaml'  # refused by every graph, the recorder's too
    bad_node.write_text('mpc_acter:\n  ros__parameters:\n    deadline_s: 0.2\n')
    node = f"parameter file {bad_node}: unknown node 'mpc_acter'; the nodes: sim, perception,"
    hlai = [sys.executable, '-m', 'hlai_ros.cli', 'run']
    cases = [  # (command, the message it must print)
        (['sim.launch.py', 'task:=juggle'], task),
        (['robot.launch.py', 'task:=juggle'], task),
        (['record.launch.py', 'task:=juggle', 'record:=/tmp/b'], task),
        (hlai + ['--task', 'juggle'], task),
        (['robot.launch.py', 'task:=cliff', 'controller:=fly'], controller),
        (hlai + ['--task', 'cliff', '--controller', 'fly'], controller),
        (['sim.launch.py', 'task:=cliff', 'mode:=fast'], mode),
        (hlai + ['--task', 'cliff', '--mode', 'fast'], mode),
        (['sim.launch.py', 'task:=cliff', 'seed:=x'], seed),
        (['robot.launch.py', 'task:=cliff', 'view:=maybe'], 'view must be true or false'),
        (hlai + ['--task', 'cliff', '--seed', 'x'], seed),
        (['record.launch.py', 'task:=cliff', f'record:={existing}'], bag),
        (['robot.launch.py', 'task:=cliff', 'controller:=none', f'record:={existing}'], bag),
        (hlai + ['--task', 'cliff', '--set', 'mpc_actor.deadline_s=-1'],
         'node mpc_actor: invalid parameters: deadline_s must be'),
        (hlai + ['--task', 'cliff', '--set', 'perception.sync_tolerance=1'],
         "node perception: unknown parameters ['sync_tolerance']; its parameters:"),
        (['sim.launch.py', 'task:=cliff', f'params_file:={bad_value}'], value),
        (['robot.launch.py', 'task:=cliff', f'params_file:={bad_value}'], value),
        (hlai + ['--task', 'cliff', '--params-file', str(bad_value)], value),
        (['record.launch.py', 'task:=cliff', 'record:=/tmp/b', f'params_file:={bad_node}'],
         node),
    ]  # a parameter file refused alike by every launch file and hlai run: test_graph.py

    def run(command):
        if command[0].endswith('.launch.py'):
            command = [ros2_install.ros2, 'launch', 'hlai_ros', *command]
        return subprocess.run(command, env=ros2_install.env, capture_output=True, text=True,
                              timeout=120)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, [command for command, _ in cases]))
    for (command, message), result in zip(cases, results):
        output = result.stdout + result.stderr
        assert result.returncode != 0 and message in output, (command, output[-2000:])
        assert 'Traceback' not in output and 'process started' not in output, output[-2000:]
    assert existing.is_dir() and not any(existing.iterdir())


def test_sim_and_record_launch_then_ctrl_c(ros2_install, tmp_path):
    """sim.launch.py runs a cliff episode, record.launch.py records it; Ctrl-C stops all.

    The two launches run as in two terminals; Ctrl-C twice in each.
    """
    from hlai_ros.data import load_episodes

    bag = tmp_path / 'bag'
    record = Launch(ros2_install, tmp_path / 'record.log', 'record.launch.py', 'task:=cliff',
                    f'record:={bag}', 'use_sim_time:=true')
    sim = None
    try:
        record.wait_for(r'\[recorder\]: recording \d+ topics', 120)
        sim = Launch(ros2_install, tmp_path / 'sim.log', 'sim.launch.py', 'task:=cliff',
                     'wait_for:=recorder')  # else a loaded machine's discovery may miss the start
        end = json.loads(sim.wait_for(r'/hlai/episode: (\{"event": "end", "episode": 0.*\})',
                                      300)[1])
        assert end['success'] is True, end
        time.sleep(1.0)  # the recorder takes in the end marker (the test_run.py convention)
        nodes = {**sim.nodes(), **record.nodes()}
        assert set(nodes) == {'sim', 'perception', 'world_model', 'cost_critic', 'mpc_actor',
                              'recorder'}
        pids = {name: pid for name, (_, pid) in nodes.items()}
        start, times = time.monotonic(), {}
        for launch in (sim, record):  # Ctrl-C in each terminal: SIGINT to its process group
            os.killpg(launch.proc.pid, signal.SIGINT)
        _shutdown_times(pids, start, start + 0.3, times)
        for launch in (sim, record):  # and again, impatient, while they shut down
            os.killpg(launch.proc.pid, signal.SIGINT)
        times = _shutdown_times(pids, start, start + 30, times)
        for launch in (sim, record):
            # ros2 launch (3.7.1) itself may die of the second SIGINT once its nodes are gone
            # (they stop within ~0.1 s): its exit code, not theirs (checked below)
            assert launch.proc.wait(30) in (0, -signal.SIGINT), launch.text()[-3000:]
    finally:
        for launch in (sim, record):
            if launch is not None:
                launch.close()
    _report('ctrl-c under ros2 launch (sim.launch.py + record.launch.py)', times)
    _assert_clean([sim, record], nodes, times)
    _assert_finished_bag(bag)
    episodes = load_episodes(bag, cache=False)
    first = next(e for e in episodes if e.metadata.get('episode') == 0)
    assert first.metadata['ended'] is True and first.metadata['success'] is True
    assert first.metadata['steps'] == end['steps']


def _events(path: Path, kind: str) -> list[dict]:
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [e for e in lines if e['kind'] == kind]


def _ros2(install, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([install.ros2, *args], env=install.env, capture_output=True,
                          text=True, timeout=120)


def test_robot_launch_on_the_standin_driver_cli_verbs_and_sigterm(ros2_install, tmp_path,
                                                                   probe):
    """robot.launch.py drives the stand-in robot through the gate; SIGTERM stops each node.

    The ``ros2`` CLI verbs run against the graph first; then SIGTERM, twice, to each node.
    """
    driver_record = tmp_path / 'driver.jsonl'
    bag = tmp_path / 'bag'
    with open(tmp_path / 'driver.log', 'wb') as log:
        driver = subprocess.Popen([sys.executable, str(HERE / 'standin_driver.py'), '--record',
                                   str(driver_record)], stdout=log, stderr=subprocess.STDOUT,
                                  env=ros2_install.env, start_new_session=True)
    robot = None
    try:
        deadline = time.monotonic() + 60
        while not _events(driver_record, 'start'):
            assert time.monotonic() < deadline and driver.poll() is None, 'no driver'
            time.sleep(0.2)
        x0, y0, _ = _events(driver_record, 'start')[0]['pose']
        robot = Launch(ros2_install, tmp_path / 'robot.log', 'robot.launch.py', 'task:=cliff',
                       f'record:={bag}')
        goal = probe.publish_goal(x0 + 1.0, y0)  # noqa: F841 - kept alive
        deadline = time.monotonic() + 180
        while len(_events(driver_record, 'cmd')) < 20:
            assert time.monotonic() < deadline, f'no commands:\n{robot.text()[-3000:]}'
            assert robot.proc.poll() is None, robot.text()[-3000:]
            probe.spin_for(0.5)
        probe.spin_until(lambda: probe.get_publishers_info_by_topic('/cmd_vel'), 20,
                         'discovery of /cmd_vel publishers')
        probe.spin_for(1.0)  # any other publisher would be discovered by now too
        publishers = probe.get_publishers_info_by_topic('/cmd_vel')
        assert [p.node_name for p in publishers] == ['command_gate']

        verbs = [('node', 'list', '--no-daemon', '--spin-time', '5'),
                 ('topic', 'echo', '/hlai/state', '--once', '--no-daemon', '--spin-time', '5',
                  '--timeout', '60'),
                 ('param', 'set', '/command_gate', 'max_velocity', '[5.0, 5.0]',
                  '--no-daemon', '--spin-time', '5', '--timeout', '30')]
        with ThreadPoolExecutor(3) as pool:
            listed, echoed, refused = pool.map(lambda v: _ros2(ros2_install, *v), verbs)
        nodes = robot.nodes()
        assert set(nodes) == {'perception', 'world_model', 'cost_critic', 'mpc_actor',
                              'command_gate', 'recorder'}
        assert {f'/{name}' for name in nodes} <= set(listed.stdout.split()), listed
        assert echoed.returncode == 0 and 'layout:' in echoed.stdout and 'data:' in echoed.stdout
        assert 'Setting parameter failed' in refused.stdout + refused.stderr, refused
        assert 'read-only' in refused.stdout + refused.stderr, refused

        pids = {name: pid for name, (_, pid) in nodes.items()}
        start, times = time.monotonic(), {}
        for pid in pids.values():
            os.kill(pid, signal.SIGTERM)
        _shutdown_times(pids, start, start + 0.05, times)
        for pid in pids.values():  # a second SIGTERM during the shutdown
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        times = _shutdown_times(pids, start, start + 30, times)
        assert robot.proc.wait(30) == 0, robot.text()[-3000:]  # launch ends with its nodes
    finally:
        if robot is not None:
            robot.close()
        if driver.poll() is None:
            driver.send_signal(signal.SIGINT)
            driver.wait(10)
    _report('SIGTERM to each node of robot.launch.py', times)
    _assert_clean([robot], nodes, times)
    _assert_finished_bag(bag)
    commands = _events(driver_record, 'cmd')
    assert max(abs(c['v']) for c in commands) <= 0.5 + 1e-6  # the gate's limit (cliff.yaml)
