"""Critic and policy training from recorded trajectories, goal-relative inputs, checkpoints."""
import numpy as np
import pytest
import torch
from toy_dynamics import DoubleIntegrator

from hlai_ros.actor.checkpoint import load_critic, load_policy, save_critic, save_policy
from hlai_ros.actor.optimizer import OptimizerConfig
from hlai_ros.actor.planner import Planner, PlannerConfig
from hlai_ros.actor.policy import Policy, PolicyConfig
from hlai_ros.actor.training import (
    ActorTrainingConfig,
    ValueTrajectory,
    train_critic_and_policy,
    windows,
)
from hlai_ros.cost import Cost, CostContext, GoalCost
from hlai_ros.cost.critic import Critic, CriticConfig
from hlai_ros.cost.goal import relative_to_goal
from hlai_ros.world_model.checkpoint import CheckpointError

torch.set_num_threads(1)


def test_relative_to_goal_shifts_only_the_named_groups():
    s = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = relative_to_goal(s, torch.tensor([0.5, 1.0]), (0, 1, 2, 3))
    assert torch.allclose(out, torch.tensor([[0.5, 1.0, 2.5, 3.0]]))
    assert relative_to_goal(s, None, ()) is s
    with pytest.raises(ValueError, match='need a goal'):
        relative_to_goal(s, None, (0, 1))
    with pytest.raises(ValueError, match='groups'):
        relative_to_goal(s, torch.tensor([0.5, 1.0]), (0,))


def test_goal_relative_critic_and_policy_depend_only_on_the_offset():
    torch.manual_seed(0)
    critic = Critic(4, CriticConfig(hidden=16, goal_relative_indices=(0, 1)))
    policy = Policy(4, [-1, -1], [1, 1], PolicyConfig(hidden=16, goal_relative_indices=(0, 1)))
    torch.nn.init.normal_(policy.net[-1].weight)
    s = torch.tensor([[1.0, 2.0, 0.3, 0.1]])
    moved = s + torch.tensor([[5.0, -3.0, 0.0, 0.0]])
    g = torch.tensor([0.0, 1.0])
    assert torch.allclose(critic(s, g), critic(moved, g + torch.tensor([5.0, -3.0])))
    assert torch.allclose(policy(s, g), policy(moved, g + torch.tensor([5.0, -3.0])))
    assert not torch.allclose(critic(s, g), critic(moved, g))


def test_windows_pad_terminal_runs_and_drop_short_open_ones():
    s = np.zeros((4, 2), np.float32)
    c = np.ones(3, np.float32)
    long = ValueTrajectory(np.zeros((11, 2), np.float32), np.ones(10, np.float32), True)
    states, costs, dones, goals = windows(
        [ValueTrajectory(s, c, terminal=True), ValueTrajectory(s, c, terminal=False), long], 6)
    assert goals is None
    assert states.shape[1:] == (7, 2) and costs.shape[1:] == (6,)
    # the short terminal run: padded with zero cost, done from its last real step on
    assert costs[0].tolist() == [1, 1, 1, 0, 0, 0] and dones[0].tolist() == [0, 0, 1, 1, 1, 1]
    # the long run: windows at 0, 3, 4; only the one reaching the end is done
    assert states.shape[0] == 1 + 3
    assert dones[1:, -1].tolist() == [0, 0, 1]


