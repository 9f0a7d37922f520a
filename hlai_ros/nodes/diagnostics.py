"""A node's status on ``/diagnostics`` (diagnostic_msgs/DiagnosticArray), at most once a second.

Every node of the graph reports through this (DESIGN.md: ``/diagnostics``, every node ->
anyone), with its own name and key-value pairs.
"""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class DiagnosticsPublisher:
    """Publishes one DiagnosticStatus of `node`, rate-limited by the wall clock.

    Args:
        node: the rclpy node.
        what: what the status is about (``'<node name>: <what>'`` is its name).
        hardware_id: the device it concerns.
        period_s: shortest wall-clock time between two messages, seconds.

    """

    def __init__(self, node, what: str, hardware_id: str = '', period_s: float = 1.0):
        self.node = node
        self.name = f'{node.get_name()}: {what}'
        self.hardware_id = hardware_id
        self.period_s = float(period_s)
        self._last = -float('inf')
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)

    def publish(self, level: int, message: str, values: dict, force: bool = False) -> bool:
        """Publish the status unless one went out less than `period_s` ago; return sent."""
        now = time.monotonic()
        if not force and now - self._last < self.period_s:
            return False
        self._last = now
        status = DiagnosticStatus(level=level, name=self.name, hardware_id=self.hardware_id,
                                  message=message,
                                  values=[KeyValue(key=str(k), value=str(v))
                                          for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self._pub.publish(array)
        return True
