"""Scripted controllers, one per task: the baselines a learned controller must beat.

A scripted controller has `reset()` and `act(obs, info) -> action`. It may read
`info['ground_truth']`: it is a privileged baseline and an exploration policy for data
collection, never part of the deployed stack. Each task names its own (`Task.scripted`).
"""
from __future__ import annotations

import importlib

import numpy as np


class NoisyScripted:
    """What every scripted controller shares: Gaussian action noise from a seeded stream.

    Args:
        noise_std: noise standard deviation, action units (0: none).
        seed: seed of the noise stream, which `reset` does not restart.

    """

    def __init__(self, noise_std: float = 0.0, seed: int | None = None):
        if noise_std < 0:
            raise ValueError(f'noise_std must be >= 0, got {noise_std}')
        self.noise_std = float(noise_std)
        self._rng = np.random.default_rng(seed)

    def _noisy(self, command: np.ndarray) -> np.ndarray:
        """`command` plus one noise draw (the command itself when there is no noise)."""
        if self.noise_std > 0:
            return command + self._rng.normal(0.0, self.noise_std, 2).astype(command.dtype)
        return command

    def _planar(self, command: np.ndarray, max_speed: float) -> np.ndarray:
        """Scale into `max_speed` (keeping the direction), add noise, clip: float32 (2,)."""
        peak = float(np.max(np.abs(command)))
        if peak > max_speed:
            command = command * (max_speed / peak)
        return np.clip(self._noisy(command), -max_speed, max_speed).astype(np.float32)


def make_scripted(task: str, noise_std: float = 0.0, seed: int | None = None):
    """Return the scripted controller of `task`, with Gaussian action noise of `noise_std`."""
    from hlai_ros.tasks.registry import get_task
    module, name = get_task(task).scripted.split(':')
    return getattr(importlib.import_module(module), name)(noise_std=noise_std, seed=seed)
