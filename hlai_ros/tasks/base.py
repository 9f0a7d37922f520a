"""A task: a job for one robot, and everything the stack needs to know to do it.

A `Task` is written once, in its own module, and registered (`hlai_ros.tasks.registry`).
It names:

- its world: the gymnasium entry point and time limit (`world`, `max_steps`, `env_id`), on a
  registered robot (`embodiment_name`);
- its perception estimator (`make_perception`) and the labelled state it publishes on
  ``/hlai/state``: `encode` turns an estimate into (labels, values), `decode` turns labels and
  values back into the `Percept` the stack plans from. They are one inverse pair, and
  `perceive` is `decode` after `encode`, so the Python loop and the ROS graph see the same;
- the state the world model predicts (`model_state_names`), where the goal applies
  (`position_indices`), and the pose of interest for RViz (`pose_labels`);
- its cost: the terms' structure (`cost_terms`) and the scene's geometry (`scene_terms`); the
  weights, switches and planner settings are the profile (`hlai_ros.cost.profile`), whose
  defaults come from config/<task>.yaml (`default_profile`);
- its scripted baseline (`scripted`) and its oracle's objective (`oracle_objective`,
  `true_state`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from hlai_ros.contract import OBJECT_POSE, Topic
from hlai_ros.cost.base import CostContext
from hlai_ros.cost.composite import Cost, cost_config_from_dict
from hlai_ros.cost.profile import CostProfile, TermSetting
from hlai_ros.sim.base import CameraModel

GOAL_NAMES = ('goal_x', 'goal_y')
"""Labels of the goal's entries in the perception state (``/hlai/state``), metres."""
SEEN_LABEL = 'obj_seen'
"""Label of an optional entry of the perception state: 1 where the estimator measured the
object in this frame, 0 where it only guessed (dead-reckoned a hidden object). Absent: measured.
"""


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
    """The labelled state's values (n,), for logging and display."""
    measured: bool = True
    """Whether perception measured the object in this frame (`SEEN_LABEL`); where it did not,
    the model state's `Task.unmeasured_indices` are the estimator's guesses."""


def measured_in(names, values) -> bool:
    """Whether a labelled state says its object was measured (`SEEN_LABEL`; absent: yes)."""
    names = list(names)
    return SEEN_LABEL not in names or bool(values[names.index(SEEN_LABEL)] > 0.5)


def close_estimator(estimator) -> None:
    """Release what an estimator holds (e.g. its kinematics client); None is fine."""
    if estimator is not None and hasattr(estimator, 'close'):
        estimator.close()


