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
- `check_percept`, `goal_fault`: refuse a state or goal that is not finite, a goal in a
  frame the robot does not take goals in;
- `build`: the task, its stack and the hot reload's `CheckpointWatcher` for an `ActorConfig`;
- `status`: the diagnostics' level ('ok', 'warn', 'error'), message and values.

The model folder chooses the stack (`hlai_ros.actor.stack.load_stack`): a `Stack` on the
task's labelled state, or, for a latent folder, a `hlai_ros.latent.stack.LatentStack` that
plans from perception's latent (`read_latent`) towards the goal image's (`set_latent_goal`).
The latent stack has no policy (a late plan's action becomes zero); its hot reload swaps the
planning dynamics (`model_watcher`) and a profile sets only its planner settings (it keeps
its own cost weights); the deadline, the watchdog, the e-stop and the command gate are the
same.

Profile files (`read_profile`, `profile_digest`) are `hlai_ros.cost.profile`'s.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
import time

import numpy as np

from hlai_ros.cost.profile import CostProfile, profile_digest, read_profile


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


class StateWatch:
    """The actor's watchdog on its input: a state older than a timeout (node clock) is stale.

    Never a state: nothing to command yet (a lockstep simulator waits for a real answer).
    """

    def __init__(self):
        self.last_ns: int | None = None
        """Arrival of the last state, ns (None: none yet)."""
        self.stale = False

    def fresh(self, now_ns: int) -> None:
        """A state arrived at `now_ns`."""
        self.last_ns, self.stale = now_ns, False

    def check(self, now_ns: int, timeout_s: float) -> float | None:
        """Mark the state stale once older than `timeout_s`.

        Returns its age (s) when it just became stale, else None.
        """
        if self.last_ns is None:
            return None
        age_s = (now_ns - self.last_ns) * 1e-9
        if age_s <= timeout_s:
            return None
        was, self.stale = self.stale, True
        return None if was else age_s


class HotReload:
    """The hot reload's schedule: the `CheckpointWatcher` of `folder`, polled every period."""

    def __init__(self, watcher, folder: Path, now_s: float):
        self.watcher, self.folder = watcher, folder
        """The watcher (`model_watcher`) and the folder it watches."""
        self.last_check_s = now_s
        """When the folder was last checked (wall clock), s."""

    def due(self, now_s: float, period_s: float) -> bool:
        """Whether to check now (period 0 or no watcher: never); a True restarts the period."""
        if self.watcher is not None and period_s > 0 and now_s - self.last_check_s >= period_s:
            self.last_check_s = now_s
            return True
        return False


def command(action, action_dim: int, stats: ActorStats) -> np.ndarray:
    """`action` (A,), or zero velocity for None (counted as a zero command)."""
    if action is None:
        action = np.zeros(action_dim, np.float32)
        stats.zero_commands += 1
    return action


def check_percept(percept) -> None:
    """Raise ValueError when the percept's state or goal is not finite."""
    if not (np.all(np.isfinite(percept.model_state)) and np.all(np.isfinite(percept.goal))):
        raise ValueError('state or goal is not finite')


def read_percept(task, names, values, goal=None):
    """The `Percept` of a labelled state (`Task.decode`), its goal replaced by `goal` if given.

    Raises:
        ValueError: the state cannot be read, or its state or goal is not finite.

    """
    percept = task.decode(names, values)
    check_percept(percept)
    return percept if goal is None else replace(percept, goal=goal)


def is_latent(stack) -> bool:
    """Whether `stack` plans in a learned latent space (`LatentStack`)."""
    return getattr(stack, 'representation', 'state') == 'latent'


def read_latent(stack, parts, values):
    """The `LatentPercept` of a latent message's parts ((label, size), ...) and values.

    Raises:
        ValueError: the layout is not the model's, the values are not finite, no goal latent
            has come yet (nothing to plan towards), or the event heads read the camera frame
            and none has come yet (no danger map: no plan).

    """
    from hlai_ros.latent.node_core import check_latent, latent_layout
    latent = check_latent(parts, values, latent_layout(stack.encoder))
    if stack.goal is None:
        raise ValueError('no goal latent yet (/hlai/latent_goal: the goal image, encoded)')
    if stack.reads_pixels and not stack.heads.has_scene:
        raise ValueError('no camera frame yet for the event heads (/camera/image_raw and '
                         '/camera/depth/image_raw under one stamp)')
    return stack.percept(latent)


def set_latent_goal(stack, parts, values) -> None:
    """Plan towards the goal image's latent from now on.

    Raises:
        ValueError: the layout is not the model's, or the values are not finite.

    """
    from hlai_ros.latent.node_core import check_latent, latent_layout
    stack.set_goal_latent(check_latent(parts, values, latent_layout(stack.encoder)))


def plan_positions(task, stack, percept, actions) -> list[tuple[float, float]] | None:
    """The positions (`Task.position_indices`) of the plan's predicted states, ensemble mean.

    None for a latent stack: its plan is in keypoints, not metres (nothing to draw).
    """
    if is_latent(stack):
        return None
    states = stack.predict(percept, actions)
    i, j = task.position_indices
    return list(zip(states[:, i].tolist(), states[:, j].tolist()))


def describe(stack) -> str:
    """What the actor plans with: model folder, device, critic, policy, profile digest."""
    return (f'{stack.representation} model {stack.folder} on {stack.device}, critic '
            f'{stack.critic is not None}, policy {stack.policy is not None}; profile '
            f'{profile_digest(stack.profile)}' + ('' if not is_latent(stack) else
                                                  ' (not used: the latent cost)'))


def goal_fault(goal: np.ndarray, frame: str, goal_frames) -> str:
    """Why a goal (x, y) in `frame` is ignored, or '': not finite, or in a foreign frame."""
    if frame not in goal_frames or not np.all(np.isfinite(goal)):
        return (f'goal {goal} in frame {frame!r} ignored; expected finite x, y in one of '
                f'{goal_frames}')
    return ''


def build(cfg: ActorConfig):
    """Return (task, stack, hot reload) for `cfg`.

    The stack (`load_stack`: a `Stack`, or a `LatentStack` for a latent folder) plans on the
    model folder with the start profile; the `HotReload` watches the folder that is
    hot-reloaded (`cfg.watch`, else the model's) with `model_watcher`, its period starting
    now.

    Raises:
        ValueError: cuda was asked for but torch sees none; a bad profile file.
        CheckpointError: the model is refused (broken, or for another task).

    """
    import torch

    from hlai_ros.actor.stack import load_stack
    from hlai_ros.tasks import get_task

    torch.set_num_threads(cfg.torch_threads)
    if cfg.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
    task = get_task(cfg.task)
    profile = task.default_profile()
    if cfg.profile_file:
        profile = read_profile(Path(cfg.profile_file).expanduser(), profile)
    stack = load_stack(task, cfg.model or None, None if cfg.device == 'auto' else cfg.device,
                       profile)
    watch_dir = Path(cfg.watch).expanduser() if cfg.watch else stack.folder
    return task, stack, HotReload(model_watcher(task, stack, watch_dir), watch_dir,
                                  time.monotonic())


def model_watcher(task, stack, folder):
    """The hot reload's `CheckpointWatcher` of the world models `stack` can swap in.

    It loads only world models of the task's identity in the stack's representation (a latent
    stack: its planning dynamics, of its planning-state size); anything else is refused
    (``last_error``) and the stack keeps its model.
    """
    from hlai_ros.world_model.watch import CheckpointWatcher
    if is_latent(stack):
        state_dim, representation = int(stack.model.state_dim), 'latent'
    else:
        state_dim, representation = task.state_dim, 'state'
    return CheckpointWatcher(Path(folder).expanduser(), stack.device, {
        'state_dim': state_dim, 'action_dim': task.action_dim},
        identity=task.identity(representation))


def status(cfg: ActorConfig, stack, stats: ActorStats, watch_dir, estop: bool,
           stale: bool) -> tuple[str, str, dict]:
    """The actor's diagnostics: (level 'ok' | 'warn' | 'error', message, values)."""
    values = dict(stats.values(), model=str(stack.folder), watch=str(watch_dir),
                  representation=stack.representation,
                  device=str(stack.device), critic=stack.critic is not None,
                  policy=stack.policy is not None, deadline_ms=round(1e3 * cfg.budget_s, 1),
                  estop=estop, stale=stale, profile_digest=profile_digest(stack.profile),
                  profile=stack.profile.to_json())
    if estop:
        return 'error', 'e-stop engaged: zero commands', values
    if stale:
        return 'warn', f'state older than {cfg.timeout_s:.2f} s: zero commands', values
    if is_latent(stack) and stack.goal is None:
        return 'warn', 'no goal latent yet (/hlai/latent_goal): zero commands', values
    if stats.reload_error or stats.profile_error:
        return 'warn', stats.reload_error or stats.profile_error, values
    return 'ok', 'planning', values


def act(stack, percept, stats: ActorStats, budget_s: float, enforce_deadline: bool):
    """Plan `percept` with `stack`; return (action (A,) or None for zero, plan, late).

    A plan longer than `budget_s` (wall clock) is late and counted; with `enforce_deadline`
    its action becomes `stack.fallback` (the policy's, or None without a policy), and `late`
    says so (a warning); else `late` is ''.
    """
    plan = stack.plan(percept)
    stats.plans += 1
    stats.plan_ms = 1e3 * plan.seconds
    stats.plan_ms_max = max(stats.plan_ms_max, stats.plan_ms)
    if plan.seconds <= budget_s:
        return plan.action, plan, ''
    stats.deadline_misses += 1
    if not enforce_deadline:
        return plan.action, plan, ''
    stats.fallbacks += 1
    action = stack.fallback(percept) if hasattr(stack, 'fallback') else None
    return action, plan, (f'plan took {stats.plan_ms:.0f} ms > deadline {1e3 * budget_s:.0f} '
                          f'ms: {"policy action" if action is not None else "zero"}')


def apply_profile(stack, text: str, stats: ActorStats) -> str:
    """Apply a published profile (`CostProfile.to_json`) to `stack`; return why not, or ''.

    A latent stack takes only the profile's planner settings (`LatentStack.reconfigure`).
    """
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
