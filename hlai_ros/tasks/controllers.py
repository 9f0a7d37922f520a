"""The controllers compared in closed loop: random, scripted, the learned stack, oracle MPC.

Every controller is a `hlai_ros.evaluation.rollouts.Controller`: `reset(world, seed)` at the
start of an episode and `act(obs, info)`:

- `LearnedController` sees only what a robot has: the observation and the calibrated camera
  (`world.nominal_camera()`). It perceives, plans through the learned world model, and acts.
- `OracleController` plans with the simulator itself: it snapshots the world and scores action
  sequences by replaying them in the real physics, by the true reward or by the task's cost on
  the true states (`OracleConfig.objective`). It is the upper bound for any learned model, not
  a deployable controller.
- `ScriptedController` wraps the world's privileged scripted baseline (with optional action
  noise, as data collection uses it). The uniform random baseline is
  `hlai_ros.evaluation.rollouts.RandomController`, the episode loop `run_episode` there.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from hlai_ros.actor.optimizer import OPTIMIZERS, OptimizerConfig
from hlai_ros.cost.base import CostContext
from hlai_ros.tasks.base import Percept, Task, close_estimator


class ScriptedController:
    """The world's scripted baseline (reads privileged ground truth)."""

    name = 'scripted'

    def __init__(self, task: Task, seed: int = 0, noise_std: float = 0.0):
        from hlai_ros.sim.scripted import make_scripted
        self.controller = make_scripted(task.name, noise_std=noise_std, seed=seed)

    def reset(self, world=None, seed: int | None = None) -> None:
        """Start a new episode."""
        self.controller.reset()

    def act(self, obs, info) -> np.ndarray:
        """The scripted action."""
        return np.asarray(self.controller.act(obs, info), dtype=np.float32)


class LearnedController:
    """Perception -> the learned stack (`hlai_ros.actor.stack.Stack`) -> action."""

    name = 'learned'

    def __init__(self, stack):
        self.stack = stack
        self.task = stack.task
        self.estimator = None
        self.last_percept: Percept | None = None

    @property
    def latent(self) -> bool:
        """Whether the stack perceives through its own encoder (representation 'latent')."""
        return self.stack.representation == 'latent'

    def reset(self, world, seed: int | None = None) -> None:
        """New episode: a fresh estimator for the calibrated camera, a cold planner.

        A latent stack has no estimator: it encodes the frames itself and is given the world's
        goal image (`HlaiWorld.goal_observation`), as a user would capture one on a robot.
        """
        close_estimator(self.estimator)
        if self.latent:
            self.estimator = self.stack
            self.stack.set_goal(world.goal_observation())
        else:
            self.estimator = self.task.make_perception(world.nominal_camera(), world.dt)
        self.stack.reset()

    def act(self, obs, info=None) -> np.ndarray:
        """Perceive, plan; `info` is never read."""
        if self.estimator is None:
            raise RuntimeError('call reset(world) before act()')
        percept = (self.stack.perceive(obs) if self.latent
                   else self.task.perceive(self.estimator, obs))
        self.last_percept = percept
        return self.stack.plan(percept).action

    @property
    def last_plan(self):
        """The last PlanResult (planned actions and predicted states)."""
        return self.stack.last_plan


@dataclass(frozen=True)
class OracleConfig:
    """Settings of the oracle MPC (sampling in the simulator itself)."""

    horizon: int = 8
    """Planning horizon, control steps."""
    optimizer: str = 'cem'
    """'cem' or 'mppi'."""
    sampling: OptimizerConfig = OptimizerConfig(samples=24, iterations=2, elite_fraction=0.25)
    """Samples and iterations per control step (each sample is `horizon` simulator steps)."""
    init_std: float = 0.5
    """Initial sampling std as a fraction of the half range."""
    seed: int = 0
    """Seed of the sampling noise."""
    objective: str | None = None
    """'reward': minus the world's reward along each replay; 'cost': the task's cost (the one
    the learned stack plans with) on the true states of the replay, `Task.true_state`, plus
    `failure_cost` once the world ends an episode in failure. None: the task's
    `oracle_objective`. With 'cost' the oracle is the learned stack with a perfect model."""
    failure_cost: float = 1000.0
    """Cost of a replay that ends in failure (objective 'cost')."""


