"""The latent stack: pixels and proprioception in, action out, planned to a goal image.

A model folder of representation ``latent`` holds

- ``latent_model.json`` + weights: the encoder (`hlai_ros.latent.model.LatentWorldModel`);
- ``world_model.json`` + weights: the planning dynamics, the state stack's latent-variable
  ensemble MLP trained on the encoder's planning states (`hlai_ros.latent.planning`);
- ``latent_cost.json`` + weights: the goal cost's keypoint weights (fitted on unlabelled codes)
  and the learned event heads (`hlai_ros.latent.events`), with their held-out report.

`LatentStack` offers what `hlai_ros.actor.stack.Stack` offers the controllers and nodes:
`reset`, `set_goal` (a goal observation: RGB-D + proprioception, as the camera gives it),
`perceive` (an observation -> a `LatentPercept`), `plan`, `predict`, `last_plan`, `warm_up`,
and the state stack's run-time interface: `swap_model` (new planning dynamics, e.g. learned
online by the ``world_model`` node, identity- and layout-checked), `reconfigure` (a
`CostProfile`'s planner settings; its cost weights are the state cost's and do not apply to
the latent cost) and `fallback` (None: no policy, a late plan's action becomes zero).
Nothing in it reads ground truth or a hand-written estimator: only the camera's RGB-D and the
robot's own proprioception enter, for the current frame and for the goal.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
import warnings

import numpy as np
import torch

from hlai_ros.actor.agent import Agent
from hlai_ros.actor.planner import Planner, PlannerConfig
from hlai_ros.cost.base import CostContext
from hlai_ros.cost.composite import Cost
from hlai_ros.cost.effort import EffortCost
from hlai_ros.cost.uncertainty import UncertaintyCost
from hlai_ros.latent.cost import EventTerm, GeodesicGoalTerm, LatentGoalTerm
from hlai_ros.latent.data import fill_non_finite
from hlai_ros.latent.events import EventHeads, PixelEventHeads, event_heads_from_settings
from hlai_ros.latent.goal import GoalCost
from hlai_ros.latent.planning import pixel_scenes, planning_part
from hlai_ros.latent.policy import GoalPolicy, LatentPolicy, policy_from_settings
from hlai_ros.latent.value import GoalValue, ValueConfig, ValueTerm

COST_STEM = 'latent_cost'
COST_FORMAT = 'hlai_latent_cost'
COST_VERSION = 1


@dataclass(frozen=True)
class LatentCostWeights:
    """Weights of the latent stack's cost terms (per step, summed over the horizon)."""

    goal: float = 1.0
    """Keypoint distance to the goal image."""
    terminal: float = 2.0
    """Extra weight of the horizon's last step in the goal term."""
    event: float = 30.0
    """Probability of a failure within k steps (the learned event heads)."""
    uncertainty: float = 1.0
    """Ensemble disagreement on the keypoints (in units of their spread)."""
    effort: float = 0.01
    """Squared action, per action half-range."""
    value: float = 0.1
    """Steps to the goal beyond the horizon (the learned value), per step."""
    geodesic: float = 0.0
    """0: the goal term measures keypoints in a straight line. > 0 (needs pixel event heads):
    the moving keypoints' distance to the goal is the path around the heads' danger map, a
    cell costing 1 + geodesic x its failure probability, and only keypoints that move count
    (`GeodesicGoalTerm`). A folder whose event heads do not read pixels keeps the straight
    line (a warning says so)."""


LATENT_SETTINGS = ('actor',) + tuple(LatentCostWeights.__dataclass_fields__)
"""What ``latent.KEY=VALUE`` may set (`latent_options`): the actor and the cost weights."""


