"""Running a controller in a gymnasium env for seeded episodes, recording what happened."""
from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Protocol

import gymnasium as gym
import numpy as np


class Controller(Protocol):
    """Anything that maps an observation to an action, episode by episode."""

    def reset(self) -> None:
        """Start a new episode."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The action for this observation."""


class RandomController:
    """Uniformly random actions from the env's action space (seeded)."""

    def __init__(self, action_space: gym.spaces.Box, seed: int = 0):
        self.space = action_space
        self.space.seed(seed)

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        """A random action."""
        return self.space.sample()


@dataclass
class EpisodeRecord:
    """One episode: observations (T+1, S), actions (T, A), rewards (T,), and its outcome."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: bool | None
    """Whether the env reported success (info 'is_success' or 'success'); None if it never did."""
    failure: bool | None
    """Whether the env reported failure (info 'is_failure' or 'failure'); None if it never did."""
    terminated: bool
    step_seconds: float
    """Mean controller wall time per step."""

    @property
    def total_return(self) -> float:
        """Undiscounted sum of rewards."""
        return float(self.rewards.sum())


def _flag(info: dict, *keys: str) -> bool | None:
    for key in keys:
        if key in info:
            return bool(info[key])
    return None


def run_episode(env: gym.Env, controller: Controller, seed: int,
                max_steps: int | None = None) -> EpisodeRecord:
    """Run one episode from env.reset(seed=seed) until it ends or max_steps."""
    obs, info = env.reset(seed=seed)
    controller.reset()
    observations, actions, rewards = [np.asarray(obs, dtype=np.float32)], [], []
    success = _flag(info, 'is_success', 'success')
    failure = _flag(info, 'is_failure', 'failure')
    terminated = False
    spent = 0.0
    step = 0
    while max_steps is None or step < max_steps:
        start = time.perf_counter()
        action = np.asarray(controller.act(observations[-1]), dtype=np.float32)
        spent += time.perf_counter() - start
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(np.asarray(obs, dtype=np.float32))
        actions.append(action)
        rewards.append(float(reward))
        success = _flag(info, 'is_success', 'success') if _flag(
            info, 'is_success', 'success') is not None else success
        failure = _flag(info, 'is_failure', 'failure') if _flag(
            info, 'is_failure', 'failure') is not None else failure
        step += 1
        if terminated or truncated:
            break
    return EpisodeRecord(np.stack(observations), np.stack(actions),
                         np.asarray(rewards, dtype=np.float32), success, failure, terminated,
                         spent / max(step, 1))
