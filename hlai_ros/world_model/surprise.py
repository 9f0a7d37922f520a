"""Surprise and imagined rollouts of a world model on the live stream of one episode (ROS-free).

Surprise is the normalised one-step prediction error of a transition ``(s, a, s')``::

    sqrt(mean_i ((s'_pred[i] - s'[i]) / sigma_i) ** 2)

where ``s'_pred`` is the ensemble-mean prediction from ``(s, a)`` with ``z`` the posterior mean
given the episode's previous transitions (the prior mean 0 before any), and ``sigma`` the
spread of one-step state changes in the model's training data (its delta normaliser).
Unitless: 1 is an error as large as a typical one-step change; well-predicted motion is far
below 1.
"""
from __future__ import annotations

import numpy as np
import torch

from hlai_ros.world_model.model import WorldModel


class EpisodeContext:
    """A world model and the transitions of the current episode that condition its ``z``."""

    def __init__(self, model: WorldModel, context_size: int = 16):
        """Wrap `model`; keep the newest `context_size` (>= 1) transitions as its context."""
        if context_size < 1:
            raise ValueError(f'context_size must be >= 1, got {context_size}')
        self.model, self.context_size = model, int(context_size)
        self.transitions: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def reset(self) -> None:
        """Episode boundary: the next episode's z starts from the prior."""
        self.transitions = []

    def remember(self, s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> None:
        """Add a transition of this episode to the context."""
        self.transitions = (self.transitions + [(s, a, s_next)])[-self.context_size:]

    def _tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.model.device)

    @torch.no_grad()
    def latent(self) -> torch.Tensor:
        """Posterior mean of z (E, 1, Z) given the episode's transitions (0 before any)."""
        m = self.model
        if not self.transitions or m.latent_dim == 0:
            return torch.zeros(m.ensemble_size, 1, m.latent_dim, device=m.device)
        s, a, s2 = (self._tensor(np.stack(x)).unsqueeze(0) for x in zip(*self.transitions))
        return m.posterior_from_transitions(s, a, s2)[0]

    @torch.no_grad()
    def surprise(self, s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> float:
        """Normalised one-step prediction error of (s, a, s_next); see the module docstring."""
        m = self.model
        prediction = m.next(self._tensor(s).unsqueeze(0), self._tensor(a).unsqueeze(0),
                            self.latent()).mean(0)[0]
        error = (prediction - self._tensor(s_next)) / m.delta_norm.std
        return float(error.pow(2).mean().sqrt())

    @torch.no_grad()
    def imagine(self, state: np.ndarray, action: np.ndarray, horizon: int) -> np.ndarray:
        """Each member's rollout (E, horizon + 1, S) from `state` holding `action` constant."""
        actions = self._tensor(action).expand(1, int(horizon), -1)
        paths = self.model.rollout(self._tensor(state).unsqueeze(0), actions, self.latent())
        return paths[:, 0].cpu().numpy()
