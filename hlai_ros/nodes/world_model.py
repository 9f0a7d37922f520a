"""The `world_model` node: learns the world model online from live transitions.

Subscribes to ``/hlai/state`` (decoded to the task's model state by `Task.decode`), the robot's
command topic (`Embodiment.command`, decoded by `Embodiment.decode_command`) and
``/hlai/episode`` (a start or end marker drops what is pending, so no transition crosses an
episode boundary). The work is `hlai_ros.world_model.live.LiveLearner`: transitions by
`hlai_ros.world_model.transitions.TransitionPairing` on the node's clock, surprise and
rollouts by `hlai_ros.world_model.surprise`, online learning with replay, and checkpoints.

It starts from the model at ``model_path`` (default ``models/<task>``, loaded only if its
identity is the task's) and, when ``learning`` is on, keeps training it on a wall-clock timer.
Every ``save_period_s`` after new updates it writes a checkpoint into ``output_dir`` (atomic;
with the start model's metadata, its identity included), which the ``mpc_actor`` can
hot-reload; diagnostics name it (``checkpoint_dir``). Without a model at ``model_path`` the
node stays up, publishes an ERROR diagnostic naming the path, and loads the model once it
appears.

Publishes:
- ``/hlai/surprise`` (std_msgs/Float32), once per transition: the normalised one-step
  prediction error (`hlai_ros.world_model.surprise`); 1 is an error as large as a typical
  one-step change.
- ``/hlai/imagined`` (visualization_msgs/MarkerArray), once per state: one LINE_STRIP per
  ensemble member (namespace ``world_model``, id = member) of the goal-relevant position
  (`Task.position_indices`) over ``imagine_horizon`` steps under the last command (zero before
  any), in the ``world`` frame at height ``marker_height_m``.
- ``/diagnostics``.

Latent mode (a latent ``model_path`` folder): the same on the planning states of ``/hlai/latent``
(layout checked) instead of ``/hlai/state``, training the folder's planning dynamics into
checkpoints the latent ``mpc_actor`` hot-reloads; ``/hlai/imagined`` through the folder's plan
probe, none without one (diagnostics ``probe`` says why).
"""
from __future__ import annotations

import time

from geometry_msgs.msg import Point
import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import ColorRGBA, Float32, Float32MultiArray, String
import torch
from visualization_msgs.msg import Marker, MarkerArray

from hlai_ros.contract import EPISODE, IMAGINED, LATENT, STATE, SURPRISE, WORLD_FRAME
from hlai_ros.nodes.convert import episode_marker, message_class, state_from_message
from hlai_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.latent_io import latent_parts
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.tasks import get_task
from hlai_ros.world_model.live import LiveLearner, WorldModelNodeConfig, torch_device

__all__ = ['WorldModelNode', 'WorldModelNodeConfig', 'main']


