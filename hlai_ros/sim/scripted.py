"""Scripted controllers, one per task: the baselines a learned controller must beat.

A scripted controller has `reset()` and `act(obs, info) -> action`. It may read
`info['ground_truth']`: it is a privileged baseline and an exploration policy for data
collection, never part of the deployed stack. Each task names its own (`Task.scripted`).
"""
from __future__ import annotations

import importlib


def make_scripted(task: str, noise_std: float = 0.0, seed: int | None = None):
    """Return the scripted controller of `task`, with Gaussian action noise of `noise_std`."""
    from hlai_ros.tasks.registry import get_task
    module, name = get_task(task).scripted.split(':')
    return getattr(importlib.import_module(module), name)(noise_std=noise_std, seed=seed)
