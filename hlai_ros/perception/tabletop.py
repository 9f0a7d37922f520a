"""Perception shared by the Panda-at-a-table worlds (push, roll).

- `ArmKinematics`: forward kinematics of the Panda from its joint angles, in a private PyBullet
  client (the hand's position is exact, no camera needed);
- `colour_mask`: pixels of a saturated colour (one channel well above the two others);
- `coloured_points`: those pixels back-projected through the depth image to world points;
- `top_points`: the highest of a set of points (the top face of a box lying flat).
"""
from __future__ import annotations

import numpy as np
import pybullet as p
import pybullet_data

from hlai_ros.perception.camera import depth_to_world_points
from hlai_ros.sim.base import CameraModel, bullet_client_quiet

ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
"""Names of the Panda's seven arm joints, base to hand."""

CHANNELS = {'red': 0, 'green': 1, 'blue': 2}
"""Index of each colour channel in an RGB image."""


class ArmKinematics:
    """Forward kinematics of the Panda in its own PyBullet client (no simulation)."""

    def __init__(self, urdf: str, base, ee_link: str):
        """Load `urdf` (a path under ``pybullet_data``) with its base at `base` (m), yaw 0."""
        self._client = bullet_client_quiet(p.DIRECT)
        self._client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self._robot = self._client.loadURDF(urdf, list(base), useFixedBase=True)
        joints, links = {}, {}
        for j in range(self._client.getNumJoints(self._robot)):
            info = self._client.getJointInfo(self._robot, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
        if ee_link not in links:
            raise ValueError(f'link {ee_link!r} not in {urdf}; links: {sorted(links)}')
        self._arm = [joints[n] for n in ARM_JOINTS]
        self._ee = links[ee_link]

    def ee_position(self, q: np.ndarray) -> np.ndarray:
        """Return the end-effector position (3,), metres, for arm joint angles q (7,), rad."""
        q = np.asarray(q, dtype=np.float64).reshape(-1)
        if q.shape != (7,):
            raise ValueError(f'expected 7 arm joint angles, got shape {q.shape}')
        for j, angle in zip(self._arm, q):
            self._client.resetJointState(self._robot, j, float(angle))
        state = self._client.getLinkState(self._robot, self._ee, computeForwardKinematics=True)
        return np.array(state[4], dtype=np.float64)

    def close(self) -> None:
        """Disconnect the private client."""
        if self._client is not None:
            try:
                self._client.disconnect()
            except p.error:
                pass
            self._client = None


def colour_mask(rgb: np.ndarray, channel: int, min_level: int, ratio: float) -> np.ndarray:
    """Return the H x W bool mask of pixels of a saturated colour.

    Args:
        rgb: H x W x 3 uint8 image.
        channel: the colour's channel (0 red, 1 green, 2 blue; see `CHANNELS`).
        min_level: the channel is at least this (0..255).
        ratio: the channel is above this multiple of both other channels.

    Returns:
        H x W bool mask.

    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'rgb must be H x W x 3, got shape {rgb.shape}')
    c = rgb[..., channel].astype(np.int32)
    o1, o2 = (rgb[..., k].astype(np.int32) for k in range(3) if k != channel)
    return (c >= min_level) & (c > ratio * o1) & (c > ratio * o2)


def check_images(rgb: np.ndarray, depth: np.ndarray, camera: CameraModel) -> None:
    """Raise ValueError unless `rgb` (H x W x 3) and `depth` (H x W) match the camera."""
    if rgb.shape[:2] != (camera.height, camera.width) or depth.shape != rgb.shape[:2]:
        raise ValueError(f'rgb {rgb.shape[:2]} and depth {depth.shape} must both be '
                         f'{camera.height} x {camera.width} (H x W) like the camera model')


def valid_depth(depth: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Return the H x W bool mask of depths (m) inside the camera's range (not background)."""
    return np.isfinite(depth) & (depth > camera.near) & (depth < 0.999 * camera.far)


def coloured_points(mask: np.ndarray, depth: np.ndarray, camera: CameraModel,
                    min_pixels: int = 1) -> np.ndarray | None:
    """Back-project the masked pixels with a valid depth to world points.

    Args:
        mask: H x W bool mask (e.g. from `colour_mask`).
        depth: H x W float32 depth along the optical axis, metres.
        camera: the (nominal) camera model.
        min_pixels: fewer valid masked pixels than this gives None.

    Returns:
        N x 3 world points (m), or None when fewer than `min_pixels`.

    """
    mask = mask & valid_depth(depth, camera)
    if mask.sum() < min_pixels:
        return None
    return depth_to_world_points(depth, camera, mask)


def top_points(points: np.ndarray, tolerance: float, percentile: float = 90.0) -> np.ndarray:
    """Return the points (M x 3) within `tolerance` (m) below the highest of `points` (N x 3).

    The highest is taken robustly as the `percentile`-th percentile of the heights.
    """
    z_top = np.percentile(points[:, 2], percentile)
    return points[points[:, 2] >= z_top - tolerance]
