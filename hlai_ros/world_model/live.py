"""Learning a world model from the live stream of a running graph (ROS-free).

`LiveLearner` is what the ``world_model`` node does, without the messages: it loads the start
model (identity-checked for the task), pairs states and commands into transitions
(`hlai_ros.world_model.transitions.TransitionPairing`), measures each transition's surprise
and imagines rollouts (`hlai_ros.world_model.surprise.EpisodeContext`), learns from them with
replay (`hlai_ros.world_model.online.OnlineLearner`, the reservoir starting with transitions the
start model itself predicts: `rehearsal_transitions`) and writes online checkpoints that keep
the start model's metadata, its identity included, so that the actor may hot-reload them.
`WorldModelNodeConfig` holds the node's parameters.

Latent mode: a ``model_path`` folder that holds a latent model (``latent_model.json``,
`hlai_ros.actor.stack.folder_representation`) makes the learner work on the encoder's planning
states instead of the task's labelled state. It reads the folder's encoder for the layout of
``/hlai/latent`` (`hlai_ros.latent.node_core.latent_layout`) and trains the folder's planning
dynamics (its ``world_model.json``: the ensemble MLP over keypoints + proprioception latent,
identity ``representation: latent``) with the same pairing, surprise, guard, replay and
rehearsal; its checkpoints (same format, the start model's identity) are what
`hlai_ros.latent.stack.LatentStack.swap_model` hot-reloads. `read_state` turns a message's
(labels, values) into the state learned on, in either mode; `imagined_positions` gives the
rollouts' positions in metres (latent mode: through the folder's plan probe,
`hlai_ros.latent.probes.load_plan_probe`, or None without one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import os
from pathlib import Path
import time

import numpy as np
import torch

from hlai_ros.paths import model_dir
from hlai_ros.tasks import check_task
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model, save_world_model
from hlai_ros.world_model.online import OnlineLearner, rehearsal_transitions
from hlai_ros.world_model.surprise import EpisodeContext
from hlai_ros.world_model.transitions import TransitionPairing
from hlai_ros.world_model.watch import CheckpointWatcher

DEVICES = ('auto', 'cpu', 'cuda')


@dataclass(frozen=True)
class WorldModelNodeConfig:
    """Parameters of the `world_model` node (`LiveLearner`'s settings)."""

    task: str = field(default='', metadata={'read_only': True})
    """Registered task whose state layout and model are used (required)."""
    model_path: str = field(default='', metadata={'read_only': True})
    """Checkpoint to start from; empty: the shipped models/<task>."""
    output_dir: str = field(default='', metadata={'read_only': True})
    """Directory of the online checkpoints; empty: $ROS_HOME/hlai_ros/online/<task>."""
    learning: bool = True
    """Train on live transitions (false: only predict, publish surprise and rollouts)."""
    learning_rate: float = 1e-4
    """AdamW learning rate of the online updates (0 < lr <= 1)."""
    replay_size: int = field(default=10000, metadata={'read_only': True})
    """Recent transitions kept; older ones go to a reservoir of the same size (replay)."""
    replay_ratio: float = field(default=0.5, metadata={'read_only': True})
    """Share of each batch drawn from the reservoir of older transitions, in [0, 1)."""
    rehearsal_size: int = field(default=2000, metadata={'read_only': True})
    """Transitions the start model predicts, put in the reservoir against forgetting (0: none)."""
    batch_size: int = field(default=64, metadata={'read_only': True})
    """Transitions per ensemble member in one update."""
    max_surprise: float = 100.0
    """Transitions more surprising than this are published but not learned from (> 0)."""
    min_transitions: int = 16
    """Transitions to collect before the first update (>= 1)."""
    update_period_s: float = 0.5
    """Wall-clock seconds between two online updates (> 0)."""
    save_period_s: float = 30.0
    """Wall-clock seconds between two checkpoints, written only after new updates (> 0)."""
    imagine_horizon: int = 10
    """Steps of the imagined rollouts on /hlai/imagined (1..200)."""
    marker_height_m: float = 0.0
    """Height of the imagined paths' points in the world frame, metres."""
    torch_threads: int = field(default=1, metadata={'read_only': True})
    """Torch intra-op threads (1 is fastest where the graph shares two cores)."""
    device: str = field(default='auto', metadata={'read_only': True})
    """Torch device: 'auto' (cuda when present), 'cpu' or 'cuda'."""
    seed: int = field(default=0, metadata={'read_only': True})
    """Seed of the update batches."""

    def __post_init__(self):
        check_task(self.task)
        checks = (
            (0.0 < self.learning_rate <= 1.0, f'learning_rate must be in (0, 1], got '
                                              f'{self.learning_rate}'),
            (self.rehearsal_size >= 0, f'rehearsal_size must be >= 0, got {self.rehearsal_size}'),
            (min(self.replay_size, self.batch_size, self.min_transitions) >= 1,
             f'replay_size, batch_size and min_transitions must be >= 1, got {self.replay_size},'
             f' {self.batch_size}, {self.min_transitions}'),
            (0.0 <= self.replay_ratio < 1.0, f'replay_ratio must be in [0, 1), got '
                                             f'{self.replay_ratio}'),
            (all(p > 0 and math.isfinite(p) for p in (self.update_period_s, self.save_period_s)),
             f'update_period_s and save_period_s must be finite and > 0 seconds, got '
             f'{self.update_period_s} and {self.save_period_s}'),
            (self.max_surprise > 0, f'max_surprise must be > 0, got {self.max_surprise}'),
            (1 <= self.imagine_horizon <= 200, f'imagine_horizon must be in 1..200 steps, got '
                                               f'{self.imagine_horizon}'),
            (math.isfinite(self.marker_height_m), f'marker_height_m must be finite, got '
                                                  f'{self.marker_height_m}'),
            (self.torch_threads >= 1, f'torch_threads must be >= 1, got {self.torch_threads}'),
            (self.device in DEVICES, f'device must be one of {DEVICES}, got {self.device!r}'))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def default_output_dir(task: str) -> Path:
    """Where online checkpoints go by default: ``$ROS_HOME/hlai_ros/online/<task>``.

    ``ROS_HOME`` defaults to ``~/.ros``, where ROS keeps its other run-time files.
    """
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return Path(ros_home) / 'hlai_ros' / 'online' / task


def torch_device(name: str) -> torch.device:
    """The torch device of a `WorldModelNodeConfig.device` setting."""
    if name == 'cuda' and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device; "
                         "use 'auto' or 'cpu'")
    return torch.device('cuda' if name == 'cuda' or (name == 'auto'
                                                     and torch.cuda.is_available()) else 'cpu')


