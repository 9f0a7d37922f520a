"""The `scripted_controller` node: the world's scripted controller as a privileged baseline.

The baseline controller of ``hlai run --controller scripted``: the graph run and tested end to
end without a learned model. Like the scripted baseline of the pure-Python loop, it
reads privileged ground truth (``/ground_truth/state``), which a deployed controller never may;
it is never part of ``robot.launch.py``. Each new ground-truth message gets one command on the
robot's command topic (its embodiment's), the repeated one of a lockstep
observation that the sim republished included (its first command or ground truth was lost).
A start marker on ``/hlai/episode`` resets the controller.
"""
from __future__ import annotations

import json

import numpy as np
from rclpy.node import Node
from std_msgs.msg import String

from hlai_ros.contract import EPISODE, GROUND_TRUTH
from hlai_ros.node_config import ScriptedControllerConfig
from hlai_ros.nodes.convert import episode_marker, message_class, to_cdr
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.tasks import get_task


class ScriptedControllerNode(Node):
    """Ground truth in, command out; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('scripted_controller', **kwargs)
        from hlai_ros.sim.scripted import make_scripted

        cfg = NodeParameters(self, ScriptedControllerConfig).config
        self.body = get_task(cfg.task).embodiment
        self.controller = make_scripted(cfg.task, noise_std=cfg.noise_std, seed=cfg.seed)
        self.command = self.body.command
        # The episode subscription is created first: with both ready, the executor serves it
        # first, so a new episode's reset comes before its first ground truth.
        self.create_subscription(String, EPISODE.name, self._on_episode, 100)
        self.create_subscription(String, GROUND_TRUTH.name, self._on_ground_truth, 10)
        self.pub = self.create_publisher(message_class(self.command.msgtype),
                                         self.command.name, 10)

    def _on_episode(self, msg):
        marker = episode_marker(msg)
        if marker is None:
            self.get_logger().warning(f'{EPISODE.name}: not a JSON object; ignored',
                                      throttle_duration_sec=5.0)
        elif marker.get('event') == 'start':
            self.controller.reset()

    def _on_ground_truth(self, msg):
        try:
            truth = json.loads(msg.data)
            if not isinstance(truth, dict):
                raise TypeError(f'not a JSON object: {type(truth).__name__}')
            action = np.asarray(self.controller.act(None, {'ground_truth': truth}),
                                dtype=np.float32)
            if action.ndim != 1 or not np.all(np.isfinite(action)):
                raise ValueError(f'it gave the action {action}')
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            self.get_logger().warning(f'{GROUND_TRUTH.name}: unusable ({exc}); no command',
                                      throttle_duration_sec=5.0)
            return
        stamp = self.get_clock().now().nanoseconds
        self.pub.publish(to_cdr(self.body.encode_command(action, max(stamp, 0)),
                                self.command.msgtype))


def main(args=None):
    """Run the scripted controller node."""
    spin_node(ScriptedControllerNode, args)


if __name__ == '__main__':
    main()
