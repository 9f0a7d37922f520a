"""Exploration policies for data collection: random, scripted with noise, or a mix.

A policy has `reset()` and `act(obs, info) -> action`, like the scripted controllers. The
scripted ones read ground truth: they only choose where data is collected; the bags hold what
a real robot would see, and the training data never reads the ground truth topics.
"""
from __future__ import annotations

import numpy as np

POLICIES = ('random', 'scripted', 'mixed')


class RandomExploration:
    """Uniform actions over the action box, each held for 1..`max_hold` control steps.

    Holding an action for a few steps moves the robot further than independent draws do, so
    the data covers more of the state space (objects pushed, edges reached).
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

    def reset(self) -> None:
        """Start a new episode."""
        self._left = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Return the held action, drawing a new one when its hold is over."""
        if self._left <= 0:
            self._action = self._rng.uniform(self.low, self.high).astype(np.float32)
            self._left = int(self._rng.integers(1, self.max_hold + 1))
        self._left -= 1
        return self._action.copy()


def episode_policy(kind: str, task: str, action_space, noise_std: float, seed: int,
                   episode: int):
    """Return (policy, its name) for one episode; deterministic in (seed, episode).

    Args:
        kind: 'random', 'scripted' or 'mixed' (each episode random or scripted, even odds).
        task: 'push' or 'cliff'.
        action_space: the world's Box action space.
        noise_std: Gaussian action noise of the scripted controller, action units.
        seed: the collection's seed.
        episode: the episode's index.

    """
    if kind not in POLICIES:
        raise ValueError(f'unknown exploration policy {kind!r}; choose one of {POLICIES}')
    seq = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(episode)])
    policy_seed, choice_seed = (int(s) for s in seq.generate_state(2))
    if kind == 'mixed':
        kind = 'scripted' if np.random.default_rng(choice_seed).random() < 0.5 else 'random'
    if kind == 'random':
        return RandomExploration(action_space.low, action_space.high, policy_seed), 'random'
    from hlai_ros.sim.scripted import make_scripted
    return make_scripted(task, noise_std=noise_std, seed=policy_seed), 'scripted'
