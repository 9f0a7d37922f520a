"""Tasks as plugins (`registry`): how perception, world model, cost and actor fit a job.

Importing this package registers every task (and its world with gymnasium).
"""
from __future__ import annotations

from hlai_ros.tasks.base import Percept, Task
from hlai_ros.tasks.registry import check_task, get_task, load_plugins, register_task, task_names

load_plugins()

__all__ = ['Percept', 'Task', 'check_task', 'get_task', 'register_task', 'task_names']
