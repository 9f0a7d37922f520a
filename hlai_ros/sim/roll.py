"""Roll world: a Franka Panda stops a rolling ball and rolls it to a goal, without losing it.

The embodiment is the push world's (`hlai_ros.sim.panda`): the same Panda on its pedestal, the
same 0.4 x 0.5 m table with overhanging edges, the same camera, action and proprioception (see
``sim/push.yaml``). The object is a blue ball (``sim/roll.yaml``, section ``ball``) that keeps
rolling when struck: momentum is the point of this world. Rolling friction (Bullet's
``rollingFriction``, a resisting torque proportional to the normal force) slows a free ball at
``a = rolling_friction * g / (1.4 * radius)`` (0.04-0.11 m/s^2), so from 0.15 m/s it rolls
10-28 cm before it stops; a tap from the hand sends it rolling. The ball has no linear or
angular damping, so that law is exact.

Action: ``(vx, vy)``, the commanded planar end-effector velocity (m/s), each component bounded
by 0.2 m/s, exactly as in the push world.

Observation: ``rgb``, ``depth`` (64 x 64 by default), ``proprio`` (the seven arm joints'
positions, rad, then velocities, rad/s) and ``goal`` (x, y), m.

Every episode draws the ball's start position and initial velocity (a rolling speed of 0-0.15
m/s in a uniformly random direction, with the matching spin) and, with ``randomize_dynamics``,
its radius (2-2.5 cm: it passes under the palm, ``sim/roll.yaml``), mass (0.05-0.2 kg), sliding
friction (0.4-0.8), rolling friction (1.5e-4 to 3e-4 m) and spinning friction (5e-4 to 2e-3 m);
otherwise the midpoints. The goal is 0.1-0.3 m from the ball's start and at least 5 cm inside
every table edge; 30% of goals lie 5-8 cm from an edge. ``reset(options=...)`` accepts ``goal``
(x, y), ``object`` (x, y) and ``velocity`` (vx, vy) to pose a scene exactly.

Outcome: success when the ball is at rest (planar speed below ``ball.rest_speed``, 0.02 m/s)
with its centre within 3 cm (planar) of the goal; failure ``'fell'`` when the ball centre leaves
the table top's footprint or drops 3 cm below its resting height. Both end the episode; the time
limit (200 steps at 10 Hz for ``hlai/Roll-v0``) is the registration's.

Reward per step: ``-distance(ball, goal)`` (m), plus ``+10`` on success and ``-50`` on a fall
(weights in ``sim/roll.yaml``, section ``reward``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hlai_ros.sim.panda import (
    PandaTableConfig,
    PandaTableWorld,
    camera_spec_from_scene,
    load_scene_file,
    nominal,
)

GRAVITY = 9.81
"""Gravity (m/s^2), as set by `HlaiWorld.reset`."""


def load_scene() -> dict:
    """Return the scene description of ``sim/roll.yaml`` (with push's embodiment) as a dict."""
    return load_scene_file('roll.yaml')


def rolling_deceleration(rolling_friction: float, radius: float) -> float:
    """Return the deceleration (m/s^2) of a solid ball rolling freely on the table.

    Args:
        rolling_friction: the ball's Bullet rolling friction coefficient (m; the table's sliding
            friction is 1, which Bullet multiplies in).
        radius: ball radius, m.

    Returns:
        ``rolling_friction * g / (1.4 * radius)``: the torque ``rolling_friction * m * g``
        against the rolling inertia ``(2/5 + 1) * m * radius``.

    """
    return float(rolling_friction) * GRAVITY / (1.4 * float(radius))


@dataclass(frozen=True)
class RollConfig(PandaTableConfig):
    """Settings of the roll world (the scene itself is described by ``sim/roll.yaml``).

    Besides `PandaTableConfig`'s (``randomize_start`` draws the ball's start position,
    ``ee_lead_m`` bounds the end-effector target's lead):
    """

    randomize_velocity: bool = True
    """Give the ball a random initial velocity every episode (else it starts at rest)."""


class RollWorld(PandaTableWorld):
    """A Franka Panda stops a rolling ball and rolls it to a goal on a table; see the module."""

    config_class = RollConfig
    scene_file = 'roll.yaml'
    camera_spec = camera_spec_from_scene(load_scene())
    reset_options = frozenset({'goal', 'object', 'velocity'})

    def __init__(self, config: RollConfig | None = None, render_mode: str | None = None,
                 **overrides):
        super().__init__(config, render_mode, **overrides)
        self.rest_speed = float(self.scene['ball']['rest_speed'])
        """Planar ball speed (m/s) below which the ball is at rest (success needs it)."""
        self._radius = 0.0
        self._mass = 0.0
        self._friction = 0.0
        self._rolling_friction = 0.0
        self._spinning_friction = 0.0
        self._rest_z = 0.0
        self._start = np.zeros(2)

    # -- scene ------------------------------------------------------------------------------
    def _create_object(self, options: dict) -> None:
        b, o = self._bullet, self.scene['ball']
        self._radius = self._pick(o['radius'])
        self._mass = self._pick(o['mass'])
        self._friction = self._pick(o['friction'])
        self._rolling_friction = self._pick(o['rolling_friction'])
        self._spinning_friction = self._pick(o['spinning_friction'])
        start = self._given(options, 'object')
        if start is not None:
            if not self.on_table(start):
                raise ValueError(f"options['object'] {start} is off the table (centre "
                                 f'{self.table_center}, half extents {self.table_half})')
        elif self.config.randomize_start:
            ee = np.array(self.scene['robot']['start_ee'])
            for _ in range(1000):
                start = np.array([self._draw(o['start_x']), self._draw(o['start_y'])])
                if np.linalg.norm(start - ee) >= float(o['ee_clearance']):
                    break
        else:
            start = np.array([nominal(o['start_x']), nominal(o['start_y'])])
        velocity = self._given(options, 'velocity')
        if velocity is None:
            velocity = np.zeros(2)
            if self.config.randomize_velocity:
                decel = rolling_deceleration(self._rolling_friction, self._radius)
                for _ in range(1000):
                    speed = self._draw(o['start_speed'])
                    heading = self._draw([-np.pi, np.pi])
                    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
                    if self.time_to_edge(start, velocity, decel) >= float(o['min_edge_time']):
                        break
        self._start = start.copy()
        self._rest_z = self.table_top + self._radius
        col = b.createCollisionShape(b.GEOM_SPHERE, radius=self._radius)
        vis = b.createVisualShape(b.GEOM_SPHERE, radius=self._radius, rgbaColor=o['rgba'])
        self._object = b.createMultiBody(self._mass, col, vis,
                                         [start[0], start[1], self._rest_z])
        b.changeDynamics(self._object, -1, lateralFriction=self._friction,
                         rollingFriction=self._rolling_friction,
                         spinningFriction=self._spinning_friction,
                         linearDamping=0.0, angularDamping=0.0)
        # rolling without slipping: the contact point is at rest, omega = z x v / radius
        spin = np.array([-velocity[1], velocity[0], 0.0]) / self._radius
        b.resetBaseVelocity(self._object, [float(velocity[0]), float(velocity[1]), 0.0],
                            spin.tolist())

    def time_to_edge(self, position, velocity, deceleration: float) -> float:
        """Return when (s) a ball rolling freely from `position` leaves the table top.

        Args:
            position: ball centre (x, y), m, on the table.
            velocity: ball velocity (vx, vy), m/s.
            deceleration: its rolling deceleration, m/s^2 (`rolling_deceleration`).

        Returns:
            The time until its centre crosses an edge, or ``inf`` when it stops on the table.

        """
        position = np.asarray(position, dtype=np.float64)[:2]
        velocity = np.asarray(velocity, dtype=np.float64)[:2]
        speed = float(np.linalg.norm(velocity))
        if speed < 1e-9:
            return float('inf')
        u = velocity / speed
        bound = self.table_center + np.sign(u) * self.table_half
        with np.errstate(divide='ignore', invalid='ignore'):
            s_edge = float(np.min(np.where(np.abs(u) > 1e-12, (bound - position) / u, np.inf)))
        disc = speed ** 2 - 2.0 * deceleration * max(s_edge, 0.0)
        if disc <= 0.0:
            return float('inf')
        return (speed - float(np.sqrt(disc))) / deceleration

    @staticmethod
    def _given(options: dict, key: str) -> np.ndarray | None:
        """Return ``options[key]`` as a finite (2,) array, or None when absent."""
        if options.get(key) is None:
            return None
        value = np.asarray(options[key], dtype=np.float64).reshape(-1)
        if value.shape != (2,) or not np.all(np.isfinite(value)):
            raise ValueError(f'options[{key!r}] must be two finite numbers, got {value!r}')
        return value

    def object_start(self) -> np.ndarray:
        """Return the ball's start position (2,), metres (goals are drawn around it)."""
        return self._start.copy()

    # -- state ------------------------------------------------------------------------------
    def ball_position(self) -> np.ndarray:
        """Return the ball centre (x, y, z), metres, world frame (ground truth)."""
        return np.array(self._bullet.getBasePositionAndOrientation(self._object)[0],
                        dtype=np.float64)

    def ball_velocity(self) -> np.ndarray:
        """Return the ball's linear velocity (vx, vy, vz), m/s, world frame (ground truth)."""
        return np.array(self._bullet.getBaseVelocity(self._object)[0], dtype=np.float64)

    def _ground_truth(self) -> dict[str, Any]:
        b = self._bullet
        pos, orn = b.getBasePositionAndOrientation(self._object)
        lin, ang = b.getBaseVelocity(self._object)
        pos = np.array(pos, dtype=np.float64)
        lin = np.array(lin, dtype=np.float64)
        return {
            'object_position': pos,
            'object_orientation': np.array(orn, dtype=np.float64),
            'object_velocity': lin,
            'object_angular_velocity': np.array(ang, dtype=np.float64),
            'object_speed': float(np.linalg.norm(lin[:2])),
            'object_radius': self._radius,
            'object_size': np.full(3, 2.0 * self._radius),
            'object_mass': self._mass,
            'object_friction': self._friction,
            'object_rolling_friction': self._rolling_friction,
            'object_spinning_friction': self._spinning_friction,
            'object_deceleration': rolling_deceleration(self._rolling_friction, self._radius),
            'ee_position': self.ee_position(),
            'ee_target': self._ee_target.copy(),
            'goal': self._goal.astype(np.float64).copy(),
            'distance_to_goal': float(np.linalg.norm(pos[:2] - self._goal)),
            'distance_to_edge': self.distance_to_edge(pos[:2]),
            'table_center': self.table_center.copy(),
            'table_half_extents': self.table_half.copy(),
            'table_top': self.table_top,
        }

    def _outcome(self) -> tuple[bool, str | None]:
        pos, lin = self.ball_position(), self.ball_velocity()
        fall = self.scene['fall']
        if (not self.on_table(pos[:2], -float(fall['footprint_margin']))
                or pos[2] < self._rest_z - float(fall['drop'])):
            return False, 'fell'
        dist = float(np.linalg.norm(pos[:2] - self._goal))
        at_rest = float(np.linalg.norm(lin[:2])) < self.rest_speed
        return at_rest and dist <= float(self.scene['goal']['success_radius']), None

    def _reward(self, action: np.ndarray, success: bool, failure: str | None) -> float:
        r = self.scene['reward']
        pos = self.ball_position()
        reward = -float(r['distance_weight']) * float(np.linalg.norm(pos[:2] - self._goal))
        if success:
            reward += float(r['success_bonus'])
        if failure is not None:
            reward -= float(r['fall_penalty'])
        return reward
