"""Every node's parameters, ROS-free: the config dataclasses, and the check of a graph's.

Each node keeps its settings in one frozen dataclass whose ``__post_init__`` rejects bad values
(`hlai_ros.nodes.params` turns it into ROS parameters). `CONFIGS` names each node's; those of
the nodes without a core module of their own live here. `check_graph` applies the node's own
checks to what each node of a graph will get (the task's parameter file, then the overrides:
a user's parameter file, the graph's settings, ``--set``; `hlai_ros.graph.checked_build`), so
that ``hlai run`` and the launch files refuse a bad value, an unknown parameter or an
existing bag directory before anything starts, with the message the node itself would give.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
import importlib
from pathlib import Path
from typing import Any

import numpy as np

from hlai_ros.tasks.registry import check_task

RO = {'read_only': True}
CONFIGS = {
    'sim': 'hlai_ros.sim.session:SimNodeConfig',
    'perception': 'hlai_ros.node_config:PerceptionNodeConfig',
    'world_model': 'hlai_ros.world_model.live:WorldModelNodeConfig',
    'cost_critic': 'hlai_ros.node_config:CostCriticNodeConfig',
    'mpc_actor': 'hlai_ros.actor.supervision:ActorConfig',
    'command_gate': 'hlai_ros.safety.command_gate:CommandGateConfig',
    'recorder': 'hlai_ros.node_config:RecorderConfig',
    'scripted_controller': 'hlai_ros.node_config:ScriptedControllerConfig',
    'view': 'hlai_ros.view.config:ViewNodeConfig',
}
"""Node name -> its config dataclass (``module:name``), in graph order."""
ROS_PARAMETERS = ('use_sim_time',)
"""Parameters every rclpy node declares itself (booleans)."""


@dataclass(frozen=True)
class PerceptionNodeConfig:
    """Parameters of the `perception` node."""

    task: str = field(default='', metadata=RO)
    """Registered task whose estimator runs (`hlai_ros.tasks`; required)."""
    control_hz: float = field(default=10.0, metadata=RO)
    """Camera frame rate the estimator assumes for velocities, Hz."""
    sync_tolerance_s: float = 0.05
    """Largest stamp difference between image, depth and proprioception, seconds."""
    proprio_names: tuple[str, ...] = field(default=(), metadata=RO)
    """Labels of the proprioception vector; empty: the robot's own labels."""
    camera_pose: tuple[float, ...] = field(default=(), metadata=RO)
    """Camera optical frame in the world frame, x y z qx qy qz qw; empty: from the extrinsics
    topic."""
    depth_near: float = field(default=0.0, metadata=RO)
    """Nearest valid depth, metres; 0: the task world's camera."""
    depth_far: float = field(default=0.0, metadata=RO)
    """Farthest valid depth, metres; 0: the task world's camera."""
    model: str = field(default='', metadata=RO)
    """Model folder, as the mpc_actor's; one that holds a latent model (latent_model.json)
    makes this node encode each frame into /hlai/latent and the goal image into
    /hlai/latent_goal, instead of running the task's estimator; empty: the shipped
    models/<task>."""

    def __post_init__(self):
        check_task(self.task)
        if not self.control_hz > 0 or not self.sync_tolerance_s > 0:
            raise ValueError('control_hz and sync_tolerance_s must be > 0')
        if self.camera_pose and (len(self.camera_pose) != 7
                                 or not np.all(np.isfinite(self.camera_pose))):
            raise ValueError(f'camera_pose must be 7 finite numbers (x y z qx qy qz qw), got '
                             f'{list(self.camera_pose)}')
        if self.depth_near < 0 or self.depth_far < 0 or (
                self.depth_far and self.depth_near >= self.depth_far):
            raise ValueError('need 0 <= depth_near < depth_far (0: the world camera defaults)')


@dataclass(frozen=True)
class CostCriticNodeConfig:
    """Parameters of the `cost_critic` node (the profile's are declared from the task)."""

    task: str = field(default='', metadata={'read_only': True})
    """Registered task whose state layout, cost terms and default profile are used (required)."""
    model_path: str = field(default='', metadata={'read_only': True})
    """Model directory that may hold a critic checkpoint; empty: the shipped models/<task>."""
    profile_file: str = ''
    """Parameter file whose cost_critic section ~/reload applies; empty: config/<task>.yaml."""
    torch_threads: int = field(default=1, metadata={'read_only': True})
    """Torch intra-op threads."""

    def __post_init__(self):
        from hlai_ros.tasks import check_task
        check_task(self.task)
        if self.profile_file and not Path(self.profile_file).is_file():
            raise ValueError(f'profile_file {self.profile_file!r} is not a file')
        if self.torch_threads < 1:
            raise ValueError(f'torch_threads must be >= 1, got {self.torch_threads}')


@dataclass(frozen=True)
class ScriptedControllerConfig:
    """Parameters of the `scripted_controller` node."""

    task: str = field(default='', metadata={'read_only': True})
    """Registered task whose scripted controller runs (`hlai_ros.tasks`; required)."""
    noise_std: float = field(default=0.0, metadata={'read_only': True})
    """Gaussian action noise, action units."""
    seed: int = field(default=0, metadata={'read_only': True})
    """Seed of the action noise."""

    def __post_init__(self):
        check_task(self.task)
        if not self.noise_std >= 0:
            raise ValueError(f'noise_std must be >= 0, got {self.noise_std}')


