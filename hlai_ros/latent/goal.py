"""A goal cost over latents, and how well it ranks progress (issue 12, "goals as images").

The plain latent distance to a goal frame's encoding is dominated by the robot's own pose: in
push the hand is large, moves a lot, and is parked elsewhere in the goal image, so the cost
tracks the hand instead of the box (Spearman 0.69 in the quick experiment). `GoalCost` looks at
what the goal is about instead:

- keypoints, each weighted (for a goal about objects, `weighting='world'`) by how much of it the
  robot's own proprioception does NOT explain.
  A ridge fit from the proprioception latent to each keypoint, on unlabelled latents (the
  model's own, no ground truth), gives the share of its variance that is "self" (R²); the weight
  is 1 - R². Keypoints on the hand (fully explained by the joint angles) drop out, keypoints on
  the box or on a static scene part stay. Each keypoint's squared distance is divided by its
  variance, so keypoints are compared in their own units. A goal about where the robot itself
  is (cliff) weights the keypoints uniformly or by the share proprioception explains ('self').
- optionally the latent map, per location weighted by the goal frame's decoded residual energy
  (where the goal image differs from the mean frame), and the proprioception latent (where the
  goal is about the robot itself, as in cliff where odometry carries the position).

`goal_ranking` measures the cost against ground truth (for the benchmark only: the truth never
enters the cost): along each held-out episode, the goal is the episode's last frame and the
truth is the distance of the tracked position to its value at that frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import spearmanr
import torch
import torch.nn.functional as F

from hlai_ros.latent.data import LatentDataset
from hlai_ros.latent.model import LatentWorldModel


@dataclass
class GoalCost:
    """cost(latents (..., D), goal (D,) or (..., D)) -> (...), lower is closer to the goal."""

    map_dim: int
    """Size of the latent map part (first entries)."""
    image_dim: int
    """End of the keypoint part; the proprioception latent follows."""
    keypoint_weights: torch.Tensor
    """(K,) weight of each keypoint's squared distance (1 - its share explained by proprio)."""
    keypoint_scale: torch.Tensor
    """(K,) 1 / the keypoint's variance (x and y summed)."""
    map_weight: float = 0.0
    """Weight of the latent-map term (mean squared difference, goal-energy weighted)."""
    map_shape: tuple[int, int] = (0, 0)
    """(C, m) of the latent map, for the per-location weights."""
    map_location_weights: torch.Tensor | None = None
    """(m, m) weights of the map term's locations (None: uniform); see `with_goal_energy`."""
    proprio_weight: float = 0.0
    """Weight of the proprioception-latent term (mean squared difference)."""
    residual: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    """(mean (Dp,), std (Dp,), W (Dp + 1, 2K)): with it, keypoints are compared after their
    linear prediction from the proprioception latent is subtracted (weighting 'residual')."""

    def keypoints(self, latents: torch.Tensor) -> torch.Tensor:
        """The keypoints (..., 2K) the cost compares.

        With `residual`, minus their linear prediction from the proprioception latent.
        """
        kp = latents[..., self.map_dim:self.image_dim]
        if self.residual is None:
            return kp
        mean, std, w = self.residual
        x = (latents[..., self.image_dim:] - mean) / std
        return kp - x @ w[:-1] - w[-1]

    def __call__(self, latents: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Cost of each latent (..., D) to the goal latent (D,) or (..., D)."""
        k = len(self.keypoint_weights)
        cost = latents.new_zeros(latents.shape[:-1])
        if k:
            d = self.keypoints(latents) - self.keypoints(goal)
            d2 = d.pow(2).unflatten(-1, (k, 2)).sum(-1)                     # (..., K)
            cost = cost + (d2 * self.keypoint_scale * self.keypoint_weights).sum(-1) \
                / self.keypoint_weights.sum().clamp_min(1e-6)
        if self.map_weight:
            c, m = self.map_shape
            d2 = (latents[..., :self.map_dim] - goal[..., :self.map_dim]).pow(2)
            d2 = d2.unflatten(-1, (c, m, m)).mean(-3)                        # (..., m, m)
            w = self.map_location_weights
            w = torch.ones(m, m) / (m * m) if w is None else w / w.sum()
            cost = cost + self.map_weight * (d2 * w).sum((-1, -2))
        if self.proprio_weight:
            d2 = (latents[..., self.image_dim:] - goal[..., self.image_dim:]).pow(2).mean(-1)
            cost = cost + self.proprio_weight * d2
        return cost

    @torch.no_grad()
    def with_goal_energy(self, model: LatentWorldModel, goal: torch.Tensor) -> 'GoalCost':
        """A copy whose map locations are weighted by the goal frame's residual energy.

        The map decoder's reconstruction of the goal latent (D,) is the goal frame minus the
        mean frame; its energy, pooled to the map's m x m, says where the goal image shows
        something other than the average scene.
        """
        c, m = self.map_shape
        rec = model.decode_image(goal.unsqueeze(0))                          # (1, 4, r, r)
        energy = F.adaptive_avg_pool2d(rec.pow(2).sum(1, keepdim=True), m)[0, 0]
        return GoalCost(**{**self.__dict__, 'map_location_weights': energy})


@torch.no_grad()
def fit_goal_cost(model: LatentWorldModel, latents: torch.Tensor, map_weight: float = 0.0,
                  proprio_weight: float = 0.0, weighting: str = 'world', alpha: float = 1e-2
                  ) -> GoalCost:
    """Fit the keypoint weights on unlabelled latents (N, D) of the model (no ground truth).

    weighting 'world' (a goal about objects, push): each keypoint's weight is 1 - R² of a ridge
    fit (penalty `alpha` x N on standardised inputs) from the proprioception latent to its
    (x, y), the share the robot's own state does not explain; 'self' (a goal about where the
    robot is, cliff): R²; 'uniform': 1; 'residual': every keypoint minus its linear prediction
    from the proprioception latent (what the robot's own state explains is removed before
    comparing, even where a keypoint mixes the hand and the box), weights 1.
    """
    if weighting not in ('world', 'self', 'uniform', 'residual'):
        raise ValueError(f"weighting must be 'world', 'self', 'uniform' or 'residual', got "
                         f'{weighting!r}')
    c = model.config
    km, ki = model.map_dim, model.image_dim
    k = c.keypoints
    kp = latents[:, km:ki].double().view(-1, k, 2)
    prop = latents[:, ki:].double()
    mean, std = prop.mean(0), prop.std(0).clamp_min(1e-6)
    x = (prop - mean) / std
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    y = kp.flatten(1)
    reg = alpha * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    w = torch.linalg.solve(x.T @ x + reg, x.T @ y)
    res = (y - x @ w).pow(2).sum(0).view(k, 2).sum(-1)
    tot = (y - y.mean(0)).pow(2).sum(0).view(k, 2).sum(-1).clamp_min(1e-12)
    weights = (res / tot).clamp(0.0, 1.0).float()
    if weighting == 'self':
        weights = 1.0 - weights
    elif weighting in ('uniform', 'residual'):
        weights = torch.ones_like(weights)
    residual = (mean.float(), std.float(), w.float()) if weighting == 'residual' else None
    # each keypoint in units of its own full variance: a residual that proprioception mostly
    # explains stays small instead of being blown up to the size of the others
    var = kp.var(0).sum(-1).clamp_min(1e-8).float()
    return GoalCost(km, ki, weights, 1.0 / var, map_weight, (c.map_channels, c.map_size),
                    None, proprio_weight, residual)


def latent_distance(part: slice) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The plain baseline: mean squared latent difference over `part` of the latent."""
    def cost(latents: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return (latents[..., part] - goal[..., part]).pow(2).mean(-1)
    return cost


def goal_ranking(cost: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 latents: torch.Tensor, data: LatentDataset, key: str,
                 min_travel: float = 0.02,
                 per_goal: Callable[[torch.Tensor], Callable] | None = None) -> dict[str, float]:
    """Spearman correlation of `cost` with the true distance to the goal along each episode.

    The goal of an episode is its last frame's latent; the truth is the distance of
    ``data.positions[key]`` to its value at that frame (evaluation only). Episodes whose
    tracked position never gets `min_travel` m from the goal are skipped (nothing to rank).
    `per_goal`, if given, builds the cost for each goal latent (e.g. goal-energy weights).
    Returns the mean and median per-episode Spearman, the pooled one over every scored frame,
    and the number of episodes scored.
    """
    pos = data.positions[key]
    rhos, costs, truths = [], [], []
    for e in range(data.num_episodes):
        idx = torch.nonzero(data.episode == e).flatten()
        y = pos[idx.numpy()]
        if len(idx) < 3 or not np.isfinite(y).all():
            continue
        truth = np.linalg.norm(y - y[-1], axis=1)
        if truth.max() < min_travel:
            continue
        goal = latents[idx[-1]]
        fn = per_goal(goal) if per_goal is not None else cost
        c = fn(latents[idx[:-1]], goal).numpy()       # the goal frame itself is not scored
        truth = truth[:-1]
        rho = spearmanr(c, truth).statistic
        if np.isfinite(rho):
            rhos.append(float(rho))
        costs.append(c)
        truths.append(truth)
    if not rhos:
        return {'episodes': 0}
    pooled = spearmanr(np.concatenate(costs), np.concatenate(truths)).statistic
    return {'spearman_mean': float(np.mean(rhos)), 'spearman_median': float(np.median(rhos)),
            'spearman_pooled': float(pooled), 'episodes': len(rhos)}
