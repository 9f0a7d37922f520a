"""The `sim` node: a task's PyBullet world in the ROS loop (DESIGN.md, topic contract).

Publishes what `hlai_ros.sim.session.EpisodeSession` returns: the camera, the robot's
proprioception (its embodiment's topic), ``/clock``, ``/goal_pose``, the goal image
(``/goal_image``, ``/goal_image/depth``; latched, at each start and goal move), ``/hlai/episode``
markers, the privileged ``/ground_truth/state`` and the camera extrinsics (``/tf_static``, else
``/hlai/camera_extrinsics``). Takes the robot's command and ``/goal_pose``; ``~/reset``
(std_srvs/Trigger) ends the episode and starts the next. ``lockstep``: one control period per
command (the observation is republished after ``republish_period_s`` without one); ``realtime``:
a wall-clock timer, the last command held for ``command_timeout_s`` of simulated time. Bad
input (`hlai_ros.nodes.guard`: NaN/Inf, foreign frames, bad stamps, goals off the world) is
dropped with a throttled warning and counted on ``/diagnostics``.
"""
from __future__ import annotations

import json
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_srvs.srv import Trigger

from hlai_ros.contract import (
    CAMERA_EXTRINSICS,
    CLOCK,
    EPISODE,
    GOAL,
    GOAL_DEPTH,
    GOAL_IMAGE,
    GROUND_TRUTH,
    TF_STATIC,
    WORLD_FRAME,
    Topic,
    sensor_topics,
)
from hlai_ros.data import messages
from hlai_ros.nodes.convert import has_message, message_class, to_cdr
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import InputGuard
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import FreshnessLimits
from hlai_ros.safety.inputs import frame_fault, non_finite
from hlai_ros.sim.session import EpisodeSession, SimNodeConfig


