"""The `view` node: the graph's topics streamed into rerun, live (``hlai run --view``).

Subscribes (raw CDR, decoded by the same typestore as a bag) to the camera and depth, the
robot's proprioception and command, ``/hlai/state``, ``/hlai/plan``, ``/hlai/imagined`` (one
line strip per ensemble member), ``/goal_pose``, the perceived poses, ``/hlai/cost``,
``/hlai/critic``, ``/hlai/surprise``, ``/hlai/estop``, ``/hlai/episode`` and ``/diagnostics``
(the gate's status, the cost terms), and logs each through `hlai_ros.view.log.TopicLogger`,
the layout ``hlai view BAG_DIR`` replays a bag into. With ``web`` (default) it starts the
rerun server of the rerun-sdk wheel on 127.0.0.1 and logs the viewer's address; ``connect``
streams to a running viewer, ``save`` writes an .rrd file. Parameters:
`hlai_ros.view.config.ViewNodeConfig`. A message it cannot show is dropped with a warning
(`hlai_ros.nodes.guard`); the view never publishes anything.
"""
from __future__ import annotations

from functools import partial

from rclpy.node import Node

from hlai_ros.nodes.convert import from_cdr, message_class, qos_profile
from hlai_ros.nodes.guard import InputGuard
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.tasks import get_task
from hlai_ros.view.config import ViewNodeConfig
from hlai_ros.view.log import TopicLogger, live_topics, message_stamp
from hlai_ros.view.session import open_view


class ViewNode(Node):
    """Logs the graph's topics to rerun; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('view', **kwargs)
        cfg = NodeParameters(self, ViewNodeConfig).config
        try:
            self.session = open_view(f'hlai_{cfg.task}', save=cfg.save, web=cfg.web,
                                     connect=cfg.connect, grpc_port=cfg.grpc_port,
                                     web_port=cfg.web_port)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from None  # a start error: one line, exit 2
        self.logger = TopicLogger(self.session.stream, cfg.image_period_s)
        self.guard = InputGuard(self)
        for topic in live_topics(get_task(cfg.task)):
            self.create_subscription(
                message_class(topic.msgtype), topic.name,
                self.guard.wrap(topic.name, partial(self._on_message, topic)),
                qos_profile(topic.qos), raw=True)
        self.get_logger().info('streaming the graph to ' + ', '.join(self.session.targets))

    def _on_message(self, topic, data: bytes) -> None:
        msg = from_cdr(data, topic.msgtype)
        now = self.get_clock().now().nanoseconds
        stamp = now if topic.msgtype == 'std_msgs/msg/String' else message_stamp(msg, now)
        self.logger.log(topic.name, topic.msgtype, msg, stamp)

    def destroy_node(self):
        """Finish the view (flush, close an .rrd file, stop the server), then the node."""
        if getattr(self, 'session', None) is not None:
            self.session.close()
        return super().destroy_node()


def main(args=None):
    """Run the view node."""
    spin_node(ViewNode, args)


if __name__ == '__main__':
    main()
