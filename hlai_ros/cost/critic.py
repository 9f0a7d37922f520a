"""The critic V(s): a learned estimate of the cost still to come beyond the planning horizon.

An ensemble of small MLPs, trained by TD(lambda) on recorded trajectories and on rollouts
imagined in the world model, against a slowly-moving target network. The planner adds
`weight * V(s[T])` as the terminal cost of each predicted trajectory.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from hlai_ros.cost.goal import relative_to_goal
from hlai_ros.world_model.ensemble import EnsembleMLP


@dataclass(frozen=True)
class CriticConfig:
    """Critic network and TD(lambda) training settings."""

    hidden: int = 128
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    ensemble_size: int = 3
    """Independent value heads; their mean is the estimate, their spread its doubt."""
    gamma: float = 0.97
    """Discount per control step."""
    lam: float = 0.9
    """TD(lambda) mixing of n-step returns (0: one-step TD, 1: Monte Carlo)."""
    lr: float = 1e-3
    """Adam learning rate."""
    tau: float = 0.02
    """Polyak rate of the target network per update."""
    batch_size: int = 64
    """Trajectories per update."""
    goal_relative_indices: tuple[int, ...] = ()
    """State indices (whole goal-sized groups) seen relative to the goal, so one critic serves
    every goal (e.g. (0, 1) for a robot's x, y); empty: V(s) does not depend on a goal."""


class Critic(nn.Module):
    """Ensemble value function V(s) -> expected discounted cost-to-go (cost units)."""

    def __init__(self, state_dim: int, config: CriticConfig = CriticConfig()):
        super().__init__()
        if state_dim <= 0:
            raise ValueError(f'state_dim must be positive, got {state_dim}')
        self.state_dim = state_dim
        self.config = config
        k, h = config.ensemble_size, config.hidden
        self.net = EnsembleMLP(k, state_dim, (h,) * config.layers, 1, 'silu')
        self.register_buffer('state_mean', torch.zeros(state_dim))
        self.register_buffer('state_std', torch.ones(state_dim))
        self.register_buffer('value_scale', torch.ones(()))

    def set_normalization(self, states: torch.Tensor, costs: torch.Tensor | None = None,
                          goal: torch.Tensor | None = None) -> None:
        """Fit input normalisation to example states (..., S) and output scale to costs.

        With goal-relative indices, pass the goals (..., P) of the states.
        """
        states = relative_to_goal(states, goal, self.config.goal_relative_indices)
        flat = states.reshape(-1, self.state_dim)
        self.state_mean.copy_(flat.mean(0))
        self.state_std.copy_(flat.std(0).clamp_min(1e-3))
        if costs is not None:
            horizon = 1.0 / (1.0 - self.config.gamma)
            self.value_scale.copy_((costs.abs().mean() * horizon).clamp_min(1e-3))

    def members(self, states: torch.Tensor, goal: torch.Tensor | None = None) -> torch.Tensor:
        """Each member's estimate: states (..., S), goal broadcastable to (..., P) -> (K, ...).

        The goal is needed (and used) only when `config.goal_relative_indices` is set.
        """
        if states.shape[-1] != self.state_dim:
            raise ValueError(f'critic expects states (..., {self.state_dim}), '
                             f'got {tuple(states.shape)}')
        states = relative_to_goal(states, goal, self.config.goal_relative_indices)
        lead = states.shape[:-1]
        x = ((states - self.state_mean) / self.state_std).reshape(1, -1, self.state_dim)
        x = x.expand(self.config.ensemble_size, -1, -1)
        return (self.net(x).squeeze(-1) * self.value_scale).reshape(-1, *lead)

    def forward(self, states: torch.Tensor, goal: torch.Tensor | None = None) -> torch.Tensor:
        """Ensemble-mean value: states (..., S), goal (..., P) or (P,) -> (...), cost units."""
        return self.members(states, goal).mean(0)


def td_lambda_targets(costs: torch.Tensor, next_values: torch.Tensor, gamma: float, lam: float,
                      dones: torch.Tensor | None = None) -> torch.Tensor:
    """TD(lambda) returns: costs (B, T), next_values V(s[t+1]) (B, T) -> targets (B, T).

    G[t] = c[t] + gamma (1 - d[t]) ((1 - lam) V(s[t+1]) + lam G[t+1]), with G[T] = V(s[T]);
    d[t] = 1 where the episode ended at step t (nothing is owed after it).
    """
    if costs.shape != next_values.shape or costs.dim() != 2:
        raise ValueError(f'costs and next_values must both be (B, T), got '
                         f'{tuple(costs.shape)} and {tuple(next_values.shape)}')
    not_done = torch.ones_like(costs) if dones is None else 1.0 - dones.to(costs.dtype)
    targets = torch.empty_like(costs)
    following = next_values[:, -1]
    for t in range(costs.shape[1] - 1, -1, -1):
        following = costs[:, t] + gamma * not_done[:, t] * (
            (1 - lam) * next_values[:, t] + lam * following)
        targets[:, t] = following
    return targets


class CriticTrainer:
    """TD(lambda) updates of a critic against its Polyak-averaged target copy."""

    def __init__(self, critic: Critic):
        self.critic = critic
        self.target = copy.deepcopy(critic).requires_grad_(False)
        self.optimizer = torch.optim.Adam(critic.parameters(), lr=critic.config.lr)

    def update(self, states: torch.Tensor, costs: torch.Tensor,
               dones: torch.Tensor | None = None, goals: torch.Tensor | None = None) -> float:
        """One step on trajectories states (B, T+1, S), costs (B, T); returns the TD loss.

        dones (B, T) mark steps after which nothing more is owed; goals (B, P) are each
        trajectory's goal, needed when the critic is goal-relative.
        """
        if states.dim() != 3 or costs.dim() != 2 or states.shape[:2] != (
                costs.shape[0], costs.shape[1] + 1):
            raise ValueError(f'need states (B, T+1, S) and costs (B, T), got '
                             f'{tuple(states.shape)} and {tuple(costs.shape)}')
        cfg = self.critic.config
        states, costs = states.detach(), costs.detach()
        goal = None if goals is None else goals.detach().unsqueeze(1)
        with torch.no_grad():
            next_values = self.target(states[:, 1:], goal)
            targets = td_lambda_targets(costs, next_values, cfg.gamma, cfg.lam, dones)
        pred = self.critic.members(states[:, :-1], goal)
        loss = ((pred - targets) / self.critic.value_scale).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for p, q in zip(self.critic.parameters(), self.target.parameters()):
                q.lerp_(p, cfg.tau)
            for b, c in zip(self.critic.buffers(), self.target.buffers()):
                c.copy_(b)
        return float(loss.detach())

    def fit(self, states: torch.Tensor, costs: torch.Tensor, dones: torch.Tensor | None = None,
            steps: int = 500, generator: torch.Generator | None = None,
            goals: torch.Tensor | None = None) -> list[float]:
        """Minibatch updates over recorded trajectories states (B, T+1, S), costs (B, T).

        dones (B, T) and goals (B, P) as in `update`.
        """
        b = states.shape[0]
        losses = []
        for _ in range(steps):
            idx = torch.randint(b, (min(self.critic.config.batch_size, b),), generator=generator)
            losses.append(self.update(states[idx], costs[idx],
                                      None if dones is None else dones[idx],
                                      None if goals is None else goals[idx]))
        return losses
