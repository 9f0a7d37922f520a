"""Cost terms: shapes, values at known points, gradients, and the config-built composite."""
import pytest
import torch
from toy_dynamics import DoubleIntegrator

from hlai_ros.cost import (
    Cost,
    CostContext,
    EffortCost,
    FunctionCost,
    GoalCost,
    ObstacleCollisionCost,
    PlatformFallCost,
    RewardCost,
    SmoothnessCost,
    UncertaintyCost,
    cost_config_from_dict,
)
from hlai_ros.world_model.protocol import Dynamics

torch.set_num_threads(1)
E, N, T, S, A = 3, 5, 4, 4, 2


def _still(x=0.0, y=0.0):
    """States (E, N, T+1, S) resting at (x, y) and zero actions (N, T, A)."""
    states = torch.zeros(E, N, T + 1, S)
    states[..., 0], states[..., 1] = x, y
    return states, torch.zeros(N, T, A)


def test_toy_dynamics_is_a_dynamics():
    assert isinstance(DoubleIntegrator(), Dynamics)


def test_goal_zero_at_goal_and_distance_elsewhere():
    term = GoalCost(position_indices=(0, 1))
    states, actions = _still(0.3, -0.4)
    at_goal = term.per_step(states, actions, CostContext(goal=torch.tensor([0.3, -0.4])))
    assert at_goal.shape == (N, T)
    assert torch.allclose(at_goal, torch.zeros(N, T), atol=1e-5)
    away = term.per_step(states, actions, CostContext(goal=torch.tensor([0.0, 0.0])))
    assert torch.allclose(away, torch.full((N, T), 0.5), atol=1e-5)


def test_goal_read_from_state_indices():
    term = GoalCost(position_indices=(0, 1), goal_indices=(2, 3), squared=True)
    states, actions = _still(1.0, 1.0)
    states[..., 2], states[..., 3] = 1.0, 3.0
    assert torch.allclose(term.per_step(states, actions, CostContext()), torch.full((N, T), 4.0))


def test_goal_without_goal_is_a_clear_error():
    with pytest.raises(ValueError, match='goal'):
        GoalCost(position_indices=(0, 1)).per_step(*_still(), CostContext())


def test_shape_mismatch_is_a_clear_error():
    states, actions = _still()
    with pytest.raises(ValueError, match='T\\+1'):
        EffortCost().per_step(states[:, :, :-1], actions, CostContext())
    with pytest.raises(ValueError, match='out of range'):
        GoalCost(position_indices=(0, 9)).per_step(states, actions,
                                                   CostContext(goal=torch.zeros(2)))


def test_platform_fall_small_inside_large_beyond_edge_and_stays_fallen():
    term = PlatformFallCost(position_indices=(0, 1), bounds=(-0.5, 0.5, -0.4, 0.4))
    ctx = CostContext()
    inside = term.per_step(*_still(0.0, 0.0), ctx)
    beyond = term.per_step(*_still(0.6, 0.0), ctx)
    assert inside.shape == (N, T)
    assert float(inside.max()) < 1e-3
    assert float(beyond.min()) > 0.99
    states, actions = _still(0.0, 0.0)
    states[:, :, 2, 0] = 0.7  # off the edge at step 2, "back" at step 3 (a model glitch)
    score = term.per_step(states, actions, ctx)
    assert float(score[:, 2:].min()) > 0.99
    hard = term.failed(states)
    assert hard.shape == (E, N, T + 1)
    assert not bool(hard[..., :2].any()) and bool(hard[..., 2:].all())


def test_run_out_charges_a_ball_that_would_roll_off_not_one_rolling_away_or_stopping():
    term = PlatformFallCost(position_indices=(0, 1), bounds=(-0.5, 0.5, -0.4, 0.4),
                            margin=0.0, sharpness=300.0, velocity_indices=(2, 3),
                            deceleration=0.05, running_max=False)
    ctx = CostContext()
    states, actions = _still(0.45, 0.0)  # 5 cm from the edge
    states[..., 2] = 0.1  # towards it at 0.1 m/s: rolls 10 cm more
    assert float(term.per_step(states, actions, ctx).min()) > 0.99
    states[..., 2] = -0.1  # away from it
    assert float(term.per_step(states, actions, ctx).max()) < 1e-3
    states[..., 2] = 0.05  # slow enough to stop 2.5 cm short
    assert float(term.per_step(states, actions, ctx).max()) < 1e-3
    states[..., 2] = 0.1
    states[:, :, 3:, 2] = 0.0  # the hand stops it at step 3: later steps are not charged
    score = term.per_step(states, actions, ctx)
    assert float(score[:, :2].min()) > 0.99 and float(score[:, 2:].max()) < 1e-3
    assert not bool(term.failed(states).any())  # failing is where it is, not where it rolls
    with pytest.raises(ValueError, match='deceleration > 0'):
        PlatformFallCost(position_indices=(0, 1), bounds=(-1, 1, -1, 1), velocity_indices=(2, 3))


def test_obstacle_collision_barrier_and_indicator():
    term = ObstacleCollisionCost(position_indices=(0, 1), centres=((1.0, 0.0), (-1.0, 0.0)),
                                 radii=(0.2, 0.3), body_radius=0.1)
    ctx = CostContext()
    assert float(term.per_step(*_still(0.0, 0.0), ctx).max()) < 1e-3
    hit = _still(0.75, 0.0)[0]
    assert float(term.per_step(hit, torch.zeros(N, T, A), ctx).min()) > 0.99
    assert bool(term.failed(hit).all())
    assert not bool(term.failed(_still(0.0, 0.0)[0]).any())


