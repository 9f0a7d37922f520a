"""The cliff task: a differential-drive base reaching a goal near the edge of a platform.

Model state: ``x, y`` (m), ``cos yaw, sin yaw``, ``v`` (m/s), ``omega`` (rad/s) from odometry;
yaw is carried as cos/sin so that the model never sees the jump at +-pi. The platform and the
obstacles are static: perception finds them in the depth image and they enter the cost (fall and
collision barriers), not the model state.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hlai_ros.perception.cliff import CliffPerception
from hlai_ros.sim.base import CameraModel
from hlai_ros.tasks.base import Percept, Task


class CliffTask(Task):
    """Reach the goal without driving off the platform or into an obstacle."""

    name = 'cliff'
    model_state_names = ('x', 'y', 'cos_yaw', 'sin_yaw', 'v', 'omega')
    position_indices = (0, 1)
    action_low = (-0.5, -1.0)
    action_high = (0.5, 1.0)

    def default_cost(self) -> dict[str, Any]:
        """Goal distance, fall and collision barriers, effort, model uncertainty."""
        return {
            'terms': ['goal', 'fall', 'collision', 'effort', 'uncertainty'],
            'goal': {'weight': 1.0, 'position_indices': [0, 1], 'terminal_weight': 2.0},
            'fall': {'kind': 'platform_fall', 'weight': 30.0, 'position_indices': [0, 1],
                     'margin': 0.3, 'sharpness': 30.0, 'ensemble_reduce': 'max'},
            'collision': {'kind': 'obstacle_collision', 'weight': 30.0,
                          'position_indices': [0, 1], 'body_radius': 0.45, 'margin': 0.15,
                          'sharpness': 30.0, 'ensemble_reduce': 'max'},
            'effort': {'weight': 0.01, 'scale': [0.5, 1.0]},
            'uncertainty': {'weight': 1.0, 'state_indices': [0, 1]},
        }

    def make_perception(self, camera: CameraModel) -> CliffPerception:
        """The depth + odometry estimator of `hlai_ros.perception.cliff`."""
        return CliffPerception(camera)

    def perceive(self, estimator: CliffPerception, obs: dict[str, np.ndarray]) -> Percept:
        """Odometry -> model state; depth -> platform and obstacles."""
        est = estimator.estimate(obs)
        x, y, yaw, v, omega, gx, gy = (float(u) for u in est.state)
        state = np.array([x, y, math.cos(yaw), math.sin(yaw), v, omega], dtype=np.float32)
        return Percept(state, np.array([gx, gy], dtype=np.float32), est.scene, est)

    def scene_terms(self, scene) -> dict[str, dict[str, Any]]:
        """Perceived platform bounds and obstacle circles."""
        if scene is None:
            return {'fall': {'enabled': False}, 'collision': {'enabled': False}}
        out: dict[str, dict[str, Any]] = {
            'fall': {'bounds': [float(b) for b in scene.bounds]}}
        if len(scene.obstacle_radii):
            out['collision'] = {
                'centres': [[float(c[0]), float(c[1])] for c in scene.obstacle_centres],
                'radii': [float(r) for r in scene.obstacle_radii]}
        else:
            out['collision'] = {'enabled': False}
        return out
