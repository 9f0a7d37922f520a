"""The `perception` node: camera RGB-D + proprioception -> the labelled state.

Subscribes to the camera (``/camera/image_raw``, ``/camera/depth/image_raw``,
``/camera/camera_info``), the task's proprioception (``/joint_states`` or ``/odom``),
``/goal_pose`` and ``/hlai/episode`` (a start marker resets the estimator), and to the camera
extrinsics (``/tf_static``, or ``/hlai/camera_extrinsics`` where tf2_msgs is not installed;
the ``camera_pose`` parameter overrides both). Frames are matched by stamp (`StampMatcher`);
each matched frame is passed to the task's core estimator (`hlai_ros.perception`), never to
ground truth; a frame the sim republishes (lockstep recovery) gets its state again. Publishes
``/hlai/state`` (std_msgs/Float32MultiArray, one labelled dimension per state variable; see
`hlai_ros.nodes.convert`; for cliff the estimator's state is followed by the perceived scene,
platform bounds and obstacle circles, labelled as
`hlai_ros.tasks.cliff.CliffTask.scene_entries` writes them, so that the actor and the critic
need nothing else), the estimated pose (``/hlai/object_pose`` for push, ``/hlai/robot_pose`` for
cliff, PoseStamped, stamped with the image's stamp) and
``/diagnostics``. Bad input (NaN/Inf, wrong or inconsistent images, depth in millimetres,
foreign goal or camera frames, stale, future or out-of-order stamps, invalid extrinsics or ones
that differ from those in use) is dropped with a throttled warning and counted
(`hlai_ros.nodes.guard`, ``perception: inputs`` on ``/diagnostics``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Float32MultiArray

from hlai_ros.data import messages
from hlai_ros.data import proprio as proprio_codec
from hlai_ros.contract import (
    CAMERA_DEPTH,
    CAMERA_INFO,
    CAMERA_RGB,
    EPISODE,
    GOAL,
    ODOM_FRAME,
    PROPRIO_TOPIC,
    TF_STATIC,
    WORLD_FRAME,
)
from hlai_ros.nodes.convert import (
    episode_marker,
    has_message,
    message_class,
    planar_pose,
    stamp_ns,
    state_message,
)
from hlai_ros.nodes.diagnostics import OK, WARN, DiagnosticsPublisher
from hlai_ros.nodes.guard import (
    COLOUR_ENCODINGS,
    DEPTH_ENCODINGS,
    InputGuard,
    camera_info_fault,
    depth_units_fault,
    frame_fault,
    image_fault,
    non_finite,
)
from hlai_ros.nodes.params import NodeParameters
from hlai_ros.nodes.sim import CAMERA_EXTRINSICS
from hlai_ros.nodes.sync import StampMatcher
from hlai_ros.nodes.spin import spin_node
from hlai_ros.safety import FreshnessLimits

STATE_TOPIC = '/hlai/state'
POSE_TOPIC = {'push': '/hlai/object_pose', 'cliff': '/hlai/robot_pose'}
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR_QUEUE = 2


@dataclass(frozen=True)
class PerceptionNodeConfig:
    """Parameters of the `perception` node."""

    task: str = field(default='push', metadata={'read_only': True})
    """Estimator to run: 'push' or 'cliff'."""
    control_hz: float = field(default=10.0, metadata={'read_only': True})
    """Camera frame rate the estimator assumes for velocities, Hz."""
    sync_tolerance_s: float = 0.05
    """Largest stamp difference between image, depth and proprioception, seconds."""
    proprio_names: tuple[str, ...] = field(default=(), metadata={'read_only': True})
    """Labels of the proprioception vector; empty: the task world's own labels."""
    camera_pose: tuple[float, ...] = field(default=(), metadata={'read_only': True})
    """Camera optical frame in the world frame, x y z qx qy qz qw; empty: from the extrinsics
    topic."""
    depth_near: float = field(default=0.0, metadata={'read_only': True})
    """Nearest valid depth, metres; 0: the task world's camera."""
    depth_far: float = field(default=0.0, metadata={'read_only': True})
    """Farthest valid depth, metres; 0: the task world's camera."""

    def __post_init__(self):
        if self.task not in ('push', 'cliff'):
            raise ValueError(f"task must be 'push' or 'cliff', got {self.task!r}")
        if not self.control_hz > 0 or not self.sync_tolerance_s > 0:
            raise ValueError('control_hz and sync_tolerance_s must be > 0')
        if self.camera_pose and (len(self.camera_pose) != 7
                                 or not np.all(np.isfinite(self.camera_pose))):
            raise ValueError(f'camera_pose must be 7 finite numbers (x y z qx qy qz qw), got '
                             f'{list(self.camera_pose)}')
        if self.depth_near < 0 or self.depth_far < 0 or (
                self.depth_far and self.depth_near >= self.depth_far):
            raise ValueError('need 0 <= depth_near < depth_far (0: the world camera defaults)')


