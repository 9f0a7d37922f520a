"""The camera's renderers: the fast default draws today's images, EGL falls back cleanly.

Tolerance: the default path (TinyRenderer, static bodies cached and composited by depth) must
reproduce the images of a full TinyRenderer render exactly (RGB identical, depth within
1e-6 m), both against the frames stored in ``data/renderer_reference.npz`` (rendered by the
code before the cache existed, with the Husky's full meshes) and against a full render in the
same process; cliff's full meshes (``robot_mesh_keep=1.0``) too.

Cliff's opt-in decimated Husky meshes (``robot_mesh_keep=0.1``) are equivalent, not
identical. Against the full meshes' reference frames they may change robot pixels only (what
either image sees there lies within 0.8 m of the base), and their large changes no more than
the full meshes' own wheels make as they turn (``benchmarks/camera_equivalence.py``, seeds
0-4: 4.4 pixels per frame by more than 16 levels or 5 cm, up to 9; the decimated meshes 4.0,
up to 9): at most 30 of 4096 pixels per frame differ at all, at most 12 by more than 16 (of
255) in a colour channel or 5 cm in depth, the mean absolute RGB difference is under 0.25,
the median depth difference 0, and the hand-written cliff perception reads the same scene
(features and platform bounds within 1e-4 m, as many obstacles).

Regenerate the reference (only after a deliberate change of the scenes' looks) with
``python test/sim/test_renderer.py``.
"""
from pathlib import Path
import warnings

import numpy as np
import pytest

import hlai_ros.sim.base as base
import hlai_ros.tasks  # noqa: F401 - registers the tasks and their worlds

REFERENCE = Path(__file__).resolve().parent / 'data' / 'renderer_reference.npz'
ACTIONS = {'push': ([0.1, 0.05], [-0.05, 0.1], [0.0, 0.0]),
           'cliff': ([0.3, 0.5], [0.3, -0.5], [0.0, 0.0]),
           'roll': ([0.1, 0.05], [-0.05, 0.1], [0.0, 0.0])}


def observations(task: str, **settings) -> list[dict]:
    """Seed 0: the reset frame, two fixed actions, the goal image, then a moved goal."""
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    env = make(task, config=world_config(task, **settings))
    try:
        obs, _ = env.reset(seed=0)
        out = [obs]
        acts = ACTIONS[task]
        for act in acts[:2]:
            out.append(env.step(np.array(act, np.float32))[0])
        out.append(env.unwrapped.goal_observation())
        env.unwrapped.set_goal(env.unwrapped.goal + np.float32(0.05))
        out.append(env.step(np.array(acts[2], np.float32))[0])
        return out
    finally:
        env.close()


def frames(task: str, **settings) -> tuple[np.ndarray, np.ndarray]:
    """`observations`' RGB (N, H, W, 3) and depth (N, H, W)."""
    out = observations(task, **settings)
    return np.stack([o['rgb'] for o in out]), np.stack([o['depth'] for o in out])


def assert_same(a: tuple, b: tuple) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=1e-6)


FULL_MESHES = {'push': {}, 'cliff': {'robot_mesh_keep': 1.0}, 'roll': {}}


@pytest.mark.parametrize('task', ['push', 'cliff'])
def test_default_images_equal_the_reference(task):
    ref = np.load(REFERENCE)
    assert_same(frames(task, **FULL_MESHES[task]), (ref[f'{task}_rgb'], ref[f'{task}_depth']))


@pytest.mark.parametrize('task', ['push', 'cliff', 'roll'])
def test_cached_static_scene_equals_a_full_render(task):
    assert_same(frames(task), frames(task, camera_cache_static=False))


def test_cached_static_scene_equals_a_full_render_with_full_meshes():
    assert_same(frames('cliff', robot_mesh_keep=1.0),
                frames('cliff', robot_mesh_keep=1.0, camera_cache_static=False))


def test_cache_follows_a_moved_static_body():
    from hlai_ros.sim.cliff import CliffWorld
    worlds = [CliffWorld(camera_cache_static=on) for on in (True, False)]
    try:
        for env in worlds:
            env.reset(seed=1)
            env.step(np.zeros(2, np.float32))
            env.bullet.resetBasePositionAndOrientation(env._obstacle_ids[0], [0.3, 0.2, 1.3],
                                                       [0, 0, 0, 1])
        a, b = (env.step(np.zeros(2, np.float32))[0] for env in worlds)
        np.testing.assert_array_equal(a['rgb'], b['rgb'])
        np.testing.assert_array_equal(a['depth'], b['depth'])
    finally:
        for env in worlds:
            env.close()


