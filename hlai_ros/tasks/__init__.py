"""The configurator's task descriptions: how perception, world model, cost and actor fit."""
from __future__ import annotations

from hlai_ros.tasks.base import Percept, Task

TASK_NAMES = ('push', 'cliff')


def get_task(name: str, cost_section: dict | None = None) -> Task:
    """Return the task description `name` ('push' or 'cliff')."""
    if name == 'cliff':
        from hlai_ros.tasks.cliff import CliffTask
        return CliffTask(cost_section)
    if name == 'push':
        from hlai_ros.tasks.push import PushTask
        return PushTask(cost_section)
    raise ValueError(f'unknown task {name!r}; choose one of {list(TASK_NAMES)}')


__all__ = ['Percept', 'Task', 'get_task', 'TASK_NAMES']
