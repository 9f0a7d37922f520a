"""The `sim` node: a PyBullet world in the ROS loop (DESIGN.md, topic contract).

Publishes the camera (``/camera/image_raw`` rgb8, ``/camera/depth/image_raw`` 32FC1 metres,
``/camera/camera_info``, one stamp and frame), ``/joint_states`` (push) or ``/odom`` (cliff),
``/clock``, ``/goal_pose`` at each episode start, ``/hlai/episode`` markers, the privileged
``/ground_truth/state`` (evaluation only) and the camera extrinsics: on ``/tf_static``
(tf2_msgs/TFMessage) where tf2_msgs is installed, else on ``/hlai/camera_extrinsics``
(geometry_msgs/TransformStamped, transient local). Takes the task's command topic and
``/goal_pose``; offers ``~/reset`` (std_srvs/Trigger: end the episode, start the next).

Modes: ``lockstep`` advances one control period per received command (deterministic
evaluation; the last observation is published again after ``republish_period_s`` without a
command, so a lost message cannot stall the loop: a controller answers every observation it
gets, so ``republish_period_s`` must exceed its slowest answer; the answer to an episode's
final observation is not applied but starts the next episode, so it never leaks into it);
``realtime`` advances at ``real_time_factor`` on a wall-clock timer, holding the last command
for ``command_timeout_s`` of simulated time, then commanding zero velocity.

Bad input (`hlai_ros.nodes.guard`) is dropped with a throttled warning and counted on
``/diagnostics`` (``sim: inputs``): commands with NaN/Inf, or (TwistStamped) a frame other
than ``world`` or a stamp that is stale, from the future or out of order against simulated
time; goals with NaN/Inf, in another frame, or off the table (push) or platform (cliff).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_srvs.srv import Trigger

from hlai_ros.data import messages
from hlai_ros.contract import (
    CLOCK,
    COMMAND_TOPIC,
    EPISODE,
    GOAL,
    GROUND_TRUTH,
    TF_STATIC,
    WORLD_FRAME,
    Topic,
    sensor_topics,
)
from hlai_ros.nodes.convert import has_message, message_class, to_cdr
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import InputGuard, frame_fault, non_finite
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import FreshnessLimits

CAMERA_EXTRINSICS = Topic('/hlai/camera_extrinsics', 'geometry_msgs/msg/TransformStamped')
"""Where the extrinsics go when tf2_msgs cannot be imported (the pip-installed ROS)."""
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class SimNodeConfig:
    """Parameters of the `sim` node (the world's own settings are declared beside them)."""

    task: str = field(default='push', metadata={'read_only': True})
    """World to run: 'push' or 'cliff'."""
    mode: str = 'lockstep'
    """'lockstep': one control period per command; 'realtime': a wall-clock timer."""
    real_time_factor: float = 1.0
    """Realtime mode: simulated seconds per wall-clock second (> 0)."""
    command_timeout_s: float = 0.5
    """Realtime mode: a command older than this (simulated s) is replaced by zero velocity."""
    republish_period_s: float = 1.0
    """Lockstep mode: wall-clock seconds without a command before the last observation is
    published again."""
    seed: int = field(default=0, metadata={'read_only': True})
    """Seed of episode 0; episode i uses seed + i."""
    episodes: int = field(default=0, metadata={'read_only': True})
    """Episodes to run, then idle; 0 runs until stopped."""
    max_steps: int = field(default=0, metadata={'read_only': True})
    """Time limit in control steps; 0 keeps the world's registered limit."""
    wait_for_nodes: tuple[str, ...] = field(default=(), metadata={'read_only': True})
    """Node names that must be in the graph before the first episode starts."""
    start_delay_s: float = field(default=1.0, metadata={'read_only': True})
    """Wall-clock seconds between those nodes appearing and the first episode, for their
    publishers and subscriptions to match each other (DDS endpoint discovery)."""
    publish_ground_truth: bool = True
    """Publish /ground_truth/state (privileged; evaluation and the scripted baseline only)."""

    def __post_init__(self):
        if self.task not in ('push', 'cliff'):
            raise ValueError(f"task must be 'push' or 'cliff', got {self.task!r}")
        if self.mode not in ('lockstep', 'realtime'):
            raise ValueError(f"mode must be 'lockstep' or 'realtime', got {self.mode!r}")
        for name in ('real_time_factor', 'command_timeout_s', 'republish_period_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        if not 0 <= self.start_delay_s <= 60:
            raise ValueError(f'start_delay_s must be in [0, 60], got {self.start_delay_s}')
        if self.real_time_factor > 100:
            raise ValueError(f'real_time_factor must be at most 100, got {self.real_time_factor}')
        if self.episodes < 0 or self.max_steps < 0:
            raise ValueError('episodes and max_steps must be >= 0 (0: no limit of our own)')


class SimNode(Node):
    """Wraps `EpisodeSession` (hlai_ros.nodes.episodes); see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('sim', **kwargs)
        from hlai_ros.config import world_config
        from hlai_ros.nodes.episodes import EpisodeSession

        self.params = NodeParameters(self, SimNodeConfig, on_change=self._reconfigure)
        cfg = self.params.config
        world = NodeParameters(self, type(world_config(cfg.task)), read_only=True).config
        self.session = EpisodeSession(cfg.task, world, cfg.seed, cfg.episodes,
                                      cfg.max_steps or None)
        self._pub = {}
        for topic in sensor_topics(cfg.task):
            self._pub[topic.name] = self.create_publisher(message_class(topic.msgtype),
                                                          topic.name, 10)
        for topic, qos in ((CLOCK, 10), (GROUND_TRUTH, 10), (EPISODE, 100), (GOAL, LATCHED)):
            self._pub[topic.name] = self.create_publisher(message_class(topic.msgtype),
                                                          topic.name, qos)
        self._extrinsics = TF_STATIC if has_message(TF_STATIC.msgtype) else CAMERA_EXTRINSICS
        self._pub[self._extrinsics.name] = self.create_publisher(
            message_class(self._extrinsics.msgtype), self._extrinsics.name, LATCHED)
        command = COMMAND_TOPIC[cfg.task]
        self.command_topic = command.name
        self.guard = InputGuard(self)
        checks = [non_finite]
        if command.msgtype.endswith('TwistStamped'):
            checks += [lambda m: frame_fault(m.header.frame_id, ('', WORLD_FRAME)),
                       self.guard.stamp(command.name, FreshnessLimits(
                           max_age_s=max(1.0, cfg.command_timeout_s), max_future_s=1.0),
                           clock=lambda: self.session.stamp_ns)]
        self.create_subscription(message_class(command.msgtype), command.name,
                                 self.guard.wrap(command.name, self._on_command, *checks), 10)
        self.create_subscription(message_class(GOAL.msgtype), GOAL.name, self.guard.wrap(
            GOAL.name, self._on_goal, non_finite,
            lambda m: frame_fault(m.header.frame_id, ('', WORLD_FRAME)), self._goal_fault), 10)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self._command = np.zeros(self.session.env.action_space.shape, np.float32)
        self._command_ns = -1
        self._last_publish = time.monotonic()
        self._started = False
        self._next_episode_due = False
        self._nodes_seen = None
        self._start_timer = self.create_timer(0.1, self._try_start)
        self._tick_timer = None
        self._republish_timer = self.create_timer(0.1, self._republish)
        self.diagnostics = DiagnosticsPublisher(self, 'simulation', cfg.task)
        self._rate_window = (time.monotonic(), self.session.tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self._publish_extrinsics()

    # -- episodes ---------------------------------------------------------------------------
    def _try_start(self):
        missing = set(self.params.config.wait_for_nodes) - set(self.get_node_names())
        if missing:
            self.get_logger().info(f'waiting for nodes {sorted(missing)}',
                                   throttle_duration_sec=5.0)
            return
        if self._nodes_seen is None:
            self._nodes_seen = time.monotonic()
        if time.monotonic() - self._nodes_seen < self.params.config.start_delay_s:
            return
        self._start_timer.cancel()
        self._started = True
        self._start_episode()
        self._reconfigure(self.params.config)

    def _start_episode(self):
        marker = self.session.start()
        self._command[:] = 0.0
        self._command_ns = -1
        self._publish(EPISODE, messages.string(json.dumps(marker)))
        self._publish(GOAL, self.session.goal_message())
        self._publish_observation()
        self.get_logger().info(f'episode {marker["episode"]} started (seed {marker["seed"]})')

    def advance(self, action) -> None:
        """Step the world one control period with `action`, publish, roll episodes over."""
        if not self.session.open:
            return
        if self.session.step(action):
            self._publish_observation()
            marker = self.session.end()
            self._publish(EPISODE, messages.string(json.dumps(marker)))
            self.get_logger().info(f'episode {marker["episode"]} ended: success '
                                   f'{marker["success"]}, failure {marker["failure"]}, '
                                   f'{marker["steps"]} steps')
            if not self.session.finished:
                if self.params.config.mode == 'lockstep':
                    # The controller answers the final observation too: that answer (or the
                    # republish timer) starts the next episode, so no command meant for this
                    # episode is ever applied to the next one.
                    self._next_episode_due = True
                else:
                    self._start_episode()
            return
        self._publish_observation()

    # -- publishing -------------------------------------------------------------------------
    def _publish(self, topic: Topic, msg) -> None:
        self._pub[topic.name].publish(to_cdr(msg, topic.msgtype))

    def _publish_observation(self):
        self._publish(CLOCK, self.session.clock_message())
        for topic, msg in self.session.sensor_messages():
            self._publish(topic, msg)
        if self.params.config.publish_ground_truth:
            self._publish(GROUND_TRUTH, self.session.ground_truth_message())
        self._last_publish = time.monotonic()

    def _publish_extrinsics(self):
        tf = self.session.extrinsics_message()
        if self._extrinsics is TF_STATIC:
            self._publish(TF_STATIC, messages.tf_message([tf]))
        else:
            self._publish(CAMERA_EXTRINSICS, tf)

    # -- inputs -----------------------------------------------------------------------------
    def _on_command(self, msg):
        action = messages.command_to_action(msg, self.session.task)
        if not np.all(np.isfinite(action)):
            self.get_logger().warn(f'{self.command_topic}: non-finite command {action} ignored',
                                   throttle_duration_sec=1.0)
            return
        self._command = action
        self._command_ns = self.session.stamp_ns
        if self._started and self.params.config.mode == 'lockstep':
            if self._next_episode_due:
                self._next_episode_due = False
                self._start_episode()
                return
            self.advance(action)

    def _goal_fault(self, msg) -> str:
        goal = messages.pose_to_goal(msg)
        if self.session.world.distance_to_edge(goal) < 0:
            return f'workspace: goal {goal.tolist()} is off the {self.session.task} world\'s area'
        return ''

    def _on_goal(self, msg):
        frame = msg.header.frame_id.lstrip('/')
        goal = messages.pose_to_goal(msg)
        if frame not in ('', 'world') or not np.all(np.isfinite(goal)):
            self.get_logger().warn(f'{GOAL.name}: goal {goal} in frame {frame!r} ignored; '
                                   "expected finite x, y in frame 'world'",
                                   throttle_duration_sec=1.0)
            return
        if self.session.open:
            self.session.set_goal(goal)

    def _on_reset(self, request, response):
        if not self._started:
            response.success, response.message = False, 'the first episode has not started'
            return response
        self._next_episode_due = False
        if self.session.open:
            marker = self.session.end(reason='reset')
            self._publish(EPISODE, messages.string(json.dumps(marker)))
        if self.session.finished:
            response.success, response.message = False, 'all episodes have run'
            return response
        self._start_episode()
        response.success = True
        response.message = json.dumps({'episode': self.session.episode,
                                       'seed': self.session.seed + self.session.episode})
        return response

    # -- timers -----------------------------------------------------------------------------
    def _reconfigure(self, cfg: SimNodeConfig):
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        if self._started and cfg.mode == 'realtime':
            period = self.session.dt_ns * 1e-9 / cfg.real_time_factor
            self._tick_timer = self.create_timer(period, self._realtime_tick)

    def _realtime_tick(self):
        timeout_ns = int(self.params.config.command_timeout_s * 1e9)
        fresh = self._command_ns >= 0 and self.session.stamp_ns - self._command_ns <= timeout_ns
        self.advance(self._command if fresh else np.zeros_like(self._command))

    def _publish_diagnostics(self):
        now, tick = time.monotonic(), self.session.tick
        start, start_tick = self._rate_window
        self._rate_window = (now, tick)
        cfg = self.params.config
        rate = (tick - start_tick) / (now - start) if now > start else 0.0
        values = {'mode': cfg.mode, 'episode': self.session.episode,
                  'step': self.session.steps, 'sim_time_s': self.session.stamp_ns * 1e-9,
                  'control_rate_hz': round(rate, 2),
                  'target_rate_hz': (1e9 / self.session.dt_ns) * cfg.real_time_factor
                  if cfg.mode == 'realtime' else 'lockstep'}
        if not self._started:
            self.diagnostics.publish(WARN, 'waiting for nodes before the first episode', values)
        elif self.session.finished:
            self.diagnostics.publish(OK, 'all episodes have run', values)
        else:
            self.diagnostics.publish(OK, 'running', values)

    def _republish(self):
        cfg = self.params.config
        if (self._started and cfg.mode == 'lockstep'
                and time.monotonic() - self._last_publish >= cfg.republish_period_s):
            if self._next_episode_due:
                self._next_episode_due = False
                self._start_episode()
            elif self.session.open:
                self._publish_observation()


    def destroy_node(self):
        """Close the simulator, then the node."""
        self.session.close()
        return super().destroy_node()

def main(args=None):
    """Run the sim node."""
    spin_node(SimNode, args)


if __name__ == '__main__':
    main()
