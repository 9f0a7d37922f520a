"""The policy P(s): a small network that proposes actions, trained through the world model.

It is trained by backprop through imagined rollouts of the (frozen) world model, minimising
the task cost, the critic's cost-to-go at the end of the rollout, and an ensemble-disagreement
penalty that keeps it where the model is reliable (Henaff, Canziani and LeCun 2019). It runs
alone as a fast fallback controller (`Policy.act`) and proposes samples to the planner.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hlai_ros.actor.imagination import frozen, imagine, member_step_costs
from hlai_ros.cost.base import CostContext
from hlai_ros.cost.critic import CriticTrainer
from hlai_ros.cost.goal import relative_to_goal
from hlai_ros.cost.uncertainty import UncertaintyCost
from hlai_ros.world_model.protocol import Dynamics


@dataclass(frozen=True)
class PolicyConfig:
    """Policy network and training-through-the-model settings."""

    hidden: int = 64
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    lr: float = 1e-3
    """Adam learning rate."""
    horizon: int = 15
    """Length of imagined rollouts, control steps."""
    batch_size: int = 128
    """Start states per update."""
    critic_weight: float = 1.0
    """Weight of the critic's cost-to-go at the rollout's end."""
    uncertainty_weight: float = 1.0
    """Weight of the ensemble-disagreement penalty summed over the rollout."""
    grad_clip: float = 10.0
    """Maximum gradient norm."""
    goal_relative_indices: tuple[int, ...] = ()
    """State indices (whole goal-sized groups) seen relative to the goal, so one policy serves
    every goal (e.g. (0, 1) for a robot's x, y); empty: P(s) does not depend on a goal."""


def action_bounds(action_low, action_high) -> tuple[torch.Tensor, torch.Tensor]:
    """The bounds as float32 vectors (A,), checked: low < high, of equal shape."""
    low = torch.as_tensor(action_low, dtype=torch.float32).reshape(-1)
    high = torch.as_tensor(action_high, dtype=torch.float32).reshape(-1)
    if low.shape != high.shape or not bool((high > low).all()):
        raise ValueError(f'need action_low < action_high of equal shape, got {low} and {high}')
    return low, high


class Policy(nn.Module):
    """Deterministic policy a = mid + half * tanh(f(s)), always within [low, high]."""

    def __init__(self, state_dim: int, action_low, action_high,
                 config: PolicyConfig = PolicyConfig()):
        super().__init__()
        low, high = action_bounds(action_low, action_high)
        self.state_dim, self.action_dim, self.config = state_dim, low.numel(), config
        dims = [state_dim] + [config.hidden] * config.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        last = nn.Linear(dims[-1], self.action_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)
        self.register_buffer('action_mid', (high + low) / 2)
        self.register_buffer('action_half', (high - low) / 2)
        self.register_buffer('state_mean', torch.zeros(state_dim))
        self.register_buffer('state_std', torch.ones(state_dim))

    def set_normalization(self, states: torch.Tensor, goal: torch.Tensor | None = None) -> None:
        """Fit input normalisation to example states (..., S) (and their goals (..., P))."""
        states = relative_to_goal(states, goal, self.config.goal_relative_indices)
        flat = states.reshape(-1, self.state_dim)
        self.state_mean.copy_(flat.mean(0))
        self.state_std.copy_(flat.std(0).clamp_min(1e-3))

    def forward(self, states: torch.Tensor, goal: torch.Tensor | None = None) -> torch.Tensor:
        """Actions for states (..., S) and goal (P,) or (..., P) -> (..., A), within bounds.

        The goal is needed (and used) only when `config.goal_relative_indices` is set.
        """
        if states.shape[-1] != self.state_dim:
            raise ValueError(f'policy expects states (..., {self.state_dim}), '
                             f'got {tuple(states.shape)}')
        states = relative_to_goal(states, goal, self.config.goal_relative_indices)
        x = (states - self.state_mean) / self.state_std
        return self.action_mid + self.action_half * torch.tanh(self.net(x))

    @torch.no_grad()
    def act(self, state, goal=None) -> np.ndarray:
        """The action for one state (S,) (and goal (P,)) as a float32 array (A,)."""
        device = self.action_mid.device
        s = torch.as_tensor(np.asarray(state, dtype=np.float32), device=device)
        g = None if goal is None else torch.as_tensor(
            np.asarray(goal, dtype=np.float32), device=device)
        return self(s, g).cpu().numpy()


class PolicyTrainer:
    """Trains a policy by backprop through imagined rollouts of a frozen world model."""

    def __init__(self, policy: Policy, model: Dynamics, cost, critic_trainer:
                 CriticTrainer | None = None, context: CostContext | None = None):
        self.policy, self.model, self.cost = policy, model, cost
        self.critic_trainer = critic_trainer
        self.context = context or CostContext()
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=policy.config.lr)
        self._uncertainty = UncertaintyCost()

    def _context(self, goals: torch.Tensor | None) -> CostContext:
        """The training context, with per-start goals (B, P) when given."""
        if goals is None:
            return self.context
        return CostContext(goal=goals, previous_action=self.context.previous_action)

    def objective(self, start_states: torch.Tensor, generator: torch.Generator | None = None,
                  goals: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """Mean imagined cost from start states (B, S) (goals (B, P)); -> it, (states, actions)."""
        cfg = self.policy.config
        context = self._context(goals)
        states, actions = imagine(self.model, lambda s: self.policy(s, goals), start_states,
                                  cfg.horizon, generator=generator)
        total = self.cost(states, actions, context)
        if cfg.uncertainty_weight:
            total = total + cfg.uncertainty_weight * self._uncertainty.per_step(
                states, actions, context).sum(-1)
        if self.critic_trainer is not None and cfg.critic_weight:
            value = self.critic_trainer.critic(states[:, :, -1], goals).mean(0)
            total = total + cfg.critic_weight * value
        return total.mean(), (states, actions)

    def update(self, start_states: torch.Tensor, generator: torch.Generator | None = None,
               goals: torch.Tensor | None = None) -> float:
        """One gradient step of the policy (and, if present, one TD step of the critic)."""
        with frozen(self.model):
            loss, (states, actions) = self.objective(start_states, generator, goals)
            self.optimizer.zero_grad()
            loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.policy.config.grad_clip)
        self.optimizer.step()
        if self.critic_trainer is not None:
            e, n, t1, s = states.shape
            member_goals = None if goals is None else goals.repeat(e, 1)
            with torch.no_grad():
                costs = member_step_costs(self.cost, states, actions,
                                          self._context(member_goals))
            self.critic_trainer.update(states.detach().reshape(e * n, t1, s), costs,
                                       goals=member_goals)
        return float(loss.detach())

    def fit(self, start_states: torch.Tensor, steps: int,
            generator: torch.Generator | None = None,
            goals: torch.Tensor | None = None) -> list[float]:
        """Updates on minibatches of start states (B, S) (and goals (B, P)); -> the losses."""
        losses = []
        b = start_states.shape[0]
        for _ in range(steps):
            idx = torch.randint(b, (min(self.policy.config.batch_size, b),), generator=generator,
                                device=start_states.device)
            losses.append(self.update(start_states[idx], generator,
                                      None if goals is None else goals[idx]))
        return losses
