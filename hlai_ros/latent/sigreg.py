"""SIGReg: a sketched test that a batch of embeddings is an isotropic standard Gaussian.

Balestriero & LeCun (LeJEPA, 2025), as used by LeWorldModel: project the N x D embeddings onto
K random unit directions and, on each, compare the empirical characteristic function with the
standard normal's, weighted by the Gaussian (the Epps-Pulley statistic). The statistic is zero
only when every projection is N(0, 1), so a collapsed (constant or low-rank) embedding is
penalised, and so is one whose scale drifts; it has one weight and needs no EMA, no
covariance matrix and no negative pairs.
"""
from __future__ import annotations

import torch


def sigreg(x: torch.Tensor, slices: int = 256, generator: torch.Generator | None = None,
           knots: int = 17, t_max: float = 3.0) -> torch.Tensor:
    """The Epps-Pulley statistic of `x` (N, D) averaged over `slices` random directions.

    Returns a scalar tensor (N times the weighted squared distance between characteristic
    functions; about 0 for Gaussian samples, growing with N for non-Gaussian ones).
    """
    n, d = x.shape
    directions = torch.randn(d, slices, generator=generator, device=x.device, dtype=x.dtype)
    directions = directions / directions.norm(dim=0, keepdim=True)
    proj = x @ directions                                       # (N, K)
    t = torch.linspace(0.0, t_max, knots, device=x.device, dtype=x.dtype)
    phi = torch.exp(-0.5 * t ** 2)                              # N(0, 1) characteristic function
    args = proj.unsqueeze(-1) * t                               # (N, K, T)
    real = torch.cos(args).mean(0)
    imag = torch.sin(args).mean(0)
    err = ((real - phi) ** 2 + imag ** 2) * phi                 # (K, T)
    # symmetric integrand: integrate over [0, t_max] with the trapezoid rule and double it
    weights = torch.full((knots,), 2.0 * t_max / (knots - 1), device=x.device, dtype=x.dtype)
    weights[0] = weights[-1] = t_max / (knots - 1)
    return (err @ weights).mean() * n
