"""Geodesic goal term: distance to the goal around the perceived obstacles, not through them.

A straight-line goal distance has local minima behind an obstacle that stands between robot and
goal: every short plan that goes around first moves away. This term replaces it with the length
of the shortest path to the goal on a grid over the perceived platform (a navigation function,
Latombe 1991), where a metre of path costs 1 plus `barrier_weight` times the same soft barriers
that the fall and collision terms use (near an obstacle inflated by the robot's radius, near
the platform's edge), so the path it measures is the one the planner's barriers allow. The
field is computed once per goal and scene (cached; the perceived scene is stable, so about one
Dijkstra an episode), and read with bilinear interpolation, so it is differentiable in the
position and cheap inside the planner's batched rollouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np
import torch

from hlai_ros.cost.base import CostContext, check_indices, check_shapes

_SQRT2 = math.sqrt(2.0)
_NEIGHBOURS = ((0, 1, 1.0), (0, -1, 1.0), (1, 0, 1.0), (-1, 0, 1.0),
               (1, 1, _SQRT2), (1, -1, _SQRT2), (-1, 1, _SQRT2), (-1, -1, _SQRT2))


@lru_cache(maxsize=8)
def _grid_edges(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source cells, target cells and step lengths (cells) of an 8-connected H x W grid."""
    idx = np.arange(h * w).reshape(h, w)
    src, dst, length = [], [], []
    for di, dj, step in _NEIGHBOURS:
        a = idx[max(-di, 0):h - max(di, 0), max(-dj, 0):w - max(dj, 0)]
        b = idx[max(di, 0):h - max(-di, 0), max(dj, 0):w - max(-dj, 0)]
        src.append(a.ravel())
        dst.append(b.ravel())
        length.append(np.full(a.size, step))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(length)


