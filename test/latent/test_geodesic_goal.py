"""The geodesic goal term: keypoint distance to the goal around the learned danger map."""
from __future__ import annotations

import warnings

import pytest
import torch

from hlai_ros.cost.base import CostContext
from hlai_ros.latent.cost import GeodesicGoalTerm, LatentGoalTerm
from hlai_ros.latent.events import EventConfig, EventHeads, PixelEventHeads
from hlai_ros.latent.goal import GoalCost

N = 16                          # danger map side (a 32 x 32 frame)
CELL = 2.0 / (N - 1)            # one cell in frame units


def _heads(wall: bool) -> PixelEventHeads:
    """Pixel heads over 2 keypoints whose danger map is set by hand: a wall across x = 0.

    The wall runs down the middle column from the top and leaves the bottom three rows open.
    """
    heads = PixelEventHeads((4, 2 * N, 2 * N), 6, 2, EventConfig(kind='pixels'))
    with torch.no_grad():
        heads.bias.fill_(-6.0)
        heads.keypoint_weight.fill_(2.0)
    danger = torch.full((N, N), -10.0)
    if wall:
        danger[:N - 3, N // 2 - 1:N // 2 + 1] = 10.0
    heads._scene = danger.flatten()
    return heads


def _goal_cost() -> GoalCost:
    """Keypoint 0 moves (spread 0.5), keypoint 1 sits still (spread 0.01)."""
    return GoalCost(0, 4, torch.tensor([1.0, 1.0]), torch.tensor([4.0, 1e4]))


def _state(x: float, y: float, still=(0.3, 0.3)) -> torch.Tensor:
    return torch.tensor([x, y, *still, 0.0, 0.0])


def test_the_path_goes_round_the_wall_and_is_the_straight_line_in_free_space():
    goal = _state(0.6, -0.6)
    cost = _goal_cost()
    free = GeodesicGoalTerm(cost, heads=_heads(wall=False), danger_weight=10.0)
    walled = GeodesicGoalTerm(cost, heads=_heads(wall=True), danger_weight=10.0)
    behind, beside = _state(-0.6, -0.6), _state(0.6, 0.6)       # both 1.2 from the goal
    straight = 4.0 * 1.2 ** 2          # scale x distance², the moving keypoint's weight is all
    # free space: the grid's path is the straight line, within a cell's rounding
    for s in (behind, beside):
        d = float(free.distance(s[None], goal))
        assert abs(d - straight) / straight < 0.1
    # the wall lies between `behind` and the goal, not between `beside` and it
    assert float(walled.distance(behind[None], goal)) > 1.5 * float(straight)
    assert float(walled.distance(beside[None], goal)) == pytest.approx(
        float(free.distance(beside[None], goal)), rel=1e-4)
    # at the goal the cost is (close to) zero: never below the straight line
    assert float(walled.distance(goal[None], goal)) < 4.0 * CELL ** 2


def test_a_plan_round_the_wall_costs_less_than_one_into_it():
    goal = _state(0.6, 0.0)
    term = GeodesicGoalTerm(_goal_cost(), heads=_heads(wall=True), danger_weight=10.0)
    start = torch.tensor([-0.6, 0.0])
    into = torch.stack([start + t * torch.tensor([0.04, 0.0]) for t in range(1, 11)])
    down = torch.stack([start + t * torch.tensor([0.04, 0.08]) for t in range(1, 11)])
    still = torch.tensor([0.3, 0.3, 0.0, 0.0])

    def states(path):
        s = torch.cat([path, still.expand(len(path), 4)], 1)
        return torch.cat([_state(*start)[None], s])[None, None]           # (1, 1, T+1, 6)

    actions = torch.zeros(1, 10, 2)
    context = CostContext(goal=goal)
    cost_into = term.per_step(states(into), actions, context).sum()
    cost_down = term.per_step(states(down), actions, context).sum()
    assert cost_down < cost_into
    # with the straight line, heading for the wall looks better: the local minimum
    line = LatentGoalTerm(_goal_cost())
    assert line.per_step(states(into), actions, context).sum() < \
        line.per_step(states(down), actions, context).sum()


def test_only_moving_keypoints_count_and_the_fields_follow_the_scene():
    goal = _state(0.6, -0.6)
    heads = _heads(wall=True)
    term = GeodesicGoalTerm(_goal_cost(), heads=heads, danger_weight=10.0)
    assert term.moving.tolist() == [True, False]
    s = _state(-0.6, -0.6)
    moved = _state(-0.6, -0.6, still=(0.35, 0.25))       # the static keypoint jitters
    assert torch.equal(term.distance(s[None], goal), term.distance(moved[None], goal))
    walled = float(term.distance(s[None], goal))
    assert term.fields(goal) is term.fields(goal)        # cached for the same scene and goal
    heads._scene = _heads(wall=False)._scene              # a new frame: the wall is gone
    assert float(term.distance(s[None], goal)) < walled


def test_the_term_needs_pixel_heads_and_a_moving_keypoint():
    heads = EventHeads((4, 4, 4), 6)
    with pytest.raises(ValueError, match='pixel event heads'):
        GeodesicGoalTerm(_goal_cost(), heads=heads)
    still = GoalCost(0, 4, torch.tensor([1.0, 1.0]), torch.tensor([1e4, 1e4]))
    with pytest.raises(ValueError, match='moves more than'):
        GeodesicGoalTerm(still, heads=_heads(wall=False))
    with pytest.raises(RuntimeError, match='set_scene'):
        heads = _heads(wall=False)
        heads._scene = None
        GeodesicGoalTerm(_goal_cost(), heads=heads).fields(_state(0.0, 0.0))


def test_the_stack_uses_the_geodesic_term_with_pixel_heads_and_warns_without(tmp_path):
    from test_latent_stack import _latent_folder

    from hlai_ros.latent.stack import LatentCostWeights, LatentStack
    task, folder, data, _ = _latent_folder(tmp_path, 'pixels')
    base = LatentStack.from_folder(task, folder, weights=LatentCostWeights(geodesic=0.0))
    assert isinstance(base.planner.cost.terms[0][1], LatentGoalTerm)
    assert not isinstance(base.planner.cost.terms[0][1], GeodesicGoalTerm)
    # the tiny model's keypoints: make two of them move, as a trained encoder's robot does
    goal_cost = GoalCost(0, base.goal_cost.image_dim,
                         torch.ones_like(base.goal_cost.keypoint_weights),
                         torch.full_like(base.goal_cost.keypoint_scale, 4.0))
    stack = LatentStack(task, base.encoder, base.model, goal_cost, base.heads,
                        weights=LatentCostWeights(geodesic=10.0))
    assert isinstance(stack.planner.cost.terms[0][1], GeodesicGoalTerm)
    frame = {'rgb': data.rgb[0].permute(1, 2, 0).numpy(),
             'depth': data.depth[0].float().numpy(), 'proprio': data.proprio[0].numpy()}
    stack.set_goal({'rgb': data.rgb[12].permute(1, 2, 0).numpy(),
                    'depth': data.depth[12].float().numpy()})
    plan = stack.plan(stack.perceive(frame))
    assert torch.isfinite(torch.as_tensor(plan.action)).all() and plan.cost == plan.cost
    mlp = EventHeads((base.encoder.config.map_channels, base.encoder.config.map_size,
                      base.encoder.config.map_size), base.model.state_dim)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        stack = LatentStack(task, base.encoder, base.model, goal_cost, mlp,
                            weights=LatentCostWeights(geodesic=10.0))
    assert any('geodesic=10.0 is not used' in str(w.message) for w in caught)
    assert not isinstance(stack.planner.cost.terms[0][1], GeodesicGoalTerm)