def latent_options(task, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """`LatentStack` options (``weights``, ``actor``) from ``latent.*`` settings.

    Keys: ``actor`` ('planner' or 'policy') and the `LatentCostWeights` fields (goal,
    terminal, event, uncertainty, effort, value, geodesic), each on top of the task's own
    (`Task.latent_cost_weights`, `Task.latent_actor`). Empty settings: no options.

    Raises:
        ValueError: an unknown key (the message lists the known ones), a weight that is not a
            finite number >= 0, or an actor that is neither.

    """
    settings = dict(settings or {})
    if not settings:
        return {}
    unknown = sorted(set(settings) - set(LATENT_SETTINGS))
    if unknown:
        raise ValueError(f'unknown latent setting(s) {unknown}; known: '
                         f'{", ".join("latent." + k for k in LATENT_SETTINGS)}')
    options: dict[str, Any] = {}
    if 'actor' in settings:
        actor = settings.pop('actor')
        if actor not in ('planner', 'policy'):
            raise ValueError(f"latent.actor must be 'planner' or 'policy', got {actor!r}")
        options['actor'] = actor
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f'latent.{key} must be a finite number >= 0, got {value!r}')
    if settings:
        options['weights'] = LatentCostWeights(**{**task.latent_cost_weights,
                                                  **{k: float(v) for k, v in settings.items()}})
    return options


@dataclass
class LatentPercept:
    """What the encoder made of one observation."""

    latent: torch.Tensor
    """The full latent (D,)."""
    state: np.ndarray
    """The planning state (S,): keypoints then the proprioception latent."""


