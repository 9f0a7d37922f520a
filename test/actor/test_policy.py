"""The policy: bounded outputs, training through the model lowers cost, fallback agent."""
import numpy as np
import pytest
import torch
from toy_dynamics import DoubleIntegrator

from hlai_ros.actor import Agent, Policy, PolicyConfig, PolicyTrainer, imagine
from hlai_ros.cost import Cost, CostContext, Critic, CriticConfig, CriticTrainer, GoalCost

torch.set_num_threads(1)


def test_policy_outputs_stay_within_bounds():
    low, high = np.array([-0.5, 0.0]), np.array([0.5, 2.0])
    policy = Policy(4, low, high)
    with torch.no_grad():
        policy.net[-1].weight.normal_(0, 100.0)
    acts = policy(torch.randn(1000, 4) * 10)
    assert acts.shape == (1000, 2)
    assert bool((acts >= torch.tensor(low, dtype=torch.float32)).all())
    assert bool((acts <= torch.tensor(high, dtype=torch.float32)).all())
    one = policy.act(np.zeros(4))
    assert one.shape == (2,) and one.dtype == np.float32
    with pytest.raises(ValueError, match='action_low < action_high'):
        Policy(4, high, low)


def test_policy_trained_through_the_model_reduces_cost():
    torch.manual_seed(0)
    model = DoubleIntegrator(ensemble_size=3, spread=0.1)
    cost = Cost([('goal', GoalCost(position_indices=(0, 1), squared=True), 1.0, 1.0)])
    ctx = CostContext(goal=torch.zeros(2))
    policy = Policy(4, -torch.ones(2), torch.ones(2),
                    PolicyConfig(hidden=32, horizon=12, lr=3e-3, batch_size=64,
                                 uncertainty_weight=1.0, critic_weight=1.0))
    starts = torch.cat([torch.rand(256, 2) * 2 - 1, torch.zeros(256, 2)], 1)
    policy.set_normalization(starts)
    critic = Critic(4, CriticConfig(hidden=32, ensemble_size=2))
    trainer = PolicyTrainer(policy, model, cost, CriticTrainer(critic), ctx)
    test_starts = torch.cat([torch.rand(128, 2) * 2 - 1, torch.zeros(128, 2)], 1)

    def imagined_cost():
        with torch.no_grad():
            states, actions = imagine(model, policy, test_starts, 12)
            return float(cost(states, actions, ctx).mean())

    before = imagined_cost()
    losses = trainer.fit(starts, steps=150, generator=torch.Generator().manual_seed(0))
    after = imagined_cost()
    assert after < 0.7 * before, (before, after)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    # the model's own parameters (if any) are untouched; the critic was trained on imagination
    assert critic.members(test_starts).shape == (2, 128)


def test_agent_falls_back_to_the_policy():
    policy = Policy(4, -torch.ones(2), torch.ones(2))
    agent = Agent(policy=policy)
    action = agent.act(np.zeros(4, dtype=np.float32))
    assert action.shape == (2,) and np.allclose(action, 0.0)
    with pytest.raises(ValueError, match='no planner'):
        agent.plan(np.zeros(4))
    with pytest.raises(ValueError, match='needs a planner'):
        Agent()
