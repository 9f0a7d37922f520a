"""The parameter tables of docs/parameters.md, generated from the nodes' config dataclasses.

Every node keeps its parameters in one frozen dataclass whose field docstrings are the ROS
parameter descriptions (`hlai_ros.nodes.params`). This module renders them as Markdown, so the
documentation cannot drift from the code: a test compares docs/parameters.md with `render()`.
Regenerate it with ``python -m hlai_ros.nodes.parameter_docs > docs/parameters.md``.
"""
from __future__ import annotations

from dataclasses import MISSING, fields  # noqa: I001
import importlib

from hlai_ros.cost.profile import PLANNER_SETTINGS
from hlai_ros.node_config import CONFIGS

NODES = tuple(CONFIGS.items())
"""(node, config dataclass) in graph order."""

PROFILE_NOTE = f'''The cost profile (`hlai_ros/cost/profile.py`) is the `cost_critic` node's too:
one parameter `weights.<term>` (float, >= 0) and `enabled.<term>` (bool) per cost term of the task,
and {', '.join(f'`planner.{name}`' for name in PLANNER_SETTINGS)}; their values are the task's
config/<task>.yaml (section `cost_critic`), and the node publishes the profile in effect on
`/hlai/cost_profile`, which the `mpc_actor` applies.'''


def _load(path: str):
    module, name = path.split(':')
    return getattr(importlib.import_module(module), name)


def _default(f) -> str:
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return '(required)'
    if isinstance(value, tuple):
        value = list(value)
    return f'`{value!r}`'


def table(config_class) -> str:
    """The Markdown table of one config dataclass: parameter, type, default, meaning."""
    from hlai_ros.nodes.params import field_docs
    docs = field_docs(config_class)
    rows = ['| parameter | type | default | meaning |', '|---|---|---|---|']
    for f in fields(config_class):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, '__name__', str(f.type))
        meaning = docs.get(f.name, '').replace('|', '\\|')
        if f.metadata.get('read_only'):
            meaning += ' (read-only)'
        rows.append(f'| `{f.name}` | {kind} | {_default(f)} | {meaning} |')
    return '\n'.join(rows)


def world_tables() -> list[tuple[str, str]]:
    """(task, table) of every registered task's world config (the `sim` node's world section)."""
    from hlai_ros.sim import world_class
    from hlai_ros.tasks import task_names
    return [(name, table(world_class(name).config_class)) for name in task_names()]


def render() -> str:
    """The whole of docs/parameters.md."""
    parts = ['# Node parameters', '',
             'Generated from the config dataclasses by `python -m hlai_ros.nodes.parameter_docs'
             ' > docs/parameters.md`; `test/nodes/test_parameter_docs.py` keeps it current. '
             'Values for each task are in `config/<task>.yaml` (`<node>: ros__parameters:`).',
             '']
    for node, path in NODES:
        config_class = _load(path)
        parts += [f'## {node}', '', f'`{path.replace(":", ".")}`', '', table(config_class), '']
        if node == 'cost_critic':
            parts += [PROFILE_NOTE, '']
    parts += ['## World settings (`sim` node, section of config/<task>.yaml)', '']
    for name, text in world_tables():
        parts += [f'### {name}', '', text, '']
    return '\n'.join(parts)


def main() -> None:
    """Print docs/parameters.md."""
    print(render(), end='')


if __name__ == '__main__':
    main()
