"""Per-dimension affine normalisation, fitted on training data and stored as buffers."""
from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """Map x to (x - mean) / std per dimension; the statistics travel with the checkpoint."""

    def __init__(self, dim: int, min_std: float = 1e-6):
        """Start as the identity on vectors of size `dim`."""
        super().__init__()
        self.min_std = float(min_std)
        self.register_buffer('mean', torch.zeros(dim))
        self.register_buffer('std', torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, relative_floor: torch.Tensor | None = None) -> None:
        """Fit mean and std on samples x (M, dim).

        relative_floor (dim,), optional, is a lower bound on std per dimension (added to the
        absolute floor min_std), so that a dimension that never moves is not blown up.
        """
        if x.ndim != 2 or x.shape[1] != self.mean.numel() or x.shape[0] < 1:
            raise ValueError(f'Normalizer.fit expects (M >= 1, {self.mean.numel()}) samples, '
                             f'got {tuple(x.shape)}')
        x = x.to(self.mean)
        std = x.std(dim=0, unbiased=False) if x.shape[0] > 1 else torch.ones_like(self.std)
        floor = torch.full_like(std, self.min_std)
        if relative_floor is not None:
            floor = floor + relative_floor.to(std)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(torch.maximum(std, floor))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Return (x - mean) / std, x (..., dim)."""
        return (x - self.mean) / self.std

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Return y * std + mean, y (..., dim)."""
        return y * self.std + self.mean
