"""Catastrophe terms: predicted falls off a platform and collisions with obstacles.

Each term is a soft, differentiable barrier in [0, 1] per step (a probability-like score that
rises steeply at the edge) for planning, and a hard indicator `failed` for evaluation. Once a
predicted trajectory has failed it stays failed: the score is a running maximum over time.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.cost.base import CostContext, check_indices, check_shapes


def _reduce_members(score: torch.Tensor, how: str) -> torch.Tensor:
    """(E, N, T) -> (N, T) by mean (expected) or max (worst member)."""
    if how == 'mean':
        return score.mean(0)
    if how == 'max':
        return score.amax(0)
    raise ValueError(f"ensemble_reduce must be 'mean' or 'max', got {how!r}")


@dataclass(frozen=True)
class PlatformFallCost:
    """Falling off a rectangular platform or table, given its bounds in the plane."""

    position_indices: tuple[int, int]
    """State indices of the (x, y) position that must stay on the platform, metres."""
    bounds: tuple[float, float, float, float]
    """Platform extent (x_min, x_max, y_min, y_max), metres."""
    margin: float = 0.05
    """Distance inside the edge where the barrier reaches one half, metres."""
    sharpness: float = 50.0
    """Steepness of the barrier, 1/m."""
    ensemble_reduce: str = 'mean'
    """How members combine: 'mean' (expected) or 'max' (worst case)."""
    velocity_indices: tuple[int, ...] = ()
    """With `deceleration`: state indices of the (vx, vy) velocity, m/s. The barrier then
    holds where the object would come to rest if left alone, ``p + v |v| / (2 deceleration)``
    (a rolling ball's run-out), not where it is: a ball rolling at the edge too fast to stop
    is charged before the horizon shows it fall."""
    deceleration: float = 0.0
    """Deceleration (m/s^2) of the object left alone (with `velocity_indices`; the smallest
    expected, for the longest run-out)."""
    running_max: bool = True
    """Once a step is charged, so is every later one (a fall cannot be undone); False charges
    each step on its own (a run-out that the hand can still stop later)."""

    def __post_init__(self):
        if len(self.position_indices) != 2:
            raise ValueError(f'position_indices must be (x, y), got {self.position_indices}')
        if self.velocity_indices and (len(self.velocity_indices) != 2
                                      or not self.deceleration > 0):
            raise ValueError('velocity_indices must be (vx, vy) with a deceleration > 0, got '
                             f'{self.velocity_indices} and {self.deceleration}')
        x0, x1, y0, y1 = self.bounds
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f'bounds must be (x_min, x_max, y_min, y_max), got {self.bounds}')

    def outside(self, states: torch.Tensor, run_out: bool = False) -> torch.Tensor:
        """Signed distance beyond the nearest edge (> 0 off the platform): (..., S) -> (...).

        With `run_out` (and `velocity_indices`), of where the object would come to rest.
        """
        check_indices(self.position_indices, states.shape[-1], 'position')
        x0, x1, y0, y1 = self.bounds
        x = states[..., self.position_indices[0]]
        y = states[..., self.position_indices[1]]
        if run_out and self.velocity_indices:
            check_indices(self.velocity_indices, states.shape[-1], 'velocity')
            vx = states[..., self.velocity_indices[0]]
            vy = states[..., self.velocity_indices[1]]
            reach = torch.sqrt(vx * vx + vy * vy + 1e-12) / (2.0 * self.deceleration)
            x, y = x + vx * reach, y + vy * reach
        return torch.stack([x0 - x, x - x1, y0 - y, y - y1], -1).amax(-1)

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Soft fall score per step: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        check_shapes(states, actions)
        score = torch.sigmoid(self.sharpness * (
            self.outside(states[:, :, 1:], run_out=True) + self.margin))
        if self.running_max:
            score = torch.cummax(score, dim=-1).values
        return _reduce_members(score, self.ensemble_reduce)

    def failed(self, states: torch.Tensor) -> torch.Tensor:
        """Hard indicator, off the platform at or before each step: (..., T+1, S) -> bool."""
        return torch.cummax((self.outside(states) > 0).to(torch.uint8), dim=-1).values.bool()


@dataclass(frozen=True)
class ObstacleCollisionCost:
    """Collision with circular obstacles, given their centres and radii in the plane."""

    position_indices: tuple[int, int]
    """State indices of the (x, y) position of the robot or object, metres."""
    centres: tuple[tuple[float, float], ...]
    """Obstacle centres (x, y), metres."""
    radii: tuple[float, ...]
    """Obstacle radii, metres (one per centre)."""
    body_radius: float = 0.0
    """Radius of the robot or object itself, metres."""
    margin: float = 0.05
    """Clearance where the barrier reaches one half, metres."""
    sharpness: float = 50.0
    """Steepness of the barrier, 1/m."""
    ensemble_reduce: str = 'mean'
    """How members combine: 'mean' (expected) or 'max' (worst case)."""

    def clearance(self, states: torch.Tensor) -> torch.Tensor:
        """Distance to the nearest obstacle surface (< 0 in collision): (..., S) -> (...)."""
        if len(self.centres) != len(self.radii) or not self.centres:
            raise ValueError(
                f'need one radius per centre and at least one obstacle, got {len(self.centres)} '
                f'centres and {len(self.radii)} radii')
        check_indices(self.position_indices, states.shape[-1], 'position')
        centres = torch.as_tensor(self.centres, dtype=states.dtype, device=states.device)
        radii = torch.as_tensor(self.radii, dtype=states.dtype, device=states.device)
        p = states[..., list(self.position_indices)].unsqueeze(-2)
        dist = torch.sqrt((p - centres).pow(2).sum(-1) + 1e-12)
        return (dist - radii - self.body_radius).amin(-1)

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Soft collision score per step: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        check_shapes(states, actions)
        score = torch.sigmoid(self.sharpness * (self.margin - self.clearance(states[:, :, 1:])))
        return _reduce_members(torch.cummax(score, dim=-1).values, self.ensemble_reduce)

    def failed(self, states: torch.Tensor) -> torch.Tensor:
        """Hard indicator, in collision at or before each step: (..., T+1, S) -> bool."""
        return torch.cummax((self.clearance(states) < 0).to(torch.uint8), dim=-1).values.bool()
