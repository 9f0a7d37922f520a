"""The interface between the world model and its users (cost, critic, planner, policy).

Shapes: E ensemble members, N samples (action sequences x latents), T horizon,
S state size, A action size, Z latent size. States and actions are in physical units
(metres, radians, m/s); any normalisation is internal to the model.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Dynamics(Protocol):
    """A forward model s[t+1] = G(s[t], a[t], z) with a latent z and an ensemble."""

    state_dim: int
    action_dim: int
    latent_dim: int
    ensemble_size: int

    def next(self, s: torch.Tensor, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Predict the next state: s (E, N, S), a (E, N, A), z (E, N, Z) -> (E, N, S)."""

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw latents from the prior q(z) ∝ exp(-R(z)): -> (E, n, Z)."""

    def rollout(self, s0: torch.Tensor, actions: torch.Tensor,
                z: torch.Tensor | None = None) -> torch.Tensor:
        """Roll out open-loop: s0 (N, S) or (E, N, S), actions (N, T, A) -> (E, N, T+1, S).

        z (E, N, Z) is held fixed over the horizon; None draws it from the prior.
        The result includes s0 at index 0 and is differentiable w.r.t. actions.
        """

    def reward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Predicted reward of taking a in s (for envs given by their reward): -> (E, N)."""
