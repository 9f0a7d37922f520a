"""Cliff perception: state from odometry, platform and obstacles from depth, within bounds.

Thresholds come from measurements (benchmarks/cliff_perception.py, 20 seeds, 196 frames,
64x64): platform-edge mean error 0.027 m (worst frame 0.050 m), obstacle centre error mean
0.015 m (worst 0.051 m), every obstacle detected, no false positives, enclosing radius 0.040 m
larger than the true one on average; with camera pose jitter and levelling, edge worst
0.054 m, centre worst 0.049 m. The edges are quantised by the pixel footprint (0.108 m
on the top surface at 64x64), so the edge bound is half a pixel (0.054 m) plus a margin; the
centre bound is the worst case measured plus a margin, still under one pixel.
"""
import numpy as np
import pytest

from hlai_ros.perception.cliff import STATE_NAMES, CliffPerception, scene_errors
from hlai_ros.sim.cliff import CliffConfig, CliffWorld
from hlai_ros.sim.cliff_scripted import CliffScripted


@pytest.fixture(scope='module')
def frames():
    """Observations and ground truth over three seeded scripted episodes at 64x64."""
    env = CliffWorld(image_width=64, image_height=64)
    out = []
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        ctrl = CliffScripted()
        for step in range(30):
            if step % 10 == 0:
                out.append((obs, info['ground_truth']))
            obs, _, terminated, _, info = env.step(ctrl.act(obs, info))
            if terminated:
                break
    return env.nominal_camera(), out


def test_scene_errors_are_small_at_64x64(frames):
    camera, data = frames
    perception = CliffPerception(camera)
    rows = [scene_errors(perception.estimate(obs).scene, gt) for obs, gt in data]
    assert max(r['bounds_error'] for r in rows) < 0.07
    assert max(r['top_error'] for r in rows) < 0.02
    assert sum(r['detected'] for r in rows) == sum(r['obstacles'] for r in rows)
    assert sum(r['false_positives'] for r in rows) == 0
    centre = np.concatenate([r['centre_errors'] for r in rows])
    assert centre.max() < 0.08
    radius = np.concatenate([r['radius_errors'] for r in rows])
    assert np.all(radius > -0.05)  # enclosing circles: never much smaller than the obstacle
    assert np.all(radius < 0.15)


def test_state_is_odometry_and_goal(frames):
    camera, data = frames
    perception = CliffPerception(camera)
    obs, gt = data[1]
    est = perception.estimate(obs)
    assert perception.state_names == STATE_NAMES and est.state.shape == (7,)
    np.testing.assert_array_equal(est.state[:5], obs['proprio'])
    np.testing.assert_array_equal(est.state[5:], obs['goal'])
    np.testing.assert_allclose(est.state[:2], gt['base_position'][:2], atol=1e-5)


def test_features_describe_edges_and_obstacles_around_the_robot():
    env = CliffWorld(CliffConfig(randomize_scene=False))
    obstacle = {'x': 1.5, 'y': 0.5, 'radius': 0.25, 'height': 0.4}
    obs, info = env.reset(seed=0, options={'start': (0.0, 0.0, 0.0), 'goal': (-2.0, 1.6),
                                           'obstacles': [obstacle]})
    perception = CliffPerception(env.nominal_camera())
    est = perception.estimate(obs)
    f = dict(zip(perception.feature_names, est.features))
    assert est.features.shape == (len(perception.feature_names),)
    assert f['edge_distance'] == pytest.approx(2.05, abs=0.07)  # the nominal y half-size
    assert f['edge_ahead'] == pytest.approx(2.5, abs=0.07)  # facing +x
    assert f['obstacle0_dx'] == pytest.approx(1.5, abs=0.08)
    assert f['obstacle0_dy'] == pytest.approx(0.5, abs=0.08)
    assert f['obstacle_clearance'] == pytest.approx(np.hypot(1.5, 0.5) - 0.25, abs=0.15)
    assert (f['goal_dx'], f['goal_dy']) == pytest.approx((-2.0, 1.6), abs=1e-5)
    # absent obstacles are padded as far away
    assert f['obstacle1_dx'] == perception.config.far_distance and f['obstacle1_radius'] == 0


def test_robot_is_not_an_obstacle():
    env = CliffWorld(CliffConfig(randomize_scene=False))
    obs, _ = env.reset(seed=0, options={'start': (0.0, 0.0, 0.7), 'goal': (-2.0, 1.6),
                                        'obstacles': []})
    scene = CliffPerception(env.nominal_camera()).estimate(obs).scene
    assert len(scene.obstacle_radii) == 0


def test_bad_observation_is_rejected(frames):
    camera, data = frames
    obs = dict(data[0][0], proprio=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match='proprio'):
        CliffPerception(camera).estimate(obs)
    obs = dict(data[0][0], depth=np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match='depth image'):
        CliffPerception(camera).estimate(obs)


def test_a_slightly_tilted_camera_is_levelled():
    """Camera pose jitter (1 cm, 0.01 rad) with the nominal model still gives a good scene."""
    env = CliffWorld(image_width=64, image_height=64, randomize_camera=True)
    perception = CliffPerception(env.nominal_camera())
    rows = []
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        rows.append(scene_errors(perception.estimate(obs).scene, info['ground_truth']))
    assert max(r['bounds_error'] for r in rows) < 0.08
    assert max(max(r['centre_errors']) for r in rows) < 0.08
    assert sum(r['detected'] for r in rows) == sum(r['obstacles'] for r in rows)
