"""Push world: a Franka Panda pushes a box across a table to a goal, without pushing it off.

The scene (``sim/push.yaml``): a 0.4 x 0.5 m table top 0.4 m above the floor, held up by a narrower
column so that its edges overhang and a box pushed past them falls; a Franka Panda
(``franka_panda/panda.urdf`` from ``pybullet_data``, fixed base) on a pedestal level with the
table, facing +x; a red box on the table; a green disc (visual only) marking the goal. A fixed
camera on the table's -y side looks down on the whole table at about 40 degrees (from there the
arm hides the box less often than from overhead).

Action: ``(vx, vy)``, the commanded planar velocity (m/s) of the end-effector (the point between
the closed fingertips, ``panda_grasptarget``), each component bounded by 0.2 m/s. The command
moves a target point that stays at a fixed height (2 cm) above the table, inside a reachable
workspace and within 4 cm of the actual end-effector. Every control step, inverse kinematics
(with a null-space rest posture) turns the target, hand pointing down, into joint angles; the
joint position targets are interpolated over the physics substeps and tracked by the arm's
position-controlled motors. The fingers stay closed.

Proprioception: the seven arm joints' positions (rad) then velocities (rad/s), named in
``proprio_names``.

Every episode draws the box's start pose and, with ``randomize_dynamics``, its mass
(0.1-0.5 kg), friction (0.3-0.7) and size (4-5.6 cm square, 3-5 cm tall); otherwise the
midpoints. The goal is 0.1-0.3 m from the box and at least 5 cm inside every table edge; 30% of
goals lie 5-8 cm from an edge, which tempts a pusher to overshoot. ``reset(options=...)``
accepts ``goal`` (x, y) and ``object`` (x, y, yaw) to pose a scene exactly.

Outcome: success when the box centre is within 3 cm (planar) of the goal; failure ``'fell'``
when the box centre leaves the table top's footprint or drops 3 cm below its resting height.
Both end the episode.

Reward per step: ``-distance(box, goal)`` (m), plus ``+10`` on success and ``-50`` on a fall
(weights in ``sim/push.yaml``, section ``reward``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hlai_ros.sim.panda import (
    ARM_JOINTS,
    FINGER_JOINTS,
    PandaTableConfig,
    PandaTableWorld,
    camera_spec_from_scene,
    light_panda_urdf,
    load_scene_file,
    nominal,
)

__all__ = ['ARM_JOINTS', 'FINGER_JOINTS', 'PushConfig', 'PushWorld', 'light_panda_urdf',
           'load_scene']


def load_scene() -> dict:
    """Return the scene description of ``sim/push.yaml`` as a dict."""
    return load_scene_file('push.yaml')


@dataclass(frozen=True)
class PushConfig(PandaTableConfig):
    """Settings of the push world (the scene itself is described by ``sim/push.yaml``).

    The fields are those of `PandaTableConfig`: ``randomize_start`` draws the box's start pose
    every episode, ``ee_lead_m`` bounds the end-effector target's lead (m).
    """


class PushWorld(PandaTableWorld):
    """A Franka Panda pushes a box to a goal on a table; the box must not fall off."""

    config_class = PushConfig
    scene_file = 'push.yaml'
    camera_spec = camera_spec_from_scene(load_scene())

    def __init__(self, config: PushConfig | None = None, render_mode: str | None = None,
                 **overrides):
        super().__init__(config, render_mode, **overrides)
        self._object_size = np.zeros(3)
        self._object_mass = 0.0
        self._object_friction = 0.0
        self._object_rest_z = 0.0

    # -- scene ------------------------------------------------------------------------------
    def _object_half_size(self) -> np.ndarray:
        o = self.scene['object']
        half_xy = self._pick(o['half_size_xy'])
        return np.array([half_xy, half_xy, self._pick(o['half_height'])])

    def _create_object(self, options: dict) -> None:
        b, o = self._bullet, self.scene['object']
        pose = options.get('object')
        half = self._object_half_size()
        self._object_mass = self._pick(o['mass'])
        self._object_friction = self._pick(o['friction'])
        self._object_size = 2.0 * half
        if pose is not None:
            pose = np.asarray(pose, dtype=np.float64).reshape(-1)
            if pose.shape != (3,) or not np.all(np.isfinite(pose)):
                raise ValueError(f"options['object'] must be finite (x, y, yaw), got {pose!r}")
            if not self.on_table(pose[:2]):
                raise ValueError(f"options['object'] {pose[:2]} is off the table (centre "
                                 f'{self.table_center}, half extents {self.table_half})')
        elif self.config.randomize_start:
            ee = np.array(self.scene['robot']['start_ee'])
            for _ in range(1000):
                pose = np.array([self._draw(o['start_x']), self._draw(o['start_y']),
                                 self._draw(o['start_yaw'])])
                if np.linalg.norm(pose[:2] - ee) >= float(o['ee_clearance']):
                    break
        else:
            pose = np.array([nominal(o['start_x']), nominal(o['start_y']), 0.0])
        col = b.createCollisionShape(b.GEOM_BOX, halfExtents=half.tolist())
        vis = b.createVisualShape(b.GEOM_BOX, halfExtents=half.tolist(), rgbaColor=o['rgba'])
        self._object_rest_z = self.table_top + half[2]
        orn = b.getQuaternionFromEuler([0.0, 0.0, float(pose[2])])
        self._object = b.createMultiBody(self._object_mass, col, vis,
                                         [pose[0], pose[1], self._object_rest_z], orn)
        b.changeDynamics(self._object, -1, lateralFriction=self._object_friction,
                         spinningFriction=0.001, rollingFriction=0.0)

    def object_start(self) -> np.ndarray:
        """Return the box's planar position (2,), metres (goals are drawn around it)."""
        return self.object_pose()[:2]

    # -- state ------------------------------------------------------------------------------
    def object_pose(self) -> np.ndarray:
        """Return the box's (x, y, z, yaw), metres and radians (ground truth)."""
        pos, orn = self._bullet.getBasePositionAndOrientation(self._object)
        yaw = self._bullet.getEulerFromQuaternion(orn)[2]
        return np.array([*pos, yaw], dtype=np.float64)

    def _ground_truth(self) -> dict[str, Any]:
        b = self._bullet
        pose = self.object_pose()
        pos, orn = b.getBasePositionAndOrientation(self._object)
        lin, ang = b.getBaseVelocity(self._object)
        return {
            'object_position': pose[:3].copy(),
            'object_yaw': float(pose[3]),
            'object_orientation': np.array(orn, dtype=np.float64),
            'object_velocity': np.array(lin, dtype=np.float64),
            'object_angular_velocity': np.array(ang, dtype=np.float64),
            'object_mass': self._object_mass,
            'object_friction': self._object_friction,
            'object_size': self._object_size.copy(),
            'ee_position': self.ee_position(),
            'ee_target': self._ee_target.copy(),
            'goal': self._goal.astype(np.float64).copy(),
            'distance_to_goal': float(np.linalg.norm(pose[:2] - self._goal)),
            'distance_to_edge': self.distance_to_edge(pose[:2]),
            'table_center': self.table_center.copy(),
            'table_half_extents': self.table_half.copy(),
            'table_top': self.table_top,
        }

    def _outcome(self) -> tuple[bool, str | None]:
        pose = self.object_pose()
        fall = self.scene['fall']
        if (not self.on_table(pose[:2], -float(fall['footprint_margin']))
                or pose[2] < self._object_rest_z - float(fall['drop'])):
            return False, 'fell'
        dist = float(np.linalg.norm(pose[:2] - self._goal))
        return dist <= float(self.scene['goal']['success_radius']), None

    def _reward(self, action: np.ndarray, success: bool, failure: str | None) -> float:
        r = self.scene['reward']
        pose = self.object_pose()
        reward = -float(r['distance_weight']) * float(np.linalg.norm(pose[:2] - self._goal))
        if success:
            reward += float(r['success_bonus'])
        if failure is not None:
            reward -= float(r['fall_penalty'])
        return reward
