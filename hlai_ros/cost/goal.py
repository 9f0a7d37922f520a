"""Goal term: distance of a named position in the state to the goal."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.cost.base import CostContext, check_indices, check_shapes


@dataclass(frozen=True)
class GoalCost:
    """Distance from the state's position entries to the goal, at every step.

    The goal is read from the state itself (`goal_indices`, e.g. a goal carried in the
    observation) or, when those are not given, from `CostContext.goal`.
    """

    position_indices: tuple[int, ...]
    """State indices of the position that should reach the goal (object or robot), metres."""
    goal_indices: tuple[int, ...] | None = None
    """State indices holding the goal position; None reads `CostContext.goal` instead."""
    squared: bool = False
    """Use the squared distance (m^2) instead of the distance (m)."""
    terminal_weight: float = 0.0
    """Extra multiple of the last step's distance (weights where the horizon ends up)."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Distance per step: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        e, n, t, s, _ = check_shapes(states, actions)
        check_indices(self.position_indices, s, 'position')
        future = states[:, :, 1:]
        position = future[..., list(self.position_indices)]
        if self.goal_indices is not None:
            check_indices(self.goal_indices, s, 'goal')
            if len(self.goal_indices) != len(self.position_indices):
                raise ValueError(
                    f'goal_indices {self.goal_indices} and position_indices '
                    f'{self.position_indices} must have the same length')
            goal = future[..., list(self.goal_indices)]
        else:
            goal = _context_goal(context, n, len(self.position_indices), states)
        sq = (position - goal).pow(2).sum(-1)
        dist = sq if self.squared else torch.sqrt(sq + 1e-12)
        cost = dist.mean(0)
        if self.terminal_weight:
            cost = torch.cat([cost[:, :-1], cost[:, -1:] * (1.0 + self.terminal_weight)], dim=1)
        return cost


def _context_goal(context: CostContext, n: int, p: int, like: torch.Tensor) -> torch.Tensor:
    """The context goal broadcast to (1, N or 1, 1, P)."""
    if context.goal is None:
        raise ValueError('GoalCost without goal_indices needs CostContext.goal, got None')
    goal = torch.as_tensor(context.goal, dtype=like.dtype, device=like.device)
    if goal.shape == (p,):
        return goal.view(1, 1, 1, p)
    if goal.shape == (n, p):
        return goal.view(1, n, 1, p)
    raise ValueError(f'CostContext.goal must be ({p},) or ({n}, {p}), got {tuple(goal.shape)}')


def relative_to_goal(states: torch.Tensor, goal: torch.Tensor | None,
                     indices: tuple[int, ...]) -> torch.Tensor:
    """States (..., S) with the entries at `indices` made relative to the goal (minus it).

    `indices` holds whole goal-sized groups (e.g. (0, 1) for one (x, y) position, (0, 1, 2, 3)
    for two); goal (P,) or any shape that broadcasts against (..., P), metres. A critic or
    policy that sees goal-relative positions generalises over goals (translation invariance).
    With no indices the states come back unchanged; a None goal with indices is an error.
    """
    if not indices:
        return states
    if goal is None:
        raise ValueError(f'goal-relative indices {tuple(indices)} need a goal, got None')
    goal = torch.as_tensor(goal, dtype=states.dtype, device=states.device)
    p = goal.shape[-1]
    if len(indices) % p:
        raise ValueError(f'goal-relative indices {tuple(indices)} must come in groups of the '
                         f'goal size {p}')
    check_indices(tuple(indices), states.shape[-1], 'goal-relative')
    offset = states.new_zeros(*goal.shape[:-1], states.shape[-1])
    offset[..., list(indices)] = goal.repeat(*([1] * (goal.dim() - 1)), len(indices) // p)
    return states - offset
