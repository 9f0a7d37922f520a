"""Any Python cost function as a term."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from hlai_ros.cost.base import CostContext, check_shapes

CostFunction = Callable[[torch.Tensor, torch.Tensor, CostContext], torch.Tensor]


@dataclass(frozen=True)
class FunctionCost:
    """A user function fn(states (E, N, T+1, S), actions (N, T, A), context) as a term.

    It may return per-step costs (N, T), or (E, N, T) which is averaged over members.
    """

    function: CostFunction
    """The cost function; differentiable if gradient refinement or policy training use it."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Cost per step from the function: -> (N, T)."""
        e, n, t, _, _ = check_shapes(states, actions)
        cost = self.function(states, actions, context)
        if cost.shape == (e, n, t):
            cost = cost.mean(0)
        if cost.shape != (n, t):
            raise ValueError(f'cost function must return (N, T) = {(n, t)} or (E, N, T), '
                             f'got {tuple(cost.shape)}')
        return cost