def test_egl_falls_back_to_the_tiny_renderer_without_the_plugin(monkeypatch):
    monkeypatch.setattr(base, 'load_egl_plugin', lambda bullet: False)
    with pytest.warns(RuntimeWarning, match='TinyRenderer'):
        fallback = frames('push', renderer='egl')
    ref = np.load(REFERENCE)
    assert_same(fallback, (ref['push_rgb'], ref['push_depth']))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the default never looks for the plugin
        assert_same(frames('push', renderer='tiny'), fallback)


def test_egl_renders_where_the_plugin_loads():
    import pybullet as p
    from pybullet_utils import bullet_client
    probe = bullet_client.BulletClient(p.DIRECT)
    try:
        available = base.load_egl_plugin(probe)
    finally:
        probe.disconnect()
    if not available:
        pytest.skip('no eglRenderer plugin or EGL here')
    rgb, depth = frames('cliff', renderer='egl')
    ref = np.load(REFERENCE)
    assert rgb.shape == ref['cliff_rgb'].shape and rgb.dtype == np.uint8
    # same scene, other shading: the depth agrees almost everywhere
    assert np.median(np.abs(depth - ref['cliff_depth'])) < 0.01


def test_missing_plugin_module_means_no_egl(monkeypatch):
    import pkgutil
    monkeypatch.setattr(pkgutil, 'get_loader', lambda name: None)
    assert base.load_egl_plugin(None) is False


def test_unknown_renderer_is_refused():
    from hlai_ros.sim.push import PushConfig
    with pytest.raises(ValueError, match='renderer'):
        PushConfig(renderer='vulkan')


def test_decimated_husky_meshes_are_equivalent_to_the_full_ones():
    import pybullet_data

    from hlai_ros.perception.camera import depth_to_world_points
    from hlai_ros.perception.cliff import CliffPerception
    from hlai_ros.sim.cliff import CliffWorld, _read_stl, light_urdf
    light = Path(light_urdf('husky/husky.urdf', 0.1))
    full = Path(pybullet_data.getDataPath()) / 'husky' / 'meshes'
    for name in ('wheel.stl', 'top_plate.stl'):
        assert len(_read_stl(light.parent / name)[0]) < len(_read_stl(full / name)[0]) / 5
    ref = np.load(REFERENCE)
    obs = observations('cliff', robot_mesh_keep=0.1)
    rgb, depth = np.stack([o['rgb'] for o in obs]), np.stack([o['depth'] for o in obs])
    diff = np.abs(rgb.astype(int) - ref['cliff_rgb'])
    ddepth = np.abs(depth - ref['cliff_depth'])
    assert (diff.max(-1) > 0).sum(axis=(1, 2)).max() <= 30
    assert ((diff.max(-1) > 16) | (ddepth > 0.05)).sum(axis=(1, 2)).max() <= 12
    assert diff.mean() < 0.25
    assert np.median(ddepth) == 0.0
    env = CliffWorld()
    try:
        camera = env.nominal_camera()
    finally:
        env.close()
    perception = CliffPerception(camera)
    for o, old, d in zip(obs, ref['cliff_depth'], diff.max(-1)):
        # robot pixels only: what either image sees there lies within 0.8 m of the base
        robot = o['proprio'][:2]
        near = [np.linalg.norm(depth_to_world_points(x, camera, d > 0)[:, :2] - robot, axis=1)
                for x in (o['depth'], old)]
        assert (np.minimum(*near) < 0.8).all()
        a, b = perception.estimate(o), perception.estimate(dict(o, depth=old))
        np.testing.assert_allclose(a.features, b.features, rtol=0, atol=1e-4)
        np.testing.assert_allclose(a.scene.bounds, b.scene.bounds, rtol=0, atol=1e-4)
        assert len(a.scene.obstacle_radii) == len(b.scene.obstacle_radii)


def test_robot_mesh_keep_is_checked():
    from hlai_ros.sim.cliff import CliffConfig
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match='robot_mesh_keep'):
            CliffConfig(robot_mesh_keep=bad)


if __name__ == '__main__':
    out = {}
    for name in ('push', 'cliff', 'roll'):
        out[f'{name}_rgb'], out[f'{name}_depth'] = frames(name, camera_cache_static=False,
                                                          **FULL_MESHES[name])
    np.savez_compressed(REFERENCE, **out)
    print(f'wrote {REFERENCE}')
