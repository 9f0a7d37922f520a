"""Task configuration: `config/<task>.yaml`, in ROS 2 parameter-file form.

The same file feeds the ROS nodes (`<node>: ros__parameters:`) and the pure-Python tools, so a
setting has one source of truth. Values become frozen dataclasses before the core sees them.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

import yaml

from hlai_ros.paths import share_dir


def load_params(task: str) -> dict[str, dict[str, Any]]:
    """Return {node name: parameters} from config/<task>.yaml (a registered task's)."""
    from hlai_ros.tasks.registry import check_task
    path = share_dir() / 'config' / f'{check_task(task)}.yaml'
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f'task config not found: {path}') from None
    except yaml.YAMLError as exc:
        raise ValueError(f'{path}: not valid YAML: {exc}') from None
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected a mapping of node names')
    out = {}
    for node, body in raw.items():
        if not isinstance(body, dict) or not isinstance(body.get('ros__parameters'), dict):
            raise ValueError(f'{path}: node {node!r} needs a "ros__parameters" mapping')
        out[node] = dict(body['ros__parameters'])
    return out


def world_config(task: str, **overrides):
    """Return the world's frozen config from the `sim` parameters, with overrides applied."""
    from hlai_ros.sim import world_class
    cls = world_class(task).config_class
    names = {f.name for f in fields(cls)}
    params = {k: v for k, v in load_params(task).get('sim', {}).items() if k in names}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f'unknown world settings for {task}: {sorted(unknown)}; '
                         f'known: {sorted(names)}')
    params.update(overrides)
    return cls(**params)
