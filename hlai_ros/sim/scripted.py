"""Scripted controllers, one per world: the baselines a learned controller must beat.

A scripted controller has `reset()` and `act(obs, info) -> action`. It may read
`info['ground_truth']`: it is a privileged baseline and an exploration policy for data
collection, never part of the deployed stack.
"""
from __future__ import annotations

import importlib

_SCRIPTED = {
    'push': 'hlai_ros.sim.push_scripted:PushScripted',
    'cliff': 'hlai_ros.sim.cliff_scripted:CliffScripted',
}


def make_scripted(task: str, noise_std: float = 0.0, seed: int | None = None):
    """Return the scripted controller of `task`, with Gaussian action noise of `noise_std`."""
    if task not in _SCRIPTED:
        raise ValueError(f'unknown task {task!r}; choose one of {sorted(_SCRIPTED)}')
    module, name = _SCRIPTED[task].split(':')
    return getattr(importlib.import_module(module), name)(noise_std=noise_std, seed=seed)
