"""A user's parameter file (``hlai run --params-file``, ``params_file:=``), without ROS.

The file has the form of ``config/<task>.yaml``. Its settings go over the task's file and under
the graph's own settings and ``--set``; each node's own checks accept them before anything
starts, and a refusal names the file, the node and the parameter. The same refusal from the
launch files is in test_graph.py (stub launch) and test_launch.py (the real ``ros2 launch``);
real ``hlai run`` processes in test_params_file_run.py.
"""
from pathlib import Path
import shutil

import pytest
import yaml

from hlai_ros.config import load_params, read_params_file
from hlai_ros.graph import (
    GraphOptions,
    build,
    checked,
    checked_build,
    checked_specs,
    recorder_node,
)

CONFIG = Path(__file__).resolve().parents[2] / 'config'
GOOD = '''# a user's settings for cliff
/cost_critic:                 # a leading slash, as ROS 2 writes node names
  ros__parameters:
    weights:                  # nested: weights.goal, as ROS 2 reads it
      goal: 3                 # an integer for a float parameter
    planner.horizon: 8
    planner.samples: 32
mpc_actor:
  ros__parameters:
    deadline_s: 2e-1          # a float to ROS 2 (YAML 1.1 would make it a string)
sim:
  ros__parameters:
    max_steps: 5              # over the task's (no limit of its own)
    seed: 7                   # under the graph's own: --seed / seed:= wins
recorder:                     # not in a graph without recording: ignored there
  ros__parameters:
    flush_period_s: 0.2
'''


def _write(tmp_path, text: str, name: str = 'params.yaml') -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _params(specs) -> dict[str, dict]:
    return {s.name: dict(s.parameters) for s in specs}


