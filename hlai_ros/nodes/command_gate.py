"""The `command_gate` node: the safety layer between any controller and the robot (twist_mux-like).

Takes the controller's command on ``/hlai/actor_command`` (the ``mpc_actor``'s command topic is
remapped there; same type as the task's command), applies `hlai_ros.safety.SafetyGate`
(velocity, acceleration and workspace limits, the command watchdog, the e-stop latch) and
publishes the result on the task's command topic (``/servo_node/delta_twist_cmds``
TwistStamped for push, ``/cmd_vel`` Twist for cliff; remap onto the driver).

- Every accepted input command is answered at once with its safe version.
- Watchdog (wall clock): no fresh command for ``command_timeout_s`` -> zero, repeated at
  ``rate_hz``. With ``lockstep`` (a simulator that steps once per command) the gate invents no
  commands while the controller is alive: one zero goes out only when the input has no
  publisher left (the controller died).
- Workspace: the position comes from ``/hlai/state`` (``position_labels``; end-effector x, y
  in ``world`` for push, base x, y, yaw in ``odom`` for cliff); without a fresh one the
  command is zero.
- E-stop: ``True`` on ``/hlai/estop`` latches; ``False`` does not release; the release is
  the ``~/release_estop`` service (std_srvs/Trigger), refused while ``True`` keeps coming.
- Every limit is a read-only parameter bounded by the task's action range: no parameter
  change can remove or loosen them while the node runs (launch/robot.launch.py).
- Bad input (NaN/Inf, stale/future/out-of-order stamps, wrong frames) is dropped with a
  throttled warning (`hlai_ros.nodes.guard`); ``/diagnostics`` reports the gate's state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Bool, Float32MultiArray
from std_srvs.srv import Trigger

from hlai_ros.data import messages
from hlai_ros.contract import COMMAND_TOPIC, WORLD_FRAME
from hlai_ros.nodes.convert import message_class, state_from_message, to_cdr
from hlai_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import InputGuard, frame_fault, non_finite
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import EStopLatch, FreshnessLimits, SafetyGate, SafetyLimits
from hlai_ros.safety.gate import ESTOP, NO_POSITION, TIMEOUT, WORKSPACE

INPUT_TOPIC = '/hlai/actor_command'
"""Where the gate listens; the controller's command topic is remapped here."""
ESTOP_TOPIC = '/hlai/estop'
STATE_TOPIC = '/hlai/state'
ACTION_BOUNDS = {'push': (0.2, 0.2), 'cliff': (0.5, 1.0)}
"""Hard ceilings of `max_velocity`: the worlds' action ranges (sim/<task>.yaml 'action'),
which the learned models know; push (vx, vy) m/s, cliff (v m/s, omega rad/s)."""
KINEMATICS = {'push': 'holonomic', 'cliff': 'unicycle'}
POSITION_LABELS = {'push': ('ee_x', 'ee_y'), 'cliff': ('x', 'y', 'yaw')}
RO = {'read_only': True}


