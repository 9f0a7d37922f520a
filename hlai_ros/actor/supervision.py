"""What the actor decides around a plan, without ROS: deadlines, statistics, profiles.

The ``mpc_actor`` node is the ROS face of `hlai_ros.actor.stack.Stack`; the decisions it
makes about a plan live here, so they are testable without a graph:

- `ActorConfig`: the actor's settings (the ``mpc_actor`` node's parameters);
- `ActorStats`: what the actor counts (plans, plan time, deadline misses, fallbacks, zero
  commands, bad states, reloads, refused profiles) as its diagnostics report them;
- `act`: plan a percept, and replace a late plan's action by the stack's fallback (the
  policy's action, or None for zero) when the deadline is enforced;
- `apply_profile`, `reload_model`: a published profile, a new world model, checked and
  applied to the stack, or refused (counted, with the reason) keeping what is in effect;
- `check_percept`: refuse a state or goal that is not finite;
- `read_profile`: a parameter file's ``cost_critic`` section as a `CostProfile`
  (what the actor starts with and the configurator's ``~/reload`` applies);
- `profile_digest`: a short name of a profile, to compare what two nodes apply.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import hashlib
from pathlib import Path

import numpy as np

from hlai_ros.cost.profile import CostProfile


@dataclass(frozen=True)
class ActorConfig:
    """Parameters of the actor (the `mpc_actor` node's; planner settings are the profile's)."""

    task: str = field(default='', metadata={'read_only': True})
    """Registered task whose state layout, cost and robot are used (required)."""
    model: str = field(default='', metadata={'read_only': True})
    """Model folder (world_model, critic, policy); empty: the shipped models/<task>."""
    device: str = field(default='auto', metadata={'read_only': True})
    """Torch device: 'auto' (cuda when present, else cpu), 'cpu' or 'cuda'."""
    profile_file: str = field(default='', metadata={'read_only': True})
    """Start profile: a parameter file's cost_critic section; empty: config/<task>.yaml."""
    control_hz: float = field(default=10.0, metadata={'read_only': True})
    """Control rate, Hz (the sensor rate): the watchdog's period and the default deadline."""
    state_timeout_s: float = 0.0
    """State older than this (node clock, s) makes the command zero; 0: two control periods."""
    deadline_s: float = 0.0
    """Wall-clock plan time beyond which a plan is late, s; 0: one control period."""
    enforce_deadline: bool = True
    """Replace a late plan's action by the policy's (zero without one); false where the world
    waits for the command (lockstep simulation): misses are then only counted."""
    torch_threads: int = field(default=1, metadata={'read_only': True})
    """Torch CPU threads (two were up to 7.5x slower than one on a loaded 2-core machine)."""
    reload_period_s: float = 1.0
    """Wall-clock period of checking for a new world-model checkpoint, s; 0: never."""
    watch: str = field(default='', metadata={'read_only': True})
    """Folder whose world model is hot-reloaded (e.g. world_model's output_dir); empty: model."""

    def __post_init__(self):
        from hlai_ros.tasks import check_task
        check_task(self.task)
        if self.device not in ('auto', 'cpu', 'cuda'):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.torch_threads < 1 or not 0 < self.control_hz <= 1000:
            raise ValueError(f'need torch_threads >= 1 and control_hz in (0, 1000], got '
                             f'{self.torch_threads}, {self.control_hz}')
        if self.profile_file and not Path(self.profile_file).expanduser().is_file():
            raise ValueError(f'profile_file {self.profile_file!r} is not a file')
        for name in ('state_timeout_s', 'deadline_s', 'reload_period_s'):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0 (0: the default), '
                                 f'got {value}')

    @property
    def timeout_s(self) -> float:
        """Effective state timeout, s."""
        return self.state_timeout_s or 2.0 / self.control_hz

    @property
    def budget_s(self) -> float:
        """Effective plan deadline, s."""
        return self.deadline_s or 1.0 / self.control_hz


