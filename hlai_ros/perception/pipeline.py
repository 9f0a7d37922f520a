"""The perception node's ROS-free core: matching sensor messages by stamp, the estimator.

`StampMatcher` matches messages by stamp. A camera frame is the key: its colour image opens a
candidate set, depth must carry the same stamp within the tolerance (DESIGN.md: images, depth
and camera info share a stamp), and the proprioception nearest in stamp within the tolerance
completes it. Each key stamp is emitted
at most once and never out of order, so a republished or late frame is not estimated twice.
`FramePipeline` holds the calibration, the goal and the task's estimator, buffers the frames
that come before them, and turns a matched frame into the task's labelled state
(`hlai_ros.tasks.base.Task.encode`). Messages are read by attribute (`hlai_ros.data.messages`),
so rclpy and typestore messages both work; `world_camera_transforms` reads the camera
extrinsics out of a TFMessage or a TransformStamped.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from hlai_ros import contract
from hlai_ros.data import messages


class StampMatcher:
    """Collects stamped values by role and emits complete sets keyed on `key`'s stamps.

    Args:
        key: the role whose stamps define a set (the colour image).
        others: the roles each set also needs.
        tolerance_ns: largest stamp difference to the key, nanoseconds.
        keep: messages kept per role.

    """

    def __init__(self, key: str, others: tuple[str, ...], tolerance_ns: int, keep: int = 20):
        if tolerance_ns < 0 or keep < 1:
            raise ValueError('tolerance_ns must be >= 0 and keep >= 1')
        self.key, self.others = key, tuple(others)
        self.tolerance_ns, self.keep = int(tolerance_ns), int(keep)
        self._buffers: dict[str, dict[int, object]] = {r: {} for r in (key, *others)}
        self.last_ns = -1
        """Stamp of the last emitted set (older or equal key stamps are ignored)."""

    def add(self, role: str, stamp_ns: int, value) -> list[tuple[int, dict]]:
        """Add one message; return the sets it completed, oldest first: [(stamp, {role: v})]."""
        if role not in self._buffers:
            raise KeyError(f'unknown role {role!r}; roles: {sorted(self._buffers)}')
        if role == self.key and stamp_ns <= self.last_ns:
            return []
        buffer = self._buffers[role]
        buffer[int(stamp_ns)] = value
        while len(buffer) > self.keep:
            del buffer[min(buffer)]
        out = []
        for stamp in sorted(self._buffers[self.key]):
            if stamp <= self.last_ns:
                continue
            match = {self.key: self._buffers[self.key][stamp]}
            for other in self.others:
                near = self._nearest(other, stamp)
                if near is None:
                    break
                match[other] = self._buffers[other][near]
            else:
                out.append((stamp, match))
                self.last_ns = stamp
        if out:
            for buffer in self._buffers.values():
                for stamp in [s for s in buffer if s < self.last_ns - self.tolerance_ns]:
                    del buffer[stamp]
        return out

    def _nearest(self, role: str, stamp: int) -> int | None:
        candidates = [s for s in self._buffers[role] if abs(s - stamp) <= self.tolerance_ns]
        return min(candidates, key=lambda s: abs(s - stamp)) if candidates else None

    def reset(self) -> None:
        """Forget everything (a new recording or a clock that jumped back)."""
        for buffer in self._buffers.values():
            buffer.clear()
        self.last_ns = -1


def pose_matrix(pose) -> np.ndarray:
    """Return the 4 x 4 matrix of x y z qx qy qz qw."""
    x, y, z, qx, qy, qz, qw = pose
    T = np.eye(4)
    T[:3, :3] = messages.quaternion_to_matrix(SimpleNamespace(x=qx, y=qy, z=qz, w=qw))
    T[:3, 3] = [x, y, z]
    return T


class FramePipeline:
    """Calibration, goal and matched frames in; the task's labelled state out.

    Args:
        task: the registered task (`hlai_ros.tasks.get_task`).
        control_dt: the camera's frame period the estimator assumes, s.
        proprio_names: labels of the proprioception vector (the robot's decoder reads them).
        near: nearest valid depth, m.
        far: farthest valid depth, m.
        tolerance_ns: largest stamp difference of a frame's messages, ns.
        camera_pose: fixed camera extrinsics (x y z qx qy qz qw), or empty: from `extrinsics`.

    """

    def __init__(self, task, control_dt: float, proprio_names, near: float, far: float,
                 tolerance_ns: int, camera_pose=()):
        self.task, self.control_dt = task, float(control_dt)
        self.proprio_names, self.near, self.far = tuple(proprio_names), near, far
        self.sync = StampMatcher('rgb', ('depth', 'proprio'), tolerance_ns)
        self.fixed_pose = bool(camera_pose)
        self.T_world_camera = pose_matrix(camera_pose) if camera_pose else None
        self.intrinsics = None
        """(K, width, height, frame) of the camera."""
        self.goal = None
        self.estimator = None
        self._early: list = []

    def missing(self) -> list[str]:
        """What the estimator still waits for."""
        return [name for name, value in (('camera_info', self.intrinsics),
                                         ('camera extrinsics', self.T_world_camera),
                                         ('goal', self.goal)) if value is None]

    def set_intrinsics(self, K: np.ndarray, width: int, height: int, frame: str) -> None:
        """New intrinsics (a new estimator when they differ from those in use)."""
        new = (K, int(width), int(height), frame)
        if self.intrinsics is None or any(
                not np.array_equal(a, b) for a, b in zip(new[:3], self.intrinsics[:3])):
            self.intrinsics = new
            self._make_estimator()

    def extrinsics_fault(self, T: np.ndarray) -> str:
        """A fault if `T` (world -> camera) differs from the extrinsics in use, else ''.

        Calibration is fixed for the node's life: a later, different transform (a stray or
        bogus publisher) must not replace it.
        """
        if self.fixed_pose or self.T_world_camera is None or np.allclose(
                T, self.T_world_camera, atol=1e-3):
            return ''
        return ('transform: camera extrinsics differ from the ones in use (restart perception '
                'to recalibrate)')

    def extrinsics_message_fault(self, msg) -> str:
        """The first `extrinsics_fault` of the world -> camera transforms in `msg`, or ''."""
        return next(filter(None, map(self.extrinsics_fault, world_camera_transforms(msg))), '')

    def set_extrinsics(self, T: np.ndarray) -> None:
        """The camera's pose in the world (ignored with a fixed `camera_pose`)."""
        if not np.all(np.isfinite(T)):
            raise ValueError('camera extrinsics: transform is not finite')
        if not self.fixed_pose:
            self.T_world_camera = T
            self._make_estimator()

    def _make_estimator(self) -> None:
        if self.intrinsics is None or self.T_world_camera is None:
            return
        from hlai_ros.sim.base import CameraModel
        from hlai_ros.tasks.base import close_estimator
        K, width, height, frame = self.intrinsics
        camera = CameraModel(width, height, K, self.T_world_camera, self.near, self.far,
                             frame or 'camera_optical_frame')
        close_estimator(self.estimator)
        self.estimator = self.task.make_perception(camera, self.control_dt)

    def reset(self) -> None:
        """A new episode: forget the frames and the estimator's memory."""
        self.sync.reset()
        if hasattr(self.estimator, 'reset'):
            self.estimator.reset()

    def repeated(self, role: str, stamp: int) -> bool:
        """Whether a colour image is the frame estimated last (a lockstep republish)."""
        return role == 'rgb' and stamp == self.sync.last_ns

    def add(self, role: str, stamp: int, msg) -> list[tuple[int, dict]]:
        """Add one sensor message; return the frames now complete, oldest first.

        Until the estimator and the goal are there, the newest messages are kept and replayed
        once they are, so that the first frame is not lost.
        """
        self._early = (self._early + [(role, stamp, msg)])[-12:]
        if self.estimator is None or self.goal is None:
            return []
        early, self._early = self._early, []
        return [f for r, t, m in early for f in self.sync.add(r, t, m)]

    def estimate(self, frame: dict) -> tuple[tuple[str, ...], np.ndarray]:
        """The labelled state (names, float32 values) of a matched frame.

        Raises:
            ValueError: an image or the proprioception cannot be read, or the estimator fails.

        """
        obs = {'rgb': messages.image_to_rgb(frame['rgb']),
               'depth': messages.image_to_depth(frame['depth']), 'goal': self.goal,
               'proprio': self.task.embodiment.decode_proprio(frame['proprio'],
                                                              self.proprio_names)}
        names, values = self.task.encode(self.estimator.estimate(obs))
        return tuple(names), np.asarray(values, dtype=np.float32)

    def pose(self, names, values) -> tuple[float, float, float]:
        """The task's pose of interest (x, y, yaw; yaw 0 when it has none) in a state."""
        get = dict(zip(names, np.asarray(values, dtype=float).tolist()))
        x, y, *yaw = (get[n] for n in self.task.pose_labels)
        return x, y, (yaw[0] if yaw else 0.0)


def world_camera_transforms(msg) -> list[np.ndarray]:
    """The world -> camera transforms of a TFMessage or a TransformStamped."""
    return [messages.transform_to_matrix(tf.transform)
            for tf in getattr(msg, 'transforms', [msg])
            if tf.header.frame_id.lstrip('/') == contract.WORLD_FRAME]
