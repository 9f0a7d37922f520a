"""The critic: TD(lambda) targets, and learning the value of a simple chain."""
import pytest
import torch

from hlai_ros.cost import Critic, CriticConfig, CriticTrainer, td_lambda_targets

torch.set_num_threads(1)


def test_td_lambda_targets_limits():
    costs = torch.tensor([[1.0, 2.0, 3.0]])
    nxt = torch.tensor([[10.0, 20.0, 30.0]])
    one_step = td_lambda_targets(costs, nxt, gamma=0.5, lam=0.0)
    assert torch.allclose(one_step, torch.tensor([[6.0, 12.0, 18.0]]))
    monte_carlo = td_lambda_targets(costs, nxt, gamma=0.5, lam=1.0)
    # G2 = 3 + 0.5*30 = 18, G1 = 2 + 0.5*18 = 11, G0 = 1 + 0.5*11 = 6.5
    assert torch.allclose(monte_carlo, torch.tensor([[6.5, 11.0, 18.0]]))
    done = td_lambda_targets(costs, nxt, gamma=0.5, lam=1.0, dones=torch.tensor([[0, 1, 0]]))
    assert torch.allclose(done, torch.tensor([[2.0, 2.0, 18.0]]))
    with pytest.raises(ValueError, match='\\(B, T\\)'):
        td_lambda_targets(costs[0], nxt[0], 0.9, 0.9)


def test_critic_learns_value_of_a_chain():
    """A 10-state chain moving right, cost 1 per step until the absorbing end (cost 0).

    Trajectories are only 4 steps long, so the far values must come from bootstrapping.
    The true value of position i is (1 - gamma^(L - i)) / (1 - gamma).
    """
    torch.manual_seed(0)
    length, steps, gamma = 10, 4, 0.8
    config = CriticConfig(hidden=64, ensemble_size=2, gamma=gamma, lam=0.7, lr=3e-3, tau=0.05,
                          batch_size=64)
    starts = torch.randint(0, length + 1, (512,))
    pos = (starts.view(-1, 1) + torch.arange(steps + 1)).clamp(max=length)
    states = torch.nn.functional.one_hot(pos, length + 1).float()
    costs = (pos[:, :-1] < length).float()
    critic = Critic(length + 1, config)
    trainer = CriticTrainer(critic)
    losses = trainer.fit(states, costs, steps=800, generator=torch.Generator().manual_seed(0))
    assert losses[-1] < losses[0]
    with torch.no_grad():
        values = critic(torch.eye(length + 1))
    true = (1 - gamma ** (length - torch.arange(length + 1).float())) / (1 - gamma)
    assert float((values - true).abs().max()) < 0.3, (values, true)


def test_critic_shapes_and_errors():
    critic = Critic(3, CriticConfig(ensemble_size=4))
    assert critic.members(torch.zeros(2, 5, 3)).shape == (4, 2, 5)
    assert critic(torch.zeros(7, 3)).shape == (7,)
    with pytest.raises(ValueError, match='expects states'):
        critic(torch.zeros(7, 2))
    with pytest.raises(ValueError, match='B, T\\+1, S'):
        CriticTrainer(critic).update(torch.zeros(2, 4, 3), torch.zeros(2, 4))
