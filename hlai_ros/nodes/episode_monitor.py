"""The `episode_monitor` node: prints every episode end marker as one JSON line on stdout.

Part of ``hlai run``'s supervision, not of the robot graph: the runner (which imports no
ROS) reads these lines to report each episode's outcome and to know when the run is complete.
Each line is ``EPISODE <json of the end marker>``.

For the run's picture it also traces the first episode it sees start: ``TRACE <json>`` lines
of the true position (``{"kind": "truth", "position": [x, y], "goal": [x, y]}`` from the
evaluation-only ``/ground_truth/state``, the first one with the scene: platform or table
bounds, obstacle circles) and of every plan on ``/hlai/plan`` (``{"kind": "plan", "points":
[[x, y], ...]}``), metres.
"""
from __future__ import annotations

import json
import sys

from rclpy.node import Node
from std_msgs.msg import String

from hlai_ros.contract import EPISODE, GROUND_TRUTH, PLAN
from hlai_ros.nodes.convert import episode_marker, message_class
from hlai_ros.nodes.spin import spin_node

LINE_PREFIX = 'EPISODE '
"""Prefix of the stdout lines the runner parses."""
TRACE_PREFIX = 'TRACE '
"""Prefix of the traced first episode's lines."""
POSITION_KEYS = ('base_position', 'object_position')
"""Ground-truth keys of the position that must reach the goal (a mobile base's, an object's)."""


def _round(values, digits: int = 4) -> list:
    return [round(float(v), digits) for v in values]


class EpisodeMonitorNode(Node):
    """Echoes end markers and traces the first episode; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('episode_monitor', **kwargs)
        self.traced: int | None = None
        self.tracing = False
        self._scene_sent = False
        self.create_subscription(String, EPISODE.name, self._on_episode, 100)
        self.create_subscription(String, GROUND_TRUTH.name, self._on_truth, 10)
        self.create_subscription(message_class(PLAN.msgtype), PLAN.name,
                                 self._on_plan, 10)

    def _write(self, prefix: str, payload: dict) -> None:
        sys.stdout.write(prefix + json.dumps(payload) + '\n')
        sys.stdout.flush()

    def _on_episode(self, msg):
        marker = episode_marker(msg)
        if marker is None:
            return
        if marker.get('event') == 'start' and self.traced is None:
            self.traced, self.tracing = marker.get('episode'), True
        if marker.get('event') == 'end':
            if marker.get('episode') == self.traced:
                self.tracing = False
            self._write(LINE_PREFIX, marker)

    def _on_truth(self, msg):
        if not self.tracing:
            return
        try:
            truth = json.loads(msg.data)
            key = next(k for k in POSITION_KEYS if k in truth)
        except (ValueError, StopIteration):
            return
        line = {'kind': 'truth', 'episode': self.traced, 'position': _round(truth[key][:2]),
                'goal': _round(truth.get('goal', [])[:2])}
        if not self._scene_sent:
            self._scene_sent = True
            line['scene'] = {k: truth[k] for k in ('platform_bounds', 'obstacle_positions',
                                                   'obstacle_radii') if k in truth}
        self._write(TRACE_PREFIX, line)

    def _on_plan(self, msg):
        if self.tracing:
            points = [_round((p.pose.position.x, p.pose.position.y)) for p in msg.poses]
            self._write(TRACE_PREFIX, {'kind': 'plan', 'episode': self.traced,
                                       'points': points})


def main(args=None):
    """Run the episode monitor."""
    spin_node(EpisodeMonitorNode, args)


if __name__ == '__main__':
    main()
