"""The one episode loop: a controller in a gymnasium env for one seeded episode, and its record.

Everything that runs episodes runs them through `run_episode`: the closed-loop comparison on a
task (`hlai_ros.tasks.evaluate`, `hlai eval --task`), learning on any gymnasium env
(`hlai_ros.evaluation.gym_learning`, `hlai eval --gym-id`) and data collection
(`hlai_ros.data.collection`, which writes each step to a bag from the `on_step` callback).
What runs an episode is a `Controller`; `RandomController` is the uniform random baseline.
"""
from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Callable, Protocol

import numpy as np


class Controller(Protocol):
    """Anything that maps an observation to an action, episode by episode."""

    def reset(self, world=None, seed: int | None = None) -> None:
        """Start a new episode in `world` (the unwrapped env), seeded with `seed`."""

    def act(self, obs, info: dict | None = None) -> np.ndarray:
        """The action for this observation (`info`: the env's last info; most ignore it)."""


class RandomController:
    """Uniformly random actions within [low, high] (seeded).

    Args:
        low: smallest action (A,).
        high: largest action (A,).
        seed: seed of the stream.
        per_episode: restart the stream at every episode, at the episode's seed (`reset`'s,
            else `seed`), so that an episode's actions do not depend on the episodes before;
            False: one stream runs on through all episodes.

    """

    name = 'random'

    def __init__(self, low, high, seed: int = 0, per_episode: bool = True):
        self.low, self.high = np.asarray(low), np.asarray(high)
        self.seed, self.per_episode = seed, per_episode
        self.rng = np.random.default_rng(seed)

    @classmethod
    def for_task(cls, task, seed: int = 0) -> RandomController:
        """Random actions within a task's action bounds, re-seeded per episode."""
        return cls(np.array(task.action_low), np.array(task.action_high), seed)

    @classmethod
    def for_space(cls, space, seed: int = 0) -> RandomController:
        """Random actions within a bounded gymnasium Box, one stream over all episodes.

        Draws what ``space.sample()`` would after ``space.seed(seed)``, without touching the
        space's own generator.
        """
        if not np.all(space.bounded_below & space.bounded_above):
            raise ValueError(f'random actions need a bounded action space, got {space}')
        return cls(space.low, space.high, seed, per_episode=False)

    def reset(self, world=None, seed: int | None = None) -> None:
        """New episode: with `per_episode`, restart the stream at `seed` (None: the own)."""
        if self.per_episode:
            self.rng = np.random.default_rng(self.seed if seed is None else seed)

    def act(self, obs, info: dict | None = None) -> np.ndarray:
        """A random action."""
        return self.rng.uniform(self.low, self.high).astype(np.float32)


@dataclass
class EpisodeRecord:
    """One episode: what the controller did, what the env paid, and how it ended."""

    seed: int
    """The env's seed of the episode."""
    steps: int
    """Control steps taken."""
    episode_return: float
    """Undiscounted sum of the rewards (accumulated in float64, step by step)."""
    success: bool | None
    """Whether the env reported success (info 'is_success' or 'success'); None if it never did."""
    failure: bool | None
    """Whether the env reported failure (info 'is_failure' or 'failure'); None if it never did."""
    failure_reason: str | None
    """The last info's 'failure' when it is a text (this project's worlds), else None."""
    terminated: bool
    """The env ended the episode (success or failure)."""
    truncated: bool
    """The episode was cut (the env's time limit or `max_steps`) without terminating."""
    interrupted: bool
    """`should_stop` ended the episode early."""
    step_seconds: float
    """Mean controller wall time per step."""
    actions: np.ndarray
    """Applied actions (T, A), float32."""
    rewards: np.ndarray
    """Rewards (T,), float32."""
    observations: np.ndarray | None = None
    """Observations (T+1, S), float32, with `record_observations` (vector observations only)."""

    @property
    def total_return(self) -> float:
        """Sum of the float32 `rewards` (what the gym learning path reports)."""
        return float(self.rewards.sum())


def _flag(info: dict, *keys: str) -> bool | None:
    for key in keys:
        if key in info:
            return bool(info[key])
    return None


def run_episode(env, controller: Controller, seed: int, max_steps: int | None = None, *,
                record_observations: bool = False, clip: bool = False,
                on_reset: Callable[[object, dict], None] | None = None,
                on_step: Callable[[np.ndarray, object, float, dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> EpisodeRecord:
    """Run one episode from ``env.reset(seed=seed)`` until it ends, `max_steps` or a stop.

    Args:
        env: a gymnasium env (with its time limit, if any).
        controller: a `Controller`; reset with ``(env.unwrapped, seed=seed)``.
        seed: the env's seed.
        max_steps: cut the episode after this many steps (None: the env's own limit only).
        record_observations: keep the observations (vectors) as float32 in the record.
        clip: clip every action into the env's Box action space before it is applied.
        on_reset: called with (observation, info) after the reset.
        on_step: called after every step with (applied action, observation, reward, info).
        should_stop: called before every step; True ends the episode as interrupted.

    """
    obs, info = env.reset(seed=seed)
    controller.reset(env.unwrapped, seed=seed)
    if on_reset is not None:
        on_reset(obs, info)
    observations = [np.asarray(obs, dtype=np.float32)] if record_observations else None
    actions, rewards = [], []
    success = _flag(info, 'is_success', 'success')
    failure = _flag(info, 'is_failure', 'failure')
    total, steps, spent = 0.0, 0, 0.0
    terminated = truncated = interrupted = False
    while not (terminated or truncated):
        if should_stop is not None and should_stop():
            interrupted = True
            break
        start = time.perf_counter()
        action = controller.act(obs, info)
        spent += time.perf_counter() - start
        action = np.asarray(action, dtype=np.float32)
        if clip:
            action = np.clip(action, env.action_space.low, env.action_space.high)
        obs, reward, terminated, truncated, info = env.step(action)
        if observations is not None:
            observations.append(np.asarray(obs, dtype=np.float32))
        actions.append(action)
        rewards.append(float(reward))
        total += float(reward)
        steps += 1
        if (now := _flag(info, 'is_success', 'success')) is not None:
            success = now
        if (now := _flag(info, 'is_failure', 'failure')) is not None:
            failure = now
        if max_steps is not None and steps >= max_steps and not terminated:
            truncated = True
        if on_step is not None:
            on_step(action, obs, reward, info)
    reason = info.get('failure')
    return EpisodeRecord(
        seed, steps, total, success, failure, reason if isinstance(reason, str) else None,
        bool(terminated), bool(truncated), interrupted, spent / max(steps, 1),
        np.stack(actions) if actions else np.zeros((0,) + env.action_space.shape, np.float32),
        np.asarray(rewards, dtype=np.float32),
        np.stack(observations) if observations is not None else None)
