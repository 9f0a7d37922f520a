"""Task configuration: `config/<task>.yaml`, in ROS 2 parameter-file form.

The same file feeds the ROS nodes (`<node>: ros__parameters:`) and the pure-Python tools, so a
setting has one source of truth. Values become frozen dataclasses before the core sees them.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
import re
from typing import Any

import yaml

from hlai_ros.paths import share_dir


def load_params(task: str) -> dict[str, dict[str, Any]]:
    """Return {node name: parameters} from config/<task>.yaml (a registered task's)."""
    from hlai_ros.tasks.registry import check_task
    path = share_dir() / 'config' / f'{check_task(task)}.yaml'
    if not path.is_file():
        raise FileNotFoundError(f'task config not found: {path}')
    return read_params_file(path)


class _Loader(yaml.SafeLoader):
    """YAML as ROS 2 reads parameter files: ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?'
               r'|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|[-+]\.(?:inf|Inf|INF)'
               r'|\.(?:nan|NaN|NAN))$'),
    list('-+0123456789.'))


def _mapping(loader, node, deep=False):
    """A mapping that names a key twice is an error (YAML 1.1 would keep the last silently)."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f'{key!r} appears twice',
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _flatten(prefix: str, body: dict, out: dict) -> None:
    """Nested mappings as ROS 2 reads them: ``weights: {goal: 1.0}`` is ``weights.goal``."""
    for key, value in body.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            _flatten(name + '.', value, out)
        else:
            out[name] = value


def read_params_file(path: str | Path, what: str = 'parameter file') -> dict[str, dict]:
    """Return {node name: {parameter: value}} of a ROS 2 parameter file.

    The format of config/<task>.yaml: ``<node>: {ros__parameters: {...}}``; nested mappings
    under ``ros__parameters`` become dotted names, as ROS 2 reads them. A node name may start
    with ``/`` (``/mpc_actor``); wildcards (``/**``) and namespaces are not taken: each node
    of the graph has its own section.

    Raises:
        ValueError: a missing or unreadable file, malformed YAML or a section that is not
            ``<node>: ros__parameters: {...}``; the message starts with `what` and the path.

    """
    where = f'{what} {path}'
    try:
        raw = yaml.load(Path(path).read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise ValueError(f'{where}: no such file') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f'{where}: cannot be read: {exc}') from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        at = f'line {mark.line + 1}, column {mark.column + 1}: ' if mark else ''
        problem = getattr(exc, 'problem', None) or ' '.join(str(exc).split())
        raise ValueError(f'{where}: not valid YAML: {at}{problem}') from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f'{where}: expected a mapping of node names to '
                         '"ros__parameters" mappings')
    out: dict[str, dict] = {}
    for node, body in raw.items():
        name = str(node)[1:] if str(node).startswith('/') else str(node)
        if not name or '/' in name or '*' in name:
            raise ValueError(f'{where}: node name {node!r}: name each node of the graph '
                             '(no wildcards or namespaces)')
        if not isinstance(body, dict) or not isinstance(body.get('ros__parameters'), dict) \
                or len(body) != 1:
            raise ValueError(f'{where}: node {name}: needs a "ros__parameters" mapping '
                             '(and nothing else)')
        if name in out:  # mpc_actor and /mpc_actor
            raise ValueError(f'{where}: node {name} appears twice')
        out[name] = {}
        _flatten('', body['ros__parameters'], out[name])
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