class OracleController:
    """MPC whose model is the simulator: the upper bound for any learned world model."""

    name = 'oracle'

    def __init__(self, task: Task, config: OracleConfig = OracleConfig()):
        self.task, self.config = task, config
        self.objective = config.objective or task.oracle_objective
        if self.objective not in ('reward', 'cost'):
            raise ValueError(f"oracle objective must be 'reward' or 'cost', got "
                             f'{self.objective!r}')
        if self.objective == 'cost' and type(task).true_state is Task.true_state:
            raise ValueError(f"task {task.name!r} has no true_state: its oracle can only "
                             "use the objective 'reward'")
        self.cost = task.cost(None) if self.objective == 'cost' else None
        self._previous = None
        self.lower = torch.tensor(task.action_low, dtype=torch.float32)
        self.upper = torch.tensor(task.action_high, dtype=torch.float32)
        self.optimizer = OPTIMIZERS[config.optimizer](config.sampling)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.world = None

    def reset(self, world, seed: int | None = None) -> None:
        """New episode in `world` (the unwrapped HlaiWorld being controlled)."""
        self.world = world
        self._previous = None
        self.generator.manual_seed(self.config.seed if seed is None else seed)
        mid = (self.upper + self.lower) / 2
        self.mean = mid.expand(self.config.horizon, -1).clone()

    def _score_cost(self, actions: torch.Tensor, snap, start: dict) -> torch.Tensor:
        """Task cost of each sequence (N, T, A) on its true states, replayed from the snapshot."""
        world, task = self.world, self.task
        s0 = task.true_state(start, self._previous, world.dt)
        n, t, _ = actions.shape
        states = np.repeat(s0[None, None], n, axis=0).repeat(t + 1, axis=1)
        failed = np.zeros(n)
        for i, seq in enumerate(actions.numpy()):
            world.restore(snap)
            before = start
            for k, a in enumerate(seq):
                _, _, terminated, _, info = world.step(a)
                states[i, k + 1:] = task.true_state(info['ground_truth'], before, world.dt)
                before = info['ground_truth']
                if terminated:
                    failed[i] = info['failure'] is not None
                    break
        world.restore(snap)
        goal = torch.as_tensor(np.asarray(start['goal'], dtype=np.float32)[:2])
        costs = self.cost(torch.from_numpy(states).unsqueeze(0), actions,
                          CostContext(goal=goal))
        return costs + self.config.failure_cost * torch.from_numpy(failed).float()

    def _score(self, actions: torch.Tensor, snap) -> torch.Tensor:
        """Negative true return of each sequence (N, T, A), replayed from the snapshot."""
        world, costs = self.world, []
        for seq in actions.numpy():
            world.restore(snap)
            total = 0.0
            for a in seq:
                _, reward, terminated, _, _ = world.step(a)
                total += reward
                if terminated:
                    break
            costs.append(-total)
        world.restore(snap)
        return torch.tensor(costs, dtype=torch.float32)

    def act(self, obs, info=None) -> np.ndarray:
        """Plan by replaying candidate sequences in the simulator; return the first action."""
        world, cfg = self.world, self.config
        if world is None:
            raise RuntimeError('call reset(world) before act()')
        start = world.ground_truth() if self.objective == 'cost' else None
        with world.camera_disabled():
            snap = world.snapshot()
            try:
                mean = self.mean.clone()
                mean[:-1] = self.mean[1:].clone()
                std = cfg.init_std * ((self.upper - self.lower) / 2).expand_as(mean).clone()
                score = (partial(self._score, snap=snap) if start is None
                         else partial(self._score_cost, snap=snap, start=start))
                result = self.optimizer.optimize(score, mean, std, self.lower, self.upper,
                                                 None, self.generator)
            finally:
                world.restore(snap)
                world.release(snap)
        self._previous = start
        self.mean = result.best.clone()
        return result.best[0].numpy().astype(np.float32)
