"""The geodesic goal term: the way around obstacles, differentiable, straight without a scene."""
import math

import numpy as np
import pytest
import torch

from hlai_ros.cost import CostContext
from hlai_ros.cost.composite import Cost, cost_config_from_dict
from hlai_ros.cost.navigation import GeodesicGoalCost, distance_field

torch.set_num_threads(1)

WALLED = GeodesicGoalCost((0, 1), bounds=(-2.0, 2.0, -2.0, 2.0), centres=((0.0, 0.0),),
                          radii=(0.4,), body_radius=0.3, clearance=0.0, edge_margin=0.1,
                          barrier_weight=200.0)


def test_distance_field_on_a_free_grid_is_the_octile_distance():
    d = distance_field(np.ones((5, 7)), (0, 0), resolution=0.5)
    assert d[0, 0] == 0.0
    assert d[0, 6] == pytest.approx(3.0)
    assert d[4, 4] == pytest.approx(4 * 0.5 * math.sqrt(2))


def test_behind_an_obstacle_the_distance_is_the_way_around():
    goal = torch.tensor([1.5, 0.0])
    behind = torch.tensor([[-1.5, 0.0]])
    d = float(WALLED.distance(behind, goal))
    straight = 3.0
    # around a disc of radius 0.7 (0.4 + 0.3): more than straight, less than a wide detour
    assert straight + 0.2 < d < straight + 1.5


def test_gradient_points_around_the_obstacle_not_into_it():
    goal = torch.tensor([1.5, 0.0])
    p = torch.tensor([[-1.2, 0.05]], requires_grad=True)
    WALLED.distance(p, goal).sum().backward()
    # descending moves sideways (+y, the side it is already on) more than straight at the disc
    step = -p.grad[0]
    assert float(step[1]) > 0.3


def test_without_a_scene_it_is_the_straight_line_distance():
    term = GeodesicGoalCost((0, 1))
    states = torch.tensor([[3.0, 4.0]]).view(1, 1, 1, 2).expand(1, 1, 2, 2)
    c = term.per_step(states, torch.zeros(1, 1, 1), CostContext(goal=torch.zeros(2)))
    assert float(c) == pytest.approx(5.0, abs=1e-4)
    with pytest.raises(ValueError, match='goal'):
        term.per_step(states, torch.zeros(1, 1, 1), CostContext())


def test_built_from_config_by_kind():
    cost = Cost.from_config(cost_config_from_dict({
        'terms': ['goal'], 'goal': {'kind': 'geodesic_goal', 'position_indices': [0, 1],
                                    'bounds': [-2, 2, -2, 2], 'centres': [[0, 0]],
                                    'radii': [0.4], 'terminal_weight': 1.0}}))
    states = torch.tensor([-1.5, 0.0]).view(1, 1, 1, 2).expand(1, 1, 3, 2)
    c = cost.per_step(states, torch.zeros(1, 2, 1), CostContext(goal=torch.tensor([1.5, 0.0])))
    assert c.shape == (1, 2)
    assert float(c[0, 1]) == pytest.approx(2 * float(c[0, 0]), rel=1e-5)
