"""The push task: model state by name, the pre-push approach term, the task cost."""
import numpy as np
import pytest
import torch

from hlai_ros.cost.base import CostContext
from hlai_ros.perception.push import STATE_NAMES
from hlai_ros.tasks import get_task
from hlai_ros.tasks.push import approach_cost

torch.set_num_threads(1)


def test_decode_picks_model_state_and_goal_by_name():
    task = get_task('push')
    values = np.arange(len(STATE_NAMES), dtype=np.float32)
    percept = task.decode(STATE_NAMES, values)
    assert percept.model_state.shape == (task.state_dim,)
    expected = [STATE_NAMES.index(n) for n in task.model_state_names]
    np.testing.assert_array_equal(percept.model_state, values[expected])
    np.testing.assert_array_equal(percept.goal, values[[STATE_NAMES.index('goal_x'),
                                                        STATE_NAMES.index('goal_y')]])
    shuffled = list(reversed(STATE_NAMES))
    again = task.decode(shuffled, values[::-1])
    np.testing.assert_array_equal(again.model_state, percept.model_state)


def test_decode_rejects_missing_names_and_length_mismatch():
    task = get_task('push')
    with pytest.raises(ValueError, match='lacks'):
        task.decode(('ee_x', 'ee_y', 'goal_x', 'goal_y'), np.zeros(4))
    with pytest.raises(ValueError, match='state names'):
        task.decode(STATE_NAMES, np.zeros(3))


def test_box_velocity_is_not_in_the_model_state_but_the_hand_velocity_is():
    task = get_task('push')
    assert task.model_state_names == ('ee_x', 'ee_y', 'obj_x', 'obj_y', 'ee_vx', 'ee_vy')
    assert task.position_indices == (2, 3)


def _held(states: torch.Tensor) -> torch.Tensor:
    """States (N, S) held for a plan of one step: (1, N, 2, S), step 0 the current one."""
    return states.view(1, -1, 1, states.shape[-1]).expand(1, -1, 2, -1)


def test_approach_cost_is_zero_behind_the_box_and_falls_all_the_way_round():
    goal = torch.tensor([0.6, 0.0])
    box = [0.5, 0.0]
    standoff = 0.045
    behind = torch.tensor([[0.5 - standoff, 0.0, *box]])
    cost = approach_cost(_held(behind), goal, standoff)
    assert cost.shape == (1, 1, 1)
    assert float(cost) < 0.005
    # from in front of the box (angle pi) round to behind it at the circling radius: the cost
    # falls at every step, so a planner that follows it goes round instead of through the box
    angles = torch.linspace(np.pi, 0.0, 9)
    ring = torch.stack([torch.tensor([0.5 - 0.08 * np.cos(a), 0.08 * np.sin(a), *box])
                        for a in angles.tolist()])
    costs = approach_cost(_held(ring), goal, standoff)[0, :, 0]
    assert bool((costs[1:] < costs[:-1]).all())
    # straight through the box from in front is not downhill at first
    through = torch.tensor([[0.58, 0.0, *box], [0.55, 0.0, *box]])
    c = approach_cost(_held(through), goal, standoff)[0, :, 0]
    assert float(c[1]) >= float(c[0]) - 0.01


def test_approach_cost_goes_round_on_the_side_the_hand_starts_on():
    goal = torch.tensor([0.6, 0.0])
    box = [0.5, 0.0]
    # the hand starts just off the front line on the +y side; going on round that side costs
    # less than crossing the front line to the other side, though both are as far from behind
    start = torch.tensor([0.5 + 0.08 * np.cos(0.2), 0.08 * np.sin(0.2), *box])
    same = torch.tensor([0.5 + 0.08 * np.cos(0.6), 0.08 * np.sin(0.6), *box])
    other = torch.tensor([0.5 + 0.08 * np.cos(0.6), -0.08 * np.sin(0.6), *box])
    states = torch.stack([torch.stack([start, same]), torch.stack([start, other])])
    c = approach_cost(states.unsqueeze(0), goal, 0.045)[0, :, 0]
    assert float(c[0]) + 0.05 < float(c[1])


def test_approach_cost_follows_per_sample_goals():
    states = torch.tensor([0.45, 0.0, 0.5, 0.0, 0.0, 0.0]).view(1, 1, 1, 6).expand(1, 2, 2, 6)
    goals = torch.tensor([[0.6, 0.0], [0.4, 0.0]])
    cost = approach_cost(states, goals, 0.05)
    assert float(cost[0, 0, 0]) < 0.005 < 0.1 < float(cost[0, 1, 0])


def test_task_cost_prefers_pushing_the_box_towards_the_goal():
    task = get_task('push')
    cost = task.cost(None)
    assert 'approach' in [name for name, *_ in cost.terms]
    ctx = CostContext(goal=torch.tensor([0.6, 0.0]))
    start = torch.tensor([0.455, 0.0, 0.5, 0.0, 0.0, 0.0])
    towards = torch.stack([start + torch.tensor([0.02, 0.0, 0.02, 0.0, 0.0, 0.0]) * k
                           for k in range(4)])
    away = torch.stack([start + torch.tensor([0.0, 0.02, 0.0, 0.0, 0.0, 0.0]) * k
                        for k in range(4)])
    states = torch.stack([towards, away]).unsqueeze(0)  # (1, 2, 4, 6)
    actions = torch.zeros(2, 3, 2)
    c = cost(states, actions, ctx)
    assert c.shape == (2,)
    assert float(c[0]) < float(c[1])
    grad_states = states.clone().requires_grad_(True)
    cost(grad_states, actions, ctx).sum().backward()
    assert torch.isfinite(grad_states.grad).all()
    assert float(grad_states.grad[..., 0:2].abs().sum()) > 0  # the hand gets a gradient
