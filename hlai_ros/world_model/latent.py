"""The latent z of G(s, a, z): its prior and the posterior encoder q(z | observed window).

Energy-based reading (LeCun, "A Path Towards Autonomous Machine Intelligence"): z is a latent
whose regulariser R(z) = ||z||^2 / 2 makes the prior q(z) ∝ exp(-R(z)) the standard normal
N(0, I). During training z is inferred from the observed future by an amortised posterior
q(z | s[t..t+H], a[t..t+H-1]) = N(mu, diag(sigma^2)) and penalised by beta * KL(q || N(0, I)),
which is the expected R(z) minus the posterior's entropy (up to a constant): the information
that z may carry about a window is limited, so it learns what the state leaves undetermined
(mass, friction) instead of memorising the future. During planning z is drawn from the prior.

The encoder treats a window as a set of transitions (s[k], a[k], s[k+1] - s[k]): a hidden
per-episode parameter makes the transitions exchangeable given z, so it embeds each
transition, takes the mean over the window (masked), and maps the mean to (mu, log sigma).
Mean pooling accepts windows of any length, from one transition to a whole episode.
"""
from __future__ import annotations

import torch
from torch import nn

from hlai_ros.world_model.ensemble import EnsembleLinear, EnsembleMLP

LOG_STD_MIN, LOG_STD_MAX = -6.0, 2.0


class PosteriorEncoder(nn.Module):
    """Per-member amortised posterior q_e(z | window) = N(mu, diag(exp(log_std)^2))."""

    def __init__(self, ensemble_size: int, transition_dim: int, latent_dim: int, hidden: int,
                 activation: str = 'silu'):
        """Embed transitions of size transition_dim, pool, and output 2 * latent_dim."""
        super().__init__()
        self.embed = EnsembleMLP(ensemble_size, transition_dim, (hidden,), hidden, activation)
        self.act = nn.SiLU()
        self.head = EnsembleLinear(ensemble_size, hidden, 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(self, transitions: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return mu, log_std (E, N, Z) from normalised transitions (E, N, L, F).

        mask (N, L) or (E, N, L), 1 where a transition is real and 0 where it is padding.
        """
        e, n, length, f = transitions.shape
        h = self.act(self.embed(transitions.reshape(e, n * length, f))).reshape(e, n, length, -1)
        if mask is None:
            pooled = h.mean(dim=2)
        else:
            m = mask.to(h).expand(e, n, length).unsqueeze(-1)
            pooled = (h * m).sum(dim=2) / m.sum(dim=2).clamp_min(1.0)
        mu, log_std = self.head(pooled).chunk(2, dim=-1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


def kl_to_standard_normal(mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over the last dim: (..., Z) -> (...), in nats."""
    return 0.5 * (mu.square() + torch.exp(2.0 * log_std) - 1.0 - 2.0 * log_std).sum(dim=-1)
