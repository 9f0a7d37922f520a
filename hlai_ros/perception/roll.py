"""Perception for the roll world: the state from joint angles and an RGB-D image.

What a real robot has, never the simulator's ground truth:

- the arm's joint positions, which give the end-effector position by forward kinematics of the
  Panda model (`hlai_ros.perception.tabletop.ArmKinematics`, base where ``sim/push.yaml``
  calibrates it; the roll world shares that embodiment);
- the RGB-D camera with its nominal `CameraModel`: the ball is segmented by its colour
  (saturated blue) and its pixels are back-projected through the depth image to points on its
  visible surface. A sphere resting on the table top (height known by calibration) has its
  centre at ``(x, y, table_top + r)``; a linear least-squares fit of ``x, y, r`` to the surface
  points gives the centre even when the hand hides part of the ball. With fewer than
  `min_fit_pixels` points (a sliver beside the hand), or an implausible fit, the centre is fitted
  with the radius fixed (`fit_known_sphere`: the episode's fitted radius, else
  `prior_radius`), started from the dead-reckoned centre: the sliver's own centroid lies up to
  a radius off (14.7 mm mean on such frames in closed loop, 1.2 mm with the fixed-radius fit).
  Only when that fit fails too is the centroid of the highest points used;
- the goal, as given.

The ball's velocity, while it is seen in consecutive frames, is the plain difference of the
last two measured centres over the control period, and its position the measured centre: the
sphere fit is accurate to well under a pixel (0.3 mm mean), so the difference is not noisy, and
it has no lag, so the world model's state stays Markov through the hand's strikes (an
alpha-beta filter's velocity lags a strike by a few steps: in the data a ball whose estimated
velocity is zero then often moves, which a world model learns as a drift). An alpha-beta filter
still runs underneath: when the ball is not seen, it is dead-reckoned with the filter's
velocity, which decays by `hidden_decay` per step (a free ball slows down), and a hand moving
into it carries it along (`contact_radius`); when it reappears, its velocity is the mean over
the gap. The hand's velocity is the finite difference of its (exact) forward kinematics. The
estimator keeps state: call `reset` at the start of every episode.

Measured errors against ground truth at 64 x 64, scripted episodes (``RollScripted`` with
0.05 m/s action noise), seeds 0..9, at most 150 steps each (808 frames, the ball seen in 93%
of them; ground truth for measuring only; "before" is the sliver's centroid, 304f78f)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_perception.py --episodes 10 [--filter]

==================================  ===================  =================  =================
planar error, mean / p95            now                  before             alpha-beta only
==================================  ===================  =================  =================
ball position, seen after seen      0.3 / 0.7 mm         0.7 / 0.7 mm       0.8 / 2.7 mm
ball velocity, seen after seen      0.006 / 0.018 m/s    0.009 / 0.036 m/s  0.012 / 0.048 m/s
ball velocity, just reappeared      0.035 / 0.12 m/s     0.051 / 0.12 m/s   0.034 / 0.12 m/s
ball position, hidden frames        5.1 / 15 mm          17 / 36 mm         5.1 / 15 mm
ball position, all frames           0.7 / 2.3 mm         2.0 / 17 mm        1.1 / 3.7 mm
end-effector position               < 1e-6 m             < 1e-6 m           < 1e-6 m
==================================  ===================  =================  =================

The estimate has no bias towards the hand: with the hand 4-20 cm from the ball its error along
the hand-ball line is -0.3 to 0.0 mm on average (hidden frames included; -1.3 mm within 4 cm),
and with the hand parked 4-12 cm from a ball at rest (``--park``, 1,500 frames) the ball is
estimated at rest (speed 1e-4 m/s mean) within 0.1 mm of the truth along that line. Without
the contact rule (``contact_radius=0``) hidden frames were off by 44 mm mean, 169 mm p95
(filter only; measured before the fixed-radius fit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlai_ros.perception.tabletop import (
    CHANNELS,
    ArmKinematics,
    check_images,
    colour_mask,
    coloured_points,
    top_points,
)
from hlai_ros.sim.base import CameraModel

STATE_NAMES = ('ee_x', 'ee_y', 'obj_x', 'obj_y', 'obj_vx', 'obj_vy', 'goal_x', 'goal_y',
               'ee_vx', 'ee_vy', 'obj_seen')
"""Names of the state vector: end-effector, ball and goal positions (m), ball and end-effector
velocities (m/s), the push world's layout; then 1 where the ball was seen in this frame, 0 where
it was dead-reckoned (`hlai_ros.tasks.base.SEEN_LABEL`)."""


@dataclass(frozen=True)
class RollPerceptionConfig:
    """Settings of the roll-world estimator."""

    control_dt: float = 0.1
    """Time between two observations, s (the world's control period)."""
    robot_urdf: str = 'franka_panda/panda.urdf'
    """Arm model, a path under ``pybullet_data``."""
    robot_base: tuple = (0.0, 0.0, 0.4)
    """Position (m) of the arm's base in the world frame (calibration; yaw 0)."""
    ee_link: str = 'panda_grasptarget'
    """Link whose origin is the end-effector."""
    table_top: float = 0.4
    """Height (m) of the table top the ball rests on (calibration)."""
    min_blue: int = 60
    """Ball pixels have a blue channel of at least this (0..255)."""
    blue_ratio: float = 2.0
    """Ball pixels have blue above this multiple of both red and green."""
    min_pixels: int = 3
    """Fewer ball pixels than this: the ball is not visible."""
    min_fit_pixels: int = 6
    """At least this many ball pixels: fit a sphere (else the top points' centroid)."""
    radius_range: tuple = (0.01, 0.06)
    """A sphere fit with a radius (m) outside this range is rejected."""
    prior_radius: float = 0.0225
    """Radius (m) assumed for a partly hidden ball until a full sphere fit in this episode has
    measured it (the median of the episode's fits from then on)."""
    max_fit_residual: float = 0.004
    """A fixed-radius fit whose points lie further (m, root mean square) from its sphere is
    rejected (the top points' centroid is used)."""
    top_tolerance: float = 0.006
    """Without a fit, points within this (m) below the highest belong to the ball's top."""
    alpha: float = 0.7
    """Alpha-beta filter: weight of a new position measurement (0..1]."""
    beta: float = 0.35
    """Alpha-beta filter: weight of the position residual in the velocity update (0..1]."""
    difference: bool = True
    """While the ball is seen in two frames in a row, its velocity is the plain difference of
    the two measured centres over the control period and its position the measured centre (a
    Markov state for the world model; the alpha-beta filter lags strikes by a few steps). When
    it reappears after being hidden, its position is the measured centre and its velocity the
    mean over the gap (from where it was last seen). The filter still runs underneath and
    dead-reckons the hidden ball (its smoothed velocity extrapolates better than the last
    difference, which a half-hidden ball's measurement spoils). False: the filter always."""
    hidden_decay: float = 0.95
    """Factor on the ball's estimated velocity per step while it is hidden."""
    contact_radius: float = 0.065
    """A hidden ball within this distance (m) of the hand, which moves into it, is carried
    along at least at the hand's speed (largest radius, 2.5 cm, plus the hand's 2.1 cm half
    width and a margin); 0 turns this off."""

    def __post_init__(self):
        if self.control_dt <= 0:
            raise ValueError(f'control_dt must be positive, got {self.control_dt}')
        if self.contact_radius < 0:
            raise ValueError(f'contact_radius must be >= 0, got {self.contact_radius}')
        lo, hi = self.radius_range
        if not 0 < lo <= self.prior_radius <= hi:
            raise ValueError(f'prior_radius must lie in radius_range {self.radius_range}, '
                             f'got {self.prior_radius}')
        if self.min_pixels < 1 or self.min_fit_pixels < 4:
            raise ValueError('min_pixels must be >= 1 and min_fit_pixels >= 4')
        if not (0.0 < self.alpha <= 1.0 and 0.0 < self.beta <= 1.0):
            raise ValueError(f'alpha and beta must be in (0, 1], got {self.alpha}, {self.beta}')
        if not 0.0 <= self.hidden_decay <= 1.0:
            raise ValueError(f'hidden_decay must be in [0, 1], got {self.hidden_decay}')


def fit_known_sphere(points: np.ndarray, table_top: float, radius: float, eye: np.ndarray,
                     start: np.ndarray | None = None, iterations: int = 10
                     ) -> tuple[np.ndarray, float]:
    """Fit the centre of a sphere of known radius resting on a plane to a few surface points.

    What a partly hidden ball shows is a sliver of its surface: the sliver's centroid lies up
    to a radius off the centre (towards what is visible), but the centre is the point of the
    plane ``z = table_top + radius`` at `radius` from every surface point. Gauss-Newton on
    ``|p - c| - radius`` over the centre's x, y, started at `start` or else behind the
    points' centroid as seen from the camera `eye` (the visible surface faces the camera).

    Args:
        points: N x 3 surface points (m), world frame, N >= 2.
        table_top: height (m) of the plane.
        radius: the sphere's radius (m).
        eye: the camera's position (3,), m.
        start: a first guess of the centre (x, y), m.
        iterations: Gauss-Newton steps.

    Returns:
        The centre (x, y), m, and the root-mean-square distance (m) of the points from the
        fitted sphere.

    """
    height = table_top + radius
    if start is None:
        mean = points[:, :2].mean(axis=0)
        away = mean - eye[:2]
        start = mean + 0.5 * radius * away / max(float(np.linalg.norm(away)), 1e-9)
    centre = np.asarray(start, dtype=np.float64).copy()
    for _ in range(iterations):
        rel = points - np.array([centre[0], centre[1], height])
        dist = np.maximum(np.linalg.norm(rel, axis=1), 1e-9)
        residual = dist - radius
        jacobian = -rel[:, :2] / dist[:, None]
        step = np.linalg.lstsq(jacobian, -residual, rcond=None)[0]
        centre += step
        if float(np.abs(step).max()) < 1e-5:
            break
    rel = points - np.array([centre[0], centre[1], height])
    rms = float(np.sqrt(np.mean((np.linalg.norm(rel, axis=1) - radius) ** 2)))
    return centre, rms


def fit_resting_sphere(points: np.ndarray, table_top: float) -> tuple[np.ndarray, float]:
    """Fit a sphere resting on a horizontal plane to points on its surface.

    The centre is ``(x, y, table_top + r)``; ``|p - c|^2 = r^2`` is linear in ``x, y, r`` and
    ``k = x^2 + y^2``: ``2 px x + 2 py y + 2 h r - k = px^2 + py^2 + h^2`` with
    ``h = pz - table_top``.

    Args:
        points: N x 3 surface points (m), world frame, N >= 4.
        table_top: height (m) of the plane.

    Returns:
        The centre (x, y), m, and the radius, m.

    """
    h = points[:, 2] - table_top
    A = np.stack([2.0 * points[:, 0], 2.0 * points[:, 1], 2.0 * h,
                  -np.ones(len(points))], axis=1)
    b = points[:, 0] ** 2 + points[:, 1] ** 2 + h ** 2
    sol = np.linalg.lstsq(A, b, rcond=None)[0]
    return sol[:2], float(sol[2])


class RollPerception:
    """Estimate the roll world's state (`state_names`) from an observation; see the module."""

    state_names = STATE_NAMES

    def __init__(self, camera: CameraModel, config: RollPerceptionConfig | None = None):
        """Use the nominal (calibrated) `camera`; `config` defaults to `RollPerceptionConfig`."""
        self.camera = camera
        self.config = config or RollPerceptionConfig()
        self.kinematics = ArmKinematics(self.config.robot_urdf, self.config.robot_base,
                                        self.config.ee_link)
        self.visible = False
        """Whether the ball was seen in the last observation (else it was dead-reckoned)."""
        self.reset()

    def reset(self) -> None:
        """Forget the previous episode (ball and hand positions, velocities, visibility)."""
        self.visible = False
        self.radius: float | None = None
        """Radius (m) of the last full sphere fit, or None (no fit in the last frame)."""
        self._radii: list[float] = []
        self._ball: np.ndarray | None = None
        self._velocity = np.zeros(2)
        self._last_seen: np.ndarray | None = None
        self._hidden_steps = 0
        self._ee: np.ndarray | None = None
        self._ee_velocity = np.zeros(2)

    def close(self) -> None:
        """Release the kinematics client."""
        self.kinematics.close()

    def estimate(self, obs: dict) -> np.ndarray:
        """Return the state (11,), float32, in `state_names` order.

        Args:
            obs: 'rgb' H x W x 3 uint8, 'depth' H x W float32 (m, along the optical axis),
                'proprio' (14,) arm joint positions (rad) then velocities, 'goal' (2,) metres.

        Returns:
            ``ee_x, ee_y, obj_x, obj_y`` (m), ``obj_vx, obj_vy`` (m/s), ``goal_x, goal_y`` (m),
            ``ee_vx, ee_vy`` (m/s), ``obj_seen`` (1 or 0); the ball's entries are NaN until
            it is first seen.

        """
        proprio = np.asarray(obs['proprio'], dtype=np.float64).reshape(-1)
        goal = np.asarray(obs['goal'], dtype=np.float64).reshape(-1)
        if proprio.shape != (14,) or goal.shape != (2,):
            raise ValueError(f"obs['proprio'] must have shape (14,) (7 joint positions, 7 "
                             f"velocities) and obs['goal'] shape (2,), got {proprio.shape} and "
                             f'{goal.shape}')
        dt, c = self.config.control_dt, self.config
        ee = self.kinematics.ee_position(proprio[:7])[:2]
        measured = self.locate_ball(np.asarray(obs['rgb']), np.asarray(obs['depth']))
        self.visible = measured is not None
        if self._ball is None:
            if measured is not None:
                self._ball = measured
        else:
            predicted = self._ball + self._velocity * dt
            if measured is None:
                self._velocity = self._pushed_velocity(self._velocity * c.hidden_decay, ee)
                self._ball = self._ball + self._velocity * dt
            else:
                residual = measured - predicted
                self._ball = predicted + c.alpha * residual
                self._velocity = self._velocity + (c.beta / dt) * residual
        position, velocity = self._ball, self._velocity
        if c.difference and measured is not None:
            position = measured
            if self._last_seen is not None:
                velocity = (measured - self._last_seen) / (dt * (1 + self._hidden_steps))
        if measured is not None:
            self._last_seen, self._hidden_steps = measured, 0
        elif self._last_seen is not None:
            self._hidden_steps += 1
        if self._ee is not None:
            self._ee_velocity = (ee - self._ee) / dt
        self._ee = ee
        if self._ball is None:
            position, velocity = np.full(2, np.nan), np.full(2, np.nan)
        return np.concatenate([ee, position, velocity, goal, self._ee_velocity,
                               [float(self.visible)]]).astype(np.float32)

    def _pushed_velocity(self, velocity: np.ndarray, ee: np.ndarray) -> np.ndarray:
        """Velocity (m/s) of a hidden ball that a hand within `contact_radius` moves into.

        The hand hides the ball mostly while pushing it: a hand moving into the ball carries
        it at least at the hand's speed along the line between them.
        """
        if self._ee is None or self.config.contact_radius <= 0:
            return velocity
        rel = self._ball - self._ee
        dist = float(np.linalg.norm(rel))
        if not 1e-6 < dist < self.config.contact_radius:
            return velocity
        u = rel / dist
        hand = float(((ee - self._ee) / self.config.control_dt) @ u)
        now = float(velocity @ u)
        return velocity + max(0.0, hand - now) * u

    def ball_mask(self, rgb: np.ndarray) -> np.ndarray:
        """Return the H x W bool mask of ball-coloured pixels in an H x W x 3 uint8 image."""
        return colour_mask(rgb, CHANNELS['blue'], self.config.min_blue, self.config.blue_ratio)

    def locate_ball(self, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray | None:
        """Return the ball centre (x, y), metres, world frame, or None when it is not seen.

        Ball-coloured pixels are back-projected to world points on its visible surface; a
        sphere resting on the table is fitted to them (`fit_resting_sphere`), or, with few
        points or an implausible radius, the centroid of the highest points is used.
        """
        c = self.config
        check_images(rgb, depth, self.camera)
        points = coloured_points(self.ball_mask(rgb), depth, self.camera, c.min_pixels)
        self.radius = None
        if points is None:
            return None
        if len(points) >= c.min_fit_pixels:
            centre, radius = fit_resting_sphere(points, c.table_top)
            lo, hi = c.radius_range
            highest = float(points[:, 2].max()) - c.table_top
            if lo <= radius <= hi and radius <= highest + 0.005 and np.all(np.isfinite(centre)):
                self.radius = radius
                self._radii.append(radius)
                return centre
        radius = float(np.median(self._radii)) if self._radii else c.prior_radius
        start = None if self._ball is None else self._ball + self._velocity * c.control_dt
        eye = self.camera.T_world_camera[:3, 3]
        centre, rms = fit_known_sphere(points, c.table_top, radius, eye, start)
        if (np.all(np.isfinite(centre)) and rms <= c.max_fit_residual
                and np.linalg.norm(centre - points[:, :2].mean(axis=0)) <= 2.0 * radius):
            return centre
        return top_points(points, c.top_tolerance)[:, :2].mean(axis=0)
