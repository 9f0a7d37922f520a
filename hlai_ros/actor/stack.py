"""The learned stack of one task: world model + cost + planner + critic + policy, built once.

`Stack.from_folder` builds it from a model folder (``world_model.json``, and ``critic.json``,
``policy.json`` when trained) and a registered task, checking that every checkpoint was
trained for that task, robot and layout (their identity). It is the one assembly of the
actor (DESIGN.md): ``hlai eval``, ``hlai collect --policy learned`` and the ``mpc_actor``
node all use it, and none of them touches the planner's insides. It offers:

- `plan(percept)`: the action to apply now and the predicted path of the plan;
- `reconfigure(profile)`: new cost weights, switches and planner settings
  (`hlai_ros.cost.profile.CostProfile`), effective from the next plan;
- `swap_model(model)`: a new world model (e.g. learned online), checked, between two plans;
- `fallback(percept)`: the policy's action when a plan is late (None without a policy).

The representation the model folder holds (its identity's ``representation``) is the
stack's; today it is ``state``: the world model predicts the task's labelled model state.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from hlai_ros.actor.agent import Agent
from hlai_ros.actor.planner import Planner
from hlai_ros.cost.profile import CostProfile

REPRESENTATIONS = ('state', 'latent')
"""Representations a model folder may hold: ``state`` (the task's labelled model state, from
its perception estimators) or ``latent`` (pixels + proprioception through a learned encoder,
`hlai_ros.latent.stack.LatentStack`)."""


def folder_representation(folder: str | Path) -> str:
    """The representation a model folder holds: ``latent`` when it has an encoder."""
    return 'latent' if (Path(folder).expanduser() / 'latent_model.json').is_file() else 'state'


def latent_stack_options(task, folder: str | Path | None,
                         latent: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `LatentStack` options of ``latent.*`` settings for a model folder.

    `folder` None: models/<task>. No settings: no options, whatever the folder holds.

    Raises:
        ValueError: settings for a folder that holds a state model, or bad ones
            (`hlai_ros.latent.stack.latent_options`).

    """
    if not latent:
        return {}
    path = Path(folder).expanduser() if folder else default_model_dir(task)
    if folder_representation(path) != 'latent':
        raise ValueError(f'latent.* settings ({", ".join(sorted(latent))}) apply to a latent '
                         f'model folder; {path} holds a state model')
    from hlai_ros.latent.stack import latent_options
    return latent_options(task, latent)


def load_stack(task, folder: str | Path | None = None, device: str | torch.device | None = None,
               profile: CostProfile | None = None, use_critic: bool = True,
               use_policy: bool = True, latent: Mapping[str, Any] | None = None):
    """The stack of a model folder (default: models/<task>), whichever representation it holds.

    A folder with ``latent_model.json`` gives a `hlai_ros.latent.stack.LatentStack` (planning
    with the profile's planner settings; `latent`: its actor and cost weights, as
    `hlai_ros.latent.stack.latent_options` reads them), any other a `Stack`.

    Raises:
        ValueError: `latent` settings for a folder that holds no latent model, or bad ones.

    """
    path = Path(folder).expanduser() if folder else default_model_dir(task)
    options = latent_stack_options(task, path, latent)
    if folder_representation(path) == 'latent':
        from hlai_ros.latent.stack import LatentStack
        from hlai_ros.world_model.model import default_device
        planner = (profile or task.default_profile()).planner
        return LatentStack.from_folder(task, path, device or default_device(), planner=planner,
                                       **options)
    return Stack.from_folder(task, path, device, profile, use_critic, use_policy)


@dataclass
class Plan:
    """One plan of the stack."""

    action: np.ndarray
    """The action to apply now, float32 (A,)."""
    actions: torch.Tensor
    """The planned sequence (T, A)."""
    cost: float
    """Its predicted cost."""
    seconds: float
    """Wall time of the plan, s."""


def default_model_dir(task) -> Path:
    """The shipped model folder of a task: models/<task>."""
    from hlai_ros.paths import model_dir
    return model_dir() / task.name


