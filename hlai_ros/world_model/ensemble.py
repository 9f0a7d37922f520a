"""Layers batched over ensemble members: one call evaluates all E members with torch.baddbmm."""
from __future__ import annotations

import math

import torch
from torch import nn

_ACTIVATIONS = {'silu': nn.SiLU, 'relu': nn.ReLU, 'elu': nn.ELU, 'tanh': nn.Tanh,
                'gelu': nn.GELU}


class EnsembleLinear(nn.Module):
    """E independent affine maps applied at once: x (E, N, I) -> (E, N, O)."""

    def __init__(self, ensemble_size: int, in_features: int, out_features: int):
        """Initialise each member like torch.nn.Linear (uniform, fan-in scaled)."""
        super().__init__()
        self.ensemble_size, self.in_features, self.out_features = (
            ensemble_size, in_features, out_features)
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        bound = 1.0 / math.sqrt(max(in_features, 1))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply member e's map to x[e]: x (E, N, I) -> (E, N, O)."""
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """E multilayer perceptrons evaluated together: x (E, N, I) -> (E, N, O)."""

    def __init__(self, ensemble_size: int, in_features: int, hidden: tuple[int, ...],
                 out_features: int, activation: str = 'silu'):
        """Stack EnsembleLinear layers with `activation` between them."""
        super().__init__()
        sizes = (in_features, *hidden, out_features)
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(EnsembleLinear(ensemble_size, n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate all members: x (E, N, I) -> (E, N, O)."""
        return self.layers(x)
