"""Guarding subscriber callbacks against bad input: refuse, warn, report, go on.

`InputGuard.wrap(topic, callback, *checks)` returns the callback a subscription is given:
each check (message -> '' or a fault text ``'<kind>: <detail>'``) runs in order; the first
fault drops the message, and the callback itself runs inside a guard so that an exception
it raises drops the message instead of the node. Every fault gets a warning naming the topic
and the fault, at most one per `warn_period_s` for each (topic, kind), and is counted in the
node's ``/diagnostics`` status ``'<node>: inputs'`` (WARN while faults came in the last
`recent_s` seconds, with counts per topic and kind).

The checks are the plain functions of `hlai_ros.safety.inputs` (NaN/Inf, images, depth
units, camera info, frames), and the guard's own `stamp` check (stale, from the future, out
of order; `hlai_ros.safety.StampCheck.fault`).
"""
from __future__ import annotations

from collections import Counter
import math
import time
from typing import Callable

from rclpy.clock import Clock, ClockType

from hlai_ros.nodes.convert import stamp_ns
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.safety import FreshnessLimits, StampCheck


class InputGuard:
    """Checks, warns about and counts bad input of one node; see the module docstring.

    Args:
        node: the rclpy node.
        warn_period_s: shortest time between two warnings of one (topic, kind), seconds.
        recent_s: faults younger than this make the diagnostics status WARN, seconds.

    """

    def __init__(self, node, warn_period_s: float = 1.0, recent_s: float = 5.0):
        self.node = node
        self.warn_period_s = float(warn_period_s)
        self.recent_s = float(recent_s)
        self.faults: Counter = Counter()
        """Faulty messages by (topic, kind)."""
        self.accepted: Counter = Counter()
        """Messages that passed, by topic."""
        self.last_fault = ''
        self._last_fault_s = -math.inf
        self._last_warn: dict[tuple[str, str], float] = {}
        self._stamps: dict[str, StampCheck] = {}
        self.diagnostics = DiagnosticsPublisher(node, 'inputs')
        # Wall-clock timer: under use_sim_time a paused simulation must not silence it.
        node.create_timer(1.0, self.publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

    # -- the wrapper --------------------------------------------------------------------------
    def wrap(self, topic: str, callback: Callable, *checks: Callable[[object], str]):
        """Return a subscription callback: `checks` in order, then `callback`, never raising."""
        def guarded(msg):
            if self.check(topic, msg, *checks):
                return
            try:
                callback(msg)
            except Exception as exc:  # noqa: BLE001 - drop the message, keep the node
                self.reject(topic, f'callback: {type(exc).__name__}: {exc}')
                return
            self.accepted[topic] += 1
        return guarded

    def check(self, topic: str, msg, *checks: Callable[[object], str],
              outcome: str = 'message dropped') -> str:
        """Run `checks` on `msg` in order; report and return the first fault ('' if none).

        `outcome` says in the warning what becomes of the message (a recorder keeps it).
        """
        for check in checks:
            try:
                fault = check(msg)
            except Exception as exc:  # noqa: BLE001 - a malformed message must not kill us
                fault = f'malformed: {type(exc).__name__}: {exc}'
            if fault:
                self.reject(topic, fault, outcome)
                return fault
        return ''

    def reject(self, topic: str, fault: str, outcome: str = 'message dropped') -> None:
        """Count a faulty message and warn, throttled per (topic, kind)."""
        kind = fault.split(':', 1)[0]
        self.faults[topic, kind] += 1
        now = time.monotonic()
        self.last_fault, self._last_fault_s = f'{topic}: {fault}', now
        if now - self._last_warn.get((topic, kind), -math.inf) >= self.warn_period_s:
            self._last_warn[topic, kind] = now
            self.node.get_logger().warning(
                f'{topic}: {fault}; {outcome} ({self.faults[topic, kind]} so far)')

    # -- stateful checks ----------------------------------------------------------------------
    def stamp(self, topic: str, limits: FreshnessLimits = FreshnessLimits(),
              allow_unstamped: bool = True, clock: Callable[[], int] | None = None):
        """Return a check of header stamps on `topic`: stale, future, out of order.

        Args:
            topic: the stream whose order is kept.
            limits: `FreshnessLimits` against the clock.
            allow_unstamped: whether a zero stamp passes.
            clock: returns "now" in nanoseconds (default: the node's clock, sim time under
                use_sim_time). While it reads 0 (no /clock yet) only the order is checked;
                when it jumps back behind the last stamp (a looped bag), the order restarts.

        """
        checker = self._stamps.setdefault(topic, StampCheck(limits))
        now_ns = clock or (lambda: self.node.get_clock().now().nanoseconds)

        def check(msg) -> str:
            return checker.fault(stamp_ns(msg.header.stamp), now_ns(), allow_unstamped)
        return check

    def reset_stamps(self) -> None:
        """Forget the last stamps (a new episode may restart a clock)."""
        for checker in self._stamps.values():
            checker.reset()

    # -- reporting ----------------------------------------------------------------------------
    def publish_diagnostics(self) -> None:
        """Publish the fault counts (WARN while faults are recent)."""
        recent = time.monotonic() - self._last_fault_s < self.recent_s
        values = {f'faults {topic} {kind}': n for (topic, kind), n in sorted(self.faults.items())}
        values.update({f'accepted {topic}': n for topic, n in sorted(self.accepted.items())})
        self.diagnostics.publish(WARN if recent else OK,
                                 f'bad input: {self.last_fault}' if recent else 'inputs ok',
                                 values)