def _qos(topic: Topic) -> QoSProfile:
    """A publisher's profile: the contract's durability, history deep enough for a recorder."""
    if topic.qos.latched:
        return QoSProfile(depth=topic.qos.depth, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(depth=max(10, topic.qos.depth), durability=DurabilityPolicy.VOLATILE)


class SimNode(Node):
    """Publishes what `EpisodeSession` returns; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('sim', **kwargs)
        from hlai_ros.config import world_config

        self.params = NodeParameters(self, SimNodeConfig, on_change=self._reconfigure)
        cfg = self.params.config
        world = NodeParameters(self, type(world_config(cfg.task)), read_only=True).config
        self.session = s = EpisodeSession(cfg.task, world, cfg.seed, cfg.episodes,
                                          cfg.max_steps or None)
        extrinsics = TF_STATIC if has_message(TF_STATIC.msgtype) else CAMERA_EXTRINSICS
        self._pub = {t.name: self.create_publisher(message_class(t.msgtype), t.name, _qos(t))
                     for t in (*sensor_topics(s.embodiment), CLOCK, GROUND_TRUTH, EPISODE, GOAL,
                               GOAL_IMAGE, GOAL_DEPTH, extrinsics)}
        body, command = s.embodiment, s.embodiment.command
        self.guard = InputGuard(self)
        checks = [non_finite]
        if body.command_stamped:
            checks += [lambda m: frame_fault(m.header.frame_id, ('', body.command_frame)),
                       self.guard.stamp(command.name, FreshnessLimits(
                           max_age_s=max(1.0, cfg.command_timeout_s), max_future_s=1.0),
                           clock=lambda: s.stamp_ns)]
        self.create_subscription(message_class(command.msgtype), command.name,
                                 self.guard.wrap(command.name, self._on_command, *checks), 10)
        self.create_subscription(message_class(GOAL.msgtype), GOAL.name, self.guard.wrap(
            GOAL.name, self._on_goal, non_finite,
            lambda m: frame_fault(m.header.frame_id, ('', WORLD_FRAME)), self._goal_fault), 10)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self._command = np.zeros(s.env.action_space.shape, np.float32)
        self._command_ns = -1
        self._last_publish = time.monotonic()
        self._started, self._nodes_seen, self._tick_timer = False, None, None
        self._start_timer = self.create_timer(0.1, self._try_start)
        self.create_timer(0.1, self._republish)
        self.diagnostics = DiagnosticsPublisher(self, 'simulation', cfg.task)
        self._rate_window = (time.monotonic(), s.tick)
        self.create_timer(1.0, self._publish_diagnostics)
        tf = s.extrinsics_message()
        self._send([(extrinsics, messages.tf_message([tf]) if extrinsics is TF_STATIC else tf)])

    def _send(self, items) -> None:
        """Publish [(topic, typestore message)]; log the episode markers among them."""
        for topic, msg in items:
            self._pub[topic.name].publish(to_cdr(msg, topic.msgtype))
            if topic is EPISODE:
                self.get_logger().info(f'{EPISODE.name}: {msg.data}')
            elif topic is CLOCK:
                self._last_publish = time.monotonic()
        if any(topic is EPISODE for topic, _ in items):
            self._command[:], self._command_ns = 0.0, -1

    def _try_start(self):
        missing = set(self.params.config.wait_for_nodes) - set(self.get_node_names())
        if missing:
            self.get_logger().info(f'waiting for nodes {sorted(missing)}',
                                   throttle_duration_sec=5.0)
            return
        self._nodes_seen = self._nodes_seen or time.monotonic()
        if time.monotonic() - self._nodes_seen < self.params.config.start_delay_s:
            return
        self._start_timer.cancel()
        self._started = True
        self._send(self.session.begin())
        self._reconfigure(self.params.config)

    # -- inputs -----------------------------------------------------------------------------
    def _on_command(self, msg):
        action = self.session.embodiment.decode_command(msg)
        if not np.all(np.isfinite(action)):
            raise ValueError(f'non-finite command {action}')
        self._command, self._command_ns = action, self.session.stamp_ns
        if self._started and self.params.config.mode == 'lockstep':
            self._send(self.session.answer(action))

    def _goal_fault(self, msg) -> str:
        goal = messages.pose_to_goal(msg)
        if self.session.world.distance_to_edge(goal) < 0:
            return f'workspace: goal {goal.tolist()} is off the {self.session.task.name} world'
        return ''

    def _on_goal(self, msg):
        if self.session.open and self.session.set_goal(messages.pose_to_goal(msg)):
            self._send(self.session.goal_image_messages())  # (the guard checked the goal)

    def _on_reset(self, request, response):
        s = self.session
        response.success, response.message = False, 'the first episode has not started'
        if self._started:
            self._send(s.finish(reason='reset') if s.open else [])
            s.next_due = False
            response.message = 'all episodes have run'
        if self._started and not s.finished:
            self._send(s.begin())
            response.success = True
            response.message = json.dumps({'episode': s.episode, 'seed': s.seed + s.episode})
        return response

    # -- timers -----------------------------------------------------------------------------
    def _reconfigure(self, cfg: SimNodeConfig):
        self.session.ground_truth = cfg.publish_ground_truth
        if self._tick_timer is not None:
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        if self._started and cfg.mode == 'realtime':
            period = self.session.dt_ns * 1e-9 / cfg.real_time_factor
            self._tick_timer = self.create_timer(period, self._realtime_tick)

    def _realtime_tick(self):
        timeout_ns = int(self.params.config.command_timeout_s * 1e9)
        fresh = self._command_ns >= 0 and self.session.stamp_ns - self._command_ns <= timeout_ns
        self._send(self.session.advance(self._command if fresh else 0 * self._command))

    def _republish(self):
        cfg, s = self.params.config, self.session
        if (self._started and cfg.mode == 'lockstep'
                and time.monotonic() - self._last_publish >= cfg.republish_period_s):
            self._send(s.begin() if s.next_due else s.observation() if s.open else [])

    def _publish_diagnostics(self):
        s, cfg, now = self.session, self.params.config, time.monotonic()
        (start, start_tick), self._rate_window = self._rate_window, (now, s.tick)
        rate = (s.tick - start_tick) / (now - start) if now > start else 0.0
        values = {'mode': cfg.mode, 'episode': s.episode, 'step': s.steps,
                  'sim_time_s': s.stamp_ns * 1e-9, 'control_rate_hz': round(rate, 2),
                  'target_rate_hz': (1e9 / s.dt_ns) * cfg.real_time_factor
                  if cfg.mode == 'realtime' else 'lockstep'}
        status = ('waiting for nodes before the first episode' if not self._started
                  else 'all episodes have run' if s.finished else 'running')
        self.diagnostics.publish(OK if self._started else WARN, status, values)

    def destroy_node(self):
        """Close the simulator, then the node."""
        self.session.close()
        return super().destroy_node()


def main(args=None):
    """Run the sim node."""
    spin_node(SimNode, args)


if __name__ == '__main__':
    main()
