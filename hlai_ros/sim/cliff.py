"""Cliff world: a Husky on a raised platform, with edges it can drive off and obstacles it can hit.

The scene (``sim/cliff.yaml``): a box platform about 5 x 4 m whose top is about 1 m above a
ground plane, 2 to 4 static box or cylinder obstacles on it, and a differential-drive Husky
(``husky/husky.urdf`` from ``pybullet_data``). A fixed overhead camera, like a mast or ceiling
camera, looks straight down at the whole platform.

Action: ``(v, omega)``, the commanded forward speed (m/s) and yaw rate (rad/s) of the base,
bounded by ``sim/cliff.yaml`` (0.5 m/s, 1.0 rad/s). It becomes wheel speeds
``(v -+ omega * B / 2) / r`` for the left / right wheels with the URDF's wheel radius ``r`` and an
effective skid-steer track ``B`` (the geometric track times a calibrated factor), tracked by
velocity-controlled wheel motors.

Proprioception (odometry, REP-105; the odom frame is the world frame): ``x, y`` (m), ``yaw``
(rad), ``v`` (forward speed, m/s) and ``omega`` (yaw rate, rad/s) of the base, with optional
Gaussian noise ``CliffConfig.odometry_noise``.

Every episode draws a goal 0.3 to 0.6 m from an edge (it tempts the robot close to the drop),
obstacles away from start and goal with room to pass between them, and, half of the time, one
obstacle between start and goal. With ``randomize_scene`` the platform size and height and the
start pose are drawn too; with ``randomize_dynamics`` the wheel friction and the chassis mass.
``reset(options=...)`` accepts ``goal`` (x, y), ``start`` (x, y, yaw) and ``obstacles`` (a list of
dicts with ``x, y, radius, height`` and optional ``shape`` ('box' or 'cylinder') and ``yaw``) to
pose a scene exactly.

Outcome: success when the base is within 0.25 m of the goal (planar distance); failure
``'fell'`` when the base leaves the platform's footprint, drops 0.1 m below its top or tilts more
than 0.7 rad, and ``'collision'`` when the robot touches an obstacle. Both end the episode.

Reward per step: ``-0.1 * distance_to_goal`` (m), plus ``+10`` on success and ``-100`` on a
failure (weights in ``sim/cliff.yaml``, section ``reward``).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache
import math
import os
from pathlib import Path
import sys
from typing import Any

from gymnasium import spaces
import numpy as np
import pybullet_data
import yaml

from hlai_ros.paths import sim_asset
from hlai_ros.sim.base import HlaiWorld, WorldConfig, _CameraSpec


@lru_cache(maxsize=None)
def load_scene() -> dict:
    """Return the scene description of ``sim/cliff.yaml`` as a dict."""
    with open(sim_asset('cliff.yaml'), encoding='utf-8') as f:
        return yaml.safe_load(f)


def _nominal(value) -> float:
    """Return the midpoint of a [lo, hi] range, or the value itself."""
    if isinstance(value, (list, tuple)):
        return 0.5 * (float(value[0]) + float(value[1]))
    return float(value)


@contextlib.contextmanager
def _quiet_stdout():
    """Silence Bullet's C-level warnings (URDF links without inertia) while loading."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(fd)
    with open(os.devnull, 'w') as devnull:
        os.dup2(devnull.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


@dataclass(frozen=True)
class CliffConfig(WorldConfig):
    """Settings of the cliff world (the scene itself is described by ``sim/cliff.yaml``)."""

    randomize_scene: bool = True
    """Draw the platform size and height and the start pose every episode (else nominal
    platform, start at its centre facing +x). Goal and obstacles are always drawn."""
    odometry_noise: float = 0.0
    """Standard deviation of Gaussian noise on every odometry component (m, rad, m/s, rad/s)."""
    robot_mesh_keep: float = 1.0
    """Share of the triangles of each of the Husky's visual meshes that the camera draws, in
    (0, 1]. 1.0: the URDF's full meshes (the images the shipped models were trained on). Below
    1: quadric-error decimation (`decimate_mesh`); at 0.1 (36,000 -> 4,900 triangles) the
    64 x 64 camera is ~5x cheaper and its images match the full meshes' within the tolerance
    of ``test/sim/test_renderer.py`` (robot pixels only, the cliff perception unchanged), but
    the shipped latent stack succeeds slightly less often on them (BENCHMARKS.md, camera
    throughput). Physics is unchanged."""

    def __post_init__(self):
        super().__post_init__()
        if self.odometry_noise < 0:
            raise ValueError(f'odometry_noise must be >= 0, got {self.odometry_noise}')
        if not 0.0 < self.robot_mesh_keep <= 1.0:
            raise ValueError(f'robot_mesh_keep must be in (0, 1], got {self.robot_mesh_keep}')


_STL_RECORD = np.dtype([('n', '<f4', 3), ('v', '<f4', (3, 3)), ('a', '<u2')])


def _read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the triangles (N, 3, 3) and facet normals (N, 3) of a binary STL file."""
    data = path.read_bytes()
    n = int(np.frombuffer(data, '<u4', 1, 80)[0])
    rec = np.frombuffer(data, _STL_RECORD, n, 84)
    return rec['v'].astype(np.float64), rec['n'].astype(np.float64)


def decimate_mesh(tris: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation of a triangle soup (N, 3, 3) to about ``keep * N`` triangles.

    Shared corners are welded, then ``fast_simplification`` (Fast-Quadric-Mesh-Simplification)
    collapses the edges whose removal moves the surface least: flat and nearly flat runs of
    small triangles go first, silhouettes and creases last. Returns the triangles and their
    facet normals (from the winding, as in the STL files); degenerate ones are dropped.
    """
    import fast_simplification
    points, faces = np.unique(tris.reshape(-1, 3), axis=0, return_inverse=True)
    points, faces = fast_simplification.simplify(
        points, faces.reshape(-1, 3).astype(np.int32), target_count=max(4, int(len(tris) * keep)))
    out = points[faces]
    cross = np.cross(out[:, 1] - out[:, 0], out[:, 2] - out[:, 0])
    area = np.linalg.norm(cross, axis=1)
    ok = area > 1e-12
    return out[ok], cross[ok] / area[ok, None]


@lru_cache(maxsize=None)
def light_urdf(urdf: str, keep: float) -> str:
    """Return the path of a copy of `urdf` (from ``pybullet_data``) with decimated STL meshes.

    Only ``<mesh filename="meshes/*.stl">`` visuals change (`decimate_mesh` to `keep` of their
    triangles); links, joints, inertia and collision shapes are the URDF's own. Written once
    into the temporary directory, atomically (parallel workers never see a half-written file).
    Raises ImportError without the ``fast-simplification`` package.
    """
    import hashlib
    import re
    import tempfile

    import fast_simplification
    source = Path(pybullet_data.getDataPath()) / urdf
    text = source.read_text(encoding='utf-8')
    version = getattr(fast_simplification, '__version__', '')
    digest = hashlib.sha1(f'{text}qem{keep!r}{version}'.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f'hlai_ros_{source.stem}_light_{digest}'
    done = out / source.name
    if done.exists():
        return str(done)
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(set(re.findall(r'filename="meshes/([\w.-]+\.stl)"', text))):
        tris, normals = decimate_mesh(_read_stl(source.parent / 'meshes' / name)[0], keep)
        rec = np.zeros(len(tris), _STL_RECORD)
        rec['n'], rec['v'] = normals, tris
        tmp = out / f'{name}.{os.getpid()}.tmp'
        with open(tmp, 'wb') as f:
            f.write(bytes(80) + np.uint32(len(tris)).tobytes() + rec.tobytes())
        os.replace(tmp, out / name)
    text = text.replace('filename="meshes/', f'filename="{out.as_posix()}/')
    tmp = out / f'{source.name}.{os.getpid()}.tmp'
    tmp.write_text(text, encoding='utf-8')
    os.replace(tmp, done)
    return str(done)


@lru_cache(maxsize=None)
def _robot_urdf(urdf: str, keep: float) -> str:
    """`urdf` with meshes decimated to `keep`; the full one at 1 or without the package."""
    if keep >= 1.0:
        return urdf
    try:
        return light_urdf(urdf, keep)
    except ImportError:
        import warnings
        warnings.warn('fast-simplification is not installed: the robot is drawn with its full '
                      'meshes (the reference images, a ~5x slower camera); pip install '
                      'fast-simplification', RuntimeWarning, stacklevel=2)
        return urdf


def _camera_spec() -> _CameraSpec:
    cam = load_scene()['camera']
    eye = tuple(float(v) for v in cam['eye'])
    return _CameraSpec(
        eye=eye, target=(eye[0], eye[1], 0.0), up=(0.0, 1.0, 0.0),
        fov_deg=float(cam['fov_deg']), near=float(cam['near']), far=float(cam['far']),
        extra={'view_eye': tuple(cam['view_eye']), 'view_target': tuple(cam['view_target'])})


class CliffWorld(HlaiWorld):
    """A Husky on a raised platform; reach the goal near an edge without falling or hitting."""

    config_class = CliffConfig
    camera_spec = _camera_spec()
    proprio_names = ('x', 'y', 'yaw', 'v', 'omega')

    def __init__(self, config: CliffConfig | None = None, render_mode: str | None = None,
                 **overrides):
        super().__init__(config, render_mode, **overrides)
        self.scene = load_scene()
        act = self.scene['action']
        high = np.array([act['max_linear'], act['max_angular']], dtype=np.float32)
        self.action_space = spaces.Box(-high, high, dtype=np.float32)
        self._robot = None
        self._platform = None
        self._friction, self._mass_scale = 0.0, 1.0
        self._wheels: list[int] = []
        self._obstacles: list[dict] = []
        self._obstacle_ids: list[int] = []
        self._goal_marker = None
        self._bounds = np.zeros(4)
        self._top_z = 1.0
        self._start = np.zeros(3)
        self._rest_z = 1.0

    # -- scene ------------------------------------------------------------------------------
    def _draw(self, value) -> float:
        """Draw from a [lo, hi] range with the episode's generator."""
        if isinstance(value, (list, tuple)):
            return float(self.np_random.uniform(float(value[0]), float(value[1])))
        return float(value)

    def _build(self, options: dict) -> None:
        unknown = set(options) - {'goal', 'start', 'obstacles'}
        if unknown:
            raise ValueError(f'unknown reset options {sorted(unknown)}; '
                             "expected any of 'goal', 'start', 'obstacles'")
        b, sc = self._bullet, self.scene
        pick = self._draw if self.config.randomize_scene else _nominal
        plat = sc['platform']
        half = np.array([pick(plat['size_x']), pick(plat['size_y'])]) / 2.0
        self._top_z = pick(plat['top_z'])
        self._bounds = np.array([-half[0], half[0], -half[1], half[1]])

        b.setAdditionalSearchPath(pybullet_data.getDataPath())
        with _quiet_stdout():
            ground = b.loadURDF('plane.urdf')
        b.changeVisualShape(ground, -1, rgbaColor=sc['ground_rgba'])
        hz = self._top_z / 2.0
        col = b.createCollisionShape(b.GEOM_BOX, halfExtents=[half[0], half[1], hz])
        vis = b.createVisualShape(b.GEOM_BOX, halfExtents=[half[0], half[1], hz],
                                  rgbaColor=plat['rgba'])
        self._platform = b.createMultiBody(0.0, col, vis, [0.0, 0.0, hz])

        self._start = self._sample_start(options.get('start'))
        goal = self._sample_goal(options.get('goal'))
        self._goal = goal.astype(np.float32)
        self._obstacles = self._sample_obstacles(options.get('obstacles'))
        self._obstacle_ids = [self._create_obstacle(o) for o in self._obstacles]
        self._create_robot()
        gvis = b.createVisualShape(b.GEOM_CYLINDER, radius=sc['goal']['success_radius'],
                                   length=0.004, rgbaColor=sc['goal']['rgba'])
        self._goal_marker = b.createMultiBody(0.0, -1, gvis, self._marker_position())

    def _marker_position(self) -> list[float]:
        return [float(self._goal[0]), float(self._goal[1]), self._top_z + 0.002]

    def _inside(self, xy, margin: float) -> bool:
        x0, x1, y0, y1 = self._bounds
        return bool(x0 + margin <= xy[0] <= x1 - margin and y0 + margin <= xy[1] <= y1 - margin)

    def _sample_start(self, start) -> np.ndarray:
        if start is not None:
            start = np.asarray(start, dtype=np.float64).reshape(-1)
            if start.shape != (3,) or not np.all(np.isfinite(start)):
                raise ValueError(f"options['start'] must be finite (x, y, yaw), got {start!r}")
            if not self._inside(start[:2], 0.0):
                raise ValueError(f"options['start'] {start[:2]} is off the platform "
                                 f'(x, y bounds {self._bounds})')
            return start
        if not self.config.randomize_scene:
            return np.zeros(3)
        m = float(self.scene['start']['edge_margin'])
        x0, x1, y0, y1 = self._bounds
        return np.array([self._draw([x0 + m, x1 - m]), self._draw([y0 + m, y1 - m]),
                         self._draw(self.scene['start']['yaw'])])

    def _sample_goal(self, goal) -> np.ndarray:
        if goal is not None:
            goal = np.asarray(goal, dtype=np.float64).reshape(-1)
            if goal.shape != (2,) or not np.all(np.isfinite(goal)):
                raise ValueError(f"options['goal'] must be two finite numbers, got {goal!r}")
            if not self._inside(goal, 0.0):
                raise ValueError(f"options['goal'] {goal} is off the platform "
                                 f'(x, y bounds {self._bounds})')
            return goal
        g = self.scene['goal']
        x0, x1, y0, y1 = self._bounds
        hi = g['edge_distance'][1]
        for _ in range(1000):
            d = self._draw(g['edge_distance'])
            edge = int(self.np_random.integers(4))
            if edge < 2:  # an x edge: along y
                along = self._draw([y0 + hi, y1 - hi])
                goal = np.array([x0 + d if edge == 0 else x1 - d, along])
            else:
                along = self._draw([x0 + hi, x1 - hi])
                goal = np.array([along, y0 + d if edge == 2 else y1 - d])
            if np.linalg.norm(goal - self._start[:2]) >= g['min_start_distance']:
                return goal
        raise RuntimeError('could not place a goal far enough from the start')

    def _obstacle_fits(self, o: dict, placed: list[dict]) -> bool:
        c = self.scene['obstacles']
        xy, r = np.array([o['x'], o['y']]), o['radius']
        if not self._inside(xy, r + c['edge_inset']):
            return False
        if np.linalg.norm(xy - self._start[:2]) < r + c['start_clearance']:
            return False
        if np.linalg.norm(xy - self._goal) < r + c['goal_clearance']:
            return False
        return all(np.hypot(o['x'] - q['x'], o['y'] - q['y']) >= r + q['radius'] + c['gap']
                   for q in placed)

    def _new_obstacle(self, x: float, y: float) -> dict:
        c = self.scene['obstacles']
        shape = 'cylinder' if self.np_random.random() < c['cylinder_probability'] else 'box'
        size = self._draw(c['radius'])
        yaw = self._draw([-math.pi, math.pi]) if shape == 'box' else 0.0
        return self._obstacle_dict(shape, x, y, size, self._draw(c['height']), yaw)

    @staticmethod
    def _obstacle_dict(shape, x, y, size, height, yaw) -> dict:
        radius = size * math.sqrt(2.0) if shape == 'box' else size
        return {'shape': shape, 'x': float(x), 'y': float(y), 'size': float(size),
                'radius': float(radius), 'height': float(height), 'yaw': float(yaw)}

    def _sample_obstacles(self, given) -> list[dict]:
        if given is not None:
            out = []
            for o in given:
                shape = o.get('shape', 'cylinder')
                if shape not in ('box', 'cylinder'):
                    raise ValueError(f"obstacle shape must be 'box' or 'cylinder', got {shape!r}")
                if o['radius'] <= 0 or o['height'] <= 0:
                    raise ValueError(f'obstacle radius and height must be positive, got {o}')
                out.append(self._obstacle_dict(shape, o['x'], o['y'], o['radius'], o['height'],
                                               o.get('yaw', 0.0)))
            return out
        c = self.scene['obstacles']
        n = int(self.np_random.integers(int(c['count'][0]), int(c['count'][1]) + 1))
        placed: list[dict] = []
        if self.np_random.random() < c['between_probability']:
            direction = self._goal - self._start[:2]
            normal = np.array([-direction[1], direction[0]]) / np.linalg.norm(direction)
            for _ in range(20):
                xy = (self._start[:2] + self._draw([0.4, 0.6]) * direction
                      + self._draw([-c['between_offset'], c['between_offset']]) * normal)
                o = self._new_obstacle(*xy)
                if self._obstacle_fits(o, placed):
                    placed.append(o)
                    break
        x0, x1, y0, y1 = self._bounds
        for _ in range(400):
            if len(placed) >= n:
                break
            o = self._new_obstacle(self._draw([x0, x1]), self._draw([y0, y1]))
            if self._obstacle_fits(o, placed):
                placed.append(o)
        return placed

    def _create_obstacle(self, o: dict) -> int:
        b, rgba = self._bullet, self.scene['obstacles']['rgba']
        if o['shape'] == 'box':
            he = [o['size'], o['size'], o['height'] / 2.0]
            col = b.createCollisionShape(b.GEOM_BOX, halfExtents=he)
            vis = b.createVisualShape(b.GEOM_BOX, halfExtents=he, rgbaColor=rgba)
        else:
            col = b.createCollisionShape(b.GEOM_CYLINDER, radius=o['size'], height=o['height'])
            vis = b.createVisualShape(b.GEOM_CYLINDER, radius=o['size'], length=o['height'],
                                      rgbaColor=rgba)
        orn = b.getQuaternionFromEuler([0.0, 0.0, o['yaw']])
        return b.createMultiBody(0.0, col, vis, [o['x'], o['y'], self._top_z + o['height'] / 2],
                                 orn)

    def _create_robot(self) -> None:
        b, rs = self._bullet, self.scene['robot']
        orn = b.getQuaternionFromEuler([0.0, 0.0, float(self._start[2])])
        urdf = _robot_urdf(rs['urdf'], float(self.config.robot_mesh_keep))
        with _quiet_stdout():
            self._robot = b.loadURDF(urdf, [self._start[0], self._start[1],
                                                  self._top_z + 0.002], orn)
        names = {b.getJointInfo(self._robot, j)[1].decode(): j
                 for j in range(b.getNumJoints(self._robot))}
        self._wheels = [names[n] for n in rs['wheel_joints']]
        rand = self.config.randomize_dynamics
        friction = self._draw(rs['wheel_friction']) if rand else _nominal(rs['wheel_friction'])
        a = float(rs['wheel_anisotropy'])
        for j in self._wheels:
            b.changeDynamics(self._robot, j, lateralFriction=friction,
                             anisotropicFriction=[1.0, a, 1.0])
            b.setJointMotorControl2(self._robot, j, b.VELOCITY_CONTROL, targetVelocity=0.0,
                                    force=float(rs['wheel_force']))
        chassis = names['chassis_joint']
        mass = b.getDynamicsInfo(self._robot, chassis)[0]
        scale = self._draw(rs['mass_scale']) if rand else 1.0
        b.changeDynamics(self._robot, chassis, mass=mass * scale)
        self._friction, self._mass_scale = friction, scale
        # settle on the wheels so that the first observation is at rest
        for _ in range(24):
            b.stepSimulation()
        self._rest_z = b.getBasePositionAndOrientation(self._robot)[0][2]

    def set_goal(self, goal) -> None:
        """Move the goal (x, y), metres, during an episode, and its marker with it."""
        super().set_goal(goal)
        if self._goal_marker is not None:
            self._bullet.resetBasePositionAndOrientation(self._goal_marker,
                                                         self._marker_position(), [0, 0, 0, 1])

    def _pose_at_goal(self) -> None:
        """The robot on the goal, heading as now, at rest."""
        b = self._bullet
        pos, orn = b.getBasePositionAndOrientation(self._robot)
        b.resetBasePositionAndOrientation(
            self._robot, [float(self._goal[0]), float(self._goal[1]), pos[2]], orn)
        b.resetBaseVelocity(self._robot, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    # -- control ----------------------------------------------------------------------------
    def wheel_speeds(self, action: np.ndarray) -> tuple[float, float]:
        """Return (left, right) wheel speeds (rad/s) for an action (v m/s, omega rad/s)."""
        rs = self.scene['robot']
        v, w = float(action[0]), float(action[1])
        half_track = 0.5 * rs['track_width'] * rs['track_width_scale']
        r = rs['wheel_radius']
        return (v - w * half_track) / r, (v + w * half_track) / r

    def _apply_action(self, action: np.ndarray) -> None:
        left, right = self.wheel_speeds(action)
        force = float(self.scene['robot']['wheel_force'])
        self._bullet.setJointMotorControlArray(
            self._robot, self._wheels, self._bullet.VELOCITY_CONTROL,
            targetVelocities=[left, right, left, right], forces=[force] * 4)

    # -- state ------------------------------------------------------------------------------
    def _base_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return base position (3,), roll-pitch-yaw (3,), linear (3,), angular (3,) velocity."""
        b = self._bullet
        pos, orn = b.getBasePositionAndOrientation(self._robot)
        lin, ang = b.getBaseVelocity(self._robot)
        return (np.array(pos), np.array(b.getEulerFromQuaternion(orn)), np.array(lin),
                np.array(ang))

    def _proprio(self) -> np.ndarray:
        pos, rpy, lin, ang = self._base_state()
        yaw = rpy[2]
        v = lin[0] * math.cos(yaw) + lin[1] * math.sin(yaw)
        odom = np.array([pos[0], pos[1], yaw, v, ang[2]])
        if self.config.odometry_noise > 0:
            odom = odom + self.np_random.normal(0.0, self.config.odometry_noise, 5)
        return odom.astype(np.float32)

    def distance_to_edge(self, xy) -> float:
        """Return the planar distance (m) from xy to the nearest platform edge (< 0 off it)."""
        x0, x1, y0, y1 = self._bounds
        return float(min(xy[0] - x0, x1 - xy[0], xy[1] - y0, y1 - xy[1]))

    def _ground_truth(self) -> dict[str, Any]:
        pos, rpy, lin, ang = self._base_state()
        obs = self._obstacles
        return {
            'base_position': pos,
            'base_rpy': rpy,
            'base_linear_velocity': lin,
            'base_angular_velocity': ang,
            'obstacles': [dict(o) for o in obs],
            'obstacle_positions': np.array([[o['x'], o['y']] for o in obs]).reshape(-1, 2),
            'obstacle_radii': np.array([o['radius'] for o in obs]),
            'obstacle_heights': np.array([o['height'] for o in obs]),
            'platform_bounds': self._bounds.copy(),
            'platform_top': self._top_z,
            'goal': self._goal.astype(np.float64).copy(),
            'distance_to_goal': float(np.linalg.norm(pos[:2] - self._goal)),
            'distance_to_edge': self.distance_to_edge(pos[:2]),
            'wheel_friction': self._friction,
            'mass_scale': self._mass_scale,
        }

    def _outcome(self) -> tuple[bool, str | None]:
        pos, rpy, _, _ = self._base_state()
        fall = self.scene['fall']
        if (not self._inside(pos[:2], 0.0) or pos[2] < self._top_z - fall['drop']
                or abs(rpy[0]) > fall['tilt'] or abs(rpy[1]) > fall['tilt']):
            return False, 'fell'
        for oid in self._obstacle_ids:
            if self._bullet.getContactPoints(bodyA=self._robot, bodyB=oid):
                return False, 'collision'
        dist = np.linalg.norm(pos[:2] - self._goal)
        return bool(dist <= self.scene['goal']['success_radius']), None

    def _reward(self, action: np.ndarray, success: bool, failure: str | None) -> float:
        rw = self.scene['reward']
        pos = self._base_state()[0]
        reward = -rw['distance_weight'] * float(np.linalg.norm(pos[:2] - self._goal))
        if success:
            reward += rw['success_bonus']
        if failure:
            reward -= rw['failure_penalty']
        return reward

    def render_view(self, width: int, height: int) -> np.ndarray:
        """Render a third-person RGB view (H x W x 3 uint8) of the platform and its drop."""
        b, extra = self._bullet, self.camera_spec.extra
        view = b.computeViewMatrix(list(extra['view_eye']), list(extra['view_target']),
                                   [0.0, 0.0, 1.0])
        proj = b.computeProjectionMatrixFOV(50.0, width / height, 0.1, 30.0)
        _, _, rgba, _, _ = b.getCameraImage(width, height, view, proj,
                                            renderer=b.ER_TINY_RENDERER,
                                            flags=b.ER_NO_SEGMENTATION_MASK)
        return np.ascontiguousarray(
            np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3])
