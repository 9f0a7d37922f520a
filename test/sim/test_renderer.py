"""The camera's renderers: the fast default draws today's images, EGL falls back cleanly.

Tolerance: the default path (TinyRenderer, static bodies cached and composited by depth) must
reproduce the images of a full TinyRenderer render exactly (RGB identical, depth within
1e-6 m), both against the frames stored in ``data/renderer_reference.npz`` (rendered by the
code before the cache existed) and against a full render in the same process. Cliff's opt-in
simplified Husky meshes may change the robot's pixels only: at most 40 of 4096 pixels per
frame and a mean absolute RGB difference under 1 (of 255).

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


def frames(task: str, **settings) -> tuple[np.ndarray, np.ndarray]:
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
        return np.stack([o['rgb'] for o in out]), np.stack([o['depth'] for o in out])
    finally:
        env.close()


def assert_same(a: tuple, b: tuple) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize('task', ['push', 'cliff'])
def test_default_images_equal_the_reference(task):
    ref = np.load(REFERENCE)
    assert_same(frames(task), (ref[f'{task}_rgb'], ref[f'{task}_depth']))


@pytest.mark.parametrize('task', ['push', 'cliff', 'roll'])
def test_cached_static_scene_equals_a_full_render(task):
    assert_same(frames(task), frames(task, camera_cache_static=False))


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


def test_light_husky_meshes_change_only_the_robot_a_little():
    from hlai_ros.sim.cliff import _read_stl, light_urdf
    light = Path(light_urdf('husky/husky.urdf'))
    import pybullet_data
    full = Path(pybullet_data.getDataPath()) / 'husky' / 'meshes' / 'wheel.stl'
    assert len(_read_stl(light.parent / 'wheel.stl')[0]) < len(_read_stl(full)[0]) / 5
    ref = np.load(REFERENCE)
    rgb, depth = frames('cliff', light_robot_meshes=True)
    diff = np.abs(rgb.astype(int) - ref['cliff_rgb'])
    assert (diff.max(-1) > 0).sum(axis=(1, 2)).max() <= 40
    assert diff.mean() < 1.0
    assert np.median(np.abs(depth - ref['cliff_depth'])) == 0.0


if __name__ == '__main__':
    out = {}
    for name in ('push', 'cliff', 'roll'):
        out[f'{name}_rgb'], out[f'{name}_depth'] = frames(name, camera_cache_static=False)
    np.savez_compressed(REFERENCE, **out)
    print(f'wrote {REFERENCE}')
