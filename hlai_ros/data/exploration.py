"""Exploration policies for data collection: random, scripted with noise, a mix, or learned.

A policy is a `hlai_ros.evaluation.rollouts.Controller`: `reset(world, seed)` and
`act(obs, info) -> action`, run by `hlai_ros.evaluation.rollouts.run_episode`. The
scripted ones read ground truth: they only choose where data is collected; the bags hold what
a real robot would see, and the training data never reads the ground truth topics. The learned
one is the learned stack itself (perception, world model, planner) with action noise: its data
lie where the planner goes, which is where a model trained on other data is wrong in ways the
planner exploits (the model-based RL loop: collect with the planner, retrain, repeat).
"""
from __future__ import annotations

import numpy as np

POLICIES = ('random', 'scripted', 'mixed', 'learned')


class RandomExploration:
    """Uniform actions over the action box, each held for 1..`max_hold` control steps.

    Holding an action for a few steps moves the robot further than independent draws do, so
    the data covers more of the state space (objects moved, edges reached).
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int | None = None,
                 max_hold: int = 5):
        if max_hold < 1:
            raise ValueError(f'max_hold must be at least 1, got {max_hold}')
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)
        self.max_hold = int(max_hold)
        self._rng = np.random.default_rng(seed)
        self._action = None
        self._left = 0

    def reset(self, world=None, seed: int | None = None) -> None:
        """Start a new episode (the stream runs on: it is the episode's own)."""
        self._left = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Return the held action, drawing a new one when its hold is over."""
        if self._left <= 0:
            self._action = self._rng.uniform(self.low, self.high).astype(np.float32)
            self._left = int(self._rng.integers(1, self.max_hold + 1))
        self._left -= 1
        return self._action.copy()


class LearnedExploration:
    """The learned stack's controller (`LearnedController`) plus Gaussian action noise."""

    def __init__(self, controller, world, noise_std: float, seed: int | None = None):
        self.controller, self.world = controller, world
        self.noise_std = float(noise_std)
        self._rng = np.random.default_rng(seed)

    def reset(self, world=None, seed: int | None = None) -> None:
        """Start a new episode: a fresh estimator for the world's calibrated camera."""
        self.controller.reset(self.world)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """The planned action (the controller never reads `info`) plus noise."""
        action = np.asarray(self.controller.act(obs), dtype=np.float32)
        return action + self._rng.normal(0.0, self.noise_std, action.shape).astype(np.float32)


def episode_policy(kind: str, task: str, action_space, noise_std: float, seed: int,
                   episode: int, learned=None, world=None):
    """Return (policy, its name) for one episode; deterministic in (seed, episode).

    Args:
        kind: 'random', 'scripted', 'mixed' (each episode random or scripted, even odds) or
            'learned' (needs `learned`, a `LearnedController`, and the `world` it acts in).
        task: a registered task (its scripted baseline, `Task.scripted`).
        action_space: the world's Box action space.
        noise_std: Gaussian action noise of the scripted or learned controller, action units.
        seed: the collection's seed.
        episode: the episode's index.
        learned: the `LearnedController` of kind 'learned'.
        world: the world it acts in (kind 'learned').

    """
    if kind not in POLICIES:
        raise ValueError(f'unknown exploration policy {kind!r}; choose one of {POLICIES}')
    seq = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(episode)])
    policy_seed, choice_seed = (int(s) for s in seq.generate_state(2))
    if kind == 'mixed':
        kind = 'scripted' if np.random.default_rng(choice_seed).random() < 0.5 else 'random'
    if kind == 'learned':
        if learned is None or world is None:
            raise ValueError("exploration policy 'learned' needs a learned controller and "
                             'its world')
        return LearnedExploration(learned, world, noise_std, policy_seed), 'learned'
    if kind == 'random':
        return RandomExploration(action_space.low, action_space.high, policy_seed), 'random'
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.controllers import ScriptedController
    return ScriptedController(get_task(task), seed=policy_seed, noise_std=noise_std), 'scripted'
