"""Common machinery of the PyBullet worlds: physics and control rates, camera, seeding.

A world is a `gymnasium.Env` whose observation is what a real robot would have:

- ``rgb``: H x W x 3 uint8 camera image;
- ``depth``: H x W float32 depth along the optical axis, metres;
- ``proprio``: float32 vector (joint states or odometry), labelled by ``proprio_names``;
- ``goal``: float32 (2,) goal position in the world frame, metres.

Privileged ground truth goes in ``info['ground_truth']`` and may only be read by evaluation.
Subclasses build the scene and define actions, proprioception, reward and outcome.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field, replace
import math
from typing import Any

import gymnasium as gym
from gymnasium import spaces
import numpy as np
import pybullet as p
from pybullet_utils import bullet_client


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera: intrinsics and its pose in the world frame.

    `T_world_camera` maps points in the optical frame (x right, y down, z forward, REP-103
    `_optical` convention) to the world frame.
    """

    width: int
    height: int
    K: np.ndarray  # 3 x 3
    T_world_camera: np.ndarray  # 4 x 4
    near: float
    far: float
    frame_id: str = 'camera_optical_frame'


RENDERERS = ('tiny', 'egl')
"""Values of `WorldConfig.renderer`."""


def load_egl_plugin(bullet: bullet_client.BulletClient) -> bool:
    """Load PyBullet's eglRenderer plugin into `bullet`; return whether it loaded.

    False (nothing loaded) where the plugin is not installed, EGL is missing, the plugin fails
    to start or the environment variable ``HLAI_NO_EGL`` is set: the caller then renders with
    the TinyRenderer.
    """
    import os
    import pkgutil
    try:
        loader = pkgutil.get_loader('eglRenderer')
    except (ImportError, ValueError):
        loader = None
    if loader is None or os.environ.get('HLAI_NO_EGL'):
        return False
    try:
        with _quiet_fd(1), _quiet_fd(2):
            plugin = bullet.loadPlugin(loader.get_filename(), '_eglRendererPlugin')
    except (p.error, OSError, AttributeError):
        return False
    return plugin >= 0


@contextlib.contextmanager
def _quiet_fd(fd: int):
    """Point file descriptor `fd` at /dev/null within the block (C-level chatter)."""
    import os
    import sys
    (sys.stdout if fd == 1 else sys.stderr).flush()
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, 'wb') as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@dataclass(frozen=True)
class WorldConfig:
    """Settings shared by every world."""

    control_hz: float = 10.0
    """Control (action) rate, Hz."""
    physics_hz: float = 240.0
    """Physics rate, Hz; must be a multiple of `control_hz`."""
    image_width: int = 64
    """Camera image width, pixels."""
    image_height: int = 64
    """Camera image height, pixels."""
    render_camera: bool = True
    """Render RGB-D every step; False returns zero images (fast, for state-only work)."""
    randomize_dynamics: bool = True
    """Randomise masses, friction and sizes every episode."""
    randomize_camera: bool = False
    """Perturb the camera pose every episode (the nominal pose stays the calibrated one)."""
    camera_jitter_m: float = 0.01
    """Standard deviation of the camera position perturbation, metres."""
    camera_jitter_rad: float = 0.01
    """Standard deviation of the camera orientation perturbation, radians."""
    depth_noise_m: float = 0.0
    """Standard deviation of additive depth noise, metres."""
    gui: bool = False
    """Open the PyBullet GUI (needs a display)."""
    renderer: str = 'tiny'
    """Camera renderer: 'tiny' (PyBullet's TinyRenderer on the CPU: the images the shipped
    models were trained on) or 'egl' (the eglRenderer plugin, OpenGL through EGL, on a GPU
    where there is one: shading and edges differ from the TinyRenderer's; falls back to it,
    with a warning, where the plugin or EGL is missing)."""
    camera_cache_static: bool = True
    """TinyRenderer: render the bodies that never move (massless, jointless: floor, table,
    platform, obstacles, goal marker) once per episode and composite the moving ones (robot,
    object) over them by depth every step; the images are those of a full render (tested)."""

    def __post_init__(self):
        if self.control_hz <= 0 or self.physics_hz <= 0:
            raise ValueError('control_hz and physics_hz must be positive')
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError(
                f'physics_hz ({self.physics_hz}) must be a whole multiple of control_hz '
                f'({self.control_hz})')
        if self.image_width < 8 or self.image_height < 8:
            raise ValueError('camera images must be at least 8 x 8 pixels')
        if self.image_width > 4096 or self.image_height > 4096:
            raise ValueError('camera images must be at most 4096 x 4096 pixels')
        if self.renderer not in RENDERERS:
            raise ValueError(f'renderer must be one of {RENDERERS}, got {self.renderer!r}')

    def with_(self, **changes) -> 'WorldConfig':
        """Return a copy with some fields changed."""
        return replace(self, **changes)