@dataclass(frozen=True)
class RecorderConfig:
    """Parameters of the `recorder` node."""

    output: str = field(default='', metadata={'read_only': True})
    """Bag directory to create (must not exist)."""
    task: str = field(default='', metadata={'read_only': True})
    """Registered task whose contract topics are recorded (required when `topics` is empty)."""
    topics: tuple[str, ...] = field(default=(), metadata={'read_only': True})
    """Topics to record; empty: every topic `hlai collect` writes for `task`."""
    flush_period_s: float = field(default=0.5, metadata={'read_only': True})
    """Longest wall-clock time between flushes to the file, seconds."""

    def __post_init__(self):
        if not self.output:
            raise ValueError('output must name the bag directory to create')
        if self.task or not self.topics:
            check_task(self.task)
        if not self.flush_period_s > 0:
            raise ValueError(f'flush_period_s must be > 0, got {self.flush_period_s}')
        bad = [t for t in self.topics if not t.startswith('/')]
        if bad:
            raise ValueError(f'topics must be absolute names (start with /), got {bad}')


def config_class(node: str):
    """The config dataclass of `node` (a name in `CONFIGS`)."""
    module, name = CONFIGS[node].split(':')
    return getattr(importlib.import_module(module), name)


def _defaults(cls) -> dict[str, Any]:
    out = {}
    for f in fields(cls):
        out[f.name] = f.default if f.default is not MISSING else f.default_factory()
    return out


def _coerce(node: str, key: str, value: Any, default: Any) -> Any:
    """`value` as the field's type (as rclpy would declare it), or a clear ValueError."""
    kind = type(default)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f'node {node}: parameter {key} must be a list, got {value!r}')
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f'node {node}: parameter {key} must be a {kind.__name__} '
                         f'(default {default!r}), got {value!r}')
    return value


def check_node(node: str, task: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check the parameters `values` of `node` for `task` as the node will; return them typed.

    Raises:
        ValueError: an unknown parameter (listing the node's), a value of the wrong type or
            one the node's config rejects, or (recorder) an existing bag directory.

    """
    own = {key: values[key] for key in values if key not in ROS_PARAMETERS}
    extra: dict[str, Any] = {}
    if node == 'sim':  # the world's settings are the sim node's parameters too
        from hlai_ros.sim import world_class
        extra = _defaults(world_class(task).config_class)
    elif node == 'cost_critic':  # and the cost profile the configurator's
        from hlai_ros.tasks import get_task
        profile = {k: v for k, v in own.items()
                   if k.startswith(('weights.', 'enabled.', 'planner.'))}
        known = get_task(task).default_profile().to_params()
        unknown = sorted(set(profile) - set(known))
        if unknown:
            raise ValueError(f'node {node}: unknown cost profile settings {unknown}; '
                             f'known: {", ".join(sorted(known))}')
        try:
            get_task(task).default_profile().with_params(profile)
        except ValueError as exc:
            raise ValueError(f'node {node}: invalid parameters: {exc}') from None
        extra = {k: known[k] for k in profile}
    cls = config_class(node)
    defaults = _defaults(cls)
    unknown = sorted(set(own) - set(defaults) - set(extra))
    if unknown:
        raise ValueError(f'node {node}: unknown parameters {unknown}; its parameters: '
                         f'{", ".join(sorted(defaults))}')
    typed = {key: _coerce(node, key, value, {**extra, **defaults}[key])
             for key, value in own.items()}
    try:
        cls(**{k: v for k, v in typed.items() if k in defaults})
        if node == 'sim':
            world_class(task).config_class(**{k: v for k, v in typed.items() if k in extra})
    except (TypeError, ValueError) as exc:
        raise ValueError(f'node {node}: invalid parameters: {exc}') from None
    if node == 'recorder' and Path(typed.get('output', '')).exists():
        raise ValueError(f'node recorder: bag {typed["output"]} exists already; '
                         'choose a new path')
    ros = {k: _coerce(node, k, values[k], False) for k in ROS_PARAMETERS if k in values}
    return {**ros, **typed}


def check_graph(specs, task: str, file_parameters: dict[str, dict[str, Any]]):
    """Check every node of `specs` (`hlai_ros.graph.NodeSpec`) as it will start.

    Each node gets its section of `file_parameters` (the task's parameter file, by node
    name), then its `NodeSpec.parameters`. Return the specs with the overrides typed as the
    nodes declare them (an integer given for a float parameter becomes a float).

    Raises:
        ValueError: the first node's refusal (`check_node`), naming the node.

    """
    from dataclasses import replace
    out = []
    for spec in specs:
        if spec.name not in CONFIGS:
            out.append(spec)
            continue
        values = {**file_parameters.get(spec.name, {}), **dict(spec.parameters)}
        typed = check_node(spec.name, task, values)
        out.append(replace(spec, parameters=tuple(  # lists stay lists, as ROS arguments take
            (k, v if isinstance(v, list) else typed[k]) for k, v in spec.parameters)))
    return tuple(out)