def _world_class(task: str):
    import importlib

    import gymnasium as gym

    from hlai_ros.sim import TASK_TO_ENV_ID
    module, name = gym.spec(TASK_TO_ENV_ID[task]).entry_point.split(':')
    return getattr(importlib.import_module(module), name)


def _pose_matrix(pose) -> np.ndarray:
    """Return the 4 x 4 matrix of x y z qx qy qz qw."""
    x, y, z, qx, qy, qz, qw = pose
    T = np.eye(4)
    T[:3, :3] = messages.quaternion_to_matrix(SimpleNamespace(x=qx, y=qy, z=qz, w=qw))
    T[:3, 3] = [x, y, z]
    return T


class PerceptionNode(Node):
    """Runs the task's perception estimator on matched frames; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('perception', **kwargs)
        self.params = NodeParameters(self, PerceptionNodeConfig)
        cfg = self.params.config
        world = _world_class(cfg.task)
        self.proprio_names = cfg.proprio_names or tuple(world.proprio_names)
        self.near = cfg.depth_near or world.camera_spec.near
        self.far = cfg.depth_far or world.camera_spec.far
        self.T_world_camera = _pose_matrix(cfg.camera_pose) if cfg.camera_pose else None
        self.intrinsics = None
        self.goal = None
        self.estimator = None
        self.sync = StampMatcher('rgb', ('depth', 'proprio'), int(cfg.sync_tolerance_s * 1e9))
        self.stats = {'frames': 0, 'estimate_ms': 0.0, 'errors': 0, 'last_error': ''}
        self._early = []
        self._last_output = None
        proprio = PROPRIO_TOPIC[cfg.task]
        sub = self.create_subscription
        # Bad input is dropped with a throttled warning and counted on /diagnostics
        # ('perception: inputs'); an exception in a callback drops the message, not the node.
        self.guard = guard = InputGuard(self)
        goal_frames = ('', WORLD_FRAME) + ((ODOM_FRAME,) if cfg.task == 'cliff' else ())
        world_frame = lambda m: frame_fault(m.header.frame_id, goal_frames)  # noqa: E731
        # Generous: under use_sim_time this node's /clock may lag a simulator running ahead
        # of it by many steps (the scripted baseline does not wait for perception).
        fresh = FreshnessLimits(max_age_s=2.0, max_future_s=2.0)

        def camera_frame(msg) -> str:
            frame = self.intrinsics[3] if self.intrinsics else ''
            return frame_fault(msg.header.frame_id, (frame,)) if frame else ''

        def same_extrinsics(msg) -> str:
            # Calibration is fixed for the node's life: a later, different world -> camera
            # transform (a stray or bogus publisher) must not replace it.
            if cfg.camera_pose or self.T_world_camera is None:
                return ''
            for tf in getattr(msg, 'transforms', [msg]):
                if tf.header.frame_id.lstrip('/') == WORLD_FRAME and not np.allclose(
                        messages.transform_to_matrix(tf.transform), self.T_world_camera,
                        atol=1e-3):
                    return ('transform: camera extrinsics differ from the ones in use '
                            '(restart perception to recalibrate)')
            return ''
        # Created first so that, with several messages ready, the executor serves a new
        # episode's marker and goal before its first frame.
        sub(message_class(EPISODE.msgtype), EPISODE.name,
            guard.wrap(EPISODE.name, self._on_episode), 100)
        sub(message_class(GOAL.msgtype), GOAL.name,
            guard.wrap(GOAL.name, self._on_goal, non_finite, world_frame), LATCHED)
        extrinsics = TF_STATIC if has_message(TF_STATIC.msgtype) else CAMERA_EXTRINSICS
        sub(message_class(extrinsics.msgtype), extrinsics.name,
            guard.wrap(extrinsics.name, self._on_extrinsics, non_finite, same_extrinsics),
            LATCHED)
        sub(message_class(CAMERA_INFO.msgtype), CAMERA_INFO.name,
            guard.wrap(CAMERA_INFO.name, self._on_camera_info, non_finite, camera_info_fault),
            10)
        # Depth SENSOR_QUEUE: an estimator slower than the camera works on the newest frame
        # instead of falling further behind (a recording keeps every frame: the recorder
        # has its own deep queues).
        sub(message_class(CAMERA_RGB.msgtype), CAMERA_RGB.name,
            guard.wrap(CAMERA_RGB.name, lambda m: self._on_sensor('rgb', m),
                       lambda m: image_fault(m, COLOUR_ENCODINGS), camera_frame,
                       guard.stamp(CAMERA_RGB.name, fresh)), SENSOR_QUEUE)
        sub(message_class(CAMERA_DEPTH.msgtype), CAMERA_DEPTH.name,
            guard.wrap(CAMERA_DEPTH.name, lambda m: self._on_sensor('depth', m),
                       lambda m: image_fault(m, DEPTH_ENCODINGS), depth_units_fault,
                       camera_frame, guard.stamp(CAMERA_DEPTH.name, fresh)), SENSOR_QUEUE)
        sub(message_class(proprio.msgtype), proprio.name,
            guard.wrap(proprio.name, lambda m: self._on_sensor('proprio', m),
                       lambda m: non_finite(m, ignore=('effort',)),
                       guard.stamp(proprio.name, fresh)), SENSOR_QUEUE)
        self.state_pub = self.create_publisher(Float32MultiArray, STATE_TOPIC, 10)
        self.pose_pub = self.create_publisher(message_class('geometry_msgs/msg/PoseStamped'),
                                              POSE_TOPIC[cfg.task], 10)
        self.diagnostics = DiagnosticsPublisher(self, 'state estimate', 'camera')

    # -- inputs -----------------------------------------------------------------------------
    def _on_camera_info(self, msg):
        try:
            intrinsics = (messages.camera_info_to_K(msg), int(msg.width), int(msg.height),
                          msg.header.frame_id)
        except ValueError as exc:
            self.get_logger().warning(f'{CAMERA_INFO.name}: {exc}',
                                      throttle_duration_sec=1.0)
            return
        if self.intrinsics is None or any(
                not np.array_equal(a, b) for a, b in zip(intrinsics[:3], self.intrinsics[:3])):
            self.intrinsics = intrinsics
            self._make_estimator()

    def _on_extrinsics(self, msg):
        if self.params.config.camera_pose:
            return
        transforms = msg.transforms if hasattr(msg, 'transforms') else [msg]
        for tf in transforms:
            if tf.header.frame_id.lstrip('/') == WORLD_FRAME:
                try:
                    T = messages.transform_to_matrix(tf.transform)
                    if not np.all(np.isfinite(T)):
                        raise ValueError('transform is not finite')
                except ValueError as exc:
                    self.get_logger().warning(f'camera extrinsics ignored: {exc}',
                                              throttle_duration_sec=1.0)
                    continue
                self.T_world_camera = T
                self._make_estimator()

    def _on_goal(self, msg):
        goal = messages.pose_to_goal(msg)
        if np.all(np.isfinite(goal)):
            self.goal = goal

    def _on_episode(self, msg):
        marker = episode_marker(msg)
        if marker is not None and marker.get('event') == 'start':
            self.sync.reset()
            self._last_output = None
            if hasattr(self.estimator, 'reset'):
                self.estimator.reset()

    def _make_estimator(self):
        if self.intrinsics is None or self.T_world_camera is None:
            return
        from hlai_ros.sim.base import CameraModel
        K, width, height, frame = self.intrinsics
        camera = CameraModel(width, height, K, self.T_world_camera, self.near, self.far,
                             frame or 'camera_optical_frame')
        if hasattr(self.estimator, 'close'):
            self.estimator.close()
        if self.params.config.task == 'push':
            from hlai_ros.perception.push import PushPerception, PushPerceptionConfig
            self.estimator = PushPerception(camera, PushPerceptionConfig(
                control_dt=1.0 / self.params.config.control_hz))
        else:
            from hlai_ros.perception.cliff import CliffPerception
            self.estimator = CliffPerception(camera)

    def _on_sensor(self, role: str, msg):
        if self.estimator is None or self.goal is None:
            # Not ready (camera_info, extrinsics or goal still to come): keep the newest
            # messages and replay them once ready, so the first frame is not lost.
            self._early = (self._early + [(role, msg)])[-12:]
            missing = [name for name, value in (
                (CAMERA_INFO.name, self.intrinsics), ('camera extrinsics', self.T_world_camera),
                (GOAL.name, self.goal)) if value is None]
            self.get_logger().info(f'waiting for {", ".join(missing) or "the estimator"}',
                                   throttle_duration_sec=5.0)
            return
        if role == 'rgb' and self._last_output is not None \
                and stamp_ns(msg.header.stamp) == self.sync.last_ns:
            # The sim republished a lockstep frame: its state (or the answer) was lost.
            for publisher, output in zip((self.state_pub, self.pose_pub), self._last_output):
                publisher.publish(output)
            return
        early, self._early = self._early, []
        for r, m in early + [(role, msg)]:
            for stamp, frame in self.sync.add(r, stamp_ns(m.header.stamp), m):
                self._estimate(stamp, frame)

    # -- estimation -------------------------------------------------------------------------
    def _estimate(self, stamp: int, frame: dict):
        start = time.perf_counter()
        try:
            obs = {'rgb': messages.image_to_rgb(frame['rgb']),
                   'depth': messages.image_to_depth(frame['depth']), 'goal': self.goal}
            if self.params.config.task == 'push':
                obs['proprio'] = proprio_codec.vector_from_joint_state(frame['proprio'],
                                                                       self.proprio_names)
            else:
                obs['proprio'] = proprio_codec.vector_from_odometry(frame['proprio'],
                                                                    self.proprio_names)
            result = self.estimator.estimate(obs)
        except ValueError as exc:
            self.stats['errors'] += 1
            self.stats['last_error'] = str(exc)
            self.get_logger().warning(f'frame at {stamp * 1e-9:.3f} s not estimated: {exc}',
                                      throttle_duration_sec=1.0)
            return
        state = np.asarray(getattr(result, 'state', result), dtype=np.float32)
        names = tuple(self.estimator.state_names)
        if getattr(result, 'scene', None) is not None:
            from hlai_ros.tasks.cliff import CliffTask
            scene_names, scene_values = CliffTask.scene_entries(result.scene)
            names, state = names + scene_names, np.concatenate([state, scene_values])
        self._last_output = (state_message(names, state),
                             self._pose(stamp, dict(zip(names, state.tolist()))))
        self.state_pub.publish(self._last_output[0])
        self.pose_pub.publish(self._last_output[1])
        self.stats['frames'] += 1
        self.stats['estimate_ms'] = 1e3 * (time.perf_counter() - start)
        self._publish_diagnostics()

    def _pose(self, stamp: int, s: dict):
        if self.params.config.task == 'push':
            return planar_pose(s['obj_x'], s['obj_y'], 0.0, stamp, WORLD_FRAME)
        return planar_pose(s['x'], s['y'], s['yaw'], stamp, ODOM_FRAME)

    def _publish_diagnostics(self):
        visible = getattr(self.estimator, 'visible', True)
        self.diagnostics.publish(
            OK if visible else WARN,
            'ok' if visible else 'object not visible; holding the last estimate', self.stats)


def main(args=None):
    """Run the perception node."""
    spin_node(PerceptionNode, args)


if __name__ == '__main__':
    main()
