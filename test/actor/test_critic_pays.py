"""The critic that sees the scene ('path' features, issue 14).

Its features, TD(lambda) on them, the planner's terminal cost, checkpoints and the data built
from recorded episodes.
"""
from dataclasses import replace

import numpy as np
import pytest
import torch
from toy_dynamics import DoubleIntegrator

from hlai_ros.actor.checkpoint import load_critic, save_critic
from hlai_ros.actor.optimizer import OptimizerConfig
from hlai_ros.actor.planner import Planner, PlannerConfig
from hlai_ros.actor.training import ValueTrajectory, train_critic_on_features
from hlai_ros.cost import CostContext
from hlai_ros.cost.composite import Cost
from hlai_ros.cost.critic import Critic, CriticConfig, feature_size, path_term
from hlai_ros.cost.navigation import GeodesicGoalCost

torch.set_num_threads(1)

WALLED = GeodesicGoalCost((0, 1), bounds=(-2.0, 2.0, -2.0, 2.0), centres=((0.0, 0.0),),
                          radii=(0.4,), body_radius=0.3, clearance=0.0, edge_margin=0.1,
                          barrier_weight=200.0, heading_indices=(2, 3))
COST = Cost([('goal', WALLED, 1.0, 1.0)])
PATH = CriticConfig(hidden=16, ensemble_size=2, features='path', position_indices=(0, 1),
                    heading_indices=(2, 3), goal_relative_indices=(0, 1))
GOAL = torch.tensor([1.5, 0.0])


def test_path_features_see_the_way_around_the_obstacle():
    critic = Critic(5, PATH)  # x, y, cos yaw, sin yaw, v
    assert critic.input_dim == feature_size(5, PATH) == 5
    assert critic.sees_cost and path_term(COST) is WALLED
    behind = torch.tensor([[-1.2, 0.05, 1.0, 0.0, 0.3]])
    f = critic.features(behind, GOAL, COST)[0]
    assert float(f[0]) == pytest.approx(float(WALLED.distance(behind[:, :2], GOAL)), rel=1e-5)
    assert float(f[0]) > 2.9  # longer than the straight line through the obstacle
    assert float(f[-1]) == pytest.approx(0.3)  # the other entries follow
    # without the scene: the straight line, and facing the goal is all along the way
    g = critic.features(behind, GOAL)[0]
    assert float(g[0]) == pytest.approx(float(torch.hypot(torch.tensor(2.7), torch.tensor(0.05))),
                                        abs=1e-4)
    assert float(g[2]) == pytest.approx(1.0, abs=1e-3) and abs(float(g[3])) < 0.05
    # in the scene, right behind the obstacle, the way starts sideways: not straight ahead
    assert abs(float(f[3])) > 0.3
    with pytest.raises(ValueError, match='position indices'):
        CriticConfig(features='path', position_indices=(0,))


def test_td_lambda_on_features_learns_a_chain():
    """Chain of positions 0..10 moving right, cost 1 a step until the end: V(i) ~ steps left.

    The features are (position,), windows are 4 steps, so far values come from bootstrapping.
    """
    gamma, length = 0.8, 10
    config = CriticConfig(hidden=32, ensemble_size=2, gamma=gamma, lam=0.7, lr=3e-3, tau=0.05)
    critic = Critic(1, config)
    rng = np.random.default_rng(0)
    trajectories = []
    for start in rng.integers(0, length, 300):
        pos = np.minimum(start + np.arange(5), length).astype(np.float32)
        costs = (pos[:-1] < length).astype(np.float32)
        trajectories.append(ValueTrajectory(pos[:, None], costs, bool(pos[-1] == length)))
    losses = train_critic_on_features(critic, trajectories, steps=800, window=4, seed=0)
    assert losses[-1] < losses[0]
    with torch.no_grad():
        values = critic.members_of(torch.arange(length + 1.0)[:, None]).mean(0)
    true = (1 - gamma ** (length - torch.arange(length + 1.0))) / (1 - gamma)
    assert float((values - true).abs().max()) < 0.4, (values, true)
    assert not any(p.requires_grad for p in critic.parameters())