class LiveLearner:
    """Surprise, imagined rollouts and online learning of one task's world model."""

    def __init__(self, task, cfg: WorldModelNodeConfig, device: torch.device | None = None):
        """Set up for `task` (a registered `hlai_ros.tasks.base.Task`) and try to load."""
        self.task, self.cfg = task, cfg
        self.device = torch_device(cfg.device) if device is None else device
        self.model_path = Path(cfg.model_path) if cfg.model_path else model_dir() / task.name
        from hlai_ros.actor.stack import folder_representation
        self.representation = folder_representation(self.model_path)
        self.output_dir = Path(cfg.output_dir or default_output_dir(task.name))
        self.model = self.learner = self.context = None
        self.layout = self.probe = None
        """Latent mode: the latent message's parts and the plan probe (None: none)."""
        self.probe_note = ''
        """Latent mode: why rollouts are not drawn (no or a refused probe), else ''."""
        self.error = ''
        """Why there is no model yet (empty once one is loaded)."""
        self.pairing = TransitionPairing()
        self.stats = {'transitions': 0, 'rejected': 0, 'updates': 0, 'checkpoints': 0,
                      'surprise': float('nan'), 'loss': float('nan'), 'last_save': '',
                      'update_ms': 0.0}
        self._updates_at_save = 0
        state_dim = self._latent_setup() if self.representation == 'latent' else task.state_dim
        self.watcher = CheckpointWatcher(self.model_path, device=self.device, expect={
            'state_dim': state_dim, 'action_dim': task.action_dim},
            identity=task.identity(self.representation))
        try:
            self._start(load_world_model(self.model_path, self.device, self.watcher.expect,
                                         identity=self.watcher.identity))
        except CheckpointError as exc:
            self._missing(str(exc))

    def _latent_setup(self) -> int:
        """Read the latent folder's encoder (layout) and plan probe; return the state size.

        Raises:
            CheckpointError: the folder's encoder is broken or for another task.

        """
        from hlai_ros.latent.node_core import latent_layout, load_encoder
        from hlai_ros.latent.probes import load_plan_probe
        encoder = load_encoder(self.task, self.model_path, self.cfg.torch_threads)
        self.layout, self.map_dim = latent_layout(encoder), int(encoder.map_dim)
        state_dim = sum(size for _, size in self.layout) - self.map_dim
        try:
            self.probe = load_plan_probe(self.model_path)
        except CheckpointError as exc:
            self.probe_note = f'plan probe refused, no imagined rollouts: {exc}'
            return state_dim
        if self.probe is None:
            self.probe_note = (f'no plan probe in {self.model_path} (latent_probe.json): no '
                               'imagined rollouts')
        elif self.probe.state_dim != state_dim:
            self.probe_note = (f'plan probe reads {self.probe.state_dim}-entry planning states, '
                               f'the encoder gives {state_dim}: no imagined rollouts')
            self.probe = None
        return state_dim

    def read_state(self, labels, values) -> np.ndarray:
        """The state learned on, of a message's labels and values.

        State mode: (names, values) of ``/hlai/state`` -> the task's model state. Latent mode:
        ((label, size), ...) and values of ``/hlai/latent`` -> the planning state.

        Raises:
            ValueError: the message cannot be read (labels, layout, size) for this model.

        """
        if self.representation == 'latent':
            from hlai_ros.latent.node_core import check_latent
            return check_latent(labels, values, self.layout)[self.map_dim:]
        return np.asarray(self.task.decode(labels, values).model_state, dtype=np.float32)

    def measured(self, labels, values) -> bool:
        """Whether a message's object was measured (`hlai_ros.tasks.base.SEEN_LABEL`).

        Latent mode, and messages without the label: True.
        """
        if self.representation == 'latent':
            return True
        from hlai_ros.tasks.base import measured_in
        return measured_in(labels, np.asarray(values, dtype=np.float32).reshape(-1))

    def imagined_positions(self, state: np.ndarray) -> np.ndarray | None:
        """Each member's rollout (`imagine`) as positions (E, T + 1, 2), m.

        State mode: the task's `position_indices`; latent mode: decoded by the plan probe,
        None without one (`probe_note` says why).
        """
        if self.representation != 'latent':
            return self.imagine(state)[..., list(self.task.position_indices)]
        return None if self.probe is None else self.probe.decode(self.imagine(state))

    def _missing(self, reason: str) -> None:
        self.error = (f'no world model at {self.model_path} ({reason}); surprise, imagined '
                      'rollouts and learning are off until one appears')

    def _start(self, model) -> None:
        cfg = self.cfg
        rehearsal = None if cfg.rehearsal_size == 0 else rehearsal_transitions(
            model, cfg.rehearsal_size, self.task.action_low, self.task.action_high, cfg.seed)
        self.learner = OnlineLearner(model, buffer_size=cfg.replay_size, reservoir=rehearsal,
                                     reservoir_size=cfg.replay_size,
                                     replay_ratio=cfg.replay_ratio, batch_size=cfg.batch_size,
                                     learning_rate=cfg.learning_rate, seed=cfg.seed)
        self.context = EpisodeContext(model, self.learner.context_size)
        self.model, self.error = model, ''

    def poll(self) -> bool:
        """Without a model, load the start model if it has appeared; True when it just did."""
        if self.model is not None:
            return False
        model = self.watcher.poll()
        if model is None:
            self._missing(self.watcher.last_error or 'no new checkpoint there')
            return False
        self._start(model)
        return True

    def configure(self, cfg: WorldModelNodeConfig) -> None:
        """Apply changed settings (the learning rate takes effect at once)."""
        self.cfg = cfg
        if self.learner is not None:
            for group in self.learner.optimizer.param_groups:
                group['lr'] = cfg.learning_rate

    _after_gap = False
    """The last state's object was not measured (`on_state`)."""

    def reset(self) -> None:
        """Episode boundary: nothing pending, z back to its prior."""
        self.pairing.reset()
        self._after_gap = False
        if self.context is not None:
            self.context.reset()

    def on_command(self, action: np.ndarray, now_ns: int) -> None:
        """A command (action (A,)) was received at `now_ns`; non-finite ones are ignored."""
        if np.all(np.isfinite(action)):
            self.pairing.on_command(action, now_ns)

    def on_state(self, state: np.ndarray, now_ns: int, measured: bool = True
                 ) -> float | None:
        """A model state was received; return the surprise of the transition it ends, if any.

        A transition more surprising than ``max_surprise`` (a jump of the estimate, a missed
        reset: not physics) is counted as rejected and not learned from. For a task that
        trains on measured frames only (`Task.train_measured_only`), a state whose object was
        not `measured`, and the first one after it, start afresh as `hlai train` splits its
        runs there: neither begins nor ends a transition.
        """
        if self.task.train_measured_only and self.representation != 'latent':
            gap = not measured or self._after_gap
            self._after_gap = not measured
            if gap:
                self.pairing.reset()
                return None
        transition = self.pairing.on_state(state, now_ns)
        if self.model is None or transition is None:
            return None
        value = self.context.surprise(*transition)
        self.stats['surprise'] = value
        if not value <= self.cfg.max_surprise:  # NaN too
            self.stats['rejected'] += 1
            return value
        self.context.remember(*transition)
        self.learner.add(*transition)
        self.stats['transitions'] += 1
        return value

    def imagine(self, state: np.ndarray) -> np.ndarray:
        """Each member's rollout (E, T + 1, S) from `state` under the last command (or 0)."""
        last = self.pairing.last_command
        action = np.zeros(self.task.action_dim, np.float32) if last is None else last
        return self.context.imagine(state, action, self.cfg.imagine_horizon)

    def update(self) -> bool:
        """One online update when learning is on and enough transitions are there."""
        self.poll()
        cfg = self.cfg
        if self.learner is None or not cfg.learning or len(self.learner) < cfg.min_transitions:
            return False
        start = time.perf_counter()
        self.stats['loss'] = self.learner.update(1)['loss']
        self.stats['update_ms'] = 1e3 * (time.perf_counter() - start)
        self.stats['updates'] += 1
        return True

    def checkpoint_metadata(self) -> dict:
        """The online checkpoint's metadata: the start model's (identity included) + online."""
        return dict(getattr(self.model, 'checkpoint_metadata', None) or {}, online={
            'start_model': str(self.model_path), 'updates': self.stats['updates'],
            'transitions': self.stats['transitions'], 'learning_rate': self.cfg.learning_rate,
            'saved_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})

    def save(self) -> Path | None:
        """Write a checkpoint to `output_dir` if there were updates since the last one.

        Raises:
            OSError: it could not be written.

        """
        if self.model is None or self.stats['updates'] == self._updates_at_save:
            return None
        metadata = self.checkpoint_metadata()
        path = save_world_model(self.model, self.output_dir, metadata)
        self._updates_at_save = self.stats['updates']
        self.stats['checkpoints'] += 1
        self.stats['last_save'] = metadata['online']['saved_at']
        return path
