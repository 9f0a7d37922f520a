"""Cost terms over planning states (`hlai_ros.latent.planning`), for `hlai_ros.cost.Cost`.

Each is a `hlai_ros.cost.base.CostTerm`: states (E, N, T+1, S), actions (N, T, A) -> (N, T).
The goal is the goal image's planning state, carried in ``CostContext.goal`` (S,).

- `LatentGoalTerm`: the keypoint goal cost of `hlai_ros.latent.goal.GoalCost` (keypoints
  weighted by what proprioception does not explain, or by what it does, per task) between every
  predicted planning state and the goal's, averaged over members; the last step counts
  ``1 + terminal_weight`` times.
- `GeodesicGoalTerm`: the same goal cost, but the robot's keypoints measure their distance to
  the goal along the learned danger map of the pixel event heads (a path around what the
  heads fear, not a straight line through it), so a goal behind an obstacle is no local
  minimum of the cost.
- `EventTerm`: the learned catastrophe term, the event heads' probability that the episode
  fails within k steps (`hlai_ros.latent.events.EventHeads`), max over members (pessimistic,
  as the hand-written barriers of the state stack).

The ensemble's disagreement and the effort are the state stack's own terms
(`hlai_ros.cost.uncertainty.UncertaintyCost`, `hlai_ros.cost.effort.EffortCost`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from hlai_ros.cost.base import CostContext, check_shapes
from hlai_ros.cost.navigation import distance_field
from hlai_ros.latent.events import PixelEventHeads, read_maps
from hlai_ros.latent.goal import GoalCost


@dataclass
class LatentGoalTerm:
    """Keypoint distance of every predicted planning state to the goal image's."""

    goal_cost: GoalCost
    """The fitted keypoint goal cost over planning states (map part empty)."""
    terminal_weight: float = 2.0
    """The horizon's last step counts 1 + terminal_weight times."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """Goal cost per step (N, T), member mean."""
        check_shapes(states, actions)
        if context.goal is None:
            raise ValueError('the latent goal term needs the goal image\'s planning state in '
                             'CostContext.goal (call set_goal first)')
        cost = self.distance(states[:, :, 1:], context.goal).mean(0)
        if self.terminal_weight:
            cost = torch.cat([cost[:, :-1], cost[:, -1:] * (1.0 + self.terminal_weight)], 1)
        return cost

    def distance(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """The goal cost of planning states (..., S) to the goal (S,)."""
        return self.goal_cost(states, goal)


@dataclass
class GeodesicGoalTerm(LatentGoalTerm):
    """The keypoint goal cost with the moving keypoints' distance taken around danger.

    A straight-line keypoint distance has a local minimum in front of an obstacle between the
    robot and its goal: every short plan that goes around first moves away, and the event term
    forbids going through, so the robot stalls (cliff: most of the latent stack's timeouts).
    The pixel event heads already draw where failures happen as a map over the camera frame
    (`hlai_ros.latent.events.PixelEventHeads`), in the frame coordinates the keypoints live in.
    This term turns that map into a navigation function (as the state stack's geodesic term
    does with its hand-written obstacles, `hlai_ros.cost.navigation`): a unit of path across a
    cell costs ``1 + danger_weight * P``, P the heads' probability of a failure for a robot
    whose moving keypoints stand in the cell, and each moving keypoint's distance to where the
    goal image shows it is the shortest such path (Dijkstra on the map's 8-connected grid, per
    frame and goal, cached). It is never shorter than the straight line, so the goal's
    neighbourhood is measured as precisely as by `LatentGoalTerm`.

    Only the keypoints that move count (spread above `moving_std`, with a goal-cost weight).
    Those that stay put are static scene points: they say nothing about where the robot
    should go, and their spread is so small that their jitter, divided by it, is as large as
    the robot's own distance near the goal (cliff: 0.07 of a cost of 0.16 at 0.3 m from the
    goal), which held the robot short of it.

    Everything here is learned: the map from the bags' failure markers, the keypoints and the
    goal from the encoder. No hand-written perception enters.
    """

    heads: PixelEventHeads | None = None
    """The pixel event heads whose danger map (of the current frame) the paths go around."""
    danger_weight: float = 10.0
    """Extra cost of crossing a cell per unit of its failure probability (1: free space)."""
    moving_std: float = 0.1
    """Keypoints whose spread (std over the training codes, frame units of [-1, 1]) exceeds
    this count, measured along the map; the others are static scene points and do not."""
    _cache: tuple = field(default=(None, None, None), init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.heads, PixelEventHeads):
            raise ValueError('the geodesic goal term needs pixel event heads (event_kind '
                             f"'pixels'), got {type(self.heads).__name__}")
        if self.goal_cost.map_weight or self.goal_cost.proprio_weight:
            raise ValueError('the geodesic goal term takes a keypoint goal cost over planning '
                             'states (no map or proprioception term)')
        spread = self.goal_cost.keypoint_scale.rsqrt()
        self.moving = (spread > self.moving_std) & (self.goal_cost.keypoint_weights > 0)
        if not self.moving.any():
            raise ValueError(f'no keypoint of the goal cost moves more than moving_std='
                             f'{self.moving_std} (spreads {spread.tolist()})')
        weights = self.goal_cost.keypoint_weights * self.moving
        self.weights = weights / weights.sum()

    @torch.no_grad()
    def fields(self, goal: torch.Tensor) -> torch.Tensor:
        """Path length from every cell to each moving keypoint's goal (K*n*n,), frame units.

        Rows of the keypoints that do not move are zero. Recomputed when the heads' scene or
        the goal changes.
        """
        heads, scene = self.heads, self.heads._scene
        if scene is None:
            raise RuntimeError('the geodesic goal term needs the scene: set_scene first')
        n, k = heads.size, len(self.goal_cost.keypoint_weights)
        kp = goal[:2 * k].detach().clone()          # where the goal image shows the keypoints
        cached_scene, cached_goal, fields = self._cache
        if cached_scene is scene and torch.equal(cached_goal, kp):
            return fields
        weight = F.softplus(heads.keypoint_weight)[self.moving].sum()
        danger = torch.sigmoid(heads.bias + weight * scene.view(n, n))
        cost = (1.0 + self.danger_weight * danger).double().numpy()
        out = np.zeros((k, n, n))
        cells = ((kp.view(k, 2).clamp(-1, 1) + 1) * 0.5 * (n - 1)).round().long().tolist()
        by_cell: dict[tuple[int, int], np.ndarray] = {}   # the robot's keypoints share cells
        for i in np.flatnonzero(self.moving.numpy()):
            x, y = cells[i]
            if (y, x) not in by_cell:
                by_cell[y, x] = distance_field(cost, (y, x), 2.0 / (n - 1))
            out[i] = by_cell[y, x]
        fields = torch.as_tensor(out, dtype=torch.float32).flatten()
        self._cache = (scene, kp, fields)
        return fields

    def distance(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """The goal cost of planning states (..., S): moving keypoints, along the map."""
        gc, k = self.goal_cost, len(self.goal_cost.keypoint_weights)
        d2 = (gc.keypoints(states) - gc.keypoints(goal)).unflatten(-1, (k, 2)).pow(2).sum(-1)
        path = read_maps(self.fields(goal), states, k, self.heads.size, True)
        d2 = torch.maximum(path.pow(2), d2)
        return (d2 * gc.keypoint_scale * self.weights).sum(-1)


@dataclass
class EventTerm:
    """Probability of a failure within k steps, from the learned event heads."""

    heads: torch.nn.Module
    """`hlai_ros.latent.events.EventHeads` (scene features set for the current frame)."""

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext) -> torch.Tensor:
        """P(failure within k) per step (N, T), max over members."""
        check_shapes(states, actions)
        return self.heads.probability(states[:, :, 1:]).amax(0)