@dataclass(frozen=True)
class CommandGateConfig:
    """Parameters of the `command_gate` node (all fixed for the node's life)."""

    task: str = field(default='push', metadata=RO)
    """'push' (end-effector twist) or 'cliff' (base cmd_vel)."""
    max_velocity: tuple[float, ...] = field(default=(), metadata=RO)
    """Largest absolute value of each component (push vx, vy m/s; cliff v m/s, omega rad/s),
    at most the task's action range; empty: that range."""
    max_acceleration: tuple[float, ...] = field(default=(1.0, 1.0), metadata=RO)
    """Largest change per second of each component (m/s^2, rad/s^2), finite and > 0."""
    workspace_lower: tuple[float, ...] = field(default=(), metadata=RO)
    """Smallest allowed position x, y, m (push: end-effector in world; cliff: base in odom);
    empty (with workspace_upper): no workspace check."""
    workspace_upper: tuple[float, ...] = field(default=(), metadata=RO)
    """Largest allowed position x, y, m."""
    command_timeout_s: float = field(default=0.5, metadata=RO)
    """Watchdog: no fresh command for this long (wall clock, s) -> zero; in (0, 2]."""
    position_timeout_s: float = field(default=0.5, metadata=RO)
    """With a workspace: no /hlai/state for this long (s) -> zero; in (0, 2]."""
    position_labels: tuple[str, ...] = field(default=(), metadata=RO)
    """Labels of the position in /hlai/state; empty: ee_x, ee_y (push) or x, y, yaw (cliff)."""
    control_hz: float = field(default=10.0, metadata=RO)
    """Control rate: the workspace look-ahead is one period; lockstep's acceleration step."""
    rate_hz: float = field(default=20.0, metadata=RO)
    """Rate of the watchdog check and of the zero commands while the input is silent, Hz."""
    lockstep: bool = field(default=False, metadata=RO)
    """The command steps a lockstep simulator: no invented commands while the input lives."""
    stamped_output: bool = field(default=False, metadata=RO)
    """Cliff: publish geometry_msgs/TwistStamped instead of Twist (newer diff drives)."""
    estop_hold_s: float = field(default=0.5, metadata=RO)
    """A release is refused until this long after the last True on /hlai/estop, s."""

    def __post_init__(self):
        if self.task not in ACTION_BOUNDS:
            raise ValueError(f"task must be 'push' or 'cliff', got {self.task!r}")
        ceiling = np.asarray(ACTION_BOUNDS[self.task])
        if self.max_velocity and (len(self.max_velocity) != ceiling.size or not np.all(
                np.asarray(self.max_velocity) <= ceiling)):
            raise ValueError(f'max_velocity must be {ceiling.size} values, each at most the '
                             f'action range {ceiling.tolist()}, got {list(self.max_velocity)}')
        for name in ('command_timeout_s', 'position_timeout_s'):
            if not 0 < getattr(self, name) <= 2.0:
                raise ValueError(f'{name} must be in (0, 2] s, got {getattr(self, name)}')
        if not (0 < self.control_hz <= 1000 and 0 < self.rate_hz <= 1000):
            raise ValueError('control_hz and rate_hz must be in (0, 1000]')
        if self.position_labels and len(self.position_labels) != len(
                POSITION_LABELS[self.task]):
            raise ValueError(f'position_labels needs {len(POSITION_LABELS[self.task])} labels, '
                             f'got {list(self.position_labels)}')
        self.limits  # noqa: B018 - validates the limits themselves

    @property
    def limits(self) -> SafetyLimits:
        """The `SafetyLimits` these parameters describe (raises ValueError if invalid)."""
        return SafetyLimits(
            max_velocity=tuple(self.max_velocity or ACTION_BOUNDS[self.task]),
            max_acceleration=tuple(self.max_acceleration),
            command_timeout_s=self.command_timeout_s,
            workspace_lower=tuple(self.workspace_lower),
            workspace_upper=tuple(self.workspace_upper), kinematics=KINEMATICS[self.task],
            position_timeout_s=self.position_timeout_s, period_s=1.0 / self.control_hz)


