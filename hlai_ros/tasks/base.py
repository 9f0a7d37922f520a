"""What the configurator knows about a task: how perception, world model, cost and actor fit.

A `Task` turns one perception estimate into the state the world model predicts (the *model
state*) and the cost the planner minimises for the scene at hand. It is the one place where a
task's state layout is named; the world model, cost terms and planner stay generic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hlai_ros.cost.base import CostContext
from hlai_ros.cost.composite import Cost, cost_config_from_dict
from hlai_ros.sim.base import CameraModel

GOAL_NAMES = ('goal_x', 'goal_y')
"""Labels of the goal's entries in the perception state (``/hlai/state``), metres."""


@dataclass(frozen=True)
class Percept:
    """One control step as the stack sees it (never simulator ground truth)."""

    model_state: np.ndarray
    """The world model's state, float32 (S,), in the task's `model_state_names` order."""
    goal: np.ndarray
    """Goal (x, y) in the world frame, metres."""
    scene: Any = None
    """Static scene the cost needs (platform bounds, obstacles), task specific."""
    estimate: Any = None
    """The perception estimator's full output, for logging and display."""


def close_estimator(estimator) -> None:
    """Release what an estimator holds (e.g. its kinematics client); None is fine."""
    if estimator is not None and hasattr(estimator, 'close'):
        estimator.close()


class Task:
    """Base of the task descriptions; subclasses fill in the class attributes and methods."""

    name: str = ''
    model_state_names: tuple[str, ...] = ()
    position_indices: tuple[int, int] = (0, 1)
    """Model-state indices of the position that must reach the goal."""
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    def __init__(self, cost_section: dict[str, Any] | None = None):
        self.cost_section = dict(cost_section or self.default_cost())

    @property
    def state_dim(self) -> int:
        """Size of the model state."""
        return len(self.model_state_names)

    @property
    def action_dim(self) -> int:
        """Size of the action."""
        return len(self.action_low)

    def default_cost(self) -> dict[str, Any]:
        """The cost section used when config/<task>.yaml gives none."""
        raise NotImplementedError

    def make_perception(self, camera: CameraModel):
        """Return a fresh stateful perception estimator for a calibrated camera."""
        raise NotImplementedError

    def perceive(self, estimator, obs: dict[str, np.ndarray]) -> Percept:
        """Run the estimator on an observation dict and map it to a `Percept`."""
        raise NotImplementedError

    def percept_from_state(self, names, values) -> Percept:
        """Map a labelled perception state (``/hlai/state``: names, values (n,)) to a `Percept`.

        Picks `model_state_names` and the goal (``goal_x``, ``goal_y``, metres) by label, so
        the message may carry more entries, in any order. Tasks whose model state is computed
        from the perception state (or that carry a scene) override this.

        Raises:
            ValueError: names and values differ in length, or a needed label is missing.

        """
        wanted = list(self.model_state_names) + list(GOAL_NAMES)
        names, values = self.labelled_state(names, values, wanted)
        pick = [names.index(n) for n in self.model_state_names]
        goal = [names.index(n) for n in GOAL_NAMES]
        return Percept(values[pick].copy(), values[goal].copy(), None, values)

    def labelled_state(self, names, values, wanted) -> tuple[list[str], np.ndarray]:
        """Check a labelled state: return (names as str, float32 values (n,)).

        Raises:
            ValueError: names and values differ in length, or a label of `wanted` is missing.

        """
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        names = [str(n) for n in names]
        if len(names) != values.size:
            raise ValueError(f'{len(names)} state names for {values.size} values')
        missing = sorted({n for n in wanted if n not in names})
        if missing:
            raise ValueError(f'{self.name} state lacks {missing}; expected labels including '
                             f'{sorted(set(wanted))}, got {names}')
        return names, values

    oracle_objective: str = 'reward'
    """What the oracle MPC minimises in the simulator: 'reward' (minus the world's reward) or
    'cost' (this task's cost on the true states, `true_state`)."""

    def true_state(self, ground_truth: dict[str, Any], previous: dict[str, Any] | None,
                   dt: float) -> np.ndarray:
        """The model state (S,) from the simulator's ground truth (for the oracle MPC only).

        Args:
            ground_truth: ``info['ground_truth']`` now.
            previous: the ground truth one control period `dt` (s) earlier, or None.

        """
        raise NotImplementedError(f'task {self.name!r} has no true_state; its oracle '
                                  "objective must be 'reward'")

    def scene_terms(self, scene: Any) -> dict[str, dict[str, Any]]:
        """Cost-term parameters that come from the perceived scene (bounds, obstacles)."""
        return {}

    def cost(self, scene: Any = None) -> Cost:
        """Build the task cost for a scene: config weights + perceived geometry."""
        section = {k: (dict(v) if isinstance(v, dict) else v)
                   for k, v in self.cost_section.items()}
        for name, params in self.scene_terms(scene).items():
            if name in section.get('terms', ()):
                section.setdefault(name, {}).update(params)
        return Cost.from_config(cost_config_from_dict(section))

    def context(self, percept: Percept) -> CostContext:
        """The cost context of a control step (the goal)."""
        import torch
        return CostContext(goal=torch.as_tensor(percept.goal, dtype=torch.float32))