def bullet_client_quiet(connection_mode: int = p.DIRECT) -> bullet_client.BulletClient:
    """A PyBullet client whose connection does not print to standard output.

    PyBullet's C code writes ``argv[0]=`` to file descriptor 1 on every connection, once per
    episode and estimator: it would interleave with the progress bars and break the JSON last
    line of ``hlai eval --json``. The descriptor is pointed at /dev/null for the connection.
    """
    if connection_mode != p.DIRECT:
        return bullet_client.BulletClient(connection_mode=connection_mode)
    import os
    import sys
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output at all
        return bullet_client.BulletClient(connection_mode=connection_mode)
    try:
        with open(os.devnull, 'wb') as null:
            os.dup2(null.fileno(), 1)
            return bullet_client.BulletClient(connection_mode=connection_mode)
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def look_at(eye, target, up) -> np.ndarray:
    """Return T_world_camera (4 x 4) for an optical frame at `eye` looking at `target`."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


@dataclass
class _CameraSpec:
    eye: tuple
    target: tuple
    up: tuple = (0.0, 0.0, 1.0)
    fov_deg: float = 60.0
    near: float = 0.05
    far: float = 5.0
    extra: dict = field(default_factory=dict)


class HlaiWorld(gym.Env):
    """Base class of the PyBullet worlds; see the module docstring for the observation."""

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 10}
    action_space: spaces.Box
    proprio_names: tuple[str, ...] = ()
    camera_spec = _CameraSpec(eye=(0.0, -1.0, 1.0), target=(0.0, 0.0, 0.0))
    config_class = WorldConfig

    def __init__(self, config: WorldConfig | None = None, render_mode: str | None = None,
                 **overrides):
        config = config or self.config_class()
        if overrides:
            config = replace(config, **overrides)
        if not isinstance(config, self.config_class):
            raise TypeError(f'{type(self).__name__} needs a {self.config_class.__name__}, '
                            f'got {type(config).__name__}')
        if render_mode not in (None, 'rgb_array'):
            raise ValueError(f'render_mode must be None or "rgb_array", got {render_mode!r}')
        self.config = config
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=config.control_hz)
        self.substeps = int(round(config.physics_hz / config.control_hz))
        self.dt = 1.0 / config.control_hz
        self._bullet = bullet_client_quiet(p.GUI if config.gui else p.DIRECT)
        self._renderer = p.ER_TINY_RENDERER
        if config.renderer == 'egl' and not config.gui:
            if load_egl_plugin(self._bullet):
                self._renderer = p.ER_BULLET_HARDWARE_OPENGL
            else:
                import warnings
                warnings.warn('renderer egl: the eglRenderer plugin or EGL is unavailable; '
                              'rendering with the TinyRenderer', RuntimeWarning, stacklevel=2)
        self._scene_cache = _StaticSceneCache()
        self._camera_pose = self.nominal_camera().T_world_camera
        self._camera_on = config.render_camera
        self._step_count = 0
        self._goal = np.zeros(2, dtype=np.float32)
        H, W = config.image_height, config.image_width
        self.observation_space = spaces.Dict({
            'rgb': spaces.Box(0, 255, (H, W, 3), np.uint8),
            'depth': spaces.Box(0.0, self.camera_spec.far, (H, W), np.float32),
            'proprio': spaces.Box(-np.inf, np.inf, (len(self.proprio_names),), np.float32),
            'goal': spaces.Box(-np.inf, np.inf, (2,), np.float32),
        })

    # -- to be provided by each world -------------------------------------------------------
    def _build(self, options: dict) -> None:
        """Create the scene for a new episode (after resetSimulation); set self._goal."""
        raise NotImplementedError

    def _apply_action(self, action: np.ndarray) -> None:
        """Turn a (clipped) action into motor commands, once per control step."""
        raise NotImplementedError

    def _before_substep(self) -> None:
        """Run before every physics step (low-level controllers)."""

    def _proprio(self) -> np.ndarray:
        """Return the proprioceptive vector, float32, in `proprio_names` order."""
        raise NotImplementedError

    def _ground_truth(self) -> dict[str, Any]:
        """Return privileged ground truth (evaluation only)."""
        raise NotImplementedError

    def ground_truth(self) -> dict[str, Any]:
        """Privileged ground truth now, as in ``info['ground_truth']`` (evaluation only)."""
        return self._ground_truth()

    def _outcome(self) -> tuple[bool, str | None]:
        """Return (success, failure_reason or None) for the current state."""
        raise NotImplementedError

    def _reward(self, action: np.ndarray, success: bool, failure: str | None) -> float:
        """Return the reward of the transition that just happened."""
        raise NotImplementedError

    # -- gymnasium API ----------------------------------------------------------------------
    @property
    def bullet(self) -> bullet_client.BulletClient:
        """The PyBullet client of this world."""
        return self._bullet

    @property
    def goal(self) -> np.ndarray:
        """The current goal (x, y), metres, world frame."""
        return self._goal.copy()

    def set_goal(self, goal) -> None:
        """Move the goal during an episode (e.g. from /goal_pose)."""
        goal = np.asarray(goal, dtype=np.float32).reshape(-1)[:2]
        if goal.shape != (2,) or not np.all(np.isfinite(goal)):
            raise ValueError(f'goal must be two finite numbers, got {goal!r}')
        self._goal = goal

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; randomness comes only from `self.np_random`."""
        super().reset(seed=seed)
        b = self._bullet
        b.resetSimulation()
        b.setTimeStep(1.0 / self.config.physics_hz)
        b.setGravity(0, 0, -9.81)
        b.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        self._step_count = 0
        self._scene_cache = _StaticSceneCache()
        self._build(dict(options or {}))
        self._camera_pose = self._sample_camera_pose()
        obs = self._observe()
        return obs, self._info(False, None)

    def step(self, action):
        """Advance one control period."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f'action must have shape {self.action_space.shape}, '
                             f'got {action.shape}')
        if not np.all(np.isfinite(action)):
            raise ValueError(f'action must be finite, got {action}')
        action = np.clip(action, self.action_space.low, self.action_space.high)
        self._apply_action(action)
        for _ in range(self.substeps):
            self._before_substep()
            self._bullet.stepSimulation()
        self._step_count += 1
        success, failure = self._outcome()
        reward = float(self._reward(action, success, failure))
        obs = self._observe()
        return obs, reward, bool(success or failure), False, self._info(success, failure)

    def close(self):
        """Disconnect from PyBullet."""
        if getattr(self, '_bullet', None) is not None:
            egl = getattr(self, '_renderer', None) == p.ER_BULLET_HARDWARE_OPENGL
            try:
                with _quiet_fd(1) if egl else contextlib.nullcontext():
                    self._bullet.disconnect()
            except p.error:
                pass
            self._bullet = None

    def render(self):
        """Return a 320 x 240 third-person view as an RGB array."""
        if self.render_mode != 'rgb_array':
            return None
        return self.render_view(320, 240)

    @contextlib.contextmanager
    def camera_disabled(self):
        """Within the block, steps return zero images (fast replays by the oracle planner)."""
        saved, self._camera_on = self._camera_on, False
        try:
            yield
        finally:
            self._camera_on = saved

    # -- snapshots (for the oracle MPC that plans with the simulator itself) ---------------
    _NOT_SNAPSHOTTED = frozenset({'_bullet', 'config', 'observation_space', 'action_space',
                                  'spec', '_np_random', 'metadata', 'render_mode',
                                  '_camera_on', '_scene_cache', '_renderer'})

    def snapshot(self):
        """Save the full simulator state (physics, controllers, goal, RNG); see `restore`."""
        plain = {k: copy.deepcopy(v) for k, v in vars(self).items()
                 if k not in self._NOT_SNAPSHOTTED}
        return self._bullet.saveState(), plain, copy.deepcopy(self.np_random.bit_generator.state)

    def restore(self, snap) -> None:
        """Return to a state saved by `snapshot` (the snapshot stays valid)."""
        state_id, plain, rng_state = snap
        self._bullet.restoreState(stateId=state_id)
        for k, v in plain.items():
            setattr(self, k, copy.deepcopy(v))
        self.np_random.bit_generator.state = copy.deepcopy(rng_state)

    def release(self, snap) -> None:
        """Free the memory of a snapshot."""
        self._bullet.removeState(snap[0])

    # -- goal images ------------------------------------------------------------------------
    def goal_observation(self) -> dict[str, np.ndarray]:
        """The observation as the scene should look with the task done: a goal image.

        The world is posed at its goal (`_pose_at_goal`: the robot at the goal in cliff, the
        object at the goal in push and roll), the camera renders it with the episode's camera
        pose and noise, and everything, random streams included, is put back: the episode goes
        on exactly as without the call. Returns the same keys as an observation (rgb, depth,
        proprio: what the robot's own sensors read in that pose, goal).
        """
        snap = self.snapshot()
        try:
            self._pose_at_goal()
            return self._observe()
        finally:
            self.restore(snap)
            self.release(snap)

    def _pose_at_goal(self) -> None:
        """Move the scene into its goal pose, without stepping the physics."""
        raise NotImplementedError(f'{type(self).__name__} renders no goal image')

    # -- camera -----------------------------------------------------------------------------
    def nominal_camera(self) -> CameraModel:
        """Return the calibrated camera model (what perception is told)."""
        return self._camera_model(look_at(self.camera_spec.eye, self.camera_spec.target,
                                          self.camera_spec.up))

    def true_camera(self) -> CameraModel:
        """Return the camera model actually used this episode (ground truth)."""
        return self._camera_model(self._camera_pose)

    def _camera_model(self, T: np.ndarray) -> CameraModel:
        spec, W, H = self.camera_spec, self.config.image_width, self.config.image_height
        fy = (H / 2.0) / math.tan(math.radians(spec.fov_deg) / 2.0)
        # OpenCV/CameraInfo convention (pixel centres at integer coordinates). PyBullet's tiny
        # renderer samples column u at u and row v at v + 1 of the ideal image, hence H/2 - 1.
        K = np.array([[fy, 0.0, W / 2.0], [0.0, fy, H / 2.0 - 1.0], [0.0, 0.0, 1.0]])
        return CameraModel(W, H, K, T, spec.near, spec.far)

    def _sample_camera_pose(self) -> np.ndarray:
        T = self.nominal_camera().T_world_camera.copy()
        if not self.config.randomize_camera:
            return T
        rng = self.np_random
        T[:3, 3] += rng.normal(0.0, self.config.camera_jitter_m, 3)
        w = rng.normal(0.0, self.config.camera_jitter_rad, 3)
        angle = np.linalg.norm(w)
        if angle > 0:
            k = w / angle
            Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
            R = np.eye(3) + math.sin(angle) * Kx + (1 - math.cos(angle)) * Kx @ Kx
            T[:3, :3] = R @ T[:3, :3]
        return T

    def _render_camera(self, T: np.ndarray, width: int, height: int, fov_deg: float,
                       composite: bool = False):
        """Render RGB (H x W x 3 uint8) and depth (H x W float32, metres) from pose `T`.

        `composite`: with the TinyRenderer and ``camera_cache_static``, draw only the moving
        bodies and composite them by depth over a cached render of the static ones.
        """
        spec = self.camera_spec
        eye = T[:3, 3]
        target = eye + T[:3, 2]
        up = -T[:3, 1]
        view = self._bullet.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist())
        proj = self._bullet.computeProjectionMatrixFOV(fov_deg, width / height, spec.near,
                                                       spec.far)
        if (composite and self.config.camera_cache_static and not self.config.gui
                and self._renderer == p.ER_TINY_RENDERER):
            rgb, zbuf = self._scene_cache.render(self._bullet, self._raw_image, view, proj,
                                                 width, height)
        else:
            rgb, zbuf = self._raw_image(view, proj, width, height)
        n, f = spec.near, spec.far
        depth = (f * n / (f - (f - n) * zbuf)).astype(np.float32)
        return rgb, depth

    def invalidate_camera_cache(self) -> None:
        """Forget the cached static scene (call after recolouring or retexturing a body).

        Moved, added and removed bodies are noticed without it; colours are read once per
        episode.
        """
        self._scene_cache = _StaticSceneCache()

    def _raw_image(self, view, proj, width: int, height: int):
        """One getCameraImage: RGB (H x W x 3 uint8) and the raw z-buffer (float32)."""
        egl = self._renderer == p.ER_BULLET_HARDWARE_OPENGL
        with _quiet_fd(1) if egl else contextlib.nullcontext():  # EGL prints to stdout
            _, _, rgba, zbuf, _ = self._bullet.getCameraImage(
                width, height, view, proj, renderer=self._renderer,
                flags=p.ER_NO_SEGMENTATION_MASK)
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(height, width)
        return np.ascontiguousarray(rgba[..., :3]), zbuf

    def _observe(self) -> dict[str, np.ndarray]:
        H, W = self.config.image_height, self.config.image_width
        if self._camera_on:
            rgb, depth = self._render_camera(self._camera_pose, W, H, self.camera_spec.fov_deg,
                                             composite=True)
            if self.config.depth_noise_m > 0:
                depth = depth + self.np_random.normal(
                    0.0, self.config.depth_noise_m, depth.shape).astype(np.float32)
            depth = np.clip(depth, 0.0, self.camera_spec.far).astype(np.float32)
        else:
            rgb = np.zeros((H, W, 3), np.uint8)
            depth = np.zeros((H, W), np.float32)
        return {
            'rgb': rgb,
            'depth': depth,
            'proprio': np.asarray(self._proprio(), dtype=np.float32),
            'goal': self._goal.astype(np.float32).copy(),
        }

    def render_view(self, width: int, height: int) -> np.ndarray:
        """Render a third-person RGB view for pictures and videos."""
        spec = self.camera_spec
        eye = spec.extra.get('view_eye', spec.eye)
        target = spec.extra.get('view_target', spec.target)
        rgb, _ = self._render_camera(look_at(eye, target, spec.up), width, height, 50.0)
        return rgb

    def _info(self, success: bool, failure: str | None) -> dict[str, Any]:
        return {
            'is_success': bool(success),
            'failure': failure,
            'step': self._step_count,
            'ground_truth': self._ground_truth(),
        }


class _StaticSceneCache:
    """Static bodies rendered once, moving bodies composited over them by depth.

    A body is static when its base is massless and it has no joints (floor, table, platform,
    obstacles, goal marker); the others (robot, object) are moving. The static image is
    rendered with the moving bodies hidden (alpha 0: the TinyRenderer skips such shapes) and
    kept while the bodies, the static bodies' poses, the camera and the image size stay the
    same; every frame renders the moving bodies alone, with the static ones hidden, and takes,
    pixel by pixel, whichever of the two is nearer. Lighting is per shape and shadows are off,
    so this is the full render's image up to exact depth ties (none in the tests). Colours are
    read when the set of bodies changes (`HlaiWorld.invalidate_camera_cache` after a
    ``changeVisualShape``).
    """

    def __init__(self):
        self.bodies: tuple = ()
        self.static: list[tuple[int, list]] = []
        self.moving: list[tuple[int, list]] = []
        self.key = None
        self.image = None

    def _classify(self, b) -> None:
        bodies = tuple(b.getBodyUniqueId(i) for i in range(b.getNumBodies()))
        if bodies == self.bodies:
            return
        self.bodies, self.static, self.moving, self.key = bodies, [], [], None
        for body in bodies:
            shapes = []
            per_link: dict[int, int] = {}
            for data in b.getVisualShapeData(body):
                link = data[1]
                k = per_link.get(link, 0)
                per_link[link] = k + 1
                shapes.append((link, k, list(data[7])))
            static = b.getNumJoints(body) == 0 and b.getDynamicsInfo(body, -1)[0] == 0.0
            (self.static if static else self.moving).append((body, shapes))

    @staticmethod
    def _show(b, group, visible: bool) -> None:
        for body, shapes in group:
            multi = {link for link, k, _ in shapes if k > 0}
            for link, k, rgba in shapes:
                colour = rgba if visible else [rgba[0], rgba[1], rgba[2], 0.0]
                if link in multi:
                    b.changeVisualShape(body, link, shapeIndex=k, rgbaColor=colour)
                else:
                    b.changeVisualShape(body, link, rgbaColor=colour)

    def render(self, b, raw, view, proj, width: int, height: int):
        """Return RGB and the raw z-buffer of the whole scene; `raw` renders one image."""
        self._classify(b)
        if not self.static or not self.moving:
            return raw(view, proj, width, height)
        key = (width, height, tuple(view), tuple(proj),
               tuple(b.getBasePositionAndOrientation(body) for body, _ in self.static))
        if key != self.key:
            self._show(b, self.moving, False)
            try:
                self.image = raw(view, proj, width, height)
            finally:
                self._show(b, self.moving, True)
            self.key = key
        self._show(b, self.static, False)
        try:
            rgb, zbuf = raw(view, proj, width, height)
        finally:
            self._show(b, self.static, True)
        rgb_s, zbuf_s = self.image
        near = zbuf < zbuf_s
        return np.where(near[..., None], rgb, rgb_s), np.where(near, zbuf, zbuf_s)
