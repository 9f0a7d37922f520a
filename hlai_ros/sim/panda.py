"""A Franka Panda on a pedestal at a table: the embodiment shared by the tabletop worlds.

`PandaTableWorld` builds the part of the scene that every tabletop world has and runs the arm;
a world (``push``, ``roll``) adds its object, goal sampling rules, outcome and reward.

The scene, described by a YAML file under ``sim/`` (sections ``table``, ``robot``,
``action``, ``goal``, ``camera``; see ``sim/push.yaml``): a table top held up by a narrower
column so that its edges overhang and an object pushed past them falls; the Panda
(``franka_panda/panda.urdf`` from ``pybullet_data``, fixed base) on a pedestal level with the
table, facing +x; a green disc (visual only) marking the goal; a fixed camera. A scene file may
start with ``base: other.yaml``: it then holds only what differs from that file (mappings are
merged key by key, anything else replaces); ``base_sections: [...]`` limits what is taken from
the base to those top-level sections.

Action: ``(vx, vy)``, the commanded planar velocity (m/s) of the end-effector (the point between
the closed fingertips, ``panda_grasptarget``), each component bounded by ``action.max_speed``.
The command moves a target point that stays at a fixed height (``robot.ee_height``) above the
table, inside a reachable workspace and within ``ee_lead_m`` of the actual end-effector. Every
control step, inverse kinematics (with a null-space rest posture) turns the target, hand
pointing down, into joint angles; the joint position targets are interpolated over the physics
substeps and tracked by the arm's position-controlled motors. The fingers stay closed.

Proprioception: the seven arm joints' positions (rad) then velocities (rad/s), named in
``proprio_names``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
import hashlib
import math
import os
from pathlib import Path
import tempfile

from gymnasium import spaces
import numpy as np
import pybullet_data
import yaml

from hlai_ros.paths import sim_asset
from hlai_ros.sim.base import HlaiWorld, WorldConfig, _CameraSpec

ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
"""Names of the Panda's seven arm joints, base to hand."""
FINGER_JOINTS = ('panda_finger_joint1', 'panda_finger_joint2')
"""Names of the two finger joints (held closed)."""


def _merge(base: dict, override: dict) -> dict:
    """Return `base` updated by `override`, mappings merged recursively."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@lru_cache(maxsize=None)
def _load_scene_cached(name: str) -> dict:
    with open(sim_asset(name), encoding='utf-8') as f:
        scene = yaml.safe_load(f) or {}
    base = scene.pop('base', None)
    sections = scene.pop('base_sections', None)
    if base is not None:
        if base == name:
            raise ValueError(f'sim/{name} names itself as its base')
        inherited = _load_scene_cached(str(base))
        if sections is not None:
            missing = set(sections) - set(inherited)
            if missing:
                raise ValueError(f'sim/{name}: sections {sorted(missing)} not in sim/{base}')
            inherited = {k: inherited[k] for k in sections}
        scene = _merge(inherited, scene)
    return scene


def load_scene_file(name: str) -> dict:
    """Return the scene description of ``sim/<name>`` as a dict, with its ``base`` merged in.

    Args:
        name: file name under ``sim/``, e.g. ``'push.yaml'``.

    Returns:
        The scene (a cached dict: do not modify it).

    """
    return _load_scene_cached(name)


@lru_cache(maxsize=None)
def light_panda_urdf(urdf: str = 'franka_panda/panda.urdf') -> str:
    """Return the path of a copy of the Panda URDF that draws its collision meshes.

    The visual meshes of ``pybullet_data``'s Panda have ten times the triangles of its collision
    meshes; with them, the tiny renderer spends ~50 ms per 64 x 64 image on the arm (~3 ms with
    the collision meshes) and loading takes ~0.17 s (~0.05 s). Kinematics and collision shapes
    are unchanged. The copy is written once into the temporary directory, with absolute mesh
    paths into ``pybullet_data``.
    """
    source = Path(pybullet_data.getDataPath()) / urdf
    text = source.read_text(encoding='utf-8')
    meshes = (source.parent / 'meshes').as_posix()
    text = text.replace('package://meshes/visual/', 'package://meshes/collision/')
    text = text.replace('package://meshes', meshes)
    digest = hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f'hlai_ros_{source.stem}_light_{digest}.urdf'
    if not out.exists():
        tmp = out.with_suffix(f'.{os.getpid()}.tmp')
        tmp.write_text(text, encoding='utf-8')
        os.replace(tmp, out)  # atomic: parallel workers never see a half-written file
    return str(out)


def nominal(value) -> float:
    """Return the midpoint of a [lo, hi] range, or the value itself."""
    if isinstance(value, (list, tuple)):
        return 0.5 * (float(value[0]) + float(value[1]))
    return float(value)


def camera_spec_from_scene(scene: dict) -> _CameraSpec:
    """Return the fixed camera described by a scene's ``camera`` section."""
    cam = scene['camera']
    return _CameraSpec(
        eye=tuple(float(v) for v in cam['eye']), target=tuple(float(v) for v in cam['target']),
        up=tuple(float(v) for v in cam['up']), fov_deg=float(cam['fov_deg']),
        near=float(cam['near']), far=float(cam['far']),
        extra={'view_eye': tuple(cam['view_eye']), 'view_target': tuple(cam['view_target'])})


