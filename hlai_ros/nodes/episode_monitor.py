"""The `episode_monitor` node: prints every episode end marker as one JSON line on stdout.

Part of ``hlai run``'s supervision, not of the robot graph: the runner (which imports no
ROS) reads these lines to report each episode's outcome and to know when the run is complete.
Each line is ``EPISODE <json of the end marker>``.
"""
from __future__ import annotations

import json
import sys

import rclpy
from rclpy.node import Node
from std_msgs.msg import String

from hlai_ros.data.topics import EPISODE
from hlai_ros.nodes.spin import spin_node

LINE_PREFIX = 'EPISODE '
"""Prefix of the stdout lines the runner parses."""


class EpisodeMonitorNode(Node):
    """Echoes end markers; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('episode_monitor', **kwargs)
        self.create_subscription(String, EPISODE.name, self._on_episode, 100)

    def _on_episode(self, msg):
        try:
            marker = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(marker, dict) and marker.get('event') == 'end':
            sys.stdout.write(LINE_PREFIX + json.dumps(marker) + '\n')
            sys.stdout.flush()


def main(args=None):
    """Run the episode monitor."""
    spin_node(EpisodeMonitorNode, args)


if __name__ == '__main__':
    main()
