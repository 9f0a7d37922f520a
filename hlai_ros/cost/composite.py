"""The task cost: a weighted sum of pluggable terms, built from config like Nav2's MPPI critics.

Each term is enabled or not, and contributes `weight * per_step_cost ** power` at every step;
the cost of a sample is the sum over steps. A YAML section such as

    terms: [goal, fall, effort]
    goal: {weight: 1.0, position_indices: [0, 1]}
    fall: {kind: platform_fall, weight: 20.0, position_indices: [0, 1],
           bounds: [-0.5, 0.5, -0.4, 0.4]}
    effort: {weight: 0.01, power: 1}

becomes a `CostConfig` with `cost_config_from_dict`, and a `Cost` with `Cost.from_config`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from hlai_ros.cost.base import CostContext, CostTerm, check_shapes
from hlai_ros.cost.catastrophe import ObstacleCollisionCost, PlatformFallCost
from hlai_ros.cost.effort import EffortCost, SmoothnessCost
from hlai_ros.cost.function import FunctionCost
from hlai_ros.cost.goal import GoalCost
from hlai_ros.cost.navigation import GeodesicGoalCost
from hlai_ros.cost.reward import RewardCost
from hlai_ros.cost.uncertainty import UncertaintyCost

TERM_KINDS: dict[str, Callable[..., CostTerm]] = {
    'goal': GoalCost,
    'geodesic_goal': GeodesicGoalCost,
    'platform_fall': PlatformFallCost,
    'obstacle_collision': ObstacleCollisionCost,
    'effort': EffortCost,
    'smoothness': SmoothnessCost,
    'uncertainty': UncertaintyCost,
    'reward': RewardCost,
    'function': FunctionCost,
}
"""Term kinds by name; `reward` needs `model=`, `function` needs `function=` at build time."""


@dataclass(frozen=True)
class TermConfig:
    """One term of the cost, as in a Nav2 critic's parameters."""

    name: str
    """Name of the term in the config (unique)."""
    kind: str
    """Which term: a key of TERM_KINDS."""
    enabled: bool = True
    """Whether the term is evaluated at all."""
    weight: float = 1.0
    """Multiplier of the term's per-step cost."""
    power: float = 1.0
    """Exponent applied to the per-step cost before weighting (1 for signed terms)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the term (indices, bounds, scales, ...)."""


@dataclass(frozen=True)
class CostConfig:
    """The terms of a task's cost, evaluated in order."""

    terms: tuple[TermConfig, ...] = ()
    """The terms; disabled ones are skipped."""


def _tuples(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def cost_config_from_dict(section: Mapping[str, Any]) -> CostConfig:
    """Turn a config section {'terms': [names], name: {kind, enabled, weight, power, ...}}."""
    if 'terms' not in section:
        raise ValueError(f"cost config needs a 'terms' list, got keys {sorted(section)}")
    terms = []
    for name in section['terms']:
        entry = dict(section.get(name, {}))
        kind = entry.pop('kind', name)
        if kind not in TERM_KINDS:
            raise ValueError(f'unknown cost term kind {kind!r} for {name!r}; '
                             f'choose one of {sorted(TERM_KINDS)}')
        common = {k: entry.pop(k) for k in ('enabled', 'weight', 'power') if k in entry}
        terms.append(TermConfig(name=name, kind=kind, params={k: _tuples(v)
                                                              for k, v in entry.items()},
                                **common))
    return CostConfig(terms=tuple(terms))


class Cost:
    """Weighted sum of cost terms over predicted trajectories.

    Shapes: states (E, N, T+1, S) with the current state at index 0, actions (N, T, A).
    """

    def __init__(self, terms: list[tuple[str, CostTerm, float, float]]):
        """Build from (name, term, weight, power) tuples."""
        names = [name for name, *_ in terms]
        if len(set(names)) != len(names):
            raise ValueError(f'cost term names must be unique, got {names}')
        for name, term, weight, power in terms:
            if not hasattr(term, 'per_step'):
                raise ValueError(f'cost term {name!r} has no per_step(states, actions, context)')
            if power <= 0:
                raise ValueError(f'cost term {name!r}: power must be > 0, got {power}')
        self.terms = list(terms)

    @classmethod
    def from_config(cls, config: CostConfig, **resources: Any) -> 'Cost':
        """Build the enabled terms of config; resources (model=, function=) fill needs."""
        terms = []
        for tc in config.terms:
            if not tc.enabled:
                continue
            params = dict(tc.params)
            if tc.kind == 'reward' and 'model' not in params:
                params['model'] = _resource(resources, 'model', tc.name)
            if tc.kind == 'function' and 'function' not in params:
                params['function'] = _resource(resources, 'function', tc.name)
            try:
                term = TERM_KINDS[tc.kind](**params)
            except TypeError as err:
                raise ValueError(f'cost term {tc.name!r} ({tc.kind}): bad parameters '
                                 f'{sorted(params)}: {err}') from err
            terms.append((tc.name, term, float(tc.weight), float(tc.power)))
        return cls(terms)

    def per_term(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext | None = None) -> dict[str, torch.Tensor]:
        """Weighted per-step cost of each term: name -> (N, T)."""
        check_shapes(states, actions)
        context = context or CostContext()
        out = {}
        for name, term, weight, power in self.terms:
            c = term.per_step(states, actions, context)
            if power != 1.0:
                c = c.clamp_min(0.0).pow(power)
            out[name] = weight * c
        return out

    def per_step(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext | None = None) -> torch.Tensor:
        """Total cost of each step: states (E, N, T+1, S), actions (N, T, A) -> (N, T)."""
        _, n, t, _, _ = check_shapes(states, actions)
        total = states.new_zeros(n, t)
        for c in self.per_term(states, actions, context).values():
            total = total + c
        return total

    def __call__(self, states: torch.Tensor, actions: torch.Tensor,
                 context: CostContext | None = None) -> torch.Tensor:
        """Cost of each sample, summed over the horizon: -> (N,)."""
        return self.per_step(states, actions, context).sum(-1)

    def failed(self, states: torch.Tensor) -> torch.Tensor:
        """Hard catastrophe indicator of the terms that have one: (..., T+1, S) -> bool."""
        out = torch.zeros(states.shape[:-1], dtype=torch.bool, device=states.device)
        for _, term, _, _ in self.terms:
            if hasattr(term, 'failed'):
                out = out | term.failed(states)
        return out


def _resource(resources: Mapping[str, Any], key: str, name: str) -> Any:
    if key not in resources:
        raise ValueError(f'cost term {name!r} needs {key}= passed to Cost.from_config')
    return resources[key]
