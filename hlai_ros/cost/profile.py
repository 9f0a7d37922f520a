"""A cost profile: each cost term's weight and on/off state, and the planner's settings.

The profile is what the configurator (DESIGN.md) sets at run time. The actor plans with it
and the ``cost_critic`` node reports the cost under it, so the two always agree: the node
publishes the profile it applied (`to_json`) and the actor applies the same one
(`hlai_ros.actor.stack.Stack.reconfigure`). The terms' structure (kind, indices, geometry)
stays the task's (`hlai_ros.tasks.base.Task.cost_terms`); a profile only weighs and switches.

A task's default profile comes from config/<task>.yaml, section ``cost_critic``, as ROS
parameters: ``weights.<term>``, ``enabled.<term>`` and ``planner.<setting>`` (see
`PLANNER_SETTINGS`). A term the file leaves out keeps its weight in the task's cost; a planner
setting it leaves out keeps `hlai_ros.actor.planner.PlannerConfig`'s default.

Profile files: `read_profile` reads a parameter file's ``cost_critic`` section as a profile
(what the actor starts with and the configurator's ``~/reload`` applies), `profile_file`
writes one, and `profile_digest` names a profile shortly, to compare what two nodes apply.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from hlai_ros.actor.planner import PlannerConfig

WEIGHT_PREFIX = 'weights.'
ENABLED_PREFIX = 'enabled.'
PLANNER_PREFIX = 'planner.'
PROFILE_PREFIXES = (WEIGHT_PREFIX, ENABLED_PREFIX, PLANNER_PREFIX)
"""A parameter whose name starts with one of these is a profile setting."""
PLANNER_SETTINGS = ('horizon', 'samples', 'iterations', 'noise_beta', 'gradient_steps',
                    'critic_weight', 'policy_fraction', 'members', 'infer_latents')
"""Planner settings a profile carries (the sampling ones live in `OptimizerConfig`)."""
PROFILE_SECTION = 'cost_critic'
"""The section of a parameter file that holds a profile (the configurator node's)."""


@dataclass(frozen=True)
class TermSetting:
    """How much a cost term counts, and whether it counts at all."""

    weight: float = 1.0
    """Multiplier of the term's per-step cost, finite and >= 0."""
    enabled: bool = True
    """Whether the term is evaluated."""

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight)
                and self.weight >= 0):
            raise ValueError(f'must be a finite number >= 0, got {self.weight!r}')


@dataclass(frozen=True)
class CostProfile:
    """Weights and switches of the task's cost terms, and the planner's settings."""

    terms: Mapping[str, TermSetting] = field(default_factory=dict)
    """Setting of each cost term, by the term's name in the task's cost."""
    planner: PlannerConfig = PlannerConfig()
    """The planner's settings."""

    def planner_settings(self) -> dict[str, float | int]:
        """The `PLANNER_SETTINGS` values of `planner`."""
        p = self.planner
        return {'horizon': p.horizon, 'samples': p.sampling.samples,
                'iterations': p.sampling.iterations, 'noise_beta': p.sampling.noise_beta,
                'gradient_steps': p.gradient_steps,
                'critic_weight': p.critic_weight, 'policy_fraction': p.policy_fraction,
                'members': p.members, 'infer_latents': p.infer_latents}

    def to_params(self) -> dict[str, Any]:
        """The profile as flat ROS parameters (``weights.<term>``, ``enabled.<term>``, ...)."""
        out: dict[str, Any] = {}
        for name, setting in self.terms.items():
            out[WEIGHT_PREFIX + name] = float(setting.weight)
            out[ENABLED_PREFIX + name] = bool(setting.enabled)
        out.update({PLANNER_PREFIX + k: v for k, v in self.planner_settings().items()})
        return out

    def to_json(self) -> str:
        """The profile as JSON (what ``/hlai/cost_profile`` carries)."""
        return json.dumps(self.to_params(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, base: 'CostProfile') -> 'CostProfile':
        """Read a profile published as `to_json`, checked against the terms of `base`."""
        try:
            params = json.loads(text)
        except ValueError as exc:
            raise ValueError(f'a cost profile must be JSON: {exc}') from None
        if not isinstance(params, dict):
            raise ValueError('a cost profile must be a JSON object of parameters')
        return base.with_params(params)

    def with_params(self, params: Mapping[str, Any]) -> 'CostProfile':
        """A copy with ROS-style parameters applied; keys of other prefixes are ignored.

        Raises:
            ValueError: an unknown term or planner setting, or a value out of range (the
                message names the parameter).

        """
        terms = dict(self.terms)
        planner = self.planner_settings()
        for key, value in params.items():
            if key.startswith(WEIGHT_PREFIX) or key.startswith(ENABLED_PREFIX):
                weighted = key.startswith(WEIGHT_PREFIX)
                term = key.split('.', 1)[1]
                if term not in terms:
                    raise ValueError(f'{key}: the task has no cost term {term!r}; its terms: '
                                     f'{sorted(terms)}')
                try:
                    terms[term] = (replace(terms[term], weight=_number(value)) if weighted
                                   else replace(terms[term], enabled=_flag(value)))
                except ValueError as exc:
                    raise ValueError(f'{key} {exc}') from None
            elif key.startswith(PLANNER_PREFIX):
                name = key[len(PLANNER_PREFIX):]
                if name not in PLANNER_SETTINGS:
                    raise ValueError(f'{key}: unknown planner setting; known: '
                                     f'{list(PLANNER_SETTINGS)}')
                planner[name] = _number(value)
        try:
            new_planner = _planner(self.planner, planner)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'planner settings: {exc}') from None
        return CostProfile(terms, new_planner)


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'must be a number, got {value!r}')
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f'must be true or false, got {value!r}')
    return value


