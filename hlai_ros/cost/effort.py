"""Effort and smoothness terms: action magnitude and action change."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.cost.base import CostContext, check_shapes


def _scaled(actions: torch.Tensor, scale: tuple[float, ...] | None) -> torch.Tensor:
    if scale is None:
        return actions
    if len(scale) != actions.shape[-1]:
        raise ValueError(f'scale needs {actions.shape[-1]} entries (one per action), got {scale}')
    return actions / torch.as_tensor(scale, dtype=actions.dtype, device=actions.device)


@dataclass(frozen=True)
class EffortCost:
    """Squared action magnitude per step, each action dimension divided by its scale."""

    scale: tuple[float, ...] | None = None
    """Per-dimension action scale (e.g. the bound); None leaves actions in their units."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Sum of squared scaled actions: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        check_shapes(states, actions)
        return _scaled(actions, self.scale).pow(2).sum(-1)


@dataclass(frozen=True)
class SmoothnessCost:
    """Squared change of action between steps, including from the previously applied action."""

    scale: tuple[float, ...] | None = None
    """Per-dimension action scale (e.g. the bound); None leaves actions in their units."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Squared change per step: states (E, N, T+1, S), actions (N, T, A) -> (N, T).

        The first step is compared with `context.previous_action` when given, else costs 0.
        """
        _, n, _, _, a = check_shapes(states, actions)
        scaled = _scaled(actions, self.scale)
        if context.previous_action is not None:
            prev = torch.as_tensor(context.previous_action, dtype=actions.dtype,
                                   device=actions.device)
            if prev.shape != (a,):
                raise ValueError(f'previous_action must be ({a},), got {tuple(prev.shape)}')
            prev = _scaled(prev.view(1, 1, a), self.scale).expand(n, 1, a)
        else:
            prev = scaled[:, :1].detach()
        return (scaled - torch.cat([prev, scaled[:, :-1]], dim=1)).pow(2).sum(-1)
