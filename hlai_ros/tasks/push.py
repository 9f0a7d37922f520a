"""The push task: an arm pushes a box across a table to a goal without pushing it off.

Model state: end-effector ``ee_x, ee_y`` (m, forward kinematics of the joint angles), box
``obj_x, obj_y`` (m) and its velocity ``obj_vx, obj_vy`` (m/s) from the RGB-D camera. The goal
enters the cost, not the state. The table top is the robot's calibrated workspace
(``sim/push.yaml``, section ``table``), like a table's pose configured on a real cell.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hlai_ros.perception.push import PushPerception
from hlai_ros.sim.base import CameraModel
from hlai_ros.tasks.base import Percept, Task


def table_bounds() -> list[float]:
    """The table top (x_min, x_max, y_min, y_max), metres, world frame."""
    from hlai_ros.sim.push import load_scene
    table = load_scene()['table']
    (cx, cy), (hx, hy) = table['center'], table['half_extents']
    return [cx - hx, cx + hx, cy - hy, cy + hy]


class PushTask(Task):
    """Push the box to within 3 cm of the goal; never off the table."""

    name = 'push'
    model_state_names = ('ee_x', 'ee_y', 'obj_x', 'obj_y', 'obj_vx', 'obj_vy')
    position_indices = (2, 3)
    action_low = (-0.2, -0.2)
    action_high = (0.2, 0.2)

    def default_cost(self) -> dict[str, Any]:
        """Box-to-goal distance, reaching the box, the table-edge barrier, effort, uncertainty."""
        return {
            'terms': ['goal', 'reach', 'fall', 'effort', 'uncertainty'],
            'goal': {'weight': 10.0, 'position_indices': [2, 3], 'terminal_weight': 2.0},
            'reach': {'kind': 'goal', 'weight': 1.0, 'position_indices': [0, 1],
                      'goal_indices': [2, 3]},
            'fall': {'kind': 'platform_fall', 'weight': 50.0, 'position_indices': [2, 3],
                     'bounds': table_bounds(), 'margin': 0.03, 'sharpness': 150.0,
                     'ensemble_reduce': 'max'},
            'effort': {'weight': 0.05, 'scale': [0.2, 0.2]},
            'uncertainty': {'weight': 10.0, 'state_indices': [2, 3]},
        }

    def make_perception(self, camera: CameraModel) -> PushPerception:
        """Forward kinematics + colour/depth box estimator of `hlai_ros.perception.push`."""
        return PushPerception(camera)

    def perceive(self, estimator: PushPerception, obs: dict[str, np.ndarray]) -> Percept:
        """Joint angles + RGB-D -> model state; the goal as given."""
        state = np.asarray(estimator.estimate(obs), dtype=np.float32)
        return Percept(state[:6].copy(), state[6:8].copy(), None, state)
