"""A learned steps-to-goal value over planning states: the horizon beyond the plan.

A 16-step plan cannot see that pushing a box starts with walking the hand around it: the
keypoint goal cost does not change until the hand touches the box. The value V(v, g) says how
many steps the recorded behaviour took from planning state v until the goal keypoints g held,
learned by hindsight from the bags alone (no labels): for a frame t and a later frame t + d of
the same episode, the goal is frame t + d's keypoints and the target is the first d' <= d at
which the goal cost (`hlai_ros.latent.goal.GoalCost`) to them fell under `reach` -- the
temporal distance, in the spirit of goal-conditioned value learning by hindsight relabelling
(Kaelbling 1993; Andrychowicz et al. 2017) and of TD-MPC2's value beyond the horizon.

The planner adds ``weight * V`` of the horizon's last predicted state (`ValueTerm`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from hlai_ros.cost.base import CostContext, check_shapes
from hlai_ros.latent.goal import GoalCost


@dataclass(frozen=True)
class ValueConfig:
    """Settings of the steps-to-goal value and its training."""

    max_gap: int = 60
    """Longest hindsight gap d between a frame and its relabelled goal, steps."""
    reach: float = 0.05
    """Goal cost under which the goal counts as held (keypoint units of `GoalCost`)."""
    hidden: int = 256
    """Width of the hidden layers."""
    steps: int = 4000
    """Optimiser steps."""
    batch_size: int = 512
    """Pairs per step."""
    learning_rate: float = 1e-3
    """AdamW learning rate."""
    seed: int = 0
    """Seed of the pair sampling and initialisation."""


class GoalValue(nn.Module):
    """V(planning state (..., S), goal keypoints (..., G) or (G,)) -> steps to the goal (...)."""

    def __init__(self, state_dim: int, goal_dim: int, config: ValueConfig = ValueConfig()):
        super().__init__()
        self.config, self.state_dim, self.goal_dim = config, state_dim, goal_dim
        self.net = nn.Sequential(
            nn.Linear(state_dim + goal_dim, config.hidden), nn.GELU(),
            nn.Linear(config.hidden, config.hidden), nn.GELU(),
            nn.Linear(config.hidden, config.hidden), nn.GELU(), nn.Linear(config.hidden, 1))
        self.register_buffer('state_mean', torch.zeros(state_dim))
        self.register_buffer('state_std', torch.ones(state_dim))
        self.register_buffer('goal_mean', torch.zeros(goal_dim))
        self.register_buffer('goal_std', torch.ones(goal_dim))

    def forward(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Steps to the goal (>= 0) of states (..., S).

        goal: keypoints (..., G) or (G,) as the goal cost compares them (`GoalCost.keypoints`
        of the goal's planning state).
        """
        x = (states - self.state_mean) / self.state_std
        g = (goal - self.goal_mean) / self.goal_std
        g = g.expand(*x.shape[:-1], self.goal_dim)
        out = self.net(torch.cat([x, g], -1)).squeeze(-1)
        return F.softplus(out) * self.config.max_gap / 4.0

    def settings(self) -> dict:
        """JSON-able constructor arguments."""
        return {'state_dim': self.state_dim, 'goal_dim': self.goal_dim,
                'config': asdict(self.config)}


@torch.no_grad()
def hindsight_targets(states: torch.Tensor, goal_cost: GoalCost, reach: float,
                      max_gap: int) -> torch.Tensor:
    """Hindsight targets of one episode's planning states (T, S) -> (T, T) int64.

    Entry [t, t + d] is the first d' <= d at which the goal cost of state t + d' to frame
    t + d's keypoints is under `reach`; -1 where d < 0 or d > max_gap.
    """
    t = len(states)
    held = goal_cost(states.unsqueeze(1), states.unsqueeze(0)) <= reach   # [k, j]: state k, goal j
    out = torch.full((t, t), -1, dtype=torch.int64)
    for i in range(t):
        end = min(t, i + max_gap + 1)
        k = torch.arange(end - i).view(-1, 1)                           # offsets from i
        j = torch.arange(end - i).view(1, -1)                           # goal offsets
        first = torch.where(held[i:end, i:end] & (k <= j), k, end - i).amin(0)
        out[i, i:end] = first                                          # the goal frame holds
    return out


def fit_goal_value(states: torch.Tensor, episode: np.ndarray, goal_cost: GoalCost,
                   train_episodes, val_episodes, config: ValueConfig = ValueConfig(),
                   progress: bool = False) -> tuple[GoalValue, dict]:
    """Train V on hindsight pairs of `train_episodes`; report its error on `val_episodes`.

    states (M, S) planning states in episode order; episode (M,). Returns (value, report with
    the held-out mean absolute error in steps and that of predicting the mean target).
    """
    c = config
    rng = np.random.default_rng(c.seed)
    torch.manual_seed(c.seed)
    goal_dim = 2 * len(goal_cost.keypoint_weights)
    pairs: dict[str, list] = {'train': [], 'val': []}
    for split, eps in (('train', train_episodes), ('val', val_episodes)):
        for e in eps:
            idx = np.flatnonzero(episode == e)
            if len(idx) < 2:
                continue
            target = hindsight_targets(states[idx], goal_cost, c.reach, c.max_gap)
            i, j = torch.nonzero(target >= 0, as_tuple=True)
            pairs[split].append(torch.stack([torch.as_tensor(idx)[i], torch.as_tensor(idx)[j],
                                             target[i, j]], 1))
    train = torch.cat(pairs['train'])
    val = torch.cat(pairs['val']) if pairs['val'] else train[:0]
    value = GoalValue(states.shape[1], goal_dim, c)
    value.state_mean.copy_(states.mean(0))
    value.state_std.copy_(states.std(0).clamp_min(1e-3))
    with torch.no_grad():
        goals = goal_cost.keypoints(states)
    value.goal_mean.copy_(goals.mean(0))
    value.goal_std.copy_(goals.std(0).clamp_min(1e-3))
    opt = torch.optim.AdamW(value.parameters(), lr=c.learning_rate, weight_decay=1e-4)
    steps = range(c.steps)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc='goal value', unit='step', leave=False)
    value.train()
    for _ in steps:
        b = train[torch.as_tensor(rng.integers(0, len(train), c.batch_size))]
        pred = value(states[b[:, 0]], goals[b[:, 1]])
        loss = F.smooth_l1_loss(pred, b[:, 2].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    value.eval()
    report = {'train_pairs': int(len(train)), 'val_pairs': int(len(val)),
              'reach': c.reach, 'max_gap': c.max_gap}
    if len(val):
        with torch.no_grad():
            pred = value(states[val[:, 0]], goals[val[:, 1]])
        truth = val[:, 2].float()
        report.update(val_mae_steps=float((pred - truth).abs().mean()),
                      val_mae_mean_baseline=float((truth - train[:, 2].float().mean())
                                                  .abs().mean()))
    return value, report


@dataclass
class ValueTerm:
    """The value of the horizon's last predicted state, in steps (member mean)."""

    value: GoalValue
    goal_cost: GoalCost
    """Gives the goal keypoints the value compares (`GoalCost.keypoints`)."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """(N, T): zero but for the last step, which carries V(s_T, goal)."""
        _, n, t, _, _ = check_shapes(states, actions)
        v = self.value(states[:, :, -1], self.goal_cost.keypoints(context.goal)).mean(0)
        return torch.cat([states.new_zeros(n, t - 1), v.unsqueeze(1)], 1)
