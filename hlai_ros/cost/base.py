"""What every cost term shares: the planning context, shape checks and the term protocol.

Shapes: E ensemble members, N samples, T horizon, S state size, A action size.
A term scores predicted states (E, N, T+1, S) (index 0 is the current state) and the actions
(N, T, A) that produced them, and returns the cost of each step, (N, T), averaged over members.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class CostContext:
    """What the cost knows about the task beyond the predicted states.

    Every field is optional; a term that needs a missing field raises ValueError.
    """

    goal: torch.Tensor | None = None
    """Goal position in the state's position units, (P,) or (N, P) (metres)."""
    previous_action: torch.Tensor | None = None
    """The action applied at the last control step, (A,); used by the smoothness term."""


def check_shapes(states: torch.Tensor, actions: torch.Tensor) -> tuple[int, int, int, int, int]:
    """Check states (E, N, T+1, S) against actions (N, T, A); return (E, N, T, S, A)."""
    if states.dim() != 4:
        raise ValueError(f'states must be (E, N, T+1, S), got shape {tuple(states.shape)}')
    if actions.dim() != 3:
        raise ValueError(f'actions must be (N, T, A), got shape {tuple(actions.shape)}')
    e, n, t1, s = states.shape
    n_a, t, a = actions.shape
    if n_a != n or t1 != t + 1:
        raise ValueError(
            f'states {tuple(states.shape)} do not match actions {tuple(actions.shape)}: '
            'expected states (E, N, T+1, S) for actions (N, T, A)')
    return e, n, t, s, a


def check_indices(indices: tuple[int, ...], size: int, what: str) -> None:
    """Raise ValueError unless every index lies in [0, size)."""
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise ValueError(f'{what} indices {bad} out of range for state size {size}')


@runtime_checkable
class CostTerm(Protocol):
    """One pluggable cost term (goal, catastrophe, effort, uncertainty, ...)."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Cost of each step: states (E, N, T+1, S), actions (N, T, A) -> (N, T), >= 0."""
