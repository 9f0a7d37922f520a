"""Where perception did not measure the object, the stack plans from its model's prediction."""
import dataclasses

import numpy as np
import pytest
import torch

from hlai_ros.actor.stack import Stack
from hlai_ros.tasks import get_task
from hlai_ros.tasks.base import SEEN_LABEL, Percept, measured_in
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel

torch.set_num_threads(1)


@pytest.fixture()
def stack():
    task = get_task('roll')
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig(state_dim=task.state_dim, action_dim=task.action_dim,
                                        ensemble_size=2, hidden_sizes=(16,)))
    profile = task.default_profile().with_params({'planner.horizon': 4, 'planner.samples': 16,
                                                  'planner.gradient_steps': 0})
    return Stack(task, model, profile=profile)


def _percept(task, measured, ball=(0.55, 0.05)):
    state = np.array([0.45, 0.0, *ball, 0.0, 0.0, 0.0, 0.0], np.float32)
    return Percept(state, np.array([0.6, 0.1], np.float32), measured=measured)


def test_the_roll_state_says_whether_the_ball_was_seen():
    task = get_task('roll')
    names = list(task.model_state_names) + ['goal_x', 'goal_y', SEEN_LABEL]
    values = np.zeros(len(names), np.float32)
    assert not task.decode(names, values).measured and not measured_in(names, values)
    values[-1] = 1.0
    assert task.decode(names, values).measured
    assert task.decode(names[:-1], values[:-1]).measured  # no label: measured


def test_an_unmeasured_ball_is_the_models_prediction_from_the_last_step(stack):
    task = stack.task
    first = _percept(task, measured=True)
    plan = stack.plan(first)
    state = torch.as_tensor(first.model_state)
    expected = stack.planner.predict(state, torch.as_tensor(plan.action).reshape(1, -1))
    expected = expected.mean(0)[1].detach().numpy()
    hidden = _percept(task, measured=False, ball=(0.9, -0.3))  # the estimator's bad guess
    used = stack.state(hidden)
    guessed = list(task.unmeasured_indices)
    np.testing.assert_allclose(used[guessed], expected[guessed], rtol=1e-5, atol=1e-6)
    kept = [i for i in range(task.state_dim) if i not in guessed]
    np.testing.assert_array_equal(used[kept], hidden.model_state[kept])  # the hand: measured
    stack.plan(hidden)
    np.testing.assert_array_equal(stack.state(hidden), used)  # what it planned from


def test_a_measured_ball_and_the_switch_off_keep_perceptions_values(stack):
    task = stack.task
    stack.plan(_percept(task, measured=True))
    seen = _percept(task, measured=True, ball=(0.9, -0.3))
    np.testing.assert_array_equal(stack.state(seen), seen.model_state)
    stack.predict_unmeasured = False
    hidden = dataclasses.replace(seen, measured=False)
    np.testing.assert_array_equal(stack.state(hidden), hidden.model_state)


def test_reset_forgets_the_prediction(stack):
    task = stack.task
    stack.plan(_percept(task, measured=True))
    stack.reset()
    hidden = _percept(task, measured=False, ball=(0.9, -0.3))
    np.testing.assert_array_equal(stack.state(hidden), hidden.model_state)