class CommandGateNode(Node):
    """Controller command in, safe command out; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('command_gate', **kwargs)
        cfg = self.cfg = NodeParameters(self, CommandGateConfig).config
        self.gate = SafetyGate(cfg.limits, EStopLatch(cfg.estop_hold_s))
        self.labels = cfg.position_labels or POSITION_LABELS[cfg.task]
        self.guard = InputGuard(self)
        command = COMMAND_TOPIC[cfg.task]
        self.out_type = 'geometry_msgs/msg/TwistStamped' if (
            cfg.task == 'push' or cfg.stamped_output) else command.msgtype
        self.pub = self.create_publisher(message_class(self.out_type), command.name, 10)
        checks = [non_finite]
        if command.msgtype.endswith('TwistStamped'):
            checks += [lambda m: frame_fault(m.header.frame_id, ('', WORLD_FRAME)),
                       self.guard.stamp(INPUT_TOPIC, FreshnessLimits(
                           max_age_s=cfg.command_timeout_s, max_future_s=0.5))]
        self.input = self.create_subscription(
            message_class(command.msgtype), INPUT_TOPIC,
            self.guard.wrap(INPUT_TOPIC, self._on_command, *checks), 10)
        self.create_subscription(Float32MultiArray, STATE_TOPIC, self.guard.wrap(
            STATE_TOPIC, self._on_state, non_finite), 10)
        self.create_subscription(Bool, ESTOP_TOPIC, self.guard.wrap(
            ESTOP_TOPIC, self._on_estop), 10)
        self.create_service(Trigger, '~/release_estop', self._on_release)
        self._last_out_s = time.monotonic()
        self._lockstep_stopped = True
        self.published = 0
        self.last_reason = TIMEOUT
        # Wall-clock timers: the watchdog must fire even when /clock stops (use_sim_time).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / cfg.rate_hz, self._on_timer, clock=steady)
        self.diagnostics = DiagnosticsPublisher(self, 'safety', cfg.task)
        self.create_timer(1.0, self._publish_diagnostics, clock=steady)
        self.get_logger().info(
            f'gating {self.input.topic_name} -> {self.pub.topic_name}: max_velocity '
            f'{list(cfg.limits.max_velocity)}, max_acceleration {list(cfg.max_acceleration)}, '
            f'workspace {list(cfg.workspace_lower)}..{list(cfg.workspace_upper)}, timeout '
            f'{cfg.command_timeout_s} s')

    # -- inputs -------------------------------------------------------------------------------
    def _on_command(self, msg):
        now = time.monotonic()
        refused = self.gate.accept(messages.command_to_action(msg, self.cfg.task), now)
        if refused:
            raise ValueError(refused)
        self._lockstep_stopped = False
        self._emit(now)

    def _on_state(self, msg):
        names, values = state_from_message(msg)
        missing = [n for n in self.labels if n not in names]
        if missing:
            raise ValueError(f'/hlai/state has no {missing}; labels: {list(names)}')
        position = [float(values[names.index(n)]) for n in self.labels]
        refused = self.gate.update_position(position, time.monotonic())
        if refused:
            raise ValueError(refused)

    def _on_estop(self, msg):
        if msg.data:
            if not self.gate.estop.engaged:
                self.get_logger().error('e-stop engaged by /hlai/estop; commands are zero '
                                        'until ~/release_estop is called')
            self.gate.estop.engage(f'{ESTOP_TOPIC}: True', time.monotonic())
            self._emit(time.monotonic(), stop_only=True)
        elif self.gate.estop.engaged:
            self.get_logger().warning('/hlai/estop False does not release the e-stop; call '
                                      f'{self.get_fully_qualified_name()}/release_estop',
                                      throttle_duration_sec=5.0)

    def _on_release(self, request, response):
        response.success, response.message = self.gate.estop.release(time.monotonic())
        self.get_logger().warning(response.message)
        return response

    # -- output -------------------------------------------------------------------------------
    def _on_timer(self):
        now = time.monotonic()
        stop = self.gate.estop.engaged or self.gate.watchdog.expired(now)
        if not stop:
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
        if stop_only and reason not in (ESTOP, TIMEOUT):
            return
        if stop_only and self.cfg.lockstep:
            return
        self._last_out_s, self.last_reason = now, reason
        stamp = max(self.get_clock().now().nanoseconds, 0)
        msg = messages.command(action.astype(np.float32), self.cfg.task, stamp)
        if self.out_type != COMMAND_TOPIC[self.cfg.task].msgtype:  # cliff, stamped output
            msg = messages.typestore().types[self.out_type](
                header=messages.header(stamp, 'base_link'), twist=msg)
        self.pub.publish(to_cdr(msg, self.out_type))
        self.published += 1

    def _publish_diagnostics(self):
        now = time.monotonic()
        estop = self.gate.estop
        stopped = self.last_reason in (TIMEOUT, NO_POSITION, WORKSPACE)
        level = ERROR if estop.engaged else WARN if stopped else OK
        message = (f'e-stop engaged ({estop.reason})' if estop.engaged
                   else f'last command: {self.last_reason}')
        values = {f'outputs {k}': v for k, v in self.gate.counts.items()}
        values.update({'estop_engaged': estop.engaged, 'estop_engagements': estop.engagements,
                       'command_age_s': round(self.gate.watchdog.age(now), 3),
                       'watchdog_expiries': self.gate.watchdog.expiries,
                       'refused_commands': self.gate.refused, 'published': self.published})
        self.diagnostics.publish(level, message, values)


def main(args=None):
    """Run the command gate node."""
    spin_node(CommandGateNode, args)


if __name__ == '__main__':
    main()
