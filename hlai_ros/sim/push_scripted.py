"""Scripted push controller: the privileged baseline of the push world.

It reads ``info['ground_truth']`` (box pose and size, end-effector position, goal), so it is a
baseline and an exploration policy, never part of the deployed stack. Each step it:

1. finds the push direction ``u`` from the box to the goal and the pre-push point behind the box
   on that line, ``box - u * (half extent of the box along u + standoff)``;
2. when the end-effector is not yet behind the box, circles around the box at a safe radius
   until it is, then closes in on the pre-push point;
3. when it is behind the box and on the line, pushes along ``u`` while steering back onto the
   line (the box drifts and turns as it slides), slowing down as the box nears the goal so that
   it does not overshoot (goals lie as close as 5 cm to the table's edge);
4. backs off and re-aligns when the box has drifted too far off the line.

Measured over 100 seeded episodes (seeds 0..99, ``config/push.yaml`` settings with the camera
off, 200-step limit)::

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python benchmarks/bench_sim.py \
        --task push --episodes 100

- scripted (no noise): success 100% (95% Wilson interval [96%, 100%]), falls 0%;
- uniform random actions: success 0% ([0%, 4%]), falls 1%, time limit 99%.
"""
from __future__ import annotations

import numpy as np

from hlai_ros.sim.push import load_scene
from hlai_ros.sim.scripted import NoisyScripted

_SPEED_MAX = float(load_scene()['action']['max_speed'])
"""Command bound (m/s): the world's action bound, from ``sim/push.yaml``."""


class PushScripted(NoisyScripted):
    """Circle behind the box, then push it along the box-goal line; see the module docstring."""

    standoff = 0.016
    """End-effector centre to box face when pushing, m (fingertip half thickness + clearance)."""
    circle_margin = 0.045
    """Extra radius (m) beyond the box's half diagonal when circling around it."""
    align_tolerance = 0.012
    """Largest sideways offset (m) from the push line at which pushing starts."""
    realign_offset = 0.03
    """Sideways offset (m) from the push line at which pushing stops and re-aligning starts."""
    gain = 6.0
    """Position gain of the approach, 1/s."""
    slow_radius = 0.08
    """Within this box-goal distance (m) the push speed falls linearly."""
    min_push_speed = 0.03
    """Slowest push speed, m/s."""

    def __init__(self, noise_std: float = 0.0, seed: int | None = None):
        super().__init__(noise_std, seed)
        self._pushing = False

    def reset(self) -> None:
        """Start a new episode (the noise generator keeps its stream)."""
        self._pushing = False

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Return the planar end-effector velocity (2,), m/s, float32."""
        gt = info['ground_truth']
        box = np.asarray(gt['object_position'], dtype=np.float64)[:2]
        ee = np.asarray(gt['ee_position'], dtype=np.float64)[:2]
        goal = np.asarray(gt['goal'], dtype=np.float64)[:2]
        half = 0.5 * float(np.asarray(gt['object_size'])[0])
        yaw = float(gt['object_yaw'])
        to_goal = goal - box
        dist = float(np.linalg.norm(to_goal))
        if dist < 1e-6:
            return self._finish(np.zeros(2))
        u = to_goal / dist
        n = np.array([-u[1], u[0]])
        # half extent of the (square) box along u, whatever its yaw
        extent = half * (abs(np.cos(yaw - np.arctan2(u[1], u[0])))
                         + abs(np.sin(yaw - np.arctan2(u[1], u[0]))))
        rel = ee - box
        along, lateral = float(rel @ u), float(rel @ n)
        # start pushing from the pre-push point; keep pushing while the fingertips stay on the
        # rear half of the box (in contact they may sit well inside `extent` on a turned box)
        if self._pushing and (abs(lateral) > self.realign_offset or along > -0.5 * half):
            self._pushing = False
        behind = along < -(extent + 0.5 * self.standoff)
        if not self._pushing and behind and abs(lateral) < self.align_tolerance:
            self._pushing = True
        if self._pushing:
            speed = _SPEED_MAX * min(1.0, dist / self.slow_radius)
            speed = max(speed, self.min_push_speed)
            command = speed * u - self.gain * lateral * n
            return self._finish(command)
        return self._finish(self._approach(ee, box, u, extent, half))

    def _approach(self, ee, box, u, extent, half) -> np.ndarray:
        """Velocity that brings the end-effector to the pre-push point without hitting the box."""
        prepush = box - u * (extent + self.standoff + 0.01)
        radius = half * np.sqrt(2.0) + self.circle_margin
        rel = ee - box
        r = float(np.linalg.norm(rel))
        angle_now = np.arctan2(rel[1], rel[0])
        angle_goal = np.arctan2(-u[1], -u[0])
        diff = (angle_goal - angle_now + np.pi) % (2 * np.pi) - np.pi
        if abs(diff) > np.radians(35.0):
            # circle around the box towards the far side of the goal, at a safe radius
            step = np.clip(diff, -0.6, 0.6)
            angle = angle_now + step
            target = box + max(radius, min(r, radius + 0.03)) * np.array(
                [np.cos(angle), np.sin(angle)])
            if r < radius - 0.005:
                target = box + radius * rel / max(r, 1e-6)
        else:
            target = prepush
        return self.gain * (target - ee)

    def _finish(self, command: np.ndarray) -> np.ndarray:
        return self._planar(command, _SPEED_MAX)