def test_a_file_goes_over_the_task_file_and_under_the_graph_and_set(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    path = _write(tmp_path, GOOD)
    assert read_params_file(path)['cost_critic'] == {
        'weights.goal': 3, 'planner.horizon': 8, 'planner.samples': 32}
    options = GraphOptions(task='cliff', seed=2, node_parameters=(
        ('cost_critic', 'planner.samples', 16),))
    notes = []
    params = _params(checked_build(options, path, notes))
    assert notes == [f'parameter file {path}: the arguments or --set replace '
                     'cost_critic.planner.samples, sim.seed']
    assert params['sim']['max_steps'] == 5  # file over the task's file
    assert params['sim']['seed'] == 2  # the graph's own over the file
    assert params['mpc_actor']['deadline_s'] == 0.2
    critic = params['cost_critic']
    weight = critic['weights.goal']
    assert weight == 3.0 and isinstance(weight, float)  # typed as the node declares it
    assert critic['planner.horizon'] == 8 and critic['planner.samples'] == 16  # --set wins
    assert 'recorder' not in params
    # the actor starts from the same profile: the file's and --set's settings, in one file
    assert params['mpc_actor']['profile_file'] == critic['profile_file']
    written = yaml.safe_load(Path(critic['profile_file']).read_text())
    profile = written['cost_critic']['ros__parameters']
    assert (profile['weights.goal'], profile['planner.horizon'],
            profile['planner.samples']) == (3.0, 8, 16)
    # each parameter once per node, so `-p` and launch's dict agree on the value
    for spec in checked_build(options, path):
        names = [key for key, _ in spec.parameters]
        assert len(names) == len(set(names)), spec
    # the recorder takes its section where it runs
    (recorder,) = checked_specs([recorder_node('cliff', str(tmp_path / 'bag'), False)],
                                'cliff', path)
    assert dict(recorder.parameters)['flush_period_s'] == 0.2
    assert dict(recorder.parameters)['output'] == str(tmp_path / 'bag')


@pytest.mark.parametrize('task', ['cliff', 'push'])
def test_a_copy_of_the_task_file_changes_nothing(tmp_path, task):
    copy = shutil.copy(CONFIG / f'{task}.yaml', tmp_path / 'copy.yaml')
    for options in (GraphOptions(task=task), GraphOptions(task=task, mode='realtime'),
                    GraphOptions(task=task, online=str(tmp_path / 'online'))):
        task_file = load_params(task)

        def effective(specs):
            return {s.name: {**task_file.get(s.name, {}), **dict(s.parameters)} for s in specs}
        assert effective(checked_build(options, copy)) == effective(
            checked(build(options), task))


BAD = [  # (file text, what the message says after "parameter file PATH: ")
    ('mpc_actor:\n  ros__parameters:\n    deadline_s: -1.0\n',
     'node mpc_actor: invalid parameters: deadline_s must be a finite number >= 0'),
    ('mpc_actor:\n  ros__parameters:\n    deadline: 0.2\n',
     "node mpc_actor: unknown parameters ['deadline']; its parameters: "),
    ('perception:\n  ros__parameters:\n    sync_tolerance_s: fast\n',
     "node perception: parameter sync_tolerance_s must be a float (default 0.05), got 'fast'"),
    ('sim:\n  ros__parameters:\n    use_sim_time: maybe\n',
     "node sim: parameter use_sim_time must be a bool (default False), got 'maybe'"),
    ('sim:\n  ros__parameters:\n    physics_hz: 25.0\n', 'node sim: invalid parameters: '),
    ('cost_critic:\n  ros__parameters:\n    weights.goal: -1.0\n',
     'node cost_critic: invalid parameters: weights.goal must be'),
    ('cost_critic:\n  ros__parameters:\n    weights.juggle: 1.0\n',
     "node cost_critic: invalid parameters: weights.juggle: the task has no cost term "
     "'juggle'; its terms: "),
    ('cost_critic:\n  ros__parameters:\n    planner.horizon: 2.5\n',
     'node cost_critic: invalid parameters: planner settings: horizon must be a whole number, '
     'got 2.5'),
    ('mpc_actor:\n  ros__parameters:\n    planner.samples: 32\n',
     'mpc_actor.planner.samples: the planner settings and cost weights are the cost profile; '
     'set cost_critic.planner.samples instead'),
    ('mpc_acter:\n  ros__parameters:\n    deadline_s: 0.2\n',
     "unknown node 'mpc_acter'; the nodes: sim, perception, "),
    ('perception:\n  ros__parameters:\n    task: push\n',
     "node perception: parameter task is 'push', but the graph runs 'cliff'"),
    ('/**:\n  ros__parameters:\n    use_sim_time: true\n',
     "node name '/**': name each node of the graph (no wildcards or namespaces)"),
    ('mpc_actor:\n  deadline_s: 0.2\n',
     'node mpc_actor: needs a "ros__parameters" mapping'),
    ('mpc_actor:\n  ros__parameters: {deadline_s: 0.2\n',
     "not valid YAML: line 3, column 1: expected ',' or '}'"),
    ('- mpc_actor\n', 'expected a mapping of node names'),
    ('', 'expected a mapping of node names'),
    ('mpc_actor:\n  ros__parameters: {}\nmpc_actor:\n  ros__parameters: {}\n',
     "not valid YAML: line 3, column 1: 'mpc_actor' appears twice"),
    ('mpc_actor:\n  ros__parameters:\n    deadline_s: 0.2\n    deadline_s: 0.3\n',
     "not valid YAML: line 4, column 5: 'deadline_s' appears twice"),
    ('mpc_actor:\n  ros__parameters: {}\n/mpc_actor:\n  ros__parameters: {}\n',
     'node mpc_actor appears twice'),
]


@pytest.mark.parametrize('text, message', BAD, ids=[m.split(':')[0][:24] for _, m in BAD])
def test_a_bad_file_is_refused_naming_file_node_and_parameter(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as refused:
        checked_build(GraphOptions(task='cliff'), path)
    assert str(refused.value).startswith(f'parameter file {path}: {message}'), refused.value


def test_a_missing_file_and_a_setting_that_is_not_the_files(tmp_path):
    missing = tmp_path / 'nope.yaml'
    with pytest.raises(ValueError, match=f'^parameter file {missing}: no such file$'):
        checked_build(GraphOptions(task='cliff'), missing)
    # what the file does not cause is refused as before, without naming it
    good = _write(tmp_path, GOOD)
    with pytest.raises(ValueError) as refused:
        checked_build(GraphOptions(task='cliff', node_parameters=(
            ('mpc_actor', 'deadline_s', -1.0),)), good)
    assert str(refused.value).startswith('node mpc_actor: invalid parameters: deadline_s')
    existing = tmp_path / 'bag'
    existing.mkdir()
    with pytest.raises(ValueError, match=f'^node recorder: bag {existing} exists already'):
        checked_specs([recorder_node('cliff', str(existing), False)], 'cliff', good)
    # a bad value that --set overrides is not used, as ROS 2 would not use it
    file = _write(tmp_path, 'mpc_actor:\n  ros__parameters:\n    deadline_s: -1.0\n', 'b.yaml')
    specs = checked_build(GraphOptions(task='cliff', node_parameters=(
        ('mpc_actor', 'deadline_s', 0.3),)), file)
    assert _params(specs)['mpc_actor']['deadline_s'] == 0.3


def test_hlai_run_refuses_a_bad_file_before_starting(tmp_path, capsys):
    from hlai_ros.cli import main

    path = _write(tmp_path, BAD[0][0])
    logs = tmp_path / 'logs'
    assert main(['run', '--task', 'cliff', '--params-file', str(path), '--log-dir',
                 str(logs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'hlai run: parameter file {path}: {BAD[0][1]}'), err
    assert len(err.splitlines()) == 1
    assert not logs.exists()