def test_the_planner_adds_the_critic_of_its_own_cost_with_its_weight():
    model = DoubleIntegrator(ensemble_size=2)
    config = CriticConfig(hidden=8, features='path', position_indices=(0, 1),
                          goal_relative_indices=(0, 1))
    critic = Critic(4, config)
    critic.value_scale.fill_(10.0)
    cost = Cost([('goal', replace(WALLED, heading_indices=None), 1.0, 1.0)])
    planner_config = PlannerConfig(horizon=4, sampling=OptimizerConfig(samples=8, iterations=1),
                                   policy_fraction=0.0, critic_weight=0.5, gradient_steps=0)
    with_critic = Planner(model, cost, [-1, -1], [1, 1], planner_config, critic=critic)
    without = Planner(model, cost, [-1, -1], [1, 1], planner_config)
    s0 = torch.tensor([-1.5, 0.1, 0.0, 0.0])
    actions = torch.rand(3, 4, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = model.sample_z(3)
    ctx = CostContext(goal=GOAL)
    last = model.rollout(s0.expand(3, -1), actions, z)[:, :, -1]
    expected = 0.5 * critic(last, GOAL, cost).mean(0)
    diff = with_critic.objective(s0, z, ctx, actions) - without.objective(s0, z, ctx, actions)
    assert torch.allclose(diff, expected, atol=1e-4)
    # it is the scene's critic: the straight-line one (no cost) would give another value
    assert not torch.allclose(expected, 0.5 * critic(last, GOAL).mean(0), atol=1e-3)


def test_path_critic_checkpoint_round_trip(tmp_path):
    critic = Critic(5, PATH)
    critic.set_normalization(None, torch.ones(4, 3), features=torch.randn(20, 5))
    save_critic(critic, tmp_path)
    loaded = load_critic(tmp_path, expect_state_dim=5)
    assert loaded.config == PATH and loaded.sees_cost
    states = torch.randn(7, 5)
    assert torch.allclose(loaded(states, GOAL, COST), critic(states, GOAL, COST), atol=1e-6)


def test_critic_trajectories_score_recorded_and_imagined_steps():
    from hlai_ros.tasks.pipeline import critic_trajectories

    class ToyTask:
        action_low, action_high = (-1.0, -1.0), (1.0, 1.0)

        def cost(self, scene, terminal=True):
            return COST

    model = DoubleIntegrator(ensemble_size=2)
    critic = Critic(4, replace(PATH, heading_indices=()))
    states = np.stack([np.linspace(-1.5, 1.5, 21), np.full(21, 0.8), np.zeros(21),
                       np.zeros(21)], 1).astype(np.float32)
    episode = {'states': states, 'actions': np.zeros((20, 2), np.float32),
               'goal': GOAL.numpy(), 'scenes': [None] * 21, 'success': True,
               'failure': None}
    data = critic_trajectories(ToyTask(), [episode, dict(episode, success=False,
                                                         failure='fell')],
                               critic, model, imagine_every=8, imagine_horizon=4,
                               failure_cost=100.0, imagine_noise=(0.0, 0.5),
                               generator=torch.Generator().manual_seed(0))
    # per episode: the recorded run, then imagined runs from steps 0, 8, 16 for 2 members,
    # once under the recorded actions and once with noise on them
    assert len(data) == 2 * (1 + 2 * 3 * 2)
    recorded, failed = data[0], data[13]
    assert recorded.terminal and failed.terminal
    assert not any(tr.terminal for tr in data[1:13])
    # the recorded actions are zero: the noisy runs move, the others stay put
    assert np.allclose(data[1].states[0], data[1].states[-1], atol=1e-5)
    assert not np.allclose(data[7].states[0], data[7].states[-1], atol=1e-3)
    expected = COST.per_step(torch.as_tensor(states).view(1, 1, 21, 4), torch.zeros(1, 20, 2),
                             CostContext(goal=GOAL))[0].numpy()
    np.testing.assert_allclose(recorded.costs, expected, rtol=1e-5)
    np.testing.assert_allclose(failed.costs[-1], expected[-1] + 100.0, rtol=1e-5)
    assert recorded.states.shape == (21, feature_size(4, critic.config))
    assert data[1].states.shape == (5, feature_size(4, critic.config))


def test_lookahead_points_follow_the_path_in_the_robot_frame():
    config = replace(PATH, lookahead=(0.5, 1.0), lookahead_step=0.25)
    critic = Critic(5, config)
    assert critic.input_dim == feature_size(5, config) == 9
    facing_goal = torch.tensor([[-1.0, 0.0, 1.0, 0.0, 0.0]])  # free space, goal 2.5 m ahead
    f = critic.features(facing_goal, GOAL)[0]
    assert torch.allclose(f[4:8], torch.tensor([0.5, 0.0, 1.0, 0.0]), atol=1e-4)
    # facing away, the same points are behind the robot; near the goal they stop at it
    facing_away = torch.tensor([[-1.0, 0.0, -1.0, 0.0, 0.0]])
    assert torch.allclose(critic.features(facing_away, GOAL)[0, 4:8],
                          torch.tensor([-0.5, 0.0, -1.0, 0.0]), atol=1e-4)
    near = torch.tensor([[1.2, 0.0, 1.0, 0.0, 0.0]])  # 0.3 m before the goal
    assert float(critic.features(near, GOAL)[0, 6]) == pytest.approx(0.3, abs=1e-3)
    # around the obstacle the path bends: the far point is off the straight line
    behind = torch.tensor([[-1.2, 0.05, 1.0, 0.0, 0.0]])
    bent = critic.features(behind, GOAL, COST)[0]
    assert abs(float(bent[7])) > 0.3