class WorldModelNode(Node):
    """Online world-model learning, surprise and imagined rollouts; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('world_model', **kwargs)
        self.params = NodeParameters(self, WorldModelNodeConfig, on_change=self._on_params)
        cfg = self.params.config
        torch.set_num_threads(cfg.torch_threads)
        self.task = get_task(cfg.task)
        self.live = LiveLearner(self.task, cfg, torch_device(cfg.device))
        latent = self.live.representation == 'latent'
        self.topic, self._parse = (LATENT, latent_parts) if latent else (STATE,
                                                                         state_from_message)
        self._report_model()
        self.errors = {'state_errors': 0, 'last_error': '', 'state_ms': 0.0}
        self._state_ok = True
        command = self.task.embodiment.command
        sub = self.create_subscription
        sub(String, EPISODE.name, self._on_episode, 100)
        sub(message_class(command.msgtype), command.name, self._on_command, 10)
        sub(Float32MultiArray, self.topic.name, self._on_state, 10)
        self.surprise_pub = self.create_publisher(Float32, SURPRISE.name, 10)
        self.imagined_pub = self.create_publisher(MarkerArray, IMAGINED.name, 10)
        self.diagnostics = DiagnosticsPublisher(self, 'online learning', str(self.live.device))
        # Learning and saving follow the wall clock, also under use_sim_time: they are about
        # compute, and a paused simulation must not stop a checkpoint.
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.periodic = {}
        self._on_params(cfg)
        self.create_timer(1.0, self._publish_diagnostics, clock=self.steady)

    def _report_model(self) -> None:
        live = self.live
        if live.model is None:
            self.get_logger().error(live.error, throttle_duration_sec=30.0)
        else:
            self.get_logger().info(f'{live.representation} world model {live.model_path} '
                                   f'loaded on {live.device}; checkpoints go to '
                                   f'{live.output_dir}' + (f'; {live.probe_note}'
                                                           if live.probe_note else ''))

    def _on_params(self, cfg: WorldModelNodeConfig) -> None:
        if not hasattr(self, 'live'):
            return  # the first config, before there is anything to apply it to
        self.live.configure(cfg)
        if not hasattr(self, 'periodic'):
            return
        for callback, period in ((self._update, cfg.update_period_s),
                                 (self._save, cfg.save_period_s)):
            timer = self.periodic.get(callback.__name__)
            if timer is not None and abs(timer.timer_period_ns - period * 1e9) <= 1:
                continue
            if timer is not None:
                self.destroy_timer(timer)
            self.periodic[callback.__name__] = self.create_timer(period, callback,
                                                                 clock=self.steady)

    def _on_episode(self, msg) -> None:
        marker = episode_marker(msg)
        if marker is not None and marker.get('event') in ('start', 'end'):
            self.live.reset()

    def _on_command(self, msg) -> None:
        self.live.on_command(self.task.embodiment.decode_command(msg),
                             self.get_clock().now().nanoseconds)

    def _on_state(self, msg) -> None:
        start = time.perf_counter()
        try:
            parsed = self._parse(msg)
            state, measured = self.live.read_state(*parsed), self.live.measured(*parsed)
        except ValueError as exc:
            self.errors['state_errors'] += 1
            self.errors['last_error'], self._state_ok = str(exc), False
            self.get_logger().warn(f'{self.topic.name}: {exc}', throttle_duration_sec=5.0)
            return
        self._state_ok = True
        if not np.all(np.isfinite(state)):
            return
        surprise = self.live.on_state(state, self.get_clock().now().nanoseconds, measured)
        if surprise is not None:
            self.surprise_pub.publish(Float32(data=surprise))
        if self.live.model is not None:
            paths = self.live.imagined_positions(state)
            if paths is not None:  # None: latent mode without a plan probe
                self._publish_imagined(paths)
            self.errors['state_ms'] = 1e3 * (time.perf_counter() - start)

    def _publish_imagined(self, paths: np.ndarray) -> None:
        z = self.params.config.marker_height_m
        stamp, markers = self.get_clock().now().to_msg(), MarkerArray()
        for member, path in enumerate(paths):
            marker = Marker(ns='world_model', id=member, type=Marker.LINE_STRIP,
                            action=Marker.ADD, frame_locked=False)
            marker.header.frame_id, marker.header.stamp = WORLD_FRAME, stamp
            marker.pose.orientation.w, marker.scale.x = 1.0, 0.005
            hue = member / max(len(paths), 1)
            marker.color = ColorRGBA(r=0.2 + 0.6 * hue, g=0.4, b=1.0 - 0.6 * hue, a=0.8)
            marker.points = [Point(x=float(p[0]), y=float(p[1]), z=z) for p in path]
            markers.markers.append(marker)
        self.imagined_pub.publish(markers)

    def _update(self) -> None:
        if self.live.poll():
            self._report_model()
        self.live.update()

    def _save(self) -> None:
        try:
            path = self.live.save()
        except OSError as exc:
            self.errors['last_error'] = (f'checkpoint not written to {self.live.output_dir}: '
                                         f'{exc}')
            self.get_logger().error(self.errors['last_error'], throttle_duration_sec=30.0)
            return
        if path is not None:
            self.get_logger().info(f'checkpoint {self.live.stats["checkpoints"]} '
                                   f'({self.live.stats["updates"]} updates) -> {path}',
                                   throttle_duration_sec=60.0)

    def _publish_diagnostics(self) -> None:
        live, cfg = self.live, self.params.config
        values = dict(live.stats, **self.errors, checkpoint_dir=str(live.output_dir),
                      start_model=str(live.model_path), learning=cfg.learning,
                      representation=live.representation, probe=live.probe_note or 'ok',
                      recent_transitions=0 if live.learner is None else len(live.learner))
        if live.model is None:
            level, message = ERROR, live.error
        elif not self._state_ok:
            level, message = WARN, self.errors['last_error']
        else:
            level, message = OK, 'learning' if cfg.learning else 'learning off'
        self.diagnostics.publish(level, message, values)


def main(args=None):
    """Run the world model node (building an optimiser first: torch's slow first import).

    Done before the node joins the graph, so that the simulator, which starts once the nodes
    it waits for are present, does not run episodes while this node is still starting.
    """
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    spin_node(WorldModelNode, args)


if __name__ == '__main__':
    main()
