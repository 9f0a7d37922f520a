"""Pinhole back-projection: depth pixels to points in the world frame.

Conventions follow `hlai_ros.sim.base.CameraModel` and ROS `CameraInfo` (OpenCV): depth is the
distance along the optical axis (z of the optical frame, metres), pixel (u, v) (column, row) has
its centre at the integer coordinates (u, v), and `T_world_camera` maps optical-frame points
(x right, y down, z forward) to the world frame.
"""
from __future__ import annotations

import numpy as np

from hlai_ros.sim.base import CameraModel


def pixel_rays(camera: CameraModel) -> np.ndarray:
    """Return H x W x 3 optical-frame rays (x/z, y/z, 1) through every pixel centre."""
    K = np.asarray(camera.K, dtype=np.float64)
    u = np.arange(camera.width, dtype=np.float64)
    v = np.arange(camera.height, dtype=np.float64)
    uu, vv = np.meshgrid(u, v)
    x = (uu - K[0, 2]) / K[0, 0]
    y = (vv - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def depth_to_camera_points(depth: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Return H x W x 3 optical-frame points (metres) from an H x W depth image (metres)."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.shape != (camera.height, camera.width):
        raise ValueError(f'depth image must be {camera.height} x {camera.width} (H x W) to '
                         f'match the camera model, got shape {depth.shape}')
    return pixel_rays(camera) * depth[..., None]


def camera_to_world(points: np.ndarray, T_world_camera: np.ndarray) -> np.ndarray:
    """Map ... x 3 optical-frame points to the world frame with a 4 x 4 transform."""
    T = np.asarray(T_world_camera, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f'T_world_camera must be 4 x 4, got shape {T.shape}')
    points = np.asarray(points, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def depth_to_world_points(depth: np.ndarray, camera: CameraModel,
                          mask: np.ndarray | None = None) -> np.ndarray:
    """Back-project depth pixels to world points.

    Args:
        depth: H x W depth along the optical axis, metres.
        camera: intrinsics and pose of the camera that took the image.
        mask: optional H x W bool; only these pixels are returned.

    Returns:
        H x W x 3 world points (metres) without a mask, or N x 3 for the N masked pixels.

    """
    points = camera_to_world(depth_to_camera_points(depth, camera), camera.T_world_camera)
    if mask is None:
        return points
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != points.shape[:2]:
        raise ValueError(f'mask must be {points.shape[0]} x {points.shape[1]} (H x W), got '
                         f'shape {mask.shape}')
    return points[mask]


def project_to_pixels(points_world: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Project ... x 3 world points to ... x 2 pixel coordinates (u, v), continuous."""
    T = np.asarray(camera.T_world_camera, dtype=np.float64)
    pts = (np.asarray(points_world, dtype=np.float64) - T[:3, 3]) @ T[:3, :3]
    K = np.asarray(camera.K, dtype=np.float64)
    u = K[0, 0] * pts[..., 0] / pts[..., 2] + K[0, 2]
    v = K[1, 1] * pts[..., 1] / pts[..., 2] + K[1, 2]
    return np.stack([u, v], axis=-1)
