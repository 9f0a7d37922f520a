"""Reward term: the negated reward predicted by the world model's reward head.

For environments given by their reward (gymnasium tasks) rather than by a goal and a scene.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.cost.base import CostContext, check_shapes
from hlai_ros.world_model.protocol import Dynamics


@dataclass(frozen=True)
class RewardCost:
    """Cost = -(predicted reward) of each step, averaged over ensemble members.

    The result is signed: use it with power 1.
    """

    model: Dynamics
    """The world model whose `reward(s, a) -> (E, N)` head scores each step."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Negated reward: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        e, n, t, s, a = check_shapes(states, actions)
        flat_s = states[:, :, :-1].reshape(e, n * t, s)
        flat_a = actions.reshape(1, n * t, a).expand(e, n * t, a)
        reward = self.model.reward(flat_s, flat_a)
        if reward.shape != (e, n * t):
            raise ValueError(f'model.reward must return (E, N) = {(e, n * t)}, '
                             f'got {tuple(reward.shape)}')
        return -reward.reshape(e, n, t).mean(0)