def _planner(base: PlannerConfig, values: Mapping[str, float]) -> PlannerConfig:
    """`base` with the `PLANNER_SETTINGS` in `values` (ints where they must be)."""
    for name in ('horizon', 'samples', 'iterations', 'gradient_steps', 'members',
                 'infer_latents'):
        if float(values[name]) != int(values[name]):
            raise ValueError(f'{name} must be a whole number, got {values[name]}')
    if not float(values['noise_beta']) >= 0:
        raise ValueError(f"noise_beta must be >= 0, got {values['noise_beta']}")
    sampling = replace(base.sampling, samples=int(values['samples']),
                       iterations=int(values['iterations']),
                       noise_beta=float(values['noise_beta']))
    return replace(base, horizon=int(values['horizon']), sampling=sampling,
                   gradient_steps=int(values['gradient_steps']),
                   critic_weight=float(values['critic_weight']),
                   policy_fraction=float(values['policy_fraction']),
                   members=int(values['members']),
                   infer_latents=int(values['infer_latents']))


def profile_changes(params: Mapping[str, Any]) -> dict[str, Any]:
    """The profile settings among parameters (name -> value), the others left out."""
    return {k: v for k, v in params.items() if k.startswith(PROFILE_PREFIXES)}


def describe_params(params: Mapping[str, Any]) -> str:
    """A profile's parameters (`CostProfile.to_params`) as ``'goal=1, horizon=12, ...'``.

    The weights and planner settings are named; the on/off switches are left out.
    """
    return ', '.join(f'{k.split(".", 1)[1]}={v:g}' for k, v in params.items()
                     if not k.startswith(ENABLED_PREFIX))


def read_profile(path: str | Path, base: CostProfile) -> CostProfile:
    """`base` with the ``cost_critic`` section of a parameter file applied.

    Raises:
        ValueError: the file is unreadable, has no ``cost_critic: ros__parameters:`` section,
            or a setting is invalid (the message names the file and the parameter).

    """
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f'cannot read the cost profile {path}: {exc}') from None
    node = raw.get(PROFILE_SECTION) if isinstance(raw, dict) else None
    section = node.get('ros__parameters') if isinstance(node, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f'{path}: expected a parameter file with a {PROFILE_SECTION}: '
                         'ros__parameters: section')
    try:
        return base.with_params(section)
    except ValueError as exc:
        raise ValueError(f'{path}: {exc}') from None


def profile_digest(profile: CostProfile) -> str:
    """A short hash of a profile's JSON: equal for the profiles two nodes apply alike."""
    return hashlib.sha256(profile.to_json().encode()).hexdigest()[:12]


def profile_file(task: str, overrides: Mapping[str, Any]) -> Path:
    """Write the task's default profile with `overrides` as a parameter file; return its path.

    The file has the ``cost_critic`` section of ``config/<task>.yaml`` (what the actor's and
    the cost_critic's ``profile_file`` read), under
    ``$ROS_HOME/hlai_ros/profiles/<task>-<hash>.yaml``, named by its content.
    """
    import yaml

    from hlai_ros.tasks import get_task
    params = get_task(task).default_profile().with_params(dict(overrides)).to_params()
    text = yaml.safe_dump({PROFILE_SECTION: {'ros__parameters': params}}, sort_keys=True)
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(ros_home) / 'hlai_ros' / 'profiles' / f'{task}-{digest}.yaml'
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f'.{os.getpid()}.tmp')
        tmp.write_text(text)
        os.replace(tmp, path)
    return path
