"""PyBullet intuitive-physics worlds as gymnasium environments.

Each world belongs to a registered task (`hlai_ros.tasks.registry`), which names its entry
point and time limit and registers it with gymnasium under the task's `env_id` (e.g.
``hlai/Push-v0``) when the task registry loads: ``import hlai_ros.tasks`` (or any call below)
before ``gymnasium.make``.
"""
from __future__ import annotations

import importlib

import gymnasium as gym


def world_class(task: str):
    """The `HlaiWorld` subclass of a registered task."""
    from hlai_ros.tasks.registry import get_task
    module, name = get_task(task).world.split(':')
    return getattr(importlib.import_module(module), name)


def make(task: str, **kwargs) -> gym.Env:
    """Make the world of a registered task, with its time limit."""
    from hlai_ros.tasks.registry import get_task
    return gym.make(get_task(task).env_id, **kwargs)


def env_ids() -> tuple[str, ...]:
    """Gymnasium ids of every registered task's world."""
    from hlai_ros.tasks.registry import get_task, task_names
    return tuple(get_task(t).env_id for t in task_names())
