"""The cost and critic value of single states, ROS-free: the ``cost_critic`` node's core.

`StateCost` holds a task and the critic next to its world model (identity-checked, if any).
`StateCost.cost` is the cost of one state under a profile (`Task.cost` with
``terminal=False``), as one step of a plan that stays there with zero action (action and
ensemble terms are 0 for one state), per term and in total; `StateCost.critic_value` is the
critic's cost-to-go of the state, or None without a critic.
"""
from __future__ import annotations

from pathlib import Path

import torch

from hlai_ros.contract import CRITIC
from hlai_ros.cost.profile import CostProfile


class StateCost:
    """Cost and critic value of a task's percepts.

    Args:
        task: the registered task (`hlai_ros.tasks.get_task`).
        model_path: model folder that may hold a critic checkpoint for the task.

    """

    def __init__(self, task, model_path: Path):
        self.task, self.model_path = task, Path(model_path)
        self.critic = None
        self.critic_status = ''
        """What became of the critic (loaded, absent, refused and why)."""
        self.critic_failed = False
        """Whether the last load refused a critic that was there."""

    def load_critic(self) -> None:
        """Load the critic next to the world model, if there is one for this task.

        A broken critic or one for another task or layout is refused: `critic_failed` is set
        and `critic_status` says why; the state cost goes on without it.
        """
        from hlai_ros.actor.checkpoint import load_critic
        self.critic_failed = False
        try:
            self.critic = None if not self.model_path.is_dir() else load_critic(
                self.model_path, 'cpu', self.task.state_dim, self.task.identity('state'))
        except ValueError as exc:  # CheckpointError: broken, or for another task or layout
            self.critic, self.critic_failed = None, True
            self.critic_status = f'critic in {self.model_path} not loaded: {exc}'
            return
        self.critic_status = (f'critic loaded from {self.model_path}' if self.critic is not None
                              else f'no critic in {self.model_path}; {CRITIC.name} is silent')

    def cost(self, percept, profile: CostProfile) -> tuple[float, dict[str, float]]:
        """Cost of the percept's state under `profile`: (total, {term: cost})."""
        cost = self.task.cost(percept.scene, profile, terminal=False)
        s = torch.as_tensor(percept.model_state, dtype=torch.float32)
        # the state as the first of two steps of a plan that stays there
        states, actions = s.expand(1, 1, 3, -1), torch.zeros(1, 2, self.task.action_dim)
        with torch.no_grad():
            terms = {name: float(c[0, 0]) for name, c in
                     cost.per_term(states, actions, self.task.context(percept)).items()}
        return float(sum(terms.values())), terms

    def critic_value(self, percept) -> float | None:
        """The critic's cost-to-go of the percept's state and goal; None without a critic."""
        if self.critic is None:
            return None
        with torch.no_grad():
            return float(self.critic(torch.as_tensor(percept.model_state)[None],
                                     torch.as_tensor(percept.goal, dtype=torch.float32))[0])
