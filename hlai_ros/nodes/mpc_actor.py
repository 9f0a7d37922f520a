"""The `mpc_actor` node: the learned closed loop's actor (DESIGN.md: Actor), on the `Stack`.

In: ``/hlai/state`` (`Task.decode`), ``/goal_pose`` (overrides the state's goal until the next
episode start), ``/hlai/episode`` (start: reset), ``/hlai/estop``, ``/hlai/cost_profile`` (the
configurator's profile, applied with `Stack.reconfigure`; a bad one is refused and counted).
Out: the embodiment's command, ``/hlai/plan`` (nav_msgs/Path: the plan's predicted
`Task.position_indices`, ensemble mean, in the embodiment's state frame), ``/diagnostics``
(plan time, deadline misses, model, reloads, the profile in effect and its digest).

- **Every new state is answered with one command**, planned on arrival (a lockstep simulator
  under ``use_sim_time`` waits for it). A state that cannot be read or is not finite gets zero.
- **Watchdog** (node clock, every control period): state older than ``state_timeout_s``
  makes the command zero every period until a fresh state comes.
- **Deadline**: a plan longer than ``deadline_s`` (wall clock) is counted; with
  ``enforce_deadline`` its action becomes `Stack.fallback` (the policy's), or zero.
- **E-stop** (`hlai_ros.safety.EStopLatch`, as the ``command_gate``): ``true`` latches zero
  commands; ``false`` does not release it, ``~/release_estop`` (std_srvs/Trigger) does.
- **Hot reload**: every ``reload_period_s`` the world model in ``watch`` (default: the model
  folder) is checked; a new one is swapped in between two plans (`Stack.swap_model`); one
  for another task or broken is refused and the old one stays (``reload_error``).
- **Profile**: it starts from ``profile_file``'s ``cost_critic`` section (default
  config/<task>.yaml); parameters: `hlai_ros.actor.supervision.ActorConfig`.
- **Latent mode** (a latent ``model``, `hlai_ros.nodes.latent_io.ActorInputs`): ``/hlai/latent``
  to ``/hlai/latent_goal`` (zero until it came), planning dynamics hot-reloaded, the profile's
  planner settings only, no policy; ``/hlai/plan`` only through the folder's plan probe;
  event heads that read pixels also take the camera's frames (``/camera/...``) as their scene.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_srvs.srv import Trigger

from hlai_ros.actor import supervision
from hlai_ros.contract import EPISODE, ESTOP, PLAN, PROFILE
from hlai_ros.nodes import convert
from hlai_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.latent_io import ActorInputs
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import EStopLatch
from hlai_ros.world_model.checkpoint import CheckpointError

LEVELS = {'ok': OK, 'warn': WARN, 'error': ERROR}  # by the names of `supervision.status`


class MpcActorNode(Node):
    """Labelled state in, planned command out; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('mpc_actor', **kwargs)
        self.params = NodeParameters(self, supervision.ActorConfig)
        cfg = self.params.config
        try:
            self.task, self.stack, self.reload = supervision.build(cfg)
        except CheckpointError as exc:
            self.get_logger().fatal(f'model refused: {exc}')
            raise
        self.stats, self.emb = supervision.ActorStats(), self.task.embodiment
        self.latch, self.inputs = EStopLatch(), ActorInputs(self.task, self.stack)
        self.watch = supervision.StateWatch()
        # In this order: with several messages ready, the executor serves markers, the e-stop
        # and profiles before a state (STATE has depth 1: a slow planner plans the newest).
        for topic, callback in ((EPISODE, self._on_episode), (ESTOP, self._on_estop),
                                (PROFILE, self._on_profile),
                                (self.inputs.goal_topic, self._on_goal),
                                *self.inputs.scene_topics(),
                                (self.inputs.state_topic, self._on_state)):
            self.create_subscription(convert.message_class(topic.msgtype), topic.name, callback,
                                     convert.qos_profile(topic.qos))
        self.create_service(Trigger, '~/release_estop', self._on_release)
        self.pub, self.plan_pub = (self.create_publisher(
            convert.message_class(t.msgtype), t.name, convert.qos_profile(t.qos))
            for t in (self.emb.command, PLAN))
        self.diagnostics = DiagnosticsPublisher(self, 'planning', str(self.stack.device))
        self.create_timer(1.0 / cfg.control_hz, self._watchdog)
        self.create_timer(0.5, self._housekeeping, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.stack.warm_up()  # last: a state that arrives meanwhile waits in its queue
        self.get_logger().info(f'{cfg.task}: {supervision.describe(self.stack)}')

    # -- inputs -----------------------------------------------------------------------------
    def _on_episode(self, msg):
        marker = convert.episode_marker(msg)
        if marker is not None and marker.get('event') == 'start':
            self.stack.reset()
            self.inputs.reset()

    def _on_estop(self, msg):
        if msg.data:
            if not self.latch.engaged:
                self.get_logger().warning(f'{ESTOP.name}: e-stop engaged; zero commands until '
                                          '~/release_estop is called')
            self.latch.engage(f'{ESTOP.name}: True', time.monotonic())
            self._publish_command(None)
        elif self.latch.engaged:
            self.get_logger().warning(f'{ESTOP.name}: False does not release the e-stop; call '
                                      '~/release_estop', throttle_duration_sec=5.0)
        self._publish_diagnostics(force=True)

    def _on_release(self, request, response):
        was = self.latch.engaged
        response.success, response.message = self.latch.release(time.monotonic())
        if was and response.success:
            self.stack.reset()
            self.get_logger().info(response.message)
        self._publish_diagnostics(force=True)
        return response

    def _on_profile(self, msg):
        error = self.inputs.apply_profile(msg.data, self.stats)
        if error:
            self.get_logger().warning(f'{PROFILE.name}: profile refused, keeping the one in '
                                      f'effect: {error}')
        self._publish_diagnostics(force=True)

    def _on_goal(self, msg):
        if fault := self.inputs.on_goal(msg):
            self.get_logger().warning(fault, throttle_duration_sec=1.0)

    def _on_state(self, msg):
        self.watch.fresh(self.get_clock().now().nanoseconds)
        try:
            percept = self.inputs.percept(msg)
        except ValueError as exc:
            self.stats.state_faults += 1
            self.get_logger().warning(f'{self.inputs.state_topic.name}: {exc}; zero command',
                                      throttle_duration_sec=1.0)
            return self._publish_command(None)
        if self.latch.engaged:
            return self._publish_command(None)
        cfg = self.params.config
        action, plan, late = supervision.act(self.stack, percept, self.stats, cfg.budget_s,
                                             cfg.enforce_deadline)
        self._publish_plan(percept, plan.actions)
        if late:
            self.get_logger().warning(late, throttle_duration_sec=1.0)
        self._publish_command(action)
        self._publish_diagnostics()

    # -- outputs ----------------------------------------------------------------------------
    def _publish_command(self, action: np.ndarray | None) -> None:
        """Publish `action` (A,), or zero velocity for None."""
        action = supervision.command(action, self.task.action_dim, self.stats)
        msg = self.emb.encode_command(action, max(self.get_clock().now().nanoseconds, 0))
        self.pub.publish(convert.to_cdr(msg, self.emb.command.msgtype))

    def _publish_plan(self, percept, actions) -> None:
        path = self.inputs.plan_path(percept, actions)
        if path is not None:  # None: a latent plan without a probe (keypoints, not metres)
            self.plan_pub.publish(convert.planar_path(
                path[0], self.get_clock().now().nanoseconds, path[1]))

    def _publish_diagnostics(self, force: bool = False) -> None:
        level, text, values = supervision.status(self.params.config, self.stack, self.stats,
                                                 self.reload.folder, self.latch.engaged,
                                                 self.watch.stale)
        values.update(self.inputs.notes())
        self.diagnostics.publish(LEVELS[level], text, values, force=force)

    # -- timers -----------------------------------------------------------------------------
    def _watchdog(self):
        """Every control period (node clock): zero command on stale state or e-stop."""
        if self.watch.last_ns is None:
            return  # nothing to command yet (a lockstep simulator waits for a real answer)
        now, timeout = self.get_clock().now().nanoseconds, self.params.config.timeout_s
        if (age_s := self.watch.check(now, timeout)) is not None:
            self.get_logger().warning(f'{self.inputs.state_topic.name}: no state for '
                                      f'{age_s:.2f} s; zero commands until it is fresh again')
        if self.watch.stale or self.latch.engaged:
            self._publish_command(None)

    def _housekeeping(self):
        """Wall clock: diagnostics at least once a second, hot reload when due."""
        if self.reload.due(time.monotonic(), self.params.config.reload_period_s):
            self._reload()
        self._publish_diagnostics()

    def _reload(self):
        """Swap in a new world model between two plans; a refused one leaves the old."""
        report = supervision.reload_model(self.stack, self.reload.watcher, self.stats)
        if report:
            # one call site per severity: rclpy refuses a severity change at a call site
            if self.stats.reload_error:
                self.get_logger().error(f'{self.reload.folder}: {report}')
            else:
                self.get_logger().info(f'{self.reload.folder}: {report}')
            self._publish_diagnostics(force=True)


def main(args=None):
    """Run the mpc_actor node; a refused model stops it with the reason."""
    try:
        spin_node(MpcActorNode, args)
    except CheckpointError as exc:
        sys.exit(f'mpc_actor: {exc}')


if __name__ == '__main__':
    main()
