"""Perception for the push world: the state from joint angles and an RGB-D image.

What a real robot has, never the simulator's ground truth:

- the arm's joint positions, which give the end-effector position by forward kinematics of the
  Panda model (the URDF loaded in this estimator's own PyBullet client, base at the pose that
  ``sim/push.yaml`` calibrates);
- the RGB-D camera with its nominal `CameraModel`: the box is segmented by its colour
  (saturated red), its pixels are back-projected through the depth image to world points, and
  the points of its top face (the highest ones) give its centre in the plane, since the top
  face of a box lying flat is centred over the box;
- the goal, as given.

The velocities of the box and of the hand come from finite differences over the control
period, so the estimator keeps state: call `reset` at the start of every episode. When too little
of the box's top face is visible (the hand or arm hides it), `visible` is False and the box is
dead-reckoned (`pushed_along`): a hand within `contact_radius` of it and moving into it carries
it along (quasi-static pushing); otherwise it stays where it was last estimated. When part of
its top face is still seen, the dead-reckoned position is averaged with that part's centroid
(`partial_weight`). The hand hides the box mostly while pushing it, so keeping the last
estimate there would freeze the box while it slides (up to 12 cm off by the end of a push).

Measured errors against ground truth at 64 x 64, scripted episodes, seeds 0..9::

    .venv/bin/python benchmarks/push_perception.py --episodes 10 --sizes 64 --noise 0.08 \
        [--contact-radius 0]

==========================  ========  ==================  ==================  =================
box position (m)            box seen  seen frames         hidden frames       all frames
==========================  ========  ==================  ==================  =================
noise 0.08, default         85%       mean 0.0039, p95    mean 0.0100, p95    mean 0.0048, p95
                                      0.0114              0.0172              0.0131
noise 0.08, last estimate   85%       same                mean 0.0503, p95    mean 0.0108, p95
(``--contact-radius 0``)                                  0.1239              0.0605
noise 0.03, contact rule    91%       mean 0.0041, p95    --                  mean 0.0046, p95
(no partial face)                     0.0121                                  0.0136
==========================  ========  ==================  ==================  =================

(The last-estimate row was measured before the partial-face averaging existed; with
``--contact-radius 0`` today a partly seen face is still averaged in. Before the contact rule,
noise 0.03 gave mean 0.0061, p95 0.0159 over all frames; at 128 x 128
the seen box was off by 0.0037 mean, 0.0115 p95.) The end-effector from forward kinematics is
exact (printed as 0.0000 m). The box's velocity is off by 0.02 m/s mean, 0.08 m/s p95: a
one-pixel step over 0.1 s is ~0.1 m/s, which is why the push task leaves it out of the model
state. Most of the seen-frame error above 5 mm comes from frames where the hand hides part of
the top face (the centroid of what is left moves away from the hand). A wholly visible box at
rest (first frames of seeds 0..19, ``--at-rest``) is off by 1.8 mm median, 5.5 mm at most, at
64 x 64, and 1.1 mm median, 2.2 mm at most, at 128 x 128. With the camera pose perturbed every
episode (``--randomize-camera``: 1 cm and 0.01 rad standard deviations) against the nominal
model, the seen box is off by 13.5 mm median, 47 mm p95 at 64 x 64: calibration matters more
than resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlai_ros.perception.tabletop import (
    ARM_JOINTS,
    CHANNELS,
    ArmKinematics,
    check_images,
    colour_mask,
    coloured_points,
    top_points,
)
from hlai_ros.sim.base import CameraModel

__all__ = ['ARM_JOINTS', 'ArmKinematics', 'PushPerception', 'PushPerceptionConfig',
           'STATE_NAMES']

STATE_NAMES = ('ee_x', 'ee_y', 'obj_x', 'obj_y', 'obj_vx', 'obj_vy', 'goal_x', 'goal_y',
               'ee_vx', 'ee_vy')
"""Names of the state vector: end-effector, box and goal positions (m), box and end-effector
velocities (m/s)."""


@dataclass(frozen=True)
class PushPerceptionConfig:
    """Settings of the push-world estimator."""

    control_dt: float = 0.1
    """Time between two observations, s (the world's control period)."""
    robot_urdf: str = 'franka_panda/panda.urdf'
    """Arm model, a path under ``pybullet_data``."""
    robot_base: tuple = (0.0, 0.0, 0.4)
    """Position (m) of the arm's base in the world frame (calibration; yaw 0)."""
    ee_link: str = 'panda_grasptarget'
    """Link whose origin is the end-effector."""
    min_red: int = 60
    """Box pixels have a red channel of at least this (0..255)."""
    red_ratio: float = 2.0
    """Box pixels have red above this multiple of both green and blue."""
    top_face_tolerance: float = 0.0005
    """Box points within this (m) below the top face's height belong to it. Tight, because the
    side faces' points just below the top edge would pull the centre towards the camera (by
    ~2 mm at 3 mm); raise it to about three times the depth noise of a real camera."""
    min_pixels: int = 3
    """Fewer top-face pixels than this: the box is not visible."""
    min_visible_fraction: float = 0.5
    """Fewer top-face pixels than this fraction of the most seen this episode: the box is taken
    as hidden (a partly hidden top face would bias the centre)."""
    contact_radius: float = 0.065
    """While the box is hidden and the hand is within this distance (m) of its centre, moving
    into it, the box is taken to be pushed along (largest half diagonal, 4 cm, plus the
    fingertips' 1.6 cm and a margin); 0 keeps a hidden box where it was last seen."""
    partial_weight: float = 0.5
    """Weight of the centroid of a partly hidden top face (at least `min_pixels`, fewer than
    `min_visible_fraction`) against the dead-reckoned position of a hidden box; the two err on
    opposite sides (the centroid ahead of the hand, the dead reckoning behind when the box
    slides on), so their mean is off by less than either."""

    def __post_init__(self):
        if self.control_dt <= 0:
            raise ValueError(f'control_dt must be positive, got {self.control_dt}')
        if self.min_pixels < 1 or not 0.0 <= self.min_visible_fraction <= 1.0:
            raise ValueError('min_pixels must be >= 1 and min_visible_fraction in [0, 1]')
        if self.contact_radius < 0:
            raise ValueError(f'contact_radius must be >= 0, got {self.contact_radius}')
        if not 0.0 <= self.partial_weight <= 1.0:
            raise ValueError(f'partial_weight must be in [0, 1], got {self.partial_weight}')


class PushPerception:
    """Estimate the push world's state (`state_names`) from an observation; see the module."""

    state_names = STATE_NAMES

    def __init__(self, camera: CameraModel, config: PushPerceptionConfig | None = None):
        """Use the nominal (calibrated) `camera`; `config` defaults to `PushPerceptionConfig`."""
        self.camera = camera
        self.config = config or PushPerceptionConfig()
        self.kinematics = ArmKinematics(self.config.robot_urdf, self.config.robot_base,
                                        self.config.ee_link)
        self.visible = False
        """Whether the box was seen in the last observation (else its estimate is the last)."""
        self.reset()

    def reset(self) -> None:
        """Forget the previous episode (box and hand positions, velocities, visibility)."""
        self.visible = False
        self.partial: np.ndarray | None = None
        """Centroid (x, y), m, of a partly hidden top face in the last observation, else None."""
        self._box: np.ndarray | None = None
        self._ee: np.ndarray | None = None
        self._velocity = np.zeros(2)
        self._ee_velocity = np.zeros(2)
        self._most_pixels = 0

    def close(self) -> None:
        """Release the kinematics client."""
        self.kinematics.close()

    def estimate(self, obs: dict) -> np.ndarray:
        """Return the state (10,), float32, in `state_names` order.

        Args:
            obs: 'rgb' H x W x 3 uint8, 'depth' H x W float32 (m, along the optical axis),
                'proprio' (14,) arm joint positions (rad) then velocities, 'goal' (2,) metres.

        """
        proprio = np.asarray(obs['proprio'], dtype=np.float64).reshape(-1)
        goal = np.asarray(obs['goal'], dtype=np.float64).reshape(-1)
        if proprio.shape != (14,) or goal.shape != (2,):
            raise ValueError(f"obs['proprio'] must have shape (14,) (7 joint positions, 7 "
                             f"velocities) and obs['goal'] shape (2,), got {proprio.shape} and "
                             f'{goal.shape}')
        ee = self.kinematics.ee_position(proprio[:7])[:2]
        box = self.locate_box(np.asarray(obs['rgb']), np.asarray(obs['depth']))
        self.visible = box is not None
        if box is None and self._box is not None:
            box = self.pushed_along(self._box, self._ee, ee)
            if self.partial is not None:
                w = self.config.partial_weight
                box = (1.0 - w) * box + w * self.partial
        if box is not None:
            if self._box is not None:
                self._velocity = (box - self._box) / self.config.control_dt
            self._box = box
        if self._ee is not None:
            self._ee_velocity = (ee - self._ee) / self.config.control_dt
        self._ee = ee
        position = self._box if self._box is not None else np.full(2, np.nan)
        return np.concatenate([ee, position, self._velocity, goal,
                               self._ee_velocity]).astype(np.float32)

    def pushed_along(self, box: np.ndarray, ee_before: np.ndarray | None,
                     ee: np.ndarray) -> np.ndarray:
        """Where a hidden box (x, y), m, is after the hand moved from `ee_before` to `ee`.

        The hand hides the box mostly while pushing it. When the hand was within
        `contact_radius` of the box's centre and moved into it, the box is taken to have moved
        with the hand (quasi-static pushing: the box moves with its pusher and stops with it);
        otherwise it stays where it was last estimated.
        """
        if ee_before is None or self.config.contact_radius <= 0:
            return box
        rel = box - ee_before
        dist = float(np.linalg.norm(rel))
        if not 1e-6 < dist < self.config.contact_radius:
            return box
        step = ee - ee_before
        # a push carries the box with the hand (sideways too: the fingertips grip its face by
        # friction); a hand moving back or sideways away from it leaves it where it was
        return box + step if float(step @ rel) > 0.0 else box

    def box_mask(self, rgb: np.ndarray) -> np.ndarray:
        """Return the H x W bool mask of box-coloured pixels in an H x W x 3 uint8 image."""
        return colour_mask(rgb, CHANNELS['red'], self.config.min_red, self.config.red_ratio)

    def locate_box(self, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray | None:
        """Return the box centre (x, y), metres, world frame, or None when it is hidden.

        Box-coloured pixels are back-projected to world points; those within
        `top_face_tolerance` of the highest (robustly: the 90th percentile) are its top face,
        whose centroid lies over the box's centre.
        """
        cam, c = self.camera, self.config
        self.partial = None
        check_images(rgb, depth, cam)
        points = coloured_points(self.box_mask(rgb), depth, cam, c.min_pixels)
        if points is None:
            return None
        face = top_points(points, c.top_face_tolerance)
        count = len(face)
        self._most_pixels = max(self._most_pixels, count)
        if count < c.min_pixels:
            return None
        if count < c.min_visible_fraction * self._most_pixels:
            self.partial = face[:, :2].mean(axis=0)
            return None
        return face[:, :2].mean(axis=0)
