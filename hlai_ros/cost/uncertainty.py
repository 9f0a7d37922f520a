"""Model-uncertainty term: disagreement among ensemble members.

Following Henaff, Canziani and LeCun (2019), "Model-predictive policy learning with uncertainty
regularization": the variance across members of the predicted states penalises plans that lead
where the model has not been trained, so the planner stays where its predictions are reliable.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.cost.base import CostContext, check_indices, check_shapes


@dataclass(frozen=True)
class UncertaintyCost:
    """Variance across ensemble members of the predicted states, summed over state entries."""

    state_indices: tuple[int, ...] | None = None
    """State entries to compare; None uses all."""
    scale: tuple[float, ...] | None = None
    """Per-entry state scale the variance is divided by (squared); None leaves units."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Disagreement per step: states (E, N, T+1, S), actions (N, T, A) -> (N, T); 0 if E=1."""
        e, _, _, s, _ = check_shapes(states, actions)
        future = states[:, :, 1:]
        if self.state_indices is not None:
            check_indices(self.state_indices, s, 'state')
            future = future[..., list(self.state_indices)]
        if e == 1:
            return future.new_zeros(future.shape[1:3])
        var = (future - future.mean(0)).pow(2).mean(0)  # faster than Tensor.var over dim 0
        if self.scale is not None:
            if len(self.scale) != var.shape[-1]:
                raise ValueError(f'scale needs {var.shape[-1]} entries, got {len(self.scale)}')
            var = var / torch.as_tensor(self.scale, dtype=var.dtype, device=var.device).pow(2)
        return var.sum(-1)
