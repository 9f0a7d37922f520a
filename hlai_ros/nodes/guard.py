"""Guarding subscriber callbacks against bad input: refuse, warn, report, go on.

`InputGuard.wrap(topic, callback, *checks)` returns the callback a subscription is given:
each check (message -> '' or a fault text ``'<kind>: <detail>'``) runs in order; the first
fault drops the message, and the callback itself runs inside a guard so that an exception
it raises drops the message instead of the node. Every fault gets a warning naming the topic
and the fault, at most one per `warn_period_s` for each (topic, kind), and is counted in the
node's ``/diagnostics`` status ``'<node>: inputs'`` (WARN while faults came in the last
`recent_s` seconds, with counts per topic and kind).

The checks are plain functions that read messages by attribute, so they work on rclpy and on
rosbags messages alike: `non_finite` (NaN/Inf in any numeric field), `image_fault`
(encoding; width, height, step and data that disagree; empty and huge images),
`depth_units_fault` (32FC1 values in the millimetre range), `camera_info_fault`,
`frame_fault`, and the guard's own `stamp` check (stale, from the future, out of order;
`hlai_ros.safety.StampCheck`).
"""
from __future__ import annotations

import array
from collections import Counter
from dataclasses import fields, is_dataclass
import math
import time
from typing import Callable

import numpy as np
from rclpy.clock import Clock, ClockType

from hlai_ros.nodes.convert import stamp_ns
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.safety import FRESH, UNSTAMPED, FreshnessLimits, StampCheck

BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '32FC1': 4,
                   '16UC1': 2, 'mono16': 2}
"""Encodings the graph reads, with their pixel sizes."""
COLOUR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
DEPTH_ENCODINGS = ('32FC1', '16UC1', 'mono16')
MAX_PIXELS = 4096 * 4096
"""Largest image accepted (width x height): anything bigger is a fault, not a camera."""
MAX_DEPTH_M = 20.0
"""A 32FC1 depth image whose typical value exceeds this is taken to be in millimetres."""


def _field_names(msg) -> list[str]:
    if hasattr(type(msg), 'get_fields_and_field_types'):
        return list(type(msg).get_fields_and_field_types())
    if is_dataclass(msg):
        return [f.name for f in fields(msg)]
    return []


def non_finite(msg, ignore: tuple[str, ...] = (), _prefix: str = '') -> str:
    """Return a fault naming the fields that hold NaN or Inf, or ''.

    Args:
        msg: a message (rclpy or rosbags).
        ignore: field paths (``'effort'``, ``'twist.covariance'``) allowed to be non-finite.

    Byte arrays (image data) are not read: NaN pixels of a depth image mean "no return".

    """
    bad = _non_finite_paths(msg, ignore, _prefix)
    return f'non-finite: NaN or Inf in {", ".join(bad)}' if bad else ''


def _non_finite_paths(msg, ignore, prefix) -> list[str]:
    out = []
    for name in _field_names(msg):
        path = prefix + name
        if path in ignore:
            continue
        value = getattr(msg, name)
        if isinstance(value, float):
            if not math.isfinite(value):
                out.append(path)
        elif isinstance(value, (bool, int, str, bytes, bytearray)):
            continue
        elif isinstance(value, array.array):
            if value.typecode in 'fd' and not np.all(np.isfinite(np.asarray(value))):
                out.append(path)
        elif isinstance(value, np.ndarray):
            if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
                out.append(path)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, float):
                    if not math.isfinite(item):
                        out.append(f'{path}[{i}]')
                elif _field_names(item):
                    out += _non_finite_paths(item, ignore, f'{path}[{i}].')
        elif _field_names(value):
            out += _non_finite_paths(value, ignore, path + '.')
    return out


def image_fault(msg, encodings: tuple[str, ...], max_pixels: int = MAX_PIXELS) -> str:
    """Return what is wrong with a sensor_msgs/Image's encoding and size, or ''."""
    encoding = str(msg.encoding)
    if encoding not in encodings:
        return f'encoding: {encoding!r} is not one of {list(encodings)}'
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    size = len(msg.data)
    if h == 0 or w == 0 or size == 0:
        return f'empty: {w} x {h} image with {size} bytes'
    if h * w > max_pixels:
        return f'huge: {w} x {h} image is over {max_pixels} pixels'
    row = w * BYTES_PER_PIXEL[encoding]
    if step < row:
        return f'size: step {step} is less than width {w} x {BYTES_PER_PIXEL[encoding]} bytes'
    if size != step * h:
        return f'size: {size} bytes of data for step {step} x height {h} = {step * h}'
    return ''


def depth_units_fault(msg, max_depth_m: float = MAX_DEPTH_M) -> str:
    """Return a fault if a 32FC1 depth image (metres) holds millimetre-range values, or ''.

    Call after `image_fault`. The median of the valid (finite, > 0) values of a sparse grid
    of pixels is compared with `max_depth_m`. 16UC1 is millimetres by definition (converted
    on read), so it is not judged.
    """
    if str(msg.encoding) != '32FC1':
        return ''
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    rows = data[:step * h].reshape(h, step)[::max(1, h // 32), :w * 4]
    values = np.ascontiguousarray(rows).view('>f4' if msg.is_bigendian else '<f4')
    values = values[:, ::max(1, w // 32)]
    valid = values[np.isfinite(values) & (values > 0)]
    if valid.size and float(np.median(valid)) > max_depth_m:
        return (f'depth units: median depth {float(np.median(valid)):.1f} is over '
                f'{max_depth_m} m; millimetres in a 32FC1 (metres) image?')
    return ''


def camera_info_fault(msg, max_pixels: int = MAX_PIXELS) -> str:
    """Return what is wrong with a sensor_msgs/CameraInfo's size, or ''."""
    w, h = int(msg.width), int(msg.height)
    if w == 0 or h == 0:
        return f'empty: camera_info for a {w} x {h} image'
    if w * h > max_pixels:
        return f'huge: camera_info for a {w} x {h} image is over {max_pixels} pixels'
    return ''


def frame_fault(frame_id: str, expected: tuple[str, ...]) -> str:
    """Return a fault unless `frame_id` (a leading '/' ignored) is one of `expected`."""
    frame = str(frame_id).lstrip('/')
    if frame in expected:
        return ''
    return f'frame: {frame!r} is not one of {list(expected)}'


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
            t = stamp_ns(msg.header.stamp)
            now = now_ns()
            if now <= 0:
                verdict = FRESH if t >= checker.last_ns else 'out of order'
                if verdict == FRESH:
                    checker.last_ns = t
            else:
                if checker.last_ns > now + limits.max_future_s * 1e9:
                    checker.reset()  # the clock jumped back (a replayed bag looped)
                verdict = checker.check(t, now)
            if verdict == FRESH or (verdict == UNSTAMPED and allow_unstamped):
                return ''
            return (f'{verdict}: stamp {t * 1e-9:.3f} s, clock {now * 1e-9:.3f} s, last '
                    f'{checker.last_ns * 1e-9:.3f} s')
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
