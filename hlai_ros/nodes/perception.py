"""The `perception` node: camera RGB-D + proprioception -> the task's labelled state, or a latent.

Subscribes to the camera (image, depth, camera info), the robot's proprioception (its
embodiment's topic), ``/goal_pose``, ``/hlai/episode`` (a start marker resets the estimator)
and the camera extrinsics (``/tf_static``, else ``/hlai/camera_extrinsics``; the
``camera_pose`` parameter overrides both). Frames matched by stamp go through the task's
estimator (`hlai_ros.perception.pipeline.FramePipeline`), never ground truth; a frame the sim
republishes gets its state again. Publishes ``/hlai/state`` (`Task.encode`: one labelled
dimension per entry, `hlai_ros.nodes.convert.state_message`), the task's pose of interest
(`Task.pose_topic`, PoseStamped in the robot's state frame, the image's stamp) and
``/diagnostics``. Bad input (NaN/Inf, wrong images, depth in millimetres, foreign frames, bad
stamps, extrinsics that differ from those in use) is dropped with a throttled warning and
counted (`hlai_ros.nodes.guard`).

Latent mode (a latent ``model`` folder, `hlai_ros.latent.node_core`): no estimator; its encoder
makes each matched frame ``/hlai/latent`` and the goal image (``/goal_image`` + ``/depth``, one
stamp) ``/hlai/latent_goal`` (latched); diagnostics give the encode time (``encode_ms``).
"""
from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from hlai_ros import contract
from hlai_ros.data import messages
from hlai_ros.latent import node_core
from hlai_ros.node_config import PerceptionNodeConfig
from hlai_ros.nodes.convert import (
    episode_marker,
    has_message,
    message_class,
    planar_pose,
    stamp_ns,
    state_message,
)
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import InputGuard
from hlai_ros.nodes.latent_io import latent_message
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.spin import spin_node
from hlai_ros.perception.pipeline import FramePipeline, world_camera_transforms
from hlai_ros.safety import FreshnessLimits
from hlai_ros.safety import inputs as checks
from hlai_ros.tasks import get_task

