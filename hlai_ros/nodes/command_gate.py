"""The `command_gate` node: the safety layer between any controller and the robot (twist_mux-like).

Takes the controller's command on ``/hlai/actor_command`` (the controller's command topic is
remapped there; the robot's command type), applies `hlai_ros.safety.SafetyGate` and publishes
the result on the robot's command topic (its embodiment's; remap onto the driver).

- Every accepted input command is answered at once with its safe version.
- Watchdog (wall clock): no fresh command for ``command_timeout_s`` -> zero, repeated at
  ``rate_hz``; with ``lockstep`` one zero goes out only when the input has no publisher left.
- Workspace: the position comes from ``/hlai/state`` (``position_labels``, default the robot's
  pose labels in its state frame); without a fresh one the command is zero.
- E-stop: ``True`` on ``/hlai/estop`` latches; only the ``~/release_estop`` service
  (std_srvs/Trigger) releases it, refused while ``True`` keeps coming.
- Every limit is a read-only parameter bounded by the robot's
  (`hlai_ros.safety.command_gate.CommandGateConfig`). Bad input is dropped with a
  throttled warning (`hlai_ros.nodes.guard`); ``/diagnostics`` reports the gate's state.
"""
from __future__ import annotations

import time

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Bool, Float32MultiArray
from std_srvs.srv import Trigger

from hlai_ros.contract import ACTOR_COMMAND, ESTOP, STATE
from hlai_ros.nodes.convert import message_class, state_from_message, to_cdr
from hlai_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import InputGuard
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import EStopLatch, FreshnessLimits, SafetyGate
from hlai_ros.safety.command_gate import CommandGateConfig
from hlai_ros.safety.gate import ESTOP as ESTOPPED
from hlai_ros.safety.gate import NO_POSITION, TIMEOUT, WORKSPACE
from hlai_ros.safety.inputs import frame_fault, non_finite
from hlai_ros.tasks import get_task


class CommandGateNode(Node):
    """Controller command in, safe command out; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('command_gate', **kwargs)
        cfg = self.cfg = NodeParameters(self, CommandGateConfig).config
        self.gate = SafetyGate(cfg.limits, EStopLatch(cfg.estop_hold_s))
        self.body = body = get_task(cfg.task).embodiment
        self.labels, command = cfg.position_labels or body.pose_labels, body.command
        self.guard = InputGuard(self)
        self.stamped = body.command_stamped or cfg.stamped_output
        self.out_type = 'geometry_msgs/msg/TwistStamped' if self.stamped else command.msgtype
        self.pub = self.create_publisher(message_class(self.out_type), command.name, 10)
        checks = [non_finite]
        if body.command_stamped:
            checks += [lambda m: frame_fault(m.header.frame_id, ('', body.command_frame)),
                       self.guard.stamp(ACTOR_COMMAND.name, FreshnessLimits(
                           max_age_s=cfg.command_timeout_s, max_future_s=0.5))]
        self.input = self.create_subscription(
            message_class(command.msgtype), ACTOR_COMMAND.name,
            self.guard.wrap(ACTOR_COMMAND.name, self._on_command, *checks), 10)
        self.create_subscription(Float32MultiArray, STATE.name, self.guard.wrap(
            STATE.name, self._on_state, non_finite), 10)
        self.create_subscription(Bool, ESTOP.name, self.guard.wrap(
            ESTOP.name, self._on_estop), 10)
        self.create_service(Trigger, '~/release_estop', self._on_release)
        self._last_out_s, self._lockstep_stopped = time.monotonic(), True
        self.published, self.last_reason = 0, TIMEOUT
        # Wall-clock timers: the watchdog must fire even when /clock stops (use_sim_time).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / cfg.rate_hz, self._on_timer, clock=steady)
        self.diagnostics = DiagnosticsPublisher(self, 'safety', cfg.task)
        self.create_timer(1.0, self._publish_diagnostics, clock=steady)
        self.get_logger().info(f'gating {self.input.topic_name} -> {self.pub.topic_name}: '
                               f'{cfg.limits}')

    # -- inputs -------------------------------------------------------------------------------
    def _on_command(self, msg):
        now = time.monotonic()
        if refused := self.gate.accept(self.body.decode_command(msg), now):
            raise ValueError(refused)
        self._lockstep_stopped = False
        self._emit(now)

    def _on_state(self, msg):
        names, values = state_from_message(msg)
        if missing := [n for n in self.labels if n not in names]:
            raise ValueError(f'{STATE.name} has no {missing}; labels: {list(names)}')
        position = [float(values[names.index(n)]) for n in self.labels]
        if refused := self.gate.update_position(position, time.monotonic()):
            raise ValueError(refused)

    def _on_estop(self, msg):
        if msg.data:
            if not self.gate.estop.engaged:
                self.get_logger().error(f'e-stop engaged by {ESTOP.name}; commands are zero '
                                        'until ~/release_estop is called')
            self.gate.estop.engage(f'{ESTOP.name}: True', time.monotonic())
            self._emit(time.monotonic(), stop_only=True)
        elif self.gate.estop.engaged:
            self.get_logger().warning(f'{ESTOP.name} False does not release the e-stop; call '
                                      f'{self.get_fully_qualified_name()}/release_estop',
                                      throttle_duration_sec=5.0)

    def _on_release(self, request, response):
        response.success, response.message = self.gate.estop.release(time.monotonic())
        self.get_logger().warning(response.message)
        return response

    # -- output -------------------------------------------------------------------------------
    def _on_timer(self):
        now = time.monotonic()
        if not (self.gate.estop.engaged or self.gate.watchdog.expired(now)):
            return
        if not self.cfg.lockstep:
            self._emit(now)
        elif not self._lockstep_stopped and self.count_publishers(self.input.topic_name) == 0:
            self._emit(now)  # the controller died: one zero so nothing keeps moving
            self._lockstep_stopped = True

    def _emit(self, now: float, stop_only: bool = False) -> None:
        """Publish the gate's output for `now` (with `stop_only`, only if it is a stop)."""
        period = 1.0 / self.cfg.control_hz
        dt = period if self.cfg.lockstep else min(now - self._last_out_s, 2 * period)
        action, reason = self.gate.output(now, dt)
        if stop_only and (self.cfg.lockstep or reason not in (ESTOPPED, TIMEOUT)):
            return
        self._last_out_s, self.last_reason = now, reason
        stamp = max(self.get_clock().now().nanoseconds, 0)
        msg = self.body.encode_command(action.astype(np.float32), stamp, self.stamped)
        self.pub.publish(to_cdr(msg, self.out_type))
        self.published += 1

    def _publish_diagnostics(self):
        gate, estop = self.gate, self.gate.estop
        stopped = self.last_reason in (TIMEOUT, NO_POSITION, WORKSPACE)
        self.diagnostics.publish(
            ERROR if estop.engaged else WARN if stopped else OK,
            f'e-stop engaged ({estop.reason})' if estop.engaged
            else f'last command: {self.last_reason}',
            {**{f'outputs {k}': v for k, v in gate.counts.items()},
             'estop_engaged': estop.engaged, 'estop_engagements': estop.engagements,
             'command_age_s': round(gate.watchdog.age(time.monotonic()), 3),
             'watchdog_expiries': gate.watchdog.expiries, 'refused_commands': gate.refused,
             'published': self.published})


def main(args=None):
    """Run the command gate node."""
    spin_node(CommandGateNode, args)


if __name__ == '__main__':
    main()
