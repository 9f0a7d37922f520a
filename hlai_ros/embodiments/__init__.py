"""Robots as plugins: each `Embodiment` is registered once and looked up by name.

The built-in robots live in their own modules (`BUILTIN`); a package of one's own registers
more with `register` (or through the ``hlai_ros.plugins`` entry-point group, see
`hlai_ros.tasks.registry`).
"""
from __future__ import annotations

import importlib

from hlai_ros.embodiments.base import Embodiment

BUILTIN = ('hlai_ros.embodiments.panda', 'hlai_ros.embodiments.husky')
"""Modules that register the built-in robots."""

_REGISTRY: dict[str, Embodiment] = {}


def register(embodiment: Embodiment) -> Embodiment:
    """Register a robot under its name; registering the same name twice is an error."""
    known = _REGISTRY.get(embodiment.name)
    if known is not None and known != embodiment:
        raise ValueError(f'an embodiment named {embodiment.name!r} is registered already')
    _REGISTRY[embodiment.name] = embodiment
    return embodiment


def _load_builtin() -> None:
    for module in BUILTIN:
        importlib.import_module(module)


def embodiment_names() -> tuple[str, ...]:
    """Names of every registered robot."""
    _load_builtin()
    return tuple(_REGISTRY)


def get_embodiment(name: str) -> Embodiment:
    """The registered robot `name`; an unknown name lists the known ones."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f'unknown embodiment {name!r}; known: {sorted(_REGISTRY)}') from None


def by_role(role: str) -> Embodiment:
    """The first registered robot whose command or proprioception has `role` (bag loading)."""
    _load_builtin()
    for embodiment in _REGISTRY.values():
        if role in (embodiment.command_role, embodiment.proprio_role):
            return embodiment
    raise ValueError(f'no registered embodiment has a topic of role {role!r}')


def roles(kind: str) -> tuple[str, ...]:
    """The command roles (`kind` 'command') or proprioception roles ('proprio') of every robot."""
    _load_builtin()
    return tuple(dict.fromkeys(getattr(e, f'{kind}_role') for e in _REGISTRY.values()))


__all__ = ['Embodiment', 'by_role', 'embodiment_names', 'get_embodiment', 'register', 'roles']
