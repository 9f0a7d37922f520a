"""An analytic Dynamics for tests: a planar double integrator with E members.

State (px, py, vx, vy) in m and m/s, action (ax, ay) in m/s^2, time step dt. Member k runs
with its acceleration gain multiplied by (1 + spread * k), so spread=0 gives identical members
and spread>0 gives a disagreeing ensemble. The latent z (size 1) is ignored by the dynamics.
"""
from __future__ import annotations

import torch


class DoubleIntegrator:
    """s[t+1] = (p + dt * v', v') with v' = v + dt * g_k * a; reward = -|p|^2 - 0.01 |a|^2."""

    state_dim = 4
    action_dim = 2
    latent_dim = 1

    def __init__(self, ensemble_size: int = 3, dt: float = 0.1, spread: float = 0.0):
        self.ensemble_size, self.dt = ensemble_size, dt
        self.gain = 1.0 + spread * torch.arange(ensemble_size, dtype=torch.float32)

    def next(self, s, a, z):
        """S (E, N, 4), a (E, N, 2), z (E, N, 1) -> (E, N, 4)."""
        g = self.gain.view(-1, 1, 1)
        v = s[..., 2:] + self.dt * g * a
        return torch.cat([s[..., :2] + self.dt * v, v], -1)

    def sample_z(self, n, generator=None):
        """-> (E, n, 1) standard normal."""
        return torch.randn(self.ensemble_size, n, 1, generator=generator)

    def rollout(self, s0, actions, z=None):
        """s0 (N, 4) or (E, N, 4), actions (N, T, 2) -> (E, N, T+1, 4)."""
        e = self.ensemble_size
        s = s0.unsqueeze(0).expand(e, *s0.shape) if s0.dim() == 2 else s0
        if z is None:
            z = self.sample_z(s.shape[1])
        out = [s]
        for t in range(actions.shape[1]):
            s = self.next(s, actions[:, t].unsqueeze(0).expand(e, -1, -1), z)
            out.append(s)
        return torch.stack(out, 2)

    def reward(self, s, a):
        """S (E, N, 4), a (E, N, 2) -> (E, N)."""
        return -s[..., :2].pow(2).sum(-1) - 0.01 * a.pow(2).sum(-1)
