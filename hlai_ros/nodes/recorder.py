"""The `recorder` node: chosen topics -> a rosbag2 MCAP bag that `hlai train` loads.

Subscribes to each topic in ``topics`` (empty: every topic `hlai collect` writes for ``task``)
as serialised CDR (``raw=True``), and writes it through `hlai_ros.data.BagWriter`, the same
flushed MCAP writer as `hlai collect` (a kill loses at most ``flush_period_s``). Types of the
contract's topics are known up front; others are looked up in the graph until they appear.
Where tf2_msgs is not installed, ``/hlai/camera_extrinsics`` is recorded as the contract's
``/tf_static`` TFMessage, so the bag carries the extrinsics the loader expects.

Bad input never stops the recording: a message that cannot be decoded or written is dropped
with a warning, and messages with NaN/Inf or inconsistent images are recorded as received with
a warning (`hlai_ros.nodes.guard`; counts on ``/diagnostics`` as ``recorder: inputs``).

Log time of each message: its header stamp when it has one; an episode marker's ``stamp_ns``;
otherwise the node's clock on receipt (sim time under ``use_sim_time``). So headerless
messages (``/cmd_vel``, markers, ground truth) share the sensors' time base.
"""
from __future__ import annotations

import json

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from hlai_ros import contract
from hlai_ros.contract import CAMERA_EXTRINSICS, EPISODE, TF_STATIC, Topic, episode_topics
from hlai_ros.data import messages
from hlai_ros.data.writer import BagWriter
from hlai_ros.node_config import RecorderConfig
from hlai_ros.nodes.convert import from_cdr, has_message, message_class
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import InputGuard
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety.inputs import BYTES_PER_PIXEL, image_fault, non_finite
from hlai_ros.tasks import get_task, task_names

STACK_TOPICS = (contract.STATE, contract.PLAN, contract.IMAGINED, contract.COST,
                contract.CRITIC, contract.SURPRISE, contract.ESTOP, contract.PROFILE,
                contract.OBJECT_POSE, contract.ROBOT_POSE, CAMERA_EXTRINSICS,
                contract.DIAGNOSTICS)
"""The learned stack's own topics, whose types are known up front too."""
KNOWN_TYPES = {t.name: t.msgtype for t in STACK_TOPICS}
KNOWN_TYPES.update({t.name: t.msgtype for name in task_names()
                    for t in episode_topics(get_task(name).embodiment)})
"""Types of every registered task's contract topics and of the stack's."""
IMAGE = 'sensor_msgs/msg/Image'
LATCHED_TOPICS = (TF_STATIC.name, contract.GOAL.name, contract.GOAL_IMAGE.name,
                  contract.GOAL_DEPTH.name,
                  *(t.name for t in STACK_TOPICS if t.qos.latched))
"""Topics recorded transient-local: /tf_static (static by nature) and the latched ones."""


class RecorderNode(Node):
    """Writes raw messages to an MCAP bag; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('recorder', **kwargs)
        cfg = NodeParameters(self, RecorderConfig).config
        self.bag = BagWriter(cfg.output, cfg.flush_period_s)
        self.guard = InputGuard(self)
        wanted = list(cfg.topics) or [t.name for t in episode_topics(
            get_task(cfg.task).embodiment)]
        if TF_STATIC.name in wanted and not has_message(TF_STATIC.msgtype):
            wanted[wanted.index(TF_STATIC.name)] = CAMERA_EXTRINSICS.name
        self._pending = []
        self._recorded = {}
        for name in wanted:
            msgtype = KNOWN_TYPES.get(name)
            if msgtype is None:
                self._pending.append(name)
            else:
                self._subscribe(name, msgtype)
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # timers also run while /clock stops
        self._discovery = self.create_timer(0.5, self._discover, clock=steady)
        self.diagnostics = DiagnosticsPublisher(self, 'recording', cfg.output)
        self.create_timer(1.0, clock=steady, callback=lambda: self.diagnostics.publish(
            WARN if self._pending else OK,
            f'waiting for the types of {self._pending}' if self._pending else 'recording',
            {'bag': cfg.output, 'messages_written': self.bag.messages_written,
             'topics': len(self._recorded)}))
        self.get_logger().info(f'recording {len(wanted)} topics to {cfg.output}')

    def _subscribe(self, name: str, msgtype: str) -> None:
        stored = Topic(TF_STATIC.name, TF_STATIC.msgtype) if name == CAMERA_EXTRINSICS.name \
            else Topic(name, msgtype)
        latched = name in LATCHED_TOPICS
        self.bag.add_topic(stored, transient_local=latched)
        qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                         else DurabilityPolicy.VOLATILE)
        self._recorded[name] = self.create_subscription(
            message_class(msgtype), name, self.guard.wrap(
                name, lambda data: self._write(name, stored, msgtype, data)), qos, raw=True)

    def _discover(self):
        if not self._pending:
            self._discovery.cancel()
            return
        types = dict(self.get_topic_names_and_types())
        for name in [n for n in self._pending if n in types]:
            msgtype = types[name][0]
            if has_message(msgtype):
                self._subscribe(name, msgtype)
            else:
                self.get_logger().warn(f'{name}: type {msgtype} is not installed; not recorded')
            self._pending.remove(name)

    def _write(self, name: str, stored: Topic, msgtype: str, data: bytes):
        msg = from_cdr(data, msgtype)
        # Recorded as received (a bag is the evidence of what happened); faults are reported.
        self.guard.check(name, msg, non_finite, *(
            [lambda m: image_fault(m, tuple(BYTES_PER_PIXEL))] if msgtype == IMAGE else []),
            outcome='recorded as received')
        if name == CAMERA_EXTRINSICS.name:
            msg = messages.tf_message([msg])
        header = getattr(msg, 'header', None)
        if header is not None:
            stamp = messages.stamp_to_ns(header.stamp)
        elif name == EPISODE.name and '"stamp_ns"' in msg.data:
            stamp = int(json.loads(msg.data).get('stamp_ns', 0))
        else:
            stamp = self.get_clock().now().nanoseconds
        if isinstance(msg, type(messages.tf_message([]))):
            stamp = min((messages.stamp_to_ns(t.header.stamp) for t in msg.transforms),
                        default=stamp)
        self.bag.write(stored.name, max(int(stamp), 0), msg)

    def destroy_node(self):
        """Close the bag (summary, footer, metadata.yaml), then the node."""
        if getattr(self, 'bag', None) is not None:  # none when the node could not start
            self.bag.close()
        return super().destroy_node()


def main(args=None):
    """Run the recorder node."""
    spin_node(RecorderNode, args)


if __name__ == '__main__':
    main()