def _frame(obs: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """An observation's rgb (1, 3, H, W) uint8 and depth (1, H, W) m (non-finite: farthest)."""
    rgb = torch.as_tensor(np.ascontiguousarray(obs['rgb'])).permute(2, 0, 1)[None]
    return rgb, torch.as_tensor(fill_non_finite(obs['depth']))[None]


@torch.no_grad()
def scene_pixels(encoder, obs: dict[str, np.ndarray]) -> torch.Tensor:
    """The frame as the pixel event heads read it: the encoder's normalised RGB-D (4*H*W,)."""
    return pixel_scenes(encoder, *_frame(obs))[0]


@torch.no_grad()
def encode_observation(encoder, obs: dict[str, np.ndarray]) -> torch.Tensor:
    """Encode one observation -> latent (D,).

    obs: rgb (H, W, 3) uint8, depth (H, W) metres (non-finite readings become the frame's
    farthest), proprio (P,) (may be absent, e.g. for a goal image: zeros; nothing of the goal's
    proprioception is used by the cost).
    """
    rgb, depth = _frame(obs)
    proprio = obs.get('proprio')
    if proprio is None:
        proprio = encoder.proprio_mean.numpy()
    proprio = torch.as_tensor(np.nan_to_num(np.asarray(proprio, np.float32)))[None]
    return encoder.encode(rgb, depth, proprio)[0]


def save_latent_cost(directory: str | Path, goal_cost: GoalCost, heads: EventHeads | None,
                     weighting: str, report: dict[str, Any] | None = None,
                     metadata: dict[str, Any] | None = None, value: GoalValue | None = None,
                     value_report: dict[str, Any] | None = None,
                     policy: GoalPolicy | None = None,
                     policy_report: dict[str, Any] | None = None) -> Path:
    """Write the goal cost's weights, event heads, value and policy (atomic, safetensors)."""
    from hlai_ros.world_model.checkpoint import write_checkpoint
    tensors = {'goal.keypoint_weights': goal_cost.keypoint_weights,
               'goal.keypoint_scale': goal_cost.keypoint_scale}
    if goal_cost.residual is not None:
        tensors.update(zip(('goal.residual_mean', 'goal.residual_std', 'goal.residual_w'),
                           goal_cost.residual))
    if heads is not None:
        tensors.update({f'events.{k}': v for k, v in heads.state_dict().items()})
    if value is not None:
        tensors.update({f'value.{k}': v for k, v in value.state_dict().items()})
    if policy is not None:
        tensors.update({f'policy.{k}': v for k, v in policy.state_dict().items()})
    header = {'format': COST_FORMAT, 'version': COST_VERSION, 'weighting': weighting,
              'events': heads.settings() if heads is not None else None,
              'event_report': report or {},
              'value': value.settings() if value is not None else None,
              'value_report': value_report or {},
              'policy': policy.settings() if policy is not None else None,
              'policy_report': policy_report or {}, 'metadata': metadata or {}}
    return write_checkpoint(Path(directory), COST_STEM, tensors, header)


def load_latent_cost(directory: str | Path, keypoints: int
                     ) -> tuple[GoalCost, EventHeads | None, GoalValue | None, dict[str, Any]]:
    """Read `save_latent_cost`'s files.

    Returns (goal cost over planning states, event heads, value, header); absent parts None.
    The policy, if any, is read by `load_latent_policy` from the same files.
    """
    from hlai_ros.world_model.checkpoint import (
        CheckpointError,
        check_state_dict,
        read_checkpoint,
    )
    tensors, header = read_checkpoint(Path(directory), COST_STEM)
    if header.get('format') != COST_FORMAT or header.get('version') != COST_VERSION:
        raise CheckpointError(f'{directory} holds no version-{COST_VERSION} {COST_FORMAT}')
    residual = None
    if 'goal.residual_w' in tensors:
        residual = tuple(tensors[f'goal.residual_{k}'] for k in ('mean', 'std', 'w'))
    goal = GoalCost(0, 2 * keypoints, tensors['goal.keypoint_weights'],
                    tensors['goal.keypoint_scale'], residual=residual)
    heads = None
    if header.get('events'):
        heads = event_heads_from_settings(header['events'])
        part = {k[len('events.'):]: v for k, v in tensors.items() if k.startswith('events.')}
        check_state_dict(heads, part, Path(directory))
        heads.load_state_dict(part)
        heads.eval()
    value = None
    if header.get('value'):
        v = header['value']
        value = GoalValue(int(v['state_dim']), int(v['goal_dim']), ValueConfig(**v['config']))
        part = {k[len('value.'):]: t for k, t in tensors.items() if k.startswith('value.')}
        check_state_dict(value, part, Path(directory))
        value.load_state_dict(part)
        value.eval()
    return goal, heads, value, header


def load_latent_policy(directory: str | Path) -> GoalPolicy | None:
    """The goal-conditioned policy of a latent folder's cost files (None: it has none)."""
    from hlai_ros.world_model.checkpoint import check_state_dict, read_checkpoint
    tensors, header = read_checkpoint(Path(directory), COST_STEM)
    if not header.get('policy'):
        return None
    policy = policy_from_settings(header['policy'])
    part = {k[len('policy.'):]: t for k, t in tensors.items() if k.startswith('policy.')}
    check_state_dict(policy, part, Path(directory))
    policy.load_state_dict(part)
    policy.eval()
    return policy


def planning_goal_cost(goal_cost: GoalCost) -> GoalCost:
    """A goal cost fitted on full latents, re-indexed for planning states (no map part)."""
    k = len(goal_cost.keypoint_weights)
    return GoalCost(0, 2 * k, goal_cost.keypoint_weights, goal_cost.keypoint_scale,
                    residual=goal_cost.residual)


class LatentStack:
    """Encoder + planning dynamics + latent cost + planner, built once; see the module doc."""

    representation = 'latent'
    _scene_frame: torch.Tensor | None = None
    """The last camera frame for heads that mask the robot (`set_scene_frame`)."""
    _scene_held: bool = False
    """Heads that read the episode's first frame (`EventConfig.scene_first`) have it."""
    _robot_state: np.ndarray | None = None
    """The last percept's planning state: where those heads mask the robot."""

    def __init__(self, task, encoder, dynamics, goal_cost: GoalCost,
                 heads: EventHeads | None = None, value: GoalValue | None = None,
                 weights: LatentCostWeights | None = None,
                 planner: PlannerConfig | None = None, device: str | torch.device | None = None,
                 policy: GoalPolicy | None = None, actor: str | None = None):
        actor = actor or task.latent_actor
        if actor not in ('planner', 'policy'):
            raise ValueError(f"actor must be 'planner' or 'policy', got {actor!r}")
        if actor == 'policy' and policy is None:
            raise ValueError("actor 'policy' needs a goal-conditioned policy in the folder "
                             '(train it: hlai train --representation latent --stage policy)')
        self.actor = actor
        self.task, self.encoder, self.model = task, encoder, dynamics
        self.goal_cost, self.heads, self.value = goal_cost, heads, value
        self.policy = LatentPolicy(policy, goal_cost) if policy is not None else None
        self.weights = weights or LatentCostWeights(**task.latent_cost_weights)
        self.device = torch.device(device) if device is not None else torch.device('cpu')
        self.part = planning_part(encoder)
        self.keypoint_dim = len(goal_cost.keypoint_weights) * 2
        self.planner_config = planner or task.default_profile().planner
        self.goal: torch.Tensor | None = None
        self.critic = None
        self.folder: Path | None = None
        self.profile = task.default_profile()
        self._build(dynamics)

    def _build(self, dynamics) -> None:
        """Planner and agent on `dynamics` (a new warm start; the previous action stays)."""
        previous = getattr(self, 'agent', None)
        self.model = dynamics
        self.planner = Planner(dynamics, self._cost(), self.task.action_low,
                               self.task.action_high, self.planner_config, device=self.device,
                               policy=self.policy)
        self.agent = Agent(self.planner)
        if previous is not None:
            self.agent.previous_action = previous.previous_action

    @classmethod
    def from_folder(cls, task, folder: str | Path, device: str | torch.device | None = None,
                    **options) -> 'LatentStack':
        """Load a latent model folder for `task` (identities checked)."""
        from hlai_ros.latent.checkpoint import load_latent_model
        from hlai_ros.world_model.checkpoint import load_world_model
        path = Path(folder).expanduser()
        identity = task.identity('latent')
        encoder = load_latent_model(path, identity=identity)
        dynamics = load_world_model(path, device=device or 'cpu', identity=identity)
        goal, heads, value, _ = load_latent_cost(path, encoder.config.keypoints)
        options.setdefault('policy', load_latent_policy(path))
        stack = cls(task, encoder, dynamics, goal, heads, value, device=device, **options)
        stack.folder = path
        return stack

    def _cost(self) -> Cost:
        w, k = self.weights, self.keypoint_dim
        spread = 1.0 / self.goal_cost.keypoint_scale.sqrt()      # keypoint std (K,)
        scale = tuple(float(s) for s in spread.repeat_interleave(2) / 2 ** 0.5)
        half = (np.asarray(self.task.action_high) - np.asarray(self.task.action_low)) / 2
        goal = LatentGoalTerm(self.goal_cost, w.terminal)
        if w.geodesic:
            try:
                goal = GeodesicGoalTerm(self.goal_cost, w.terminal, heads=self.heads,
                                        danger_weight=w.geodesic)
            except ValueError as error:
                warnings.warn(f'latent cost weight geodesic={w.geodesic} is not used, the goal '
                              f'term measures in a straight line: {error}', stacklevel=3)
        terms = [('goal', goal, w.goal, 1.0),
                 ('uncertainty', UncertaintyCost(tuple(range(k)), scale), w.uncertainty, 1.0),
                 ('effort', EffortCost(scale=tuple(float(h) for h in half)), w.effort, 1.0)]
        if self.heads is not None and w.event:
            terms.append(('event', EventTerm(self.heads), w.event, 1.0))
        if self.value is not None and w.value:
            terms.append(('value', ValueTerm(self.value, self.goal_cost), w.value, 1.0))
        return Cost(terms)

    # -- perception -------------------------------------------------------------------------
    def encode(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        """An observation -> its latent (D,) (`encode_observation` with this encoder)."""
        return encode_observation(self.encoder, obs)

    def percept(self, latent: torch.Tensor) -> LatentPercept:
        """A latent (D,), encoded here or received on ``/hlai/latent``, as the percept.

        The event heads take its latent map as the scene of the next plans.
        """
        latent = torch.as_tensor(latent, dtype=torch.float32).reshape(-1)
        if latent.numel() != self.encoder.config.latent_dim:
            raise ValueError(f'latent must have {self.encoder.config.latent_dim} entries, got '
                             f'{latent.numel()}')
        if self.heads is not None and not self.reads_pixels:
            self.heads.set_scene(latent[:self.encoder.map_dim])
        percept = LatentPercept(latent, latent[self.part].numpy().astype(np.float32))
        self._robot_state = percept.state
        if self.masks_robot and self._scene_frame is not None:
            self.heads.set_scene_at(self._scene_frame, percept.state)   # the robot moved
        return percept

    @property
    def reads_pixels(self) -> bool:
        """Whether the event heads read the camera frame (`set_scene_frame`), not the latent."""
        return isinstance(self.heads, PixelEventHeads)

    @property
    def masks_robot(self) -> bool:
        """Whether the pixel event heads blank the robot, so need its keypoints with a frame."""
        return self.reads_pixels and self.heads.masks_robot

    @property
    def scene_first(self) -> bool:
        """Whether the pixel event heads read the episode's first frame (kept until `reset`)."""
        return self.reads_pixels and self.heads.config.scene_first

    def set_scene_frame(self, obs: dict[str, np.ndarray]) -> None:
        """The camera frame (rgb, depth) the pixel event heads read from the next plan on.

        The scene is static within an episode, so a recent frame will do; a no-op for heads
        that read the latent map. Heads that read the episode's first frame
        (`EventConfig.scene_first`) keep the first one given after `reset` or a new goal.
        """
        if not self.reads_pixels or (self.scene_first and self._scene_held):
            return
        frame = scene_pixels(self.encoder, obs)
        if not self.masks_robot:
            self.heads.set_scene(frame)
            self._scene_held = self.scene_first
            return
        # heads that mask the robot need its keypoints: the latest percept's, until the next
        self._scene_frame = frame
        if self._robot_state is not None:
            self.heads.set_scene_at(frame, self._robot_state)

    def perceive(self, obs: dict[str, np.ndarray]) -> LatentPercept:
        """Encode an observation and make it the percept to plan from."""
        if self.masks_robot:   # the frame is masked by `percept`, at the robot's new keypoints
            self._scene_frame = scene_pixels(self.encoder, obs)
        else:
            self.set_scene_frame(obs)
        return self.percept(self.encode(obs))

    def set_goal_latent(self, latent: torch.Tensor) -> None:
        """The goal as a latent (D,): the goal image's encoding."""
        latent = torch.as_tensor(latent, dtype=torch.float32).reshape(-1)
        goal = latent[self.part].clone()
        if self.goal is None or not torch.equal(goal, self.goal):
            self._scene_held = False   # a new goal: a new episode's first frame is the scene
        self.goal = goal

    def set_goal(self, goal_obs: dict[str, np.ndarray]) -> None:
        """The goal image: RGB-D as the camera gives it.

        Only the image is encoded (with the mean proprioception), whatever else `goal_obs`
        holds: a goal image on ``/goal_image`` and one recorded in a bag carry no joint states,
        and the goal cost, the value and the policy must see the same goal in all three.
        """
        self.set_goal_latent(self.encode({'rgb': goal_obs['rgb'], 'depth': goal_obs['depth']}))

    # -- planning ---------------------------------------------------------------------------
    def reset(self) -> None:
        """A new episode: forget the warm start (the goal stays until the next set_goal).

        Heads that read the episode's first frame take the next one given.
        """
        self.agent.reset()
        self._scene_held = False

    def plan(self, percept: LatentPercept):
        """Plan from a percept towards the goal; returns a `hlai_ros.actor.stack.Plan`."""
        from hlai_ros.actor.stack import Plan
        if self.goal is None:
            raise RuntimeError('no goal image: call set_goal(goal_observation) first')
        if self.actor == 'policy':
            result = self._policy_plan(percept.state)
            self.agent.last_plan = result
            self.agent.previous_action = result.action
            return Plan(result.action.numpy().astype(np.float32), result.actions, result.cost,
                        result.seconds)
        action = self.agent.act(percept.state, CostContext(goal=self.goal))
        result = self.agent.last_plan
        return Plan(action, result.actions, result.cost, result.seconds)

    @torch.no_grad()
    def _policy_plan(self, state: np.ndarray):
        """The policy's plan: its action now, and its rollout through the planning dynamics.

        The rollout (the planner's horizon, z = 0: the members' mean behaviour) is what
        ``/hlai/plan`` draws and `predict` follows; its cost is the latent cost's, reported.
        """
        import time

        from hlai_ros.actor.imagination import imagine
        from hlai_ros.actor.planner import PlanResult
        start = time.perf_counter()
        s0 = torch.as_tensor(state, dtype=torch.float32).reshape(1, -1)
        goal = self.goal

        def act(s):
            return self.policy(s, goal)
        z = torch.zeros(self.model.ensemble_size, 1, self.model.latent_dim)
        states, actions = imagine(self.model, act, s0, self.planner_config.horizon, z=z)
        cost = float(self.planner.cost(states, actions, CostContext(goal=goal)).mean())
        return PlanResult(actions[0, 0], actions[0], cost, 1, time.perf_counter() - start)

    def predict(self, percept: LatentPercept, actions: torch.Tensor) -> np.ndarray:
        """Predicted planning states (T+1, S) of a plan's actions, ensemble mean."""
        return self.planner.predict(percept.state, actions).mean(0).cpu().numpy()

    def warm_up(self) -> None:
        """Plan once from a zero state, so the first real plan pays no start-up cost."""
        zero = np.zeros(self.model.state_dim, np.float32)
        goal, self.goal = self.goal, torch.zeros(self.model.state_dim)
        blind = self.heads is not None and not self.heads.has_scene
        if blind:
            self.heads.set_scene(torch.zeros(int(np.prod(self.heads.map_shape))))
        self.agent.act(zero, CostContext(goal=self.goal))
        if blind:   # the zero scene was for the warm-up only: no plan reads it
            self.heads.clear_scene()
        self.goal = goal
        self.agent.reset()

    @property
    def last_plan(self):
        """The planner's last `hlai_ros.actor.planner.PlanResult` (None before a plan)."""
        return self.agent.last_plan

    # -- run time: the state stack's interface ----------------------------------------------
    def fallback(self, percept: LatentPercept) -> np.ndarray | None:
        """The goal-conditioned policy's action for a late plan; None (zero) without one."""
        if self.policy is None or self.goal is None:
            return None
        return self.policy.act(percept.state, self.goal)

    def reconfigure(self, profile) -> bool:
        """Plan with a profile's planner settings from the next plan on; whether they changed.

        The profile (`hlai_ros.cost.profile.CostProfile`) is kept as the one in effect, but
        only its planner settings apply: its weights are the state cost's terms, and the
        latent cost keeps its own (`LatentCostWeights`). New settings restart the warm start.
        """
        self.profile = profile
        if profile.planner == self.planner_config:
            return False
        self.planner_config = profile.planner
        self._build(self.model)
        return True

    def swap_model(self, model) -> None:
        """Plan with other planning dynamics (e.g. learned online) from the next plan on.

        Raises:
            CheckpointError: the model was trained for another task, robot or representation
                (its identity), or predicts states or actions of another size than this
                stack's planning state (the message names both); the current model stays.

        """
        from hlai_ros.world_model.checkpoint import CheckpointError, check_identity
        identity = (getattr(model, 'checkpoint_metadata', None) or {}).get('identity')
        check_identity('the new world model', identity, self.task.identity('latent'))
        found = (int(model.state_dim), int(model.action_dim))
        expected = (int(self.model.state_dim), int(self.model.action_dim))
        if found != expected:
            c = self.encoder.config
            raise CheckpointError(
                f'the new world model predicts {found[0]}-entry states under {found[1]}-entry '
                f'actions; this latent stack plans in {expected[0]} (keypoints {2 * c.keypoints}'
                f' + proprioception latent {c.proprio_latent_dim}) under {expected[1]}')
        self._build(model)
