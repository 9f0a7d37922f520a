"""The graph description and its two consumers: the launch files and `hlai run` agree."""
import importlib.util
import json
from pathlib import Path
import sys
import types

import pytest

from hlai_ros.graph import GraphOptions, build, params_file
from hlai_ros.runner import MONITOR, GraphProcesses, node_command

LAUNCH = Path(__file__).resolve().parents[2] / 'launch'


class _Recorded:
    """Stands in for a launch action: keeps its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def launch_module(monkeypatch):
    """Import a launch file with `launch`/`launch_ros` replaced by recording stubs."""
    stubs = {name: types.ModuleType(name) for name in
             ('launch', 'launch.actions', 'launch_ros', 'launch_ros.actions')}
    stubs['launch'].LaunchDescription = lambda actions: list(actions)
    for name in ('DeclareLaunchArgument', 'OpaqueFunction'):
        setattr(stubs['launch.actions'], name, type(name, (_Recorded,), {}))
    stubs['launch_ros.actions'].Node = type('Node', (_Recorded,), {})
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)

    def load(filename, **arguments):
        spec = importlib.util.spec_from_file_location(filename.replace('.', '_'),
                                                      LAUNCH / filename)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        actions = module.generate_launch_description()
        declared = {a.args[0]: a.kwargs['default_value'] for a in actions
                    if type(a).__name__ == 'DeclareLaunchArgument'}
        unknown = set(arguments) - set(declared)
        assert not unknown, f'{filename} declares no {unknown}'
        context = types.SimpleNamespace(launch_configurations={**declared, **arguments})
        opaque = [a for a in actions if type(a).__name__ == 'OpaqueFunction']
        return [n.kwargs for a in opaque for n in a.kwargs['function'](context)]
    return load


def _from_argv(argv):
    """(node name, parameter file, overrides, remaps) of a `--ros-args` command line."""
    assert argv[0] == '--ros-args'
    name, params, overrides, remaps = None, None, {}, []
    it = iter(argv[1:])
    for flag in it:
        value = next(it)
        if flag == '--params-file':
            params = value
        elif flag == '-p':
            key, text = value.split(':=', 1)
            overrides[key] = json.loads(text)
        elif flag == '-r' and value.startswith('__node:='):
            name = value.split(':=', 1)[1]
        elif flag == '-r':
            remaps.append(tuple(value.split(':=', 1)))
        else:
            raise AssertionError(f'unexpected ROS argument {flag}')
    return name, params, overrides, remaps


def _runner_view(specs, task):
    out = []
    for spec in specs:
        cmd = node_command(spec, params_file(task))
        assert cmd[1:3] == ['-m', f'hlai_ros.nodes.{spec.executable}']
        out.append((spec.executable,) + _from_argv(cmd[3:]))
    return out


def _launch_view(nodes):
    out = []
    for kw in nodes:
        assert kw['package'] == 'hlai_ros'
        file, overrides = kw['parameters']
        out.append((kw['executable'], kw['name'], file, overrides,
                    [tuple(r) for r in kw['remappings']]))
    return out


@pytest.mark.parametrize('task', ['push', 'cliff'])
@pytest.mark.parametrize('record', ['', '/nonexistent/hlai_bags/run1'])
def test_sim_launch_starts_what_the_runner_starts(launch_module, task, record):
    nodes = launch_module('sim.launch.py', task=task, record=record, episodes='4', seed='2')
    options = GraphOptions(task=task, record=record, episodes=4, seed=2)
    assert _launch_view(nodes) == _runner_view(build(options), task)
    names = [n['name'] for n in nodes]
    assert names[:2] == ['sim', 'perception'] and 'mpc_actor' in names
    assert 'scripted_controller' not in names  # the learned actor closes the loop by default
    assert ('recorder' in names) == bool(record)
    graph = GraphProcesses(build(options), params_file(task), False, '/tmp/unused_logs')
    assert graph.specs == build(options) + (MONITOR,)


def test_record_and_robot_launch_files(launch_module):
    (recorder,) = launch_module('record.launch.py', task='cliff', record='/nonexistent/hlai_bag')
    assert recorder['executable'] == 'recorder'
    assert recorder['parameters'][1] == {'task': 'cliff', 'use_sim_time': False,
                                         'output': '/nonexistent/hlai_bag'}
    nodes = launch_module('robot.launch.py', task='cliff', image='/cam/color',
                          proprio='/wheel/odometry')
    names = [n['name'] for n in nodes]
    assert 'sim' not in names and 'scripted_controller' not in names
    perception = nodes[names.index('perception')]
    assert ('/camera/image_raw', '/cam/color') in perception['remappings']
    assert ('/odom', '/wheel/odometry') in perception['remappings']
    assert perception['parameters'][1]['use_sim_time'] is False


def test_graph_refuses_what_cannot_run():
    with pytest.raises(ValueError, match='ground truth'):
        GraphOptions(task='cliff', target='robot', controller='scripted')
    with pytest.raises(ValueError, match='not in the graph'):
        build(GraphOptions(task='cliff', controller='scripted',
                           node_parameters=(('mpc_actor', 'deadline_s', 0.2),)))
    with pytest.raises(ValueError, match='unknown task'):
        GraphOptions(task='juggle')


def test_an_unknown_task_lists_the_known_ones_everywhere(launch_module, capsys):
    from hlai_ros.cli import main
    from hlai_ros.tasks import check_task

    with pytest.raises(ValueError) as expected:
        check_task('juggle')
    message = str(expected.value)
    assert 'push' in message and 'cliff' in message
    for launch_file in ('sim.launch.py', 'robot.launch.py', 'record.launch.py'):
        with pytest.raises(ValueError) as got:
            launch_module(launch_file, task='juggle', record='/nonexistent/hlai_bag')
        assert str(got.value) == message, launch_file
    with pytest.raises(SystemExit):
        main(['run', '--task', 'juggle'])
    assert message in capsys.readouterr().err


def test_every_graph_node_has_a_module_and_a_console_script():
    setup = (Path(__file__).resolve().parents[2] / 'setup.py').read_text()
    for spec in build(GraphOptions(task='cliff', record='/tmp/x')):
        assert importlib.util.find_spec(spec.module) is not None
        assert f"'{spec.executable}'" in setup


def test_actor_settings_follow_the_mode():
    lockstep = {n.name: dict(n.parameters) for n in build(GraphOptions(task='cliff', model='/m'))}
    assert lockstep['mpc_actor']['model'] == '/m'
    # the world waits in lockstep: a late plan is still the answer, and the sim waits longer
    # than a plan before it republishes an observation
    assert lockstep['mpc_actor']['enforce_deadline'] is False
    assert lockstep['sim']['republish_period_s'] >= 2.0
    realtime = {n.name: dict(n.parameters)
                for n in build(GraphOptions(task='cliff', mode='realtime'))}
    assert realtime['mpc_actor']['enforce_deadline'] is True
    overridden = build(GraphOptions(task='cliff', node_parameters=(
        ('mpc_actor', 'deadline_s', 0.2), ('sim', 'max_steps', 50))))
    params = {n.name: dict(n.parameters) for n in overridden}
    assert params['mpc_actor']['deadline_s'] == 0.2 and params['sim']['max_steps'] == 50
    assert 'profile_file' not in params['mpc_actor']  # the task's own profile


def test_profile_settings_reach_both_the_configurator_and_the_actor(tmp_path, monkeypatch):
    import yaml

    from hlai_ros.tasks import get_task

    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    overrides = (('cost_critic', 'planner.horizon', 8), ('cost_critic', 'weights.goal', 2.0))
    params = {n.name: dict(n.parameters)
              for n in build(GraphOptions(task='cliff', node_parameters=overrides))}
    assert params['cost_critic']['planner.horizon'] == 8  # as given, to the configurator
    path = params['mpc_actor']['profile_file']
    assert params['cost_critic']['profile_file'] == path  # one start profile for both
    written = yaml.safe_load(Path(path).read_text())['cost_critic']['ros__parameters']
    expected = get_task('cliff').default_profile().with_params(
        {'planner.horizon': 8, 'weights.goal': 2.0}).to_params()
    assert written == expected and written['planner.samples'] > 0
    # a scripted graph has no actor, the configurator still gets its profile
    scripted = {n.name: dict(n.parameters) for n in build(GraphOptions(
        task='cliff', controller='scripted', node_parameters=overrides))}
    assert scripted['cost_critic']['profile_file'] == path
    with pytest.raises(ValueError, match='set cost_critic.planner.horizon instead'):
        build(GraphOptions(task='cliff', node_parameters=(('mpc_actor', 'horizon', 8),)))
    with pytest.raises(ValueError, match='horizon must be a whole number'):
        build(GraphOptions(task='cliff', node_parameters=(
            ('cost_critic', 'planner.horizon', 2.5),)))
    with pytest.raises(ValueError, match="no cost term 'juggle'"):
        build(GraphOptions(task='cliff', node_parameters=(
            ('cost_critic', 'weights.juggle', 1.0),)))


def test_online_learning_feeds_the_actor_checkpoints(launch_module):
    plain = {n.name: dict(n.parameters) for n in build(GraphOptions(task='cliff'))}
    assert 'watch' not in plain['mpc_actor']  # reproducible: the actor keeps its model
    assert plain['world_model']['learning'] is False
    online = {n.name: dict(n.parameters)
              for n in build(GraphOptions(task='cliff', online='/tmp/online'))}
    assert online['world_model']['output_dir'] == '/tmp/online'
    assert online['world_model']['learning'] is True
    assert online['mpc_actor']['watch'] == '/tmp/online'
    nodes = launch_module('sim.launch.py', task='cliff', online='/tmp/online')
    actor = next(n for n in nodes if n['name'] == 'mpc_actor')
    assert actor['parameters'][1]['watch'] == '/tmp/online'
    with pytest.raises(ValueError, match='online learning feeds the mpc_actor'):
        GraphOptions(task='cliff', controller='scripted', online='/tmp/online')


def test_every_launch_file_takes_a_parameter_file_as_hlai_run_does(launch_module, tmp_path,
                                                                    capsys):
    from hlai_ros.cli import main

    good = tmp_path / 'good.yaml'
    good.write_text('cost_critic:\n  ros__parameters:\n    weights.goal: 2\n'
                    'recorder:\n  ros__parameters:\n    flush_period_s: 0.2\n'
                    'sim:\n  ros__parameters:\n    max_steps: 5\n    seed: 7\n')
    nodes = {n['name']: n['parameters'][1] for n in launch_module(
        'sim.launch.py', task='cliff', seed='2', params_file=str(good))}
    assert nodes['sim']['max_steps'] == 5 and nodes['sim']['seed'] == 2  # seed:= wins
    assert capsys.readouterr().err == (f'parameter file {good}: the arguments or --set replace '
                                       'sim.seed\n')
    assert nodes['cost_critic']['weights.goal'] == 2.0
    assert nodes['mpc_actor']['profile_file'] == nodes['cost_critic']['profile_file']
    robot = {n['name']: n['parameters'][1] for n in launch_module(
        'robot.launch.py', task='cliff', params_file=str(good))}
    assert robot['cost_critic']['weights.goal'] == 2.0 and 'sim' not in robot
    (recorder,) = launch_module('record.launch.py', task='cliff', params_file=str(good),
                                record=str(tmp_path / 'bag'))
    assert recorder['parameters'][1]['flush_period_s'] == 0.2

    bad = tmp_path / 'bad.yaml'  # refused by every graph: the recorder runs in each
    bad.write_text('recorder:\n  ros__parameters:\n    flush_period_s: 0\n')
    message = (f'parameter file {bad}: node recorder: invalid parameters: flush_period_s must '
               'be > 0, got 0.0')
    record = str(tmp_path / 'bag')
    for launch_file in ('sim.launch.py', 'robot.launch.py', 'record.launch.py'):
        with pytest.raises(ValueError) as got:
            launch_module(launch_file, task='cliff', record=record, params_file=str(bad))
        assert str(got.value) == message, launch_file
    capsys.readouterr()
    assert main(['run', '--task', 'cliff', '--record', record, '--params-file', str(bad)]) == 2
    assert capsys.readouterr().err == f'hlai run: {message}\n'
    assert not (tmp_path / 'bag').exists()