@dataclass(frozen=True)
class PandaTableConfig(WorldConfig):
    """Settings of a Panda-at-a-table world (the scene itself is described by its YAML file)."""

    randomize_start: bool = True
    """Draw the object's start pose every episode (else the middle of the start region, yaw 0).
    The goal is always drawn."""
    ee_lead_m: float = 0.04
    """The end-effector target stays within this distance of the actual end-effector, metres:
    a blocked arm does not wind up."""

    def __post_init__(self):
        super().__post_init__()
        if self.ee_lead_m <= 0:
            raise ValueError(f'ee_lead_m must be positive, got {self.ee_lead_m}')


class PandaTableWorld(HlaiWorld):
    """A Panda on a pedestal at a table, moved by planar end-effector velocity commands.

    A subclass sets `scene_file` and `camera_spec` (``camera_spec_from_scene``) and provides
    `_create_object(options)` (create the object, drawing from ``self.np_random``),
    `object_start()` (the object's planar position, for goal sampling), `_ground_truth`,
    `_outcome` and `_reward`. `reset` builds, in this order: floor, table, pedestal, arm,
    object, goal, goal marker.
    """

    config_class = PandaTableConfig
    scene_file = ''
    """Scene description under ``sim/``; set by each world."""
    reset_options: frozenset = frozenset({'goal', 'object'})
    """Keys that ``reset(options=...)`` accepts."""
    proprio_names = tuple(f'{j}.position' for j in ARM_JOINTS) + tuple(
        f'{j}.velocity' for j in ARM_JOINTS)

    def __init__(self, config: PandaTableConfig | None = None, render_mode: str | None = None,
                 **overrides):
        super().__init__(config, render_mode, **overrides)
        self.scene = load_scene_file(self.scene_file)
        vmax = float(self.scene['action']['max_speed'])
        self.action_space = spaces.Box(-vmax, vmax, (2,), dtype=np.float32)
        table = self.scene['table']
        self.table_center = np.array(table['center'], dtype=np.float64)
        self.table_half = np.array(table['half_extents'], dtype=np.float64)
        self.table_top = float(table['top_z'])
        rs = self.scene['robot']
        self.ee_z = self.table_top + float(rs['ee_height'])
        ws = rs['workspace']
        self._ws_low = np.array([ws['x'][0], ws['y'][0]], dtype=np.float64)
        self._ws_high = np.array([ws['x'][1], ws['y'][1]], dtype=np.float64)
        self._ws_radius = float(ws['max_radius'])
        self._base = np.array(rs['base'], dtype=np.float64)
        self._forces = [float(f) for f in rs['max_joint_force']]
        self._robot = -1
        self._object = -1
        self._goal_marker = -1
        self._arm: list[int] = []
        self._fingers: list[int] = []
        self._ee_link = -1
        self._ik_limits: tuple = ()
        self._movable_arm_index: list[int] = []
        self._start_q: np.ndarray | None = None
        self._ee_target = np.zeros(2)
        self._q_from = np.zeros(7)
        self._q_to = np.zeros(7)
        self._substep = 0

    # -- to be provided by each world -------------------------------------------------------
    def _create_object(self, options: dict) -> None:
        """Create the episode's object (after the arm), drawing from ``self.np_random``."""
        raise NotImplementedError

    def object_start(self) -> np.ndarray:
        """Return the object's planar position (2,), metres, from which goals are drawn."""
        raise NotImplementedError

    # -- scene ------------------------------------------------------------------------------
    def _draw(self, value) -> float:
        """Draw from a [lo, hi] range with the episode's generator (a number is returned)."""
        if isinstance(value, (list, tuple)):
            return float(self.np_random.uniform(float(value[0]), float(value[1])))
        return float(value)

    def _pick(self, value) -> float:
        """Draw a dynamics parameter when ``randomize_dynamics``, else return its midpoint."""
        return self._draw(value) if self.config.randomize_dynamics else nominal(value)

    def _build(self, options: dict) -> None:
        unknown = set(options) - set(self.reset_options)
        if unknown:
            expected = ', '.join(repr(k) for k in sorted(self.reset_options))
            raise ValueError(f'unknown reset options {sorted(unknown)}; expected any of '
                             f'{expected}')
        b, sc = self._bullet, self.scene
        b.setAdditionalSearchPath(pybullet_data.getDataPath())
        floor = b.loadURDF('plane.urdf', flags=b.URDF_ENABLE_CACHED_GRAPHICS_SHAPES)
        b.changeVisualShape(floor, -1, rgbaColor=sc['floor_rgba'])
        self._create_table()
        self._create_robot()
        self._create_object(options)
        self._goal = self._sample_goal(options.get('goal')).astype(np.float32)
        gs = sc['goal']
        vis = b.createVisualShape(b.GEOM_CYLINDER, radius=float(gs['marker_radius']),
                                  length=0.002, rgbaColor=gs['rgba'])
        self._goal_marker = b.createMultiBody(0.0, -1, vis, self._marker_position())

    def _marker_position(self) -> list[float]:
        return [float(self._goal[0]), float(self._goal[1]), self.table_top + 0.001]

    def _create_table(self) -> None:
        b, t = self._bullet, self.scene['table']
        hx, hy = self.table_half
        thick = float(t['thickness'])
        top_he = [hx, hy, thick / 2.0]
        col = b.createCollisionShape(b.GEOM_BOX, halfExtents=top_he)
        vis = b.createVisualShape(b.GEOM_BOX, halfExtents=top_he, rgbaColor=t['rgba'])
        top = b.createMultiBody(0.0, col, vis, [*self.table_center, self.table_top - thick / 2])
        b.changeDynamics(top, -1, lateralFriction=float(t['friction']))
        leg_h = (self.table_top - thick) / 2.0
        leg_he = [hx - 0.08, hy - 0.08, leg_h]
        col = b.createCollisionShape(b.GEOM_BOX, halfExtents=leg_he)
        vis = b.createVisualShape(b.GEOM_BOX, halfExtents=leg_he, rgbaColor=t['rgba'])
        b.createMultiBody(0.0, col, vis, [*self.table_center, leg_h])
        ped_he = [0.1, 0.1, self._base[2] / 2.0]
        col = b.createCollisionShape(b.GEOM_BOX, halfExtents=ped_he)
        vis = b.createVisualShape(b.GEOM_BOX, halfExtents=ped_he,
                                  rgbaColor=self.scene['pedestal_rgba'])
        b.createMultiBody(0.0, col, vis, [self._base[0], self._base[1], self._base[2] / 2.0])

    def _create_robot(self) -> None:
        b, rs = self._bullet, self.scene['robot']
        self._robot = b.loadURDF(light_panda_urdf(rs['urdf']), self._base.tolist(),
                                 useFixedBase=True,
                                 flags=b.URDF_ENABLE_CACHED_GRAPHICS_SHAPES)
        joints, links = {}, {}
        lower, upper = [], []
        movable = []
        for j in range(b.getNumJoints(self._robot)):
            info = b.getJointInfo(self._robot, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
            if info[2] != b.JOINT_FIXED:
                movable.append(info[1].decode())
                lower.append(info[8])
                upper.append(info[9])
        self._arm = [joints[n] for n in ARM_JOINTS]
        self._fingers = [joints[n] for n in FINGER_JOINTS]
        self._ee_link = links[rs['ee_link']]
        rest = dict(zip(ARM_JOINTS, rs['rest_pose']))
        rest_all = [rest.get(n, 0.0) for n in movable]
        self._ik_limits = (lower, upper, [u - lo for u, lo in zip(upper, lower)], rest_all)
        self._movable_arm_index = [movable.index(n) for n in ARM_JOINTS]
        for link in range(-1, b.getNumJoints(self._robot)):
            b.changeVisualShape(self._robot, link, rgbaColor=self.scene['robot_rgba'])
        for j in self._fingers:
            b.resetJointState(self._robot, j, 0.0)
        b.setJointMotorControlArray(self._robot, self._fingers, b.POSITION_CONTROL,
                                    targetPositions=[0.0, 0.0], forces=[20.0, 20.0])
        start = np.array(rs['start_ee'], dtype=np.float64)
        if self._start_q is None:
            q = np.array(rs['rest_pose'], dtype=np.float64)
            self._set_arm(q)
            for _ in range(30):  # a converged start posture, computed once per world
                q = self._inverse_kinematics(start)
                self._set_arm(q)
            self._start_q = q
        self._set_arm(self._start_q)
        self._ee_target = start
        self._q_from = self._start_q.copy()
        self._q_to = self._start_q.copy()
        self._substep = 0
        b.setJointMotorControlArray(self._robot, self._arm, b.POSITION_CONTROL,
                                    targetPositions=self._start_q.tolist(), forces=self._forces)

    def _set_arm(self, q: np.ndarray) -> None:
        for j, angle in zip(self._arm, q):
            self._bullet.resetJointState(self._robot, j, float(angle))

    def _inverse_kinematics(self, xy: np.ndarray) -> np.ndarray:
        """Return arm joint angles (7,) that put the end-effector at (x, y, ee_z), hand down."""
        b = self._bullet
        lower, upper, ranges, rest = self._ik_limits
        orn = b.getQuaternionFromEuler([math.pi, 0.0, 0.0])
        q = b.calculateInverseKinematics(
            self._robot, self._ee_link, [float(xy[0]), float(xy[1]), self.ee_z], orn,
            lowerLimits=lower, upperLimits=upper, jointRanges=ranges, restPoses=rest,
            maxNumIterations=20, residualThreshold=1e-4)
        return np.array([q[i] for i in self._movable_arm_index], dtype=np.float64)

    def on_table(self, xy, margin: float = 0.0) -> bool:
        """Return whether the planar point `xy` is at least `margin` inside the table top."""
        d = np.abs(np.asarray(xy, dtype=np.float64)[:2] - self.table_center)
        return bool(np.all(d <= self.table_half - margin))

    def distance_to_edge(self, xy) -> float:
        """Return the planar distance (m) from `xy` to the nearest table edge (< 0 off it)."""
        d = np.abs(np.asarray(xy, dtype=np.float64)[:2] - self.table_center)
        return float(np.min(self.table_half - d))

    def _sample_goal(self, goal) -> np.ndarray:
        """Return the given goal (checked) or draw one by the scene's ``goal`` rules.

        A drawn goal lies at least ``edge_margin`` inside every edge, with probability
        ``near_edge_probability`` within ``near_edge_band`` of one edge, and between
        ``min_distance`` and ``max_distance`` from `object_start`.
        """
        g = self.scene['goal']
        margin = float(g['edge_margin'])
        if goal is not None:
            goal = np.asarray(goal, dtype=np.float64).reshape(-1)
            if goal.shape != (2,) or not np.all(np.isfinite(goal)):
                raise ValueError(f"options['goal'] must be two finite numbers, got {goal!r}")
            if not self.on_table(goal):
                raise ValueError(f"options['goal'] {goal} is off the table (centre "
                                 f'{self.table_center}, half extents {self.table_half})')
            return goal
        start = self.object_start()
        near_edge = self.np_random.random() < float(g['near_edge_probability'])
        lo, hi = self.table_center - self.table_half + margin, (
            self.table_center + self.table_half - margin)
        for _ in range(1000):
            if near_edge:
                d = self._draw(g['near_edge_band'])
                edge = int(self.np_random.integers(4))
                axis, side = edge // 2, edge % 2
                goal = np.array([self._draw([lo[0], hi[0]]), self._draw([lo[1], hi[1]])])
                c, h = self.table_center[axis], self.table_half[axis]
                goal[axis] = c + h - d if side else c - h + d
            else:
                goal = np.array([self._draw([lo[0], hi[0]]), self._draw([lo[1], hi[1]])])
            dist = np.linalg.norm(goal - start)
            if float(g['min_distance']) <= dist <= float(g['max_distance']):
                return goal
        raise RuntimeError('could not place a goal at the required distance from the object')

    def set_goal(self, goal) -> None:
        """Move the goal (x, y), metres, during an episode, and its marker with it."""
        super().set_goal(goal)
        if self._goal_marker >= 0:
            self._bullet.resetBasePositionAndOrientation(self._goal_marker,
                                                         self._marker_position(), [0, 0, 0, 1])

    # -- control ----------------------------------------------------------------------------
    def _pose_at_goal(self) -> None:
        """The object on the goal (its height and heading as now, at rest); the arm stays."""
        b = self._bullet
        pos, orn = b.getBasePositionAndOrientation(self._object)
        b.resetBasePositionAndOrientation(
            self._object, [float(self._goal[0]), float(self._goal[1]), pos[2]], orn)
        b.resetBaseVelocity(self._object, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def ee_position(self) -> np.ndarray:
        """Return the end-effector position (3,), metres, world frame (ground truth)."""
        state = self._bullet.getLinkState(self._robot, self._ee_link,
                                          computeForwardKinematics=True)
        return np.array(state[4], dtype=np.float64)

    def clip_to_workspace(self, xy: np.ndarray) -> np.ndarray:
        """Return the planar point nearest to `xy` that the end-effector can reach."""
        xy = np.clip(np.asarray(xy, dtype=np.float64), self._ws_low, self._ws_high)
        rel = xy - self._base[:2]
        r = float(np.linalg.norm(rel))
        if r > self._ws_radius:
            xy = self._base[:2] + rel * (self._ws_radius / r)
        return xy

    def _apply_action(self, action: np.ndarray) -> None:
        target = self._ee_target + action.astype(np.float64) * self.dt
        ee = self.ee_position()[:2]
        lead = target - ee
        dist = float(np.linalg.norm(lead))
        if dist > self.config.ee_lead_m:
            target = ee + lead * (self.config.ee_lead_m / dist)
        self._ee_target = self.clip_to_workspace(target)
        self._q_from = self._q_to.copy()
        self._q_to = self._inverse_kinematics(self._ee_target)
        self._substep = 0

    def _before_substep(self) -> None:
        self._substep += 1
        alpha = min(1.0, self._substep / self.substeps)
        q = self._q_from + alpha * (self._q_to - self._q_from)
        self._bullet.setJointMotorControlArray(self._robot, self._arm,
                                               self._bullet.POSITION_CONTROL,
                                               targetPositions=q.tolist(), forces=self._forces)

    # -- state ------------------------------------------------------------------------------
    def _proprio(self) -> np.ndarray:
        states = self._bullet.getJointStates(self._robot, self._arm)
        q = [s[0] for s in states]
        dq = [s[1] for s in states]
        return np.array(q + dq, dtype=np.float32)

    def _table_ground_truth(self) -> dict:
        """Ground truth common to the tabletop worlds: hand, goal and table."""
        return {
            'ee_position': self.ee_position(),
            'ee_target': self._ee_target.copy(),
            'goal': self._goal.astype(np.float64).copy(),
            'table_center': self.table_center.copy(),
            'table_half_extents': self.table_half.copy(),
            'table_top': self.table_top,
        }
