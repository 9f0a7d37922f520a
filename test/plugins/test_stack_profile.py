"""The configurator's profile reaches the plan; checkpoints are refused for another task."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hlai_ros.actor.stack import Stack
from hlai_ros.cost.profile import CostProfile
from hlai_ros.paths import model_dir
from hlai_ros.tasks import get_task
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model


def test_profile_comes_from_the_task_config_and_round_trips_as_json():
    task = get_task('push')
    profile = task.default_profile()
    assert profile.terms['goal'].weight == 10.0 and profile.planner.horizon == 20
    again = CostProfile.from_json(profile.to_json(), profile)
    assert again == profile
    changed = profile.with_params({'weights.goal': 3.0, 'enabled.effort': False,
                                   'planner.samples': 32, 'planner.noise_beta': 2})
    assert changed.terms['goal'].weight == 3.0 and not changed.terms['effort'].enabled
    assert changed.planner.sampling.samples == 32
    assert changed.planner.sampling.noise_beta == 2.0
    assert [name for name, *_ in task.cost(None, changed).terms] == [
        'goal', 'approach', 'fall', 'uncertainty']


@pytest.mark.parametrize('params, message', [
    ({'weights.goal': -1.0}, 'weights.goal must be a finite number >= 0'),
    ({'weights.nope': 1.0}, "no cost term 'nope'"),
    ({'enabled.goal': 1}, 'enabled.goal must be true or false'),
    ({'planner.samples': 1}, 'samples >= 2'),
    ({'planner.horizon': 2.5}, 'horizon must be a whole number'),
    ({'planner.nope': 1}, 'unknown planner setting'),
    ({'planner.noise_beta': -1}, 'noise_beta must be >= 0'),
])
def test_profile_refuses_bad_settings_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        get_task('push').default_profile().with_params(params)


@pytest.fixture(scope='module')
def cliff_stack():
    task = get_task('cliff')
    profile = task.default_profile().with_params({'planner.horizon': 6,
                                                  'planner.samples': 16})
    return Stack.from_folder(task, device='cpu', profile=profile)


def _percept(task):
    from hlai_ros.tasks.base import Percept
    state = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0], np.float32)
    return Percept(state, np.array([1.5, 0.5], np.float32))


def test_reconfigure_changes_the_plan(cliff_stack):
    percept = _percept(cliff_stack.task)
    cliff_stack.reset()
    before = cliff_stack.plan(percept).action
    assert cliff_stack.reconfigure(cliff_stack.profile.with_params({'weights.goal': 0.0}))
    cliff_stack.reset()
    after = cliff_stack.plan(percept).action
    assert not np.allclose(before, after)
    assert cliff_stack.planner.config.horizon == 6
    assert cliff_stack.reconfigure(cliff_stack.profile.with_params({'planner.horizon': 4}))
    assert cliff_stack.planner.config.horizon == 4
    assert not cliff_stack.reconfigure(cliff_stack.profile)


def test_swap_model_refuses_another_tasks_model(cliff_stack):
    push_model = load_world_model(model_dir() / 'push')
    with pytest.raises(CheckpointError, match="trained for task 'push'.*loaded for task 'cliff'"):
        cliff_stack.swap_model(push_model)
    model = load_world_model(model_dir() / 'cliff')
    cliff_stack.swap_model(model)
    assert cliff_stack.model is model
    assert cliff_stack.fallback(_percept(cliff_stack.task)).shape == (2,)
    assert torch.is_tensor(cliff_stack.plan(_percept(cliff_stack.task)).actions)


def test_the_push_model_is_refused_for_cliff_by_the_cli():
    run = subprocess.run([sys.executable, '-m', 'hlai_ros.cli', 'eval', '--task', 'cliff',
                          '--model', str(model_dir() / 'push'), '--controllers', 'learned',
                          '--episodes', '1'], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "trained for task 'push' on 'panda'" in run.stderr
    assert "cannot be loaded for task 'cliff' on 'husky'" in run.stderr


def test_a_checkpoint_without_identity_is_refused(tmp_path):
    from hlai_ros.world_model.checkpoint import save_world_model
    model = load_world_model(model_dir() / 'push')
    save_world_model(model, tmp_path, {'task': 'push'})
    with pytest.raises(CheckpointError, match='carries no identity'):
        load_world_model(tmp_path, identity=get_task('push').identity())
    header = json.loads((model_dir() / 'push' / 'world_model.json').read_text())
    assert header['metadata']['identity'] == get_task('push').identity('state')
