"""Tasks as plugins: each is registered once, by a decorator in its own module.

`BUILTIN` names the modules of the tasks this package ships; adding a task is adding its
module there (one line). A package of one's own adds tasks and robots without editing this one
through the ``hlai_ros.plugins`` entry-point group: each entry point names a module to import,
whose `register_task` and `hlai_ros.embodiments.register` calls then run.
Registering a task registers its world with gymnasium under `Task.env_id`.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hlai_ros.tasks.base import Task

BUILTIN = (
    'hlai_ros.tasks.push',
    'hlai_ros.tasks.cliff',
    'hlai_ros.tasks.roll',
)
"""Modules of the built-in tasks."""
ENTRY_POINT_GROUP = 'hlai_ros.plugins'

_TASKS: dict[str, type['Task']] = {}
_loaded = False


def register_task(cls: type['Task']) -> type['Task']:
    """Class decorator: register a `Task` subclass under its `name` (and its world)."""
    if not cls.name or not cls.embodiment_name or not cls.env_id or not cls.world:
        raise ValueError(f'{cls.__name__}: a task needs name, embodiment_name, env_id, world')
    known = _TASKS.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f'a task named {cls.name!r} is registered already ({known})')
    _TASKS[cls.name] = cls
    import gymnasium as gym
    if cls.env_id not in gym.registry:
        gym.register(id=cls.env_id, entry_point=cls.world, max_episode_steps=cls.max_steps)
    return cls


def load_plugins() -> None:
    """Import the built-in task modules and every ``hlai_ros.plugins`` entry point (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN:
        importlib.import_module(module)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        importlib.import_module(entry.value.split(':')[0])


def task_names() -> tuple[str, ...]:
    """Names of every registered task, in registration order."""
    load_plugins()
    return tuple(_TASKS)


_INSTANCES: dict[str, 'Task'] = {}


def get_task(name: str) -> 'Task':
    """The registered task `name`; an unknown name lists the known ones."""
    load_plugins()
    if name not in _TASKS:
        raise ValueError(f'unknown task {name!r}; known tasks: {", ".join(_TASKS)}')
    if name not in _INSTANCES:
        _INSTANCES[name] = _TASKS[name]()
    return _INSTANCES[name]


def check_task(name: str) -> str:
    """Return `name` if it is a registered task, else raise ValueError listing the known."""
    get_task(name)
    return name


def task_argument(name: str) -> str:
    """An argparse ``type`` for ``--task``: a registered name, else the known ones."""
    import argparse
    try:
        return check_task(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
