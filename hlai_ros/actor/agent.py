"""The actor as a controller: `act` / `plan` / `reset` around a planner and a policy.

With a planner it plans every control step (MPC); without one, or with `use_planner=False`,
it falls back to the policy alone. It remembers the last applied action for the smoothness
cost.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from hlai_ros.actor.planner import Planner, PlanResult, uses_goal
from hlai_ros.actor.policy import Policy
from hlai_ros.cost.base import CostContext


class Agent:
    """A controller that maps a state (S,) to an action (A,), by planning or by the policy."""

    def __init__(self, planner: Planner | None = None, policy: Policy | None = None,
                 use_planner: bool = True):
        if planner is None and policy is None:
            raise ValueError('Agent needs a planner, a policy, or both')
        self.planner, self.policy = planner, policy
        self.use_planner = use_planner and planner is not None
        self.previous_action: torch.Tensor | None = None
        self.last_plan: PlanResult | None = None

    def reset(self) -> None:
        """Start a new episode: forget the warm start and the previous action."""
        if self.planner is not None:
            self.planner.reset()
        self.previous_action = None
        self.last_plan = None

    def plan(self, state, context: CostContext | None = None) -> PlanResult:
        """Plan from state (S,) with the planner; the context gains the previous action."""
        if self.planner is None:
            raise ValueError('this Agent has no planner; use act() with its policy')
        context = context or CostContext()
        if context.previous_action is None and self.previous_action is not None:
            context = replace(context, previous_action=self.previous_action)
        self.last_plan = self.planner.plan(state, context)
        return self.last_plan

    def act(self, state, context: CostContext | None = None) -> np.ndarray:
        """The action to apply in state (S,), as a float32 array (A,)."""
        if self.use_planner:
            action = self.plan(state, context).action
        else:
            goal = context.goal if context is not None and uses_goal(self.policy) else None
            action = torch.as_tensor(self.policy.act(state, goal) if goal is not None
                                     else self.policy.act(state))
        self.previous_action = action.detach().cpu()
        return self.previous_action.numpy().astype(np.float32)