def _reach_trajectories(n=40, steps=20, seed=0):
    """Double-integrator runs towards random goals under a PD law; cost = distance to goal."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        goal = rng.uniform(-1, 1, 2).astype(np.float32)
        s = np.concatenate([rng.uniform(-1, 1, 2), np.zeros(2)]).astype(np.float32)
        states, costs = [s], []
        for _ in range(steps):
            a = np.clip(2.0 * (goal - s[:2]) - 2.0 * s[2:], -1, 1)
            v = s[2:] + 0.1 * a
            s = np.concatenate([s[:2] + 0.1 * v, v]).astype(np.float32)
            states.append(s)
            costs.append(float(np.linalg.norm(s[:2] - goal)))
        out.append(ValueTrajectory(np.stack(states), np.asarray(costs, np.float32), False,
                                   goal))
    return out


def test_trained_critic_ranks_far_states_above_near_ones_and_policy_moves_to_goal():
    torch.manual_seed(0)
    model = DoubleIntegrator(ensemble_size=2)
    cost = Cost([('goal', GoalCost(position_indices=(0, 1)), 1.0, 1.0)])
    config = ActorTrainingConfig(
        critic=CriticConfig(hidden=32, ensemble_size=2, goal_relative_indices=(0, 1)),
        policy=PolicyConfig(hidden=32, horizon=8, batch_size=64,
                            goal_relative_indices=(0, 1), uncertainty_weight=0.0),
        window=8, critic_steps=300, policy_steps=150, time_budget_s=60)
    result = train_critic_and_policy(model, cost, _reach_trajectories(), [-1, -1], [1, 1],
                                     config, progress=False)
    goal = torch.tensor([0.2, -0.3])
    near = torch.tensor([0.2, -0.2, 0.0, 0.0])
    far = torch.tensor([-0.8, 0.7, 0.0, 0.0])
    assert float(result.critic(far, goal)) > float(result.critic(near, goal)) + 1.0
    # the policy accelerates from `far` towards the goal (+x, -y)
    a = result.policy(far, goal)
    assert float(a[0]) > 0.2 and float(a[1]) < -0.2
    assert len(result.critic_losses) == 300 and len(result.policy_losses) == 150


def test_critic_and_policy_checkpoints_round_trip(tmp_path):
    torch.manual_seed(0)
    critic = Critic(4, CriticConfig(hidden=8, goal_relative_indices=(0, 1)))
    policy = Policy(4, [-1, -2], [1, 2], PolicyConfig(hidden=8, goal_relative_indices=(0, 1)))
    torch.nn.init.normal_(policy.net[-1].weight)
    assert load_critic(tmp_path) is None and load_policy(tmp_path) is None
    save_critic(critic, tmp_path, {'note': 'x'})
    save_policy(policy, tmp_path)
    c2, p2 = load_critic(tmp_path), load_policy(tmp_path)
    s, g = torch.randn(5, 4), torch.tensor([0.1, 0.2])
    assert torch.allclose(critic(s, g), c2(s, g))
    assert torch.allclose(policy(s, g), p2(s, g))
    assert c2.config.goal_relative_indices == (0, 1)
    assert p2.config.goal_relative_indices == (0, 1)
    with pytest.raises(CheckpointError, match='expected 6'):
        load_critic(tmp_path, expect_state_dim=6)


def test_planner_uses_goal_relative_critic_and_policy():
    """With the context's goal, the critic adds to the cost and the policy proposes samples."""
    torch.manual_seed(0)
    model = DoubleIntegrator(ensemble_size=2)
    cost = Cost([('goal', GoalCost(position_indices=(0, 1)), 1.0, 1.0)])
    critic = Critic(4, CriticConfig(hidden=8, goal_relative_indices=(0, 1)))
    critic.value_scale.fill_(100.0)
    policy = Policy(4, [-1, -1], [1, 1], PolicyConfig(hidden=8, goal_relative_indices=(0, 1)))
    config = PlannerConfig(horizon=5, sampling=OptimizerConfig(samples=20, iterations=1),
                           policy_fraction=0.2)
    ctx = CostContext(goal=torch.tensor([0.5, 0.5]))
    with_critic = Planner(model, cost, [-1, -1], [1, 1], config, critic=critic, policy=policy)
    without = Planner(model, cost, [-1, -1], [1, 1], config, policy=policy)
    s0 = torch.zeros(4)
    actions = torch.zeros(1, 5, 2)
    z = model.sample_z(1)
    expected = critic(model.rollout(s0.view(1, -1), actions, z)[:, :, -1], ctx.goal).mean(0)
    diff = with_critic.objective(s0, z, ctx, actions) - without.objective(s0, z, ctx, actions)
    assert torch.allclose(diff, expected, atol=1e-5)
    torch.nn.init.normal_(policy.net[-1].weight)
    proposals = with_critic.proposals(s0, model.sample_z(1), ctx)
    assert proposals.shape == (4, 5, 2)
    # the first proposal is the noise-free policy, which acted on the goal-relative state
    assert torch.allclose(proposals[0, 0], policy(s0, ctx.goal), atol=1e-6)
    assert not torch.allclose(proposals[0, 0], policy(s0, torch.zeros(2)), atol=1e-3)
