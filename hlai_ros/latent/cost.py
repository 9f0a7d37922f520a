"""Cost terms over planning states (`hlai_ros.latent.planning`), for `hlai_ros.cost.Cost`.

Each is a `hlai_ros.cost.base.CostTerm`: states (E, N, T+1, S), actions (N, T, A) -> (N, T).
The goal is the goal image's planning state, carried in ``CostContext.goal`` (S,).

- `LatentGoalTerm`: the keypoint goal cost of `hlai_ros.latent.goal.GoalCost` (keypoints
  weighted by what proprioception does not explain, or by what it does, per task) between every
  predicted planning state and the goal's, averaged over members; the last step counts
  ``1 + terminal_weight`` times.
- `EventTerm`: the learned catastrophe term, the event heads' probability that the episode
  fails within k steps (`hlai_ros.latent.events.EventHeads`), max over members (pessimistic,
  as the hand-written barriers of the state stack).

The ensemble's disagreement and the effort are the state stack's own terms
(`hlai_ros.cost.uncertainty.UncertaintyCost`, `hlai_ros.cost.effort.EffortCost`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.cost.base import CostContext, check_shapes
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
        cost = self.goal_cost(states[:, :, 1:], context.goal).mean(0)
        if self.terminal_weight:
            cost = torch.cat([cost[:, :-1], cost[:, -1:] * (1.0 + self.terminal_weight)], 1)
        return cost


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