class Task:
    """Base of the task descriptions; a task fills in the class attributes and methods."""

    name: str = ''
    """Registered name (``--task``, ``task:=``, config/<name>.yaml)."""
    embodiment_name: str = ''
    """The registered robot it runs on (`hlai_ros.embodiments`)."""
    env_id: str = ''
    """Gymnasium id of its world."""
    world: str = ''
    """Entry point of its world, ``module:Class`` (an `hlai_ros.sim.base.HlaiWorld`)."""
    max_steps: int = 200
    """Time limit of an episode, control steps."""
    scripted: str = ''
    """Entry point of its scripted baseline, ``module:Class`` (privileged, reads ground
    truth; taking ``noise_std`` and ``seed``)."""
    model_state_names: tuple[str, ...] = ()
    """Labels of the state the world model predicts."""
    position_indices: tuple[int, int] = (0, 1)
    """Model-state indices of the position that must reach the goal."""
    goal_relative_indices: tuple[int, ...] = ()
    """Model-state entries the critic and policy see relative to the goal (default: the
    position that must reach the goal)."""
    model_defaults: Mapping[str, Any] = MappingProxyType({})
    """`hlai_ros.world_model.config.WorldModelConfig` fields this task's state world model
    starts from in `hlai train` (before any ``--set``), e.g. seeing the objects from the hand
    (``frame_origin``/``frame_points``)."""
    unmeasured_indices: tuple[int, ...] = ()
    """Model-state entries that are guesses in a frame perception did not measure
    (`Percept.measured` False: the object's position and velocity while it is hidden). The
    stack replaces them there with its world model's prediction from the previous step
    (`hlai_ros.actor.stack.Stack.predict_unmeasured`)."""
    train_measured_only: bool = False
    """Train on measured frames only: `hlai train` splits the recorded runs where
    perception did not measure the object (`Percept.measured`) in a frame or in the frame
    before (a velocity from a dead-reckoned position), so the model never learns the
    estimator's guesses while the object is hidden (roll: its ball lagging behind the
    hand)."""
    latent_defaults: Mapping[str, Any] = MappingProxyType({})
    """`hlai_ros.latent.config.LatentConfig` fields this task's pixel world model starts from
    (before any ``--set``), e.g. how many keypoints its scene needs."""
    latent_goal_weighting: str = 'world'
    """How the latent stack's goal cost weights the keypoints (`hlai_ros.latent.goal`): 'world'
    (what proprioception does not explain: the goal is about objects) or 'self' (the goal is
    about where the robot itself is)."""
    latent_plan_target: str = 'object_position'
    """Which true position the latent stack's stored probe draws its plan as
    (`hlai_ros.latent.probes`; drawing only): what the task is about, the object's position or
    the robot's ('base_position')."""
    latent_actor: str = 'planner'
    """How the latent stack acts (`hlai_ros.latent.stack.LatentStack`): 'planner' (MPC over
    the latent cost, the policy proposing samples if the folder has one) or 'policy' (the
    folder's goal-conditioned policy, its rollout through the planning dynamics as the plan)."""
    latent_cost_weights: Mapping[str, float] = MappingProxyType({})
    """`hlai_ros.latent.stack.LatentCostWeights` fields this task's latent stack plans with
    (before the defaults)."""
    pose_topic: Topic = OBJECT_POSE
    """Where perception publishes the pose of interest (`pose_labels`), for RViz."""
    pose_labels: tuple[str, ...] = ()
    """Labels of that pose in the labelled state: x, y[, yaw]."""
    oracle_objective: str = 'reward'
    """What the oracle MPC minimises in the simulator: 'reward' (minus the world's reward) or
    'cost' (this task's cost on the true states, `true_state`)."""

    # -- the robot --------------------------------------------------------------------------
    @cached_property
    def embodiment(self):
        """The registered robot the task runs on."""
        from hlai_ros.embodiments import get_embodiment
        return get_embodiment(self.embodiment_name)

    @property
    def action_low(self) -> tuple[float, ...]:
        """Lower action bounds (the robot's)."""
        return self.embodiment.action_low

    @property
    def action_high(self) -> tuple[float, ...]:
        """Upper action bounds (the robot's)."""
        return self.embodiment.action_high

    @property
    def state_dim(self) -> int:
        """Size of the model state."""
        return len(self.model_state_names)

    @property
    def action_dim(self) -> int:
        """Size of the action."""
        return self.embodiment.action_dim

    def identity(self, representation: str = 'state') -> dict[str, Any]:
        """What a checkpoint trained for this task must carry to be loaded for it."""
        return {'task': self.name, 'embodiment': self.embodiment_name,
                'representation': representation,
                'state_names': list(self.model_state_names),
                'action_names': list(self.embodiment.action_names)}

    # -- perception -------------------------------------------------------------------------
    def make_perception(self, camera: CameraModel, control_dt: float = 0.1):
        """Return a fresh stateful perception estimator for a calibrated camera."""
        raise NotImplementedError

    def encode(self, estimate) -> tuple[tuple[str, ...], np.ndarray]:
        """The labelled state (labels, float32 values (n,)) of one estimator output."""
        raise NotImplementedError

    def decode(self, names, values) -> Percept:
        """Map a labelled state (``/hlai/state``: names, values (n,)) to a `Percept`.

        Picks `model_state_names` and the goal (``goal_x``, ``goal_y``, metres) by label, so
        the message may carry more entries, in any order. Tasks whose model state is computed
        from the labelled state (or that carry a scene) override this.

        Raises:
            ValueError: names and values differ in length, or a needed label is missing.

        """
        wanted = list(self.model_state_names) + list(GOAL_NAMES)
        names, values = self.labelled_state(names, values, wanted)
        pick = [names.index(n) for n in self.model_state_names]
        goal = [names.index(n) for n in GOAL_NAMES]
        return Percept(values[pick].copy(), values[goal].copy(), None, values,
                       measured_in(names, values))

    def perceive(self, estimator, obs: dict[str, np.ndarray]) -> Percept:
        """Run the estimator on an observation dict: `decode` after `encode`."""
        return self.decode(*self.encode(estimator.estimate(obs)))

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

    # -- the oracle -------------------------------------------------------------------------
    def true_state(self, ground_truth: dict[str, Any], previous: dict[str, Any] | None,
                   dt: float) -> np.ndarray:
        """The model state (S,) from the simulator's ground truth (for the oracle MPC only).

        Args:
            ground_truth: ``info['ground_truth']`` now.
            previous: the ground truth one control period `dt` (s) earlier, or None.
            dt: the control period, s.

        """
        raise NotImplementedError(f'task {self.name!r} has no true_state; its oracle '
                                  "objective must be 'reward'")

    # -- cost -------------------------------------------------------------------------------
    def cost_terms(self) -> dict[str, Any]:
        """The cost's structure: ``{'terms': [names], name: {kind, params...}}``, no weights.

        A term of kind 'function' carries its callable as its ``function`` parameter.
        """
        raise NotImplementedError

    def scene_terms(self, scene: Any) -> dict[str, dict[str, Any]]:
        """Cost-term parameters that come from the perceived scene (bounds, obstacles)."""
        return {}

    @cached_property
    def _default_profile(self) -> CostProfile:
        from hlai_ros.config import load_params
        terms = {name: TermSetting() for name in self.cost_terms()['terms']}
        params = load_params(self.name).get('cost_critic', {})
        return CostProfile(terms).with_params(params)

    def default_profile(self) -> CostProfile:
        """The profile of config/<task>.yaml (``cost_critic``: weights., enabled., planner.)."""
        return self._default_profile

    def cost_section(self, scene: Any = None, profile: CostProfile | None = None
                     ) -> dict[str, Any]:
        """The cost config section: terms, the profile's weights and switches, the scene."""
        profile = profile or self.default_profile()
        section = {k: (dict(v) if isinstance(v, dict) else v)
                   for k, v in self.cost_terms().items()}
        for name, setting in profile.terms.items():
            section.setdefault(name, {}).update(weight=setting.weight, enabled=setting.enabled)
        for name, params in self.scene_terms(scene).items():
            if name in section.get('terms', ()):
                section.setdefault(name, {}).update(params)
        return section

    def cost(self, scene: Any = None, profile: CostProfile | None = None,
             terminal: bool = True) -> Cost:
        """Build the task cost for a scene under a profile (default: the task's).

        `terminal` False drops the goal's terminal weight (to score recorded steps, which have
        no horizon end).
        """
        section = self.cost_section(scene, profile)
        if not terminal:
            for v in section.values():
                if isinstance(v, dict):
                    v.pop('terminal_weight', None)
        return Cost.from_config(cost_config_from_dict(section))

    def context(self, percept: Percept) -> CostContext:
        """The cost context of a control step (the goal)."""
        import torch
        return CostContext(goal=torch.as_tensor(percept.goal, dtype=torch.float32))