def distance_field(weights: np.ndarray, goal_cell: tuple[int, int],
                   resolution: float) -> np.ndarray:
    """Shortest-path length (m) from every cell to the goal cell over 8-connected cells.

    weights (H, W) > 0 is the cost of crossing a cell per metre; a move between neighbours
    costs the mean of their weights times the step length. Solved by Dijkstra (scipy).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    h, w = weights.shape
    src, dst, length = _grid_edges(h, w)
    flat = weights.ravel()
    graph = csr_matrix((0.5 * (flat[src] + flat[dst]) * length * resolution, (src, dst)),
                       shape=(h * w, h * w))
    d = dijkstra(graph, directed=True, indices=goal_cell[0] * w + goal_cell[1])
    return d.reshape(h, w)


@lru_cache(maxsize=64)
def _field(goal: tuple[float, float], bounds: tuple[float, float, float, float],
           centres: tuple[tuple[float, float], ...], radii: tuple[float, ...],
           body_radius: float, clearance: float, edge_margin: float, sharpness: float,
           barrier_weight: float, resolution: float, padding: float
           ) -> tuple[np.ndarray, tuple[float, float]]:
    """The geodesic field and its gradient (3, H, W) over the padded bounds, and its origin.

    The origin (x0, y0) is in metres.
    """
    x0, x1, y0, y1 = bounds
    ox, oy = x0 - padding, y0 - padding
    nx = int(math.ceil((x1 - x0 + 2 * padding) / resolution)) + 1
    ny = int(math.ceil((y1 - y0 + 2 * padding) / resolution)) + 1
    xs = ox + resolution * np.arange(nx)
    ys = oy + resolution * np.arange(ny)
    gx, gy = np.meshgrid(xs, ys, indexing='ij')
    inside = np.minimum.reduce([gx - x0, x1 - gx, gy - y0, y1 - gy])
    barrier = _sigmoid(sharpness * (edge_margin - inside))
    if centres:
        gap = np.min([np.hypot(gx - cx, gy - cy) - r - body_radius
                      for (cx, cy), r in zip(centres, radii)], axis=0)
        barrier = barrier + _sigmoid(sharpness * (clearance - gap))
    weights = 1.0 + barrier_weight * barrier
    i = int(np.clip(round((goal[0] - ox) / resolution), 0, nx - 1))
    j = int(np.clip(round((goal[1] - oy) / resolution), 0, ny - 1))
    field = distance_field(weights, (i, j), resolution)
    gu, gv = np.gradient(field, resolution)
    return np.stack([field, gu, gv]).astype(np.float32), (ox, oy)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass(frozen=True)
class GeodesicGoalCost:
    """Path length to the goal around obstacles and away from edges, at every step (m).

    Without `bounds` (no perceived scene) it is the straight-line distance, like GoalCost.
    """

    position_indices: tuple[int, int]
    """State indices of the (x, y) position that should reach the goal, metres."""
    bounds: tuple[float, float, float, float] | None = None
    """Platform extent (x_min, x_max, y_min, y_max), metres; None: straight-line distance."""
    centres: tuple[tuple[float, float], ...] = ()
    """Obstacle centres (x, y), metres."""
    radii: tuple[float, ...] = ()
    """Obstacle radii, metres (one per centre)."""
    body_radius: float = 0.45
    """Robot radius by which the obstacles are inflated, metres."""
    clearance: float = 0.1
    """Clearance from an obstacle where its barrier reaches one half, metres (as the collision
    term's margin)."""
    edge_margin: float = 0.3
    """Distance inside the platform's edge where its barrier reaches one half, metres (as the
    fall term's margin)."""
    sharpness: float = 30.0
    """Steepness of both barriers, 1/m."""
    barrier_weight: float = 50.0
    """Extra cost per metre of path where a barrier is full, relative to free space (about
    the barrier terms' weight per step times the steps per metre, so the path length counts
    what the planner's barriers will charge along it)."""
    resolution: float = 0.05
    """Grid cell size, metres."""
    terminal_weight: float = 0.0
    """Extra multiple of the last step's distance (weights where the horizon ends up)."""
    heading_indices: tuple[int, int] | None = None
    """State indices of (cos yaw, sin yaw) of a robot that drives along its heading (either
    way); with `heading_weight`, the horizon's end pays for facing across the path."""
    heading_weight: float = 0.0
    """Metres of path added at the horizon's end per unit misalignment 1 - |cos(yaw - path
    direction)| (a turn on the spot still to come), fading out within `heading_fade` of
    the goal."""
    heading_fade: float = 0.5
    """Distance to the goal below which the heading matters less and less, metres."""
    reach_radius: float = 0.0
    """With `reach_bonus`: distance within which the goal counts as reached, metres."""
    reach_bonus: float = 0.0
    """Cost of every step before the goal is reached (a soft, running indicator), so that a
    plan that gets there sooner wins even when the last centimetres hardly shorten the
    distance (the task's time-to-success)."""

    def __post_init__(self):
        if len(self.centres) != len(self.radii):
            raise ValueError(f'need one radius per centre, got {len(self.centres)} centres and '
                             f'{len(self.radii)} radii')
        if self.resolution <= 0 or self.barrier_weight < 0:
            raise ValueError(f'need resolution > 0 and barrier_weight >= 0, got '
                             f'{self.resolution} and {self.barrier_weight}')

    def field(self, goal) -> tuple[torch.Tensor, tuple[float, float]]:
        """The cached field and its gradient (3, H, W), metres, and its origin for a goal."""
        g = np.asarray(torch.as_tensor(goal).detach().cpu(), dtype=np.float64).reshape(-1)
        q = self.resolution / 2  # goals closer than half a cell share a field
        key_goal = (round(g[0] / q) * q, round(g[1] / q) * q)
        field, origin = _field(key_goal, tuple(round(b, 2) for b in self.bounds),
                               tuple((round(c[0], 2), round(c[1], 2)) for c in self.centres),
                               tuple(round(r, 2) for r in self.radii), self.body_radius,
                               self.clearance, self.edge_margin, self.sharpness,
                               self.barrier_weight, self.resolution, 0.5)
        return torch.from_numpy(field), origin

    def distance(self, positions: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Geodesic distance of positions (..., 2) to goal (2,), bilinear in the field."""
        return self._lookup(positions, goal, channels=1)[0]

    def _lookup(self, positions: torch.Tensor, goal: torch.Tensor,
                channels: int = 3) -> torch.Tensor:
        """Distance and its gradient (3, ...) at positions (..., 2), bilinear in the field.

        `channels=1` reads the distance alone, (1, ...). The four corners of every position
        are gathered in one indexing operation.
        """
        if self.bounds is None:
            diff = positions - goal
            d = torch.sqrt(diff.pow(2).sum(-1) + 1e-12)
            if channels == 1:
                return d.unsqueeze(0)
            return torch.stack([d, diff[..., 0] / d, diff[..., 1] / d])
        field, (ox, oy) = self.field(goal)
        field = field.to(positions.device, positions.dtype)
        h, w = field.shape[1:]
        u = ((positions[..., 0] - ox) / self.resolution).clamp(0, h - 1.001)
        v = ((positions[..., 1] - oy) / self.resolution).clamp(0, w - 1.001)
        i, j = u.detach().floor().long(), v.detach().floor().long()
        fu, fv = u - i, v - j
        flat = field[:channels].reshape(channels, -1)
        base = i * w + j
        c00, c10, c01, c11 = flat[:, torch.stack([base, base + w, base + 1, base + (w + 1)])
                                  ].unbind(1)
        return ((1 - fu) * (1 - fv) * c00 + fu * (1 - fv) * c10
                + (1 - fu) * fv * c01 + fu * fv * c11)

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Distance per step: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        check_shapes(states, actions)
        check_indices(self.position_indices, states.shape[-1], 'position')
        if context.goal is None:
            raise ValueError('GeodesicGoalCost needs CostContext.goal, got None')
        goal = torch.as_tensor(context.goal, dtype=states.dtype, device=states.device)
        n = states.shape[1]
        if goal.shape == (n, 2) and self.bounds is None:  # per-sample goals, straight line
            step_goal, last_goal = goal.view(1, n, 1, 2), goal.view(1, n, 2)
        elif goal.shape == (2,):
            step_goal = last_goal = goal
        else:
            raise ValueError(f'GeodesicGoalCost needs one goal (2,) (or ({n}, 2) without a '
                             f'scene), got {tuple(goal.shape)}')
        position = states[:, :, 1:][..., list(self.position_indices)]
        distance = self.distance(position, step_goal)
        cost = distance.mean(0)
        if self.reach_bonus:
            reached = torch.sigmoid((self.reach_radius - distance) / 0.02)
            reached = torch.cummax(reached, dim=-1).values.mean(0)
            cost = cost + self.reach_bonus * (1.0 - reached)
        last = cost[:, -1:] * (1.0 + self.terminal_weight)
        if self.heading_indices is not None and self.heading_weight:
            last = last + self.heading_weight * self.misalignment(states[:, :, -1], last_goal)
        return torch.cat([cost[:, :-1], last], dim=1)

    def misalignment(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """1 - |cos(yaw - path direction)|, faded near the goal: states (E, N, S) -> (N, 1)."""
        check_indices(self.heading_indices, states.shape[-1], 'heading')
        d, gu, gv = self._lookup(states[..., list(self.position_indices)], goal)
        norm = torch.sqrt(gu.pow(2) + gv.pow(2) + 1e-12)
        c, s = states[..., self.heading_indices[0]], states[..., self.heading_indices[1]]
        along = (c * gu + s * gv) / (norm * torch.sqrt(c.pow(2) + s.pow(2) + 1e-12))
        fade = (d / self.heading_fade).clamp(max=1.0)
        return ((1.0 - along.abs()) * fade).mean(0).unsqueeze(-1)
