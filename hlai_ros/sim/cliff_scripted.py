"""Scripted controller of the cliff world: turn, then drive to the goal around obstacles.

A privileged baseline (it reads ``info['ground_truth']``): it steers to the goal, or to a detour
point beside the first obstacle that blocks the straight line to it, turns in place when the
heading error is large, slows down near the goal, and stops driving forward when the base
centre comes within ``edge_stop`` of the edge straight ahead.

Measured over seeds 0..99 (``render_camera=False``, default ``CliffConfig``, 300-step limit;
the random policy samples the action space uniformly, seeded with 12345)::

    .venv/bin/python benchmarks/cliff_world.py --rates --episodes 100

    scripted: success 0.98, fell 0.00, collision 0.02, timeout 0.00
    random:   success 0.00, fell 0.00, collision 0.03, timeout 0.97

With Gaussian action noise of 0.1 (the exploration setting; ``--noise 0.1 --controllers
scripted``): success 0.97, fell 0.00, collision 0.03, timeout 0.00.
"""
from __future__ import annotations

import math

import numpy as np

from hlai_ros.sim.cliff import load_scene
from hlai_ros.sim.scripted import NoisyScripted


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


class CliffScripted(NoisyScripted):
    """Turn-then-drive to the goal with obstacle detours and edge caution."""

    turn_threshold = 0.5
    """Heading error (rad) above which the robot turns in place."""
    heading_gain = 2.0
    """Yaw-rate command per radian of heading error, 1/s."""
    speed_gain = 0.8
    """Forward-speed command per metre of distance to the target, 1/s."""
    passing_clearance = 0.55
    """Distance (m) kept between the robot centre and an obstacle's surface when passing."""
    detour_clearance = 0.8
    """Distance (m) from an obstacle's surface to the detour point beside it."""
    edge_stop = 0.35
    """Closest the base centre may get (m) to the edge it drives towards."""
    edge_slow = 0.8
    """Edge distance (m) ahead below which the speed ramps down to zero at `edge_stop`."""

    def __init__(self, noise_std: float = 0.0, seed: int | None = None):
        """Make the controller; `noise_std` is Gaussian action noise in action units."""
        super().__init__(noise_std, seed)
        act = load_scene()['action']
        self.high = np.array([act['max_linear'], act['max_angular']], dtype=np.float32)
        self._sides: dict[int, float] = {}

    def reset(self) -> None:
        """Forget the detour sides chosen in the previous episode."""
        self._sides = {}

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Return the action (v m/s, omega rad/s), float32 (2,), for the current step."""
        gt = info['ground_truth']
        x, y, _ = gt['base_position']
        yaw = gt['base_rpy'][2]
        pos = np.array([x, y])
        goal = np.asarray(gt['goal'], dtype=np.float64)
        bounds = np.asarray(gt['platform_bounds'], dtype=np.float64)
        target = self._target(pos, goal, gt['obstacle_positions'], gt['obstacle_radii'], bounds)
        delta = target - pos
        dist = float(np.linalg.norm(delta))
        err = _wrap(math.atan2(delta[1], delta[0]) - yaw)
        omega = float(np.clip(self.heading_gain * err, -self.high[1], self.high[1]))
        if abs(err) > self.turn_threshold:
            v = 0.0
        else:
            v = min(float(self.high[0]), self.speed_gain * dist) * math.cos(err)
            v *= self._edge_factor(pos, yaw, bounds)
        action = np.array([v, omega], dtype=np.float32)
        return np.clip(self._noisy(action), -self.high, self.high).astype(np.float32)

    def _edge_factor(self, pos: np.ndarray, yaw: float, bounds: np.ndarray) -> float:
        """Return a speed factor in [0, 1] from the distance to the edge straight ahead."""
        c, s = math.cos(yaw), math.sin(yaw)
        ahead = math.inf
        if c > 1e-6:
            ahead = min(ahead, (bounds[1] - pos[0]) / c)
        if c < -1e-6:
            ahead = min(ahead, (bounds[0] - pos[0]) / c)
        if s > 1e-6:
            ahead = min(ahead, (bounds[3] - pos[1]) / s)
        if s < -1e-6:
            ahead = min(ahead, (bounds[2] - pos[1]) / s)
        return float(np.clip((ahead - self.edge_stop) / (self.edge_slow - self.edge_stop),
                             0.0, 1.0))

    def _target(self, pos, goal, centres, radii, bounds) -> np.ndarray:
        """Return the goal, or a detour point beside the nearest obstacle blocking the way."""
        path = goal - pos
        length = float(np.linalg.norm(path))
        if length < 1e-6:
            return goal
        u = path / length
        normal = np.array([-u[1], u[0]])
        blocking = []
        for i, (c, r) in enumerate(zip(np.asarray(centres).reshape(-1, 2), radii)):
            along = float(np.dot(c - pos, u))
            across = float(np.dot(c - pos, normal))
            if 0.0 < along < length + r and abs(across) < r + self.passing_clearance:
                blocking.append((along, i, c, r, across))
        if not blocking:
            return goal
        _, i, c, r, across = min(blocking)
        if i not in self._sides:
            candidates = []
            for side in (1.0, -1.0):
                p = c + side * normal * (r + self.detour_clearance)
                edge = min(p[0] - bounds[0], bounds[1] - p[0], p[1] - bounds[2],
                           bounds[3] - p[1])
                # prefer the side away from the edge, then the side the robot is already on
                candidates.append((min(edge, 1.0), -side * np.sign(across) if across else 0.0,
                                   side))
            self._sides[i] = max(candidates)[2]
        return c + self._sides[i] * normal * (r + self.detour_clearance)
