"""The `world_model` node: learns the world model online from live transitions.

Subscribes to ``/hlai/state`` (perception's labelled state), the task's command topic
(`hlai_ros.contract.COMMAND_TOPIC`) and ``/hlai/episode``. Each state is mapped to the
task's model state (`hlai_ros.tasks.Task.percept_from_state`). A transition ``(s, a, s')`` is
formed when a state arrives after a previous state of the same episode and a command was
received between them by the node's clock (`TransitionPairing` gives the exact rule; in
lockstep under simulated time it pairs each observation with the command that answered it); a
start or end marker drops what is pending, so no transition crosses an episode boundary.

It starts from the shipped model (``model_path``, default ``models/<task>``) and, when
``learning`` is on, keeps training it with `hlai_ros.world_model.online.OnlineLearner` on a
wall-clock timer. Replay, so that it does not forget: each batch mixes recent live transitions
with a reservoir that starts with ``rehearsal_size`` transitions the start model itself
predicts at states like its training states (the training data is not shipped;
`hlai_ros.world_model.online.rehearsal_transitions`) and receives every live transition that
leaves the recent buffer. Every ``save_period_s`` after new updates it writes a checkpoint
into ``output_dir`` (atomic: `hlai_ros.world_model.checkpoint.save_world_model`; the JSON index
is the commit point), which the ``mpc_actor`` can hot-reload
(`hlai_ros.world_model.watch.CheckpointWatcher`); diagnostics name it (``checkpoint_dir``).
Without a model at ``model_path`` (no push model is shipped yet) the node stays up, publishes
nothing but an ERROR diagnostic naming the path, and loads the model once it appears.

Publishes:
- ``/hlai/surprise`` (std_msgs/Float32), once per transition: the normalised one-step
  prediction error ``sqrt(mean_i ((s'_pred[i] - s'[i]) / sigma_i) ** 2)``, where ``s'_pred`` is
  the ensemble-mean prediction from ``(s, a)`` with ``z`` the posterior mean given the episode's
  previous transitions (the prior mean 0 before any) and ``sigma`` the spread of one-step state
  changes in the model's training data (its delta normaliser). Unitless: 1 is an error as large
  as a typical one-step change; well-predicted motion is far below 1.
- ``/hlai/imagined`` (visualization_msgs/MarkerArray), once per state: one LINE_STRIP per
  ensemble member (namespace ``world_model``, id = member) of the task's goal-relevant position
  (`Task.position_indices`) over ``imagine_horizon`` steps from the current state under the last
  command (zero before any), in the ``world`` frame at height ``marker_height_m``.
- ``/diagnostics``.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from geometry_msgs.msg import Point
import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import ColorRGBA, Float32, Float32MultiArray, String
import torch
from visualization_msgs.msg import Marker, MarkerArray

from hlai_ros.data import messages
from hlai_ros.contract import COMMAND_TOPIC, EPISODE, WORLD_FRAME
from hlai_ros.nodes.convert import episode_marker, message_class, state_from_message
from hlai_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.paths import model_dir
from hlai_ros.tasks import get_task
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model, save_world_model
from hlai_ros.world_model.online import OnlineLearner, rehearsal_transitions
from hlai_ros.world_model.watch import CheckpointWatcher

STATE_TOPIC = '/hlai/state'
SURPRISE_TOPIC = '/hlai/surprise'
IMAGINED_TOPIC = '/hlai/imagined'
DEVICES = ('auto', 'cpu', 'cuda')


def default_output_dir(task: str) -> Path:
    """Where online checkpoints go by default: ``$ROS_HOME/hlai_ros/online/<task>``.

    ``ROS_HOME`` defaults to ``~/.ros``, where ROS keeps its other run-time files.
    """
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return Path(ros_home) / 'hlai_ros' / 'online' / task


@dataclass(frozen=True)
class WorldModelNodeConfig:
    """Parameters of the `world_model` node."""

    task: str = field(default='push', metadata={'read_only': True})
    """Task whose state layout and model are used: 'push' or 'cliff'."""
    model_path: str = field(default='', metadata={'read_only': True})
    """Checkpoint to start from; empty: the shipped models/<task>."""
    output_dir: str = field(default='', metadata={'read_only': True})
    """Directory the online checkpoints are written to (the actor watches it); empty:
    $ROS_HOME/hlai_ros/online/<task>."""
    learning: bool = True
    """Train on live transitions (false: only predict, publish surprise and rollouts)."""
    learning_rate: float = 1e-4
    """AdamW learning rate of the online updates (0 < lr <= 1)."""
    replay_size: int = field(default=10000, metadata={'read_only': True})
    """Recent transitions kept; older ones go to a reservoir of the same size (replay)."""
    replay_ratio: float = field(default=0.5, metadata={'read_only': True})
    """Share of each batch drawn from the reservoir of older transitions, in [0, 1)."""
    rehearsal_size: int = field(default=2000, metadata={'read_only': True})
    """Transitions the start model predicts at states like its training states, put in the
    reservoir so that learning from narrow live data does not forget the rest (0: none)."""
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
        if self.task not in ('push', 'cliff'):
            raise ValueError(f"task must be 'push' or 'cliff', got {self.task!r}")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f'learning_rate must be in (0, 1], got {self.learning_rate}')
        if self.rehearsal_size < 0:
            raise ValueError(f'rehearsal_size must be >= 0, got {self.rehearsal_size}')
        if self.replay_size < 1 or self.batch_size < 1 or self.min_transitions < 1:
            raise ValueError(f'replay_size, batch_size and min_transitions must be >= 1, got '
                             f'{self.replay_size}, {self.batch_size}, {self.min_transitions}')
        if not 0.0 <= self.replay_ratio < 1.0:
            raise ValueError(f'replay_ratio must be in [0, 1), got {self.replay_ratio}')
        if not (self.update_period_s > 0 and self.save_period_s > 0
                and math.isfinite(self.update_period_s) and math.isfinite(self.save_period_s)):
            raise ValueError(f'update_period_s and save_period_s must be finite and > 0 '
                             f'seconds, got {self.update_period_s} and {self.save_period_s}')
        if not self.max_surprise > 0:
            raise ValueError(f'max_surprise must be > 0, got {self.max_surprise}')
        if not 1 <= self.imagine_horizon <= 200:
            raise ValueError(f'imagine_horizon must be in 1..200 steps, got '
                             f'{self.imagine_horizon}')
        if not math.isfinite(self.marker_height_m):
            raise ValueError(f'marker_height_m must be finite, got {self.marker_height_m}')
        if self.torch_threads < 1:
            raise ValueError(f'torch_threads must be >= 1, got {self.torch_threads}')
        if self.device not in DEVICES:
            raise ValueError(f'device must be one of {DEVICES}, got {self.device!r}')


class TransitionPairing:
    """Turns a stream of states, commands and episode markers into transitions (ROS-free).

    Every input carries the node's clock reading when it arrived (nanoseconds; simulated time
    under ``use_sim_time``, where the clock only advances when the world steps). The action of
    the transition from the state received at ``t0`` to the next one received at ``t1 > t0``
    is the newest command received at a time in ``[t0, t1)``: the command that answered the
    observation at ``t0``, whether it arrived just before or just after that state's message
    (a controller acting on other topics may answer before perception has published). With
    no such command the state only replaces the previous one (an unknown action is never
    learned); a state equal to the previous one, or received at the same time, is a republish
    of the same observation. States (S,) and actions (A,) are float32 arrays.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Episode boundary: forget the pending state and commands."""
        self.state: np.ndarray | None = None
        self.time_ns = 0
        self.commands: list[tuple[int, np.ndarray]] = []
        self.last_command: np.ndarray | None = None

    def on_command(self, action: np.ndarray, now_ns: int) -> None:
        """A command was received at `now_ns`."""
        action = np.asarray(action, dtype=np.float32)
        self.commands = self.commands[-63:] + [(int(now_ns), action)]
        self.last_command = action

    def on_state(self, state: np.ndarray, now_ns: int):
        """A state was received at `now_ns`; return (s, a, s') if it ends a transition."""
        state, now_ns = np.asarray(state, dtype=np.float32), int(now_ns)
        if self.state is not None and (now_ns <= self.time_ns
                                       or np.array_equal(state, self.state)):
            if now_ns <= self.time_ns and not np.array_equal(state, self.state):
                self.state = state  # a newer estimate of the same instant
            return None
        out = None
        if self.state is not None:
            answers = [a for t, a in self.commands if self.time_ns <= t < now_ns]
            if answers:
                out = (self.state, answers[-1], state)
        self.state, self.time_ns = state, now_ns
        self.commands = [(t, a) for t, a in self.commands if t >= now_ns]
        return out


class WorldModelNode(Node):
    """Online world-model learning, surprise and imagined rollouts; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('world_model', **kwargs)
        self.params = NodeParameters(self, WorldModelNodeConfig, on_change=self._on_params)
        cfg = self.params.config
        torch.set_num_threads(cfg.torch_threads)
        if cfg.device == 'cuda' and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device; "
                             "use 'auto' or 'cpu'")
        self.device = torch.device(
            'cuda' if cfg.device == 'cuda' or (cfg.device == 'auto'
                                               and torch.cuda.is_available()) else 'cpu')
        self.task = get_task(cfg.task)
        self.model_path = Path(cfg.model_path) if cfg.model_path else model_dir() / cfg.task
        self.output_dir = Path(cfg.output_dir) if cfg.output_dir else default_output_dir(
            cfg.task)
        self.command_topic = COMMAND_TOPIC[cfg.task]
        self.model = self.learner = None
        self.model_error = ''
        self.pairing = TransitionPairing()
        self.episode_transitions: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.stats = {'transitions': 0, 'rejected': 0, 'updates': 0, 'checkpoints': 0,
                      'surprise': float('nan'),
                      'loss': float('nan'), 'state_errors': 0, 'last_error': '',
                      'last_save': '', 'update_ms': 0.0, 'state_ms': 0.0}
        self._updates_at_save = 0
        self._state_ok = True
        self._watch_model()

        sub = self.create_subscription
        sub(String, EPISODE.name, self._on_episode, 100)
        sub(message_class(self.command_topic.msgtype), self.command_topic.name,
            self._on_command, 10)
        sub(Float32MultiArray, STATE_TOPIC, self._on_state, 10)
        self.surprise_pub = self.create_publisher(Float32, SURPRISE_TOPIC, 10)
        self.imagined_pub = self.create_publisher(MarkerArray, IMAGINED_TOPIC, 10)
        self.diagnostics = DiagnosticsPublisher(self, 'online learning', str(self.device))
        # Learning and saving follow the wall clock, also under use_sim_time: they are
        # about compute, and a paused simulation must not stop a checkpoint.
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.update_timer = self.create_timer(cfg.update_period_s, self._update, clock=self.steady)
        self.save_timer = self.create_timer(cfg.save_period_s, self._save, clock=self.steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=self.steady)

    # -- the model ----------------------------------------------------------------------------
    def _watch_model(self) -> None:
        """Load the start model, or watch for it to appear (see `_poll_model`)."""
        self.watcher = CheckpointWatcher(self.model_path, device=self.device, expect={
            'state_dim': self.task.state_dim, 'action_dim': self.task.action_dim})
        self._poll_model(first=True)

    def _poll_model(self, first: bool = False) -> None:
        if self.model is not None:
            return
        if first:
            try:
                model = load_world_model(self.model_path, self.device, self.watcher.expect)
            except CheckpointError as exc:
                model, self.watcher.last_error = None, str(exc)
        else:
            model = self.watcher.poll()
        if model is None:
            reason = self.watcher.last_error or 'no new checkpoint there'
            self.model_error = (f'no world model at {self.model_path} ({reason}); surprise, '
                                'imagined rollouts and learning are off until one appears')
            self.get_logger().error(self.model_error, throttle_duration_sec=30.0)
            return
        cfg = self.params.config
        self.model, self.model_error = model, ''
        rehearsal = None if cfg.rehearsal_size == 0 else rehearsal_transitions(
            model, cfg.rehearsal_size, self.task.action_low, self.task.action_high, cfg.seed)
        self.learner = OnlineLearner(model, buffer_size=cfg.replay_size, reservoir=rehearsal,
                                     reservoir_size=cfg.replay_size,
                                     replay_ratio=cfg.replay_ratio, batch_size=cfg.batch_size,
                                     learning_rate=cfg.learning_rate, seed=cfg.seed)
        self.metadata = dict(getattr(model, 'checkpoint_metadata', {}) or {})
        self.get_logger().info(f'world model {self.model_path} loaded on {self.device}; '
                               f'checkpoints go to {self.output_dir}')

    def _on_params(self, cfg: WorldModelNodeConfig) -> None:
        if self.learner is not None:
            for group in self.learner.optimizer.param_groups:
                group['lr'] = cfg.learning_rate
        if getattr(self, 'update_timer', None) is not None:
            for name, period in (('update_timer', cfg.update_period_s),
                                 ('save_timer', cfg.save_period_s)):
                timer = getattr(self, name)
                if abs(timer.timer_period_ns - period * 1e9) > 1:
                    self.destroy_timer(timer)
                    callback = self._update if name == 'update_timer' else self._save
                    setattr(self, name, self.create_timer(period, callback, clock=self.steady))

    # -- inputs -------------------------------------------------------------------------------
    def _on_episode(self, msg) -> None:
        marker = episode_marker(msg)
        if marker is not None and marker.get('event') in ('start', 'end'):
            self.pairing.reset()
            self.episode_transitions = []

    def _on_command(self, msg) -> None:
        action = messages.command_to_action(msg, self.params.config.task)
        if np.all(np.isfinite(action)):
            self.pairing.on_command(action, self.get_clock().now().nanoseconds)

    def _on_state(self, msg) -> None:
        start = time.perf_counter()
        try:
            names, values = state_from_message(msg)
            state = np.asarray(self.task.percept_from_state(names, values).model_state,
                               dtype=np.float32)
        except ValueError as exc:
            self.stats['state_errors'] += 1
            self.stats['last_error'], self._state_ok = str(exc), False
            self.get_logger().warn(f'{STATE_TOPIC}: {exc}', throttle_duration_sec=5.0)
            return
        self._state_ok = True
        if not np.all(np.isfinite(state)):
            return
        transition = self.pairing.on_state(state, self.get_clock().now().nanoseconds)
        if self.model is None:
            return
        if transition is not None:
            self._learn_from(*transition)
        self._publish_imagined(state)
        self.stats['state_ms'] = 1e3 * (time.perf_counter() - start)

    # -- prediction ---------------------------------------------------------------------------
    def _latent(self):
        """Posterior mean of z (E, 1, Z) given the episode's transitions so far (0 before)."""
        m = self.model
        if not self.episode_transitions or m.latent_dim == 0:
            return torch.zeros(m.ensemble_size, 1, m.latent_dim, device=self.device)
        s, a, s2 = (torch.as_tensor(np.stack(x), device=self.device).unsqueeze(0)
                    for x in zip(*self.episode_transitions))
        return m.posterior_from_transitions(s, a, s2)[0]

    def surprise(self, s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> float:
        """Normalised one-step prediction error of (s, a, s_next); see the module docstring."""
        m = self.model
        with torch.no_grad():
            prediction = m.next(torch.as_tensor(s, device=self.device).unsqueeze(0),
                                torch.as_tensor(a, device=self.device).unsqueeze(0),
                                self._latent()).mean(0)[0]
            error = (prediction - torch.as_tensor(s_next, device=self.device)) / m.delta_norm.std
        return float(error.pow(2).mean().sqrt())

    def _learn_from(self, s, a, s_next) -> None:
        value = self.surprise(s, a, s_next)
        self.stats['surprise'] = value
        self.surprise_pub.publish(Float32(data=value))
        if not value <= self.params.config.max_surprise:  # NaN too
            # a glitch (a jump of the estimate, a missed reset), not physics to learn from
            self.stats['rejected'] += 1
            return
        recent = self.episode_transitions + [(s, a, s_next)]
        self.episode_transitions = recent[-self.learner.context_size:]
        self.learner.add(s, a, s_next)
        self.stats['transitions'] += 1

    def _publish_imagined(self, state: np.ndarray) -> None:
        cfg, m = self.params.config, self.model
        last = self.pairing.last_command
        action = np.zeros(self.task.action_dim, np.float32) if last is None else last
        with torch.no_grad():
            actions = torch.as_tensor(action, device=self.device).expand(
                1, cfg.imagine_horizon, -1)
            paths = m.rollout(torch.as_tensor(state, device=self.device).unsqueeze(0),
                              actions, self._latent())[:, 0].cpu().numpy()
        ix, iy = self.task.position_indices
        stamp = self.get_clock().now().to_msg()
        markers = MarkerArray()
        for member, path in enumerate(paths):
            marker = Marker(ns='world_model', id=member, type=Marker.LINE_STRIP,
                            action=Marker.ADD, frame_locked=False)
            marker.header.frame_id, marker.header.stamp = WORLD_FRAME, stamp
            marker.pose.orientation.w = 1.0
            marker.scale.x = 0.005
            hue = member / max(len(paths), 1)
            marker.color = ColorRGBA(r=0.2 + 0.6 * hue, g=0.4, b=1.0 - 0.6 * hue, a=0.8)
            for p in path:
                marker.points.append(Point(x=float(p[ix]), y=float(p[iy]),
                                           z=cfg.marker_height_m))
            markers.markers.append(marker)
        self.imagined_pub.publish(markers)

    # -- learning and checkpoints ------------------------------------------------------------
    def _update(self) -> None:
        self._poll_model()
        cfg = self.params.config
        if self.learner is None or not cfg.learning or len(self.learner) < cfg.min_transitions:
            return
        start = time.perf_counter()
        terms = self.learner.update(1)
        self.stats['update_ms'] = 1e3 * (time.perf_counter() - start)
        self.stats['loss'] = terms['loss']
        self.stats['updates'] += 1

    def _save(self) -> None:
        if self.model is None or self.stats['updates'] == self._updates_at_save:
            return
        updates = self.stats['updates']
        metadata = dict(self.metadata, online={
            'start_model': str(self.model_path), 'updates': updates,
            'transitions': self.stats['transitions'],
            'learning_rate': self.params.config.learning_rate,
            'saved_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})
        try:
            path = save_world_model(self.model, self.output_dir, metadata)
        except OSError as exc:
            self.stats['last_error'] = f'checkpoint not written to {self.output_dir}: {exc}'
            self.get_logger().error(self.stats['last_error'], throttle_duration_sec=30.0)
            return
        self._updates_at_save = updates
        self.stats['checkpoints'] += 1
        self.stats['last_save'] = metadata['online']['saved_at']
        self.get_logger().info(f'checkpoint {self.stats["checkpoints"]} ({updates} updates) '
                               f'-> {path}', throttle_duration_sec=60.0)

    def _publish_diagnostics(self) -> None:
        cfg = self.params.config
        values = dict(self.stats, checkpoint_dir=str(self.output_dir),
                      start_model=str(self.model_path), learning=cfg.learning,
                      recent_transitions=0 if self.learner is None else len(self.learner))
        if self.model is None:
            level, message = ERROR, self.model_error
        elif not self._state_ok:
            level, message = WARN, self.stats['last_error']
        else:
            level, message = OK, 'learning' if cfg.learning else 'learning off'
        self.diagnostics.publish(level, message, values)


def load_optimizer_modules() -> None:
    """Import what torch imports on building its first optimiser (~5 s on a busy machine).

    Done before the node joins the graph, so that the simulator, which starts once the nodes
    it waits for are present, does not run episodes while this node is still starting.
    """
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


def main(args=None):
    """Run the world model node."""
    load_optimizer_modules()
    spin_node(WorldModelNode, args)


if __name__ == '__main__':
    main()