@dataclass
class ActorStats:
    """The actor's counters, as its diagnostics show them."""

    plans: int = 0
    """Plans made."""
    plan_ms: float = 0.0
    """Wall time of the last plan, ms."""
    plan_ms_max: float = 0.0
    """Longest plan, ms."""
    deadline_misses: int = 0
    """Plans that took longer than the deadline."""
    fallbacks: int = 0
    """Late plans whose action was replaced (policy action or zero)."""
    zero_commands: int = 0
    """Zero commands sent (e-stop, stale or bad state, fallback without a policy)."""
    state_faults: int = 0
    """States that could not be read or were not finite."""
    reloads: int = 0
    """World models swapped in."""
    reload_error: str = ''
    """Why the last new checkpoint was refused; empty after a good reload."""
    profile_refusals: int = 0
    """Published profiles refused."""
    profile_error: str = ''
    """Why the last published profile was refused; empty after a good one."""

    def values(self) -> dict:
        """The counters for diagnostics (times rounded)."""
        out = asdict(self)
        out['plan_ms'], out['plan_ms_max'] = round(self.plan_ms, 2), round(self.plan_ms_max, 2)
        return out


def check_percept(percept) -> None:
    """Raise ValueError when the percept's state or goal is not finite."""
    if not (np.all(np.isfinite(percept.model_state)) and np.all(np.isfinite(percept.goal))):
        raise ValueError('state or goal is not finite')


def act(stack, percept, stats: ActorStats, budget_s: float, enforce_deadline: bool):
    """Plan `percept` with `stack`; return (action (A,) or None for zero, plan, late).

    A plan longer than `budget_s` (wall clock) is late and counted; with `enforce_deadline`
    its action becomes `stack.fallback` (the policy's, or None without a policy).
    """
    plan = stack.plan(percept)
    stats.plans += 1
    stats.plan_ms = 1e3 * plan.seconds
    stats.plan_ms_max = max(stats.plan_ms_max, stats.plan_ms)
    if plan.seconds <= budget_s:
        return plan.action, plan, False
    stats.deadline_misses += 1
    if not enforce_deadline:
        return plan.action, plan, False
    stats.fallbacks += 1
    return stack.fallback(percept), plan, True


def apply_profile(stack, text: str, stats: ActorStats) -> str:
    """Apply a published profile (`CostProfile.to_json`) to `stack`; return why not, or ''."""
    try:
        stack.reconfigure(CostProfile.from_json(text, stack.profile))
    except (TypeError, ValueError) as exc:
        stats.profile_refusals += 1
        stats.profile_error = str(exc)
        return stats.profile_error
    stats.profile_error = ''
    return ''


def reload_model(stack, watcher, stats: ActorStats) -> str | None:
    """Swap in the watcher's new world model, if any; return what to report, or None.

    A refused checkpoint (broken, or for another task) leaves the stack's model; its reason
    becomes `ActorStats.reload_error` (reported once per new reason).
    """
    from hlai_ros.world_model.checkpoint import CheckpointError
    model, error = watcher.poll(), watcher.last_error
    if model is not None:
        try:
            stack.swap_model(model)
            stats.reloads, error = stats.reloads + 1, ''
        except CheckpointError as exc:
            error = str(exc)
    elif not error or error == stats.reload_error:
        return None
    stats.reload_error = error
    return (f'new checkpoint refused, keeping the old model: {error}' if error
            else f'reloaded the world model (reload {stats.reloads})')


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
    node = raw.get('cost_critic') if isinstance(raw, dict) else None
    section = node.get('ros__parameters') if isinstance(node, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f'{path}: expected a parameter file with a cost_critic: '
                         'ros__parameters: section')
    try:
        return base.with_params(section)
    except ValueError as exc:
        raise ValueError(f'{path}: {exc}') from None


def profile_digest(profile: CostProfile) -> str:
    """A short hash of a profile's JSON: equal for the profiles two nodes apply alike."""
    return hashlib.sha256(profile.to_json().encode()).hexdigest()[:12]