def test_catastrophe_gradient_pushes_back_from_edge():
    term = PlatformFallCost(position_indices=(0, 1), bounds=(-0.5, 0.5, -0.5, 0.5))
    states = _still(0.47, 0.0)[0].requires_grad_(True)
    term.per_step(states, torch.zeros(N, T, A), CostContext()).sum().backward()
    assert float(states.grad[..., 1:, 0].min()) > 0  # cost grows towards the edge


def test_effort_and_smoothness_values():
    actions = torch.zeros(N, T, A)
    actions[:, :, 0] = torch.tensor([1.0, 1.0, -1.0, -1.0])
    states = torch.zeros(E, N, T + 1, S)
    assert torch.allclose(EffortCost().per_step(states, actions, CostContext()),
                          torch.ones(N, T))
    assert torch.allclose(EffortCost(scale=(2.0, 1.0)).per_step(states, actions, CostContext()),
                          torch.full((N, T), 0.25))
    smooth = SmoothnessCost().per_step(states, actions,
                                       CostContext(previous_action=torch.tensor([-1.0, 0.0])))
    assert torch.allclose(smooth[0], torch.tensor([4.0, 0.0, 4.0, 0.0]))
    no_prev = SmoothnessCost().per_step(states, actions, CostContext())
    assert float(no_prev[0, 0]) == 0.0


def test_uncertainty_zero_when_members_agree_positive_when_not():
    model_same = DoubleIntegrator(ensemble_size=4, spread=0.0)
    model_diff = DoubleIntegrator(ensemble_size=4, spread=0.3)
    s0 = torch.zeros(N, S)
    actions = torch.ones(N, T, A)
    term = UncertaintyCost()
    same = term.per_step(model_same.rollout(s0, actions), actions, CostContext())
    diff = term.per_step(model_diff.rollout(s0, actions), actions, CostContext())
    assert same.shape == (N, T)
    assert float(same.abs().max()) == 0.0
    assert float(diff.min()) > 0.0
    assert bool((diff[:, 1:] > diff[:, :-1]).all())  # disagreement grows along the horizon


def test_reward_cost_negates_model_reward():
    model = DoubleIntegrator()
    states, actions = _still(1.0, 2.0)
    c = RewardCost(model).per_step(states, actions, CostContext())
    assert torch.allclose(c, torch.full((N, T), 5.0))


def test_function_cost_wraps_any_function_and_checks_its_shape():
    def height(states, actions, context):
        return states[:, :, 1:, 1]  # (E, N, T)

    states, actions = _still(0.0, 0.5)
    assert torch.allclose(FunctionCost(height).per_step(states, actions, CostContext()),
                          torch.full((N, T), 0.5))
    with pytest.raises(ValueError, match='cost function must return'):
        FunctionCost(lambda s, a, c: s.sum()).per_step(states, actions, CostContext())


def test_composite_from_config_weights_powers_and_disables():
    section = {
        'terms': ['goal', 'fall', 'effort', 'custom'],
        'goal': {'weight': 2.0, 'power': 2, 'position_indices': [0, 1]},
        'fall': {'kind': 'platform_fall', 'weight': 10.0, 'position_indices': [0, 1],
                 'bounds': [-0.5, 0.5, -0.5, 0.5]},
        'effort': {'enabled': False},
        'custom': {'kind': 'function', 'weight': 0.5},
    }
    cost = Cost.from_config(cost_config_from_dict(section),
                            function=lambda s, a, c: torch.ones(s.shape[1], a.shape[1]))
    assert [name for name, *_ in cost.terms] == ['goal', 'fall', 'custom']
    states, actions = _still(0.3, 0.4)
    ctx = CostContext(goal=torch.zeros(2))
    parts = cost.per_term(states, actions, ctx)
    assert torch.allclose(parts['goal'], torch.full((N, T), 2.0 * 0.25), atol=1e-5)
    assert torch.allclose(parts['custom'], torch.full((N, T), 0.5))
    total = cost(states, actions, ctx)
    assert total.shape == (N,)
    expected = sum(p.sum(-1) for p in parts.values())
    assert torch.allclose(total, expected)
    off = _still(0.8, 0.0)[0]
    assert bool(cost.failed(off).all())


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match='unknown cost term kind'):
        cost_config_from_dict({'terms': ['nope']})
    with pytest.raises(ValueError, match='bad parameters'):
        Cost.from_config(cost_config_from_dict({'terms': ['goal'], 'goal': {'radius': 1}}))
    with pytest.raises(ValueError, match='needs model='):
        Cost.from_config(cost_config_from_dict({'terms': ['reward']}))


def test_gradients_through_model_reach_the_actions():
    model = DoubleIntegrator()
    cost = Cost([('goal', GoalCost(position_indices=(0, 1)), 1.0, 1.0),
                 ('effort', EffortCost(), 0.1, 1.0)])
    actions = torch.zeros(N, T, A, requires_grad=True)
    s0 = torch.zeros(N, S)
    total = cost(model.rollout(s0, actions), actions, CostContext(goal=torch.tensor([1.0, 0.0])))
    total.sum().backward()
    assert actions.grad is not None
    # moving towards +x reduces the goal distance: the gradient on ax is negative at every step
    assert bool((actions.grad[:, :, 0] < 0).all())
