"""The roll-world estimator: state from joint angles and RGB-D, checked against ground truth.

Thresholds come from the measurement in `hlai_ros.perception.roll`'s docstring (10 scripted
episodes at 64 x 64, `benchmarks/roll_perception.py`): the ball seen after being seen is off by
0.4 mm mean, 0.8 mm p95, its velocity by 0.007 m/s mean, 0.016 m/s p95 (0.010 / 0.050 m/s over
all frames); forward kinematics is exact. The tests allow about three times
those figures, so they catch a broken estimator, not pixel noise.
"""
import numpy as np
import pytest

from hlai_ros.perception.roll import (
    STATE_NAMES,
    RollPerception,
    RollPerceptionConfig,
    fit_known_sphere,
    fit_resting_sphere,
)
from hlai_ros.sim.roll import RollWorld
from hlai_ros.sim.roll_scripted import RollScripted


@pytest.fixture(scope='module')
def world():
    env = RollWorld()
    yield env
    env.close()


@pytest.fixture(scope='module')
def perception(world):
    estimator = RollPerception(world.nominal_camera(), RollPerceptionConfig(control_dt=world.dt))
    yield estimator
    estimator.close()


def test_state_layout(world, perception):
    obs, info = world.reset(seed=0)
    perception.reset()
    state = perception.estimate(obs)
    assert perception.state_names == STATE_NAMES
    assert state.shape == (11,) and state.dtype == np.float32
    assert state[10] == 1.0 and perception.visible  # the ball seen
    assert np.array_equal(state[6:8], obs['goal'])
    assert np.array_equal(state[4:6], [0.0, 0.0])  # no velocity from a single frame
    assert perception.radius == pytest.approx(info['ground_truth']['object_radius'], abs=0.004)


def test_sphere_fit_is_exact_on_a_cap():
    rng = np.random.default_rng(0)
    centre, r, top = np.array([0.5, -0.1]), 0.03, 0.4
    d = rng.normal(size=(30, 3))
    d[:, 2] = np.abs(d[:, 2])  # the upper half, as a camera above sees it
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    points = np.array([*centre, top + r]) + r * d
    xy, radius = fit_resting_sphere(points, top)
    np.testing.assert_allclose(xy, centre, atol=1e-9)
    assert radius == pytest.approx(r)


def test_known_radius_fit_finds_the_centre_from_a_sliver():
    """Four points on the camera-facing edge of a ball whose rest the hand hides."""
    centre, r, top = np.array([0.5, 0.05]), 0.0225, 0.4
    eye = np.array([0.5, -0.72, 0.92])
    towards = (eye - np.array([*centre, top + r]))
    towards /= np.linalg.norm(towards)
    side = np.cross(towards, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    up = np.cross(side, towards)
    # a 40-degree sliver round the point that faces the camera, tilted up a little
    angles = np.radians([-20.0, -7.0, 7.0, 20.0])
    d = np.cos(angles)[:, None] * (towards + 0.3 * up) + np.sin(angles)[:, None] * side
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    points = np.array([*centre, top + r]) + r * d
    assert np.linalg.norm(points[:, :2].mean(0) - centre) > 0.012  # the centroid is far off
    xy, rms = fit_known_sphere(points, top, r, eye)
    np.testing.assert_allclose(xy, centre, atol=1e-4)
    assert rms < 1e-6
    xy, _ = fit_known_sphere(points, top, r, eye, start=centre + [0.01, 0.01])
    np.testing.assert_allclose(xy, centre, atol=1e-4)


def test_errors_over_scripted_episodes(world, perception):
    ee_err, ball_err, vel_err, seen = [], [], [], []
    for seed in (0, 1):
        controller = RollScripted(noise_std=0.03, seed=seed)
        obs, info = world.reset(seed=seed)
        perception.reset()
        for step in range(60):
            state = perception.estimate(obs)
            gt = info['ground_truth']
            ee_err.append(np.linalg.norm(state[:2] - gt['ee_position'][:2]))
            seen.append(perception.visible)
            if perception.visible:
                ball_err.append(np.linalg.norm(state[2:4] - gt['object_position'][:2]))
            if step >= 3:
                vel_err.append(np.linalg.norm(state[4:6] - gt['object_velocity'][:2]))
            obs, _, terminated, _, info = world.step(controller.act(obs, info))
            if terminated:
                break
    assert max(ee_err) < 1e-3
    assert np.mean(seen) > 0.7
    assert np.mean(ball_err) < 0.004
    assert np.percentile(ball_err, 95) < 0.015
    assert np.mean(vel_err) < 0.06


def test_velocity_of_a_freely_rolling_ball(world, perception):
    obs, _ = world.reset(seed=3, options={'object': (0.45, -0.12), 'velocity': (0.0, 0.12),
                                          'goal': (0.6, 0.1)})
    perception.reset()
    errors = []
    for step in range(12):
        obs, _, _, _, info = world.step(np.zeros(2, np.float32))
        state = perception.estimate(obs)
        if step >= 4:  # the filter has converged
            truth = info['ground_truth']['object_velocity'][:2]
            errors.append(np.linalg.norm(state[4:6] - truth))
    assert np.median(errors) < 0.03


def test_velocity_is_the_difference_of_two_seen_frames(world, perception):
    """A ball seen twice in a row: velocity = difference of the measured centres.

    No filter lag: the model state stays Markov through the hand's strikes.
    """
    obs, _ = world.reset(seed=6, options={'object': (0.45, -0.1), 'velocity': (0.05, 0.1),
                                          'goal': (0.6, 0.1)})
    perception.reset()
    errors, previous = [], None
    for _ in range(8):
        obs, _, _, _, info = world.step(np.zeros(2, np.float32))
        state = perception.estimate(obs)
        measured = perception.locate_ball(obs['rgb'], obs['depth'])
        assert measured is not None
        np.testing.assert_allclose(state[2:4], measured, atol=1e-6)
        if previous is not None:
            np.testing.assert_allclose(state[4:6], (measured - previous) / world.dt, atol=1e-4)
            errors.append(np.linalg.norm(state[4:6]
                                         - info['ground_truth']['object_velocity'][:2]))
        previous = measured
    assert np.median(errors) < 0.02


def test_hidden_ball_is_dead_reckoned(world, perception):
    obs, _ = world.reset(seed=4, options={'object': (0.45, -0.1), 'velocity': (0.0, 0.1),
                                          'goal': (0.6, 0.1)})
    perception.reset()
    for _ in range(6):
        state = perception.estimate(obs)
        obs, _, _, _, info = world.step(np.zeros(2, np.float32))
    assert perception.visible and state[5] > 0.05
    hidden = dict(obs, rgb=np.full_like(obs['rgb'], 128))  # no blue pixel anywhere
    again = perception.estimate(hidden)
    assert not perception.visible
    assert again[3] > state[3] + 0.003  # moved on with its velocity
    truth = info['ground_truth']['object_position'][:2]
    assert np.linalg.norm(again[2:4] - truth) < 0.01
    perception.reset()
    assert np.all(np.isnan(perception.estimate(hidden)[2:6]))  # never seen this episode


def test_bad_observations_are_refused(world, perception):
    obs, _ = world.reset(seed=5)
    with pytest.raises(ValueError, match='proprio'):
        perception.estimate(dict(obs, proprio=obs['proprio'][:7]))
    with pytest.raises(ValueError, match='64 x 64'):
        perception.estimate(dict(obs, rgb=np.zeros((32, 32, 3), np.uint8),
                                 depth=np.zeros((32, 32), np.float32)))