class Stack:
    """Perceived state in, action out, through the learned world model; see the module doc.

    Args:
        task: the registered task (`hlai_ros.tasks.get_task`).
        model: the world model (`hlai_ros.world_model.WorldModel`).
        critic: cost-to-go beyond the horizon, or None.
        policy: proposals and the fallback, or None.
        profile: cost weights and planner settings (default: the task's, config/<task>.yaml).
        device: torch device of the planner.

    """

    def __init__(self, task, model, critic=None, policy=None,
                 profile: CostProfile | None = None, device: str | torch.device | None = None):
        self.task = task
        self.profile = profile or task.default_profile()
        self.critic, self.policy = critic, policy
        self.device = torch.device(device) if device is not None else torch.device('cpu')
        self.representation = 'state'
        self._build(model)

    @classmethod
    def from_folder(cls, task, folder: str | Path | None = None,
                    device: str | torch.device | None = None,
                    profile: CostProfile | None = None, use_critic: bool = True,
                    use_policy: bool = True) -> 'Stack':
        """Load a model folder (default: the shipped models/<task>) for `task`.

        Raises:
            CheckpointError: a checkpoint is missing, broken, or trained for another task,
                robot or layout (the message names both).

        """
        from hlai_ros.actor.checkpoint import load_critic, load_policy
        from hlai_ros.world_model.checkpoint import load_world_model
        from hlai_ros.world_model.model import default_device
        path = Path(folder).expanduser() if folder else default_model_dir(task)
        device = torch.device(device) if device else default_device()
        identity = task.identity('state')
        model = load_world_model(path, device=device, identity=identity)
        critic = load_critic(path, device, task.state_dim, identity) if use_critic else None
        policy = load_policy(path, device, task.state_dim, identity) if use_policy else None
        stack = cls(task, model, critic, policy, profile, device)
        stack.folder = path
        return stack

    folder: Path | None = None
    """The model folder it was loaded from (None when built from objects)."""
    predict_unmeasured: bool = True
    """Where perception did not measure the object (`Percept.measured` False), plan from the
    world model's prediction of the task's `Task.unmeasured_indices` (from the previous step's
    state and action, ensemble mean) instead of the estimator's guess: the model was trained
    on measured frames, and knows a pushed ball better than the guess does (BENCHMARKS.md)."""

    def _build(self, model) -> None:
        previous = getattr(self, 'agent', None)
        self.model = model
        self.planner = Planner(model, self.task.cost(None, self.profile), self.task.action_low,
                               self.task.action_high, self.profile.planner,
                               critic=self.critic, policy=self.policy, device=self.device)
        self.agent = Agent(self.planner, self.policy)
        if previous is not None:
            self.agent.previous_action = previous.previous_action

    # -- planning ---------------------------------------------------------------------------
    def reset(self) -> None:
        """A new episode: forget the warm start, the previous action and prediction."""
        self.agent.reset()
        self._predicted = self._planned = None

    _predicted: np.ndarray | None = None
    """The model's prediction (S,) of the next step's state, from the last plan's state and
    the action sent (kept only for a task with `unmeasured_indices`)."""
    _planned: tuple | None = None
    """The last planned percept and the state (S,) planned from."""

    def state(self, percept) -> np.ndarray:
        """The state (S,) the stack plans from: the percept's, with `predict_unmeasured`."""
        if self._planned is not None and self._planned[0] is percept:
            return self._planned[1]
        state = np.asarray(percept.model_state, dtype=np.float32)
        guessed = list(self.task.unmeasured_indices)
        if (guessed and not percept.measured and self.predict_unmeasured
                and self._predicted is not None):
            state = state.copy()
            state[guessed] = self._predicted[guessed]
        return state

    def _sent(self, state: np.ndarray, action) -> None:
        """Predict the next step's state once `action` is sent from `state`."""
        if not self.task.unmeasured_indices:
            return
        with torch.no_grad():
            step = torch.as_tensor(np.asarray(action, np.float32)).reshape(1, -1)
            self._predicted = self.planner.predict(state, step).mean(0)[1].cpu().numpy()

    def plan(self, percept) -> Plan:
        """Plan from a `hlai_ros.tasks.base.Percept`; the plan's action is the one to apply."""
        self.planner.cost = self.task.cost(percept.scene, self.profile)
        state = self.state(percept)
        self._planned = (percept, state)
        action = self.agent.act(state, self.task.context(percept))
        result = self.agent.last_plan
        self._sent(state, action)
        return Plan(action, result.actions, result.cost, result.seconds)

    def predict(self, percept, actions: torch.Tensor) -> np.ndarray:
        """The predicted states (T+1, S) of a plan's actions, ensemble mean (to draw it)."""
        return self.planner.predict(self.state(percept), actions).mean(0).cpu().numpy()

    def fallback(self, percept) -> np.ndarray | None:
        """The policy's action for a percept (a late plan's stand-in); None without one."""
        if self.policy is None:
            self._predicted = None  # the zero action goes out, not the plan's
            return None
        state = self.state(percept)
        action = Agent(policy=self.policy, use_planner=False).act(
            state, self.task.context(percept))
        self.agent.previous_action = torch.as_tensor(action)
        self._sent(state, action)
        return action

    def warm_up(self) -> None:
        """Plan once from a zero state, so the first real plan pays no start-up cost."""
        from hlai_ros.cost.base import CostContext
        zero = np.zeros(self.task.state_dim, np.float32)
        self.agent.act(zero, CostContext(goal=torch.zeros(2)))
        self.agent.reset()

    @property
    def last_plan(self):
        """The planner's last `hlai_ros.actor.planner.PlanResult` (None before a plan)."""
        return self.agent.last_plan

    # -- configuration ----------------------------------------------------------------------
    def reconfigure(self, profile: CostProfile) -> bool:
        """Plan with a new profile from the next plan on; return whether anything changed.

        A change of planner settings restarts the warm start; a change of weights does not.
        """
        if profile == self.profile:
            return False
        settings_changed = profile.planner != self.profile.planner
        self.profile = profile
        if settings_changed:
            self._build(self.model)
        else:
            self.planner.cost = self.task.cost(None, profile)
        return True

    def swap_model(self, model) -> None:
        """Plan with another world model from the next plan on (the critic and policy stay).

        Raises:
            CheckpointError: the model was trained for another task or layout.

        """
        from hlai_ros.world_model.checkpoint import check_identity
        identity = (getattr(model, 'checkpoint_metadata', None) or {}).get('identity')
        check_identity('the new world model', identity, self.task.identity(self.representation))
        self._build(model)