RO = {'read_only': True}
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class PerceptionNode(Node):
    """Runs the task's perception estimator on matched frames; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('perception', **kwargs)
        from hlai_ros.sim import world_class
        self.params = NodeParameters(self, PerceptionNodeConfig)
        cfg = self.params.config
        self.task = task = get_task(cfg.task)
        body, spec = task.embodiment, world_class(cfg.task).camera_spec
        names, tolerance_ns = cfg.proprio_names or body.proprio_names, int(
            cfg.sync_tolerance_s * 1e9)
        self.pipeline = node_core.latent_pipeline(task, cfg.model, names, tolerance_ns) or (
            FramePipeline(task, 1.0 / cfg.control_hz, names, cfg.depth_near or spec.near,
                          cfg.depth_far or spec.far, tolerance_ns, cfg.camera_pose))
        self.latent = isinstance(self.pipeline, node_core.LatentFramePipeline)
        self.stats = {'frames': 0, 'estimate_ms': 0.0, 'errors': 0, 'last_error': ''}
        self._last_output = None
        # Bad input is dropped with a throttled warning and counted on /diagnostics; an
        # exception in a callback drops the message, not the node.
        self.guard = guard = InputGuard(self)
        # Generous: under use_sim_time this node's /clock may lag a simulator running ahead.
        fresh = FreshnessLimits(max_age_s=2.0, max_future_s=2.0)

        def camera_frame(msg) -> str:
            frame = self.pipeline.intrinsics[3] if self.pipeline.intrinsics else ''
            return checks.frame_fault(msg.header.frame_id, (frame,)) if frame else ''

        def sub(topic, callback, qos, *tests):
            self.create_subscription(message_class(topic.msgtype), topic.name,
                                     guard.wrap(topic.name, callback, *tests), qos)

        def sensor(topic, role, *tests):  # queue 2: a slow estimator takes the newest frame
            sub(topic, lambda m: self._on_sensor(role, m), 2, *tests,
                guard.stamp(topic.name, fresh))
        # Created first so that the executor serves a new episode's marker and goal before
        # its first frame.
        sub(contract.EPISODE, self._on_episode, 100)
        sub(contract.GOAL, self._on_goal, LATCHED, checks.non_finite,
            lambda m: checks.frame_fault(m.header.frame_id, body.goal_frames))
        sub(contract.TF_STATIC if has_message(contract.TF_STATIC.msgtype)
            else contract.CAMERA_EXTRINSICS, self._on_extrinsics, LATCHED, checks.non_finite,
            self.pipeline.extrinsics_message_fault)
        sub(contract.CAMERA_INFO, self._on_camera_info, 10, checks.non_finite,
            checks.camera_info_fault)
        if self.latent:  # the goal image (before the frames) -> /hlai/latent_goal
            sub(contract.GOAL_IMAGE, lambda m: self._on_goal_image('rgb', m), LATCHED,
                lambda m: checks.image_fault(m, checks.COLOUR_ENCODINGS), camera_frame)
            sub(contract.GOAL_DEPTH, lambda m: self._on_goal_image('depth', m), LATCHED,
                lambda m: checks.image_fault(m, checks.DEPTH_ENCODINGS),
                checks.depth_units_fault, camera_frame)
            goal = contract.LATENT_GOAL
            self.goal_pub = self.create_publisher(message_class(goal.msgtype), goal.name,
                                                  LATCHED)
        sensor(contract.CAMERA_RGB, 'rgb',
               lambda m: checks.image_fault(m, checks.COLOUR_ENCODINGS), camera_frame)
        sensor(contract.CAMERA_DEPTH, 'depth',
               lambda m: checks.image_fault(m, checks.DEPTH_ENCODINGS),
               checks.depth_units_fault, camera_frame)
        sensor(body.proprio, 'proprio', lambda m: checks.non_finite(m, ignore=('effort',)))
        state = contract.LATENT if self.latent else contract.STATE
        self.state_pub = self.create_publisher(message_class(state.msgtype), state.name, 10)
        self.pose_pub = self.create_publisher(message_class(task.pose_topic.msgtype),
                                              task.pose_topic.name, 10)
        self.diagnostics = DiagnosticsPublisher(self, 'state estimate', 'camera')

    # -- inputs -----------------------------------------------------------------------------
    def _on_camera_info(self, msg):
        self.pipeline.set_intrinsics(messages.camera_info_to_K(msg), msg.width, msg.height,
                                     msg.header.frame_id)

    def _on_extrinsics(self, msg):
        for T in world_camera_transforms(msg):
            self.pipeline.set_extrinsics(T)

    def _on_goal(self, msg):
        self.pipeline.goal = messages.pose_to_goal(msg)

    def _on_episode(self, msg):
        marker = episode_marker(msg)
        if marker is not None and marker.get('event') == 'start':
            self.pipeline.reset()
            self._last_output = None

    def _on_sensor(self, role: str, msg):
        stamp = stamp_ns(msg.header.stamp)
        if self._last_output is not None and self.pipeline.repeated(role, stamp):
            # The sim republished a lockstep frame: its state (or the answer) was lost.
            for publisher, output in zip((self.state_pub, self.pose_pub), self._last_output):
                publisher.publish(output)
            return
        frames = self.pipeline.add(role, stamp, msg)
        if self.pipeline.missing():
            self.get_logger().info(f'waiting for {", ".join(self.pipeline.missing())}',
                                   throttle_duration_sec=5.0)
        for stamp, frame in frames:
            self._encode(stamp, frame) if self.latent else self._estimate(stamp, frame)

    def _on_goal_image(self, role: str, msg):  # latent mode
        p = self.pipeline  # an image the encoder cannot take raises: dropped, counted
        if pair := p.goal_images.add(role, stamp_ns(msg.header.stamp), msg):
            self.goal_pub.publish(latent_message(p.layout, p.encode_goal(*pair)))

    def _encode(self, stamp: int, frame: dict):
        start = time.perf_counter()
        try:
            latent = self.pipeline.encode(frame)
        except ValueError as exc:
            return self._failed(stamp, exc)
        self._last_output = (latent_message(self.pipeline.layout, latent),)
        self.state_pub.publish(self._last_output[0])
        self.stats.update(frames=self.stats['frames'] + 1,
                          encode_ms=1e3 * (time.perf_counter() - start))
        self.diagnostics.publish(OK, 'ok (latent)', self.stats)

    def _failed(self, stamp: int, exc: Exception):
        self.stats['errors'] += 1
        self.stats['last_error'] = str(exc)
        self.get_logger().warning(f'frame at {stamp * 1e-9:.3f} s not estimated: {exc}',
                                  throttle_duration_sec=1.0)

    # -- estimation -------------------------------------------------------------------------
    def _estimate(self, stamp: int, frame: dict):
        start = time.perf_counter()
        try:
            names, state = self.pipeline.estimate(frame)
        except ValueError as exc:
            return self._failed(stamp, exc)
        pose = planar_pose(*self.pipeline.pose(names, state), stamp,
                           self.task.embodiment.state_frame)
        self._last_output = (state_message(names, state), pose)
        self.state_pub.publish(self._last_output[0])
        self.pose_pub.publish(pose)
        self.stats['frames'] += 1
        self.stats['estimate_ms'] = 1e3 * (time.perf_counter() - start)
        visible = getattr(self.pipeline.estimator, 'visible', True)
        self.diagnostics.publish(
            OK if visible else WARN,
            'ok' if visible else 'object not visible; holding the last estimate', self.stats)


def main(args=None):
    """Run the perception node."""
    spin_node(PerceptionNode, args)


if __name__ == '__main__':
    main()
