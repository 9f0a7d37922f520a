"""ROS parameters from a frozen dataclass: declared with descriptors, validated when set.

A node keeps its settings in one frozen dataclass whose ``__post_init__`` raises ValueError for
bad values (STYLE.md: parameters become one frozen dataclass). `NodeParameters` declares one
ROS parameter per field (the field's docstring is the description; ``read_only`` fields come
from ``field(metadata={'read_only': True})``), builds the dataclass from the declared values at
start-up (a bad value in a parameter file stops the node with the reason), and installs an
on-set-parameters callback that rejects any change the dataclass rejects, with its reason, as
Nav2 does. Accepted changes replace `NodeParameters.config` and call the node's hook.
"""
from __future__ import annotations

import ast
from dataclasses import MISSING, fields, replace
from functools import lru_cache
import inspect
import textwrap
from typing import Any, Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter


@lru_cache(maxsize=None)
def field_docs(cls) -> dict[str, str]:
    """Return {field name: the docstring written under it} of a dataclass and its bases."""
    docs = {}
    for klass in reversed(cls.__mro__[:-1]):
        docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    docs = {}
    for stmt, nxt in zip(body, body[1:]):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[stmt.target.id] = ' '.join(nxt.value.value.split())
    return docs


_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY,
                int: Parameter.Type.INTEGER_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


def _array_type(cls, name: str) -> Parameter.Type:
    """Return the ROS array type of a tuple field from its annotation (``tuple[str, ...]``)."""
    annotation = ''
    for klass in cls.__mro__:
        annotation = annotation or str(getattr(klass, '__annotations__', {}).get(name, ''))
    for py, ros in ((str, _ARRAY_TYPES[str]), (float, _ARRAY_TYPES[float]),
                    (int, _ARRAY_TYPES[int]), (bool, _ARRAY_TYPES[bool])):
        if f'[{py.__name__}' in annotation:
            return ros
    raise TypeError(f'{cls.__name__}.{name}: annotate tuple fields as tuple[<type>, ...]')


def _to_field(value: Any, default: Any) -> Any:
    """Turn a ROS parameter value into the dataclass field's Python type."""
    if isinstance(default, tuple):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class NodeParameters:
    """Declares `config_class`'s fields as parameters of `node` and keeps them valid.

    Args:
        node: the rclpy node.
        config_class: a frozen dataclass; every field needs a default.
        on_change: called with the new config after a change is accepted.
        read_only: declare every field read-only (settings fixed for the node's lifetime).

    """

    def __init__(self, node, config_class, on_change: Callable[[Any], None] | None = None,
                 read_only: bool = False):
        self.node = node
        self.config_class = config_class
        self._on_change = on_change
        self._defaults = {}
        docs = field_docs(config_class)
        values = {}
        for f in fields(config_class):
            if f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:
                raise TypeError(f'{config_class.__name__}.{f.name} needs a default')
            self._defaults[f.name] = default
            descriptor = ParameterDescriptor(
                description=docs.get(f.name, f.name),
                read_only=read_only or bool(f.metadata.get('read_only', False)))
            if isinstance(default, tuple):
                declared = node.declare_parameter(
                    f.name, _array_type(config_class, f.name), descriptor)
                value = declared.value
                values[f.name] = default if value is None else tuple(value)
            else:
                declared = node.declare_parameter(f.name, default, descriptor)
                values[f.name] = _to_field(declared.value, default)
        try:
            self.config = config_class(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'node {node.get_name()}: invalid parameters: {exc}') from None
        node.add_on_set_parameters_callback(self._validate)

    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        """Accept a change only if the dataclass accepts the changed values."""
        changes = {p.name: _to_field(p.value, self._defaults[p.name])
                   for p in params if p.name in self._defaults}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            candidate = replace(self.config, **changes)
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.config = candidate
        if self._on_change is not None:
            self._on_change(candidate)
        return SetParametersResult(successful=True)
