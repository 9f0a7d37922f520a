"""The push-world estimator: state from joint angles and RGB-D, checked against ground truth.

Thresholds come from `benchmarks/push_perception.py` (10 scripted episodes): at 64 x 64 the
box is off by 2.6 mm median and 12 mm at the 95th percentile where it is seen (the larger errors
come from the hand hiding part of the box's top face); forward kinematics is exact. The tests
allow about three times those figures, so they catch a broken estimator, not pixel noise.
"""
import numpy as np
import pytest

from hlai_ros.perception.push import STATE_NAMES, PushPerception, PushPerceptionConfig
from hlai_ros.sim.push import PushWorld
from hlai_ros.sim.push_scripted import PushScripted


@pytest.fixture(scope='module')
def world():
    env = PushWorld()
    yield env
    env.close()


@pytest.fixture(scope='module')
def perception(world):
    estimator = PushPerception(world.nominal_camera(), PushPerceptionConfig(control_dt=world.dt))
    yield estimator
    estimator.close()


def test_state_layout(world, perception):
    obs, _ = world.reset(seed=0)
    perception.reset()
    state = perception.estimate(obs)
    assert perception.state_names == STATE_NAMES
    assert state.shape == (10,) and state.dtype == np.float32
    assert np.array_equal(state[6:8], obs['goal'])
    assert np.array_equal(state[4:6], [0.0, 0.0])  # no velocity from a single frame
    assert np.array_equal(state[8:10], [0.0, 0.0])


def test_errors_over_a_scripted_episode(world, perception):
    ee_err, box_err, seen = [], [], []
    for seed in (0, 1):
        controller = PushScripted(noise_std=0.03, seed=seed)
        obs, info = world.reset(seed=seed)
        perception.reset()
        for _ in range(40):
            state = perception.estimate(obs)
            gt = info['ground_truth']
            ee_err.append(np.linalg.norm(state[:2] - gt['ee_position'][:2]))
            seen.append(perception.visible)
            if perception.visible:
                box_err.append(np.linalg.norm(state[2:4] - gt['object_position'][:2]))
            obs, _, terminated, _, info = world.step(controller.act(obs, info))
            if terminated:
                break
    assert max(ee_err) < 1e-3
    assert np.mean(seen) > 0.6
    assert np.median(box_err) < 0.008
    assert np.percentile(box_err, 95) < 0.03


def test_velocity_from_finite_differences(world, perception):
    obs, info = world.reset(seed=3, options={'object': (0.42, 0.0, 0.0), 'goal': (0.65, 0.0)})
    perception.reset()
    perception.estimate(obs)
    for _ in range(6):  # reach the box (the end-effector starts at x = 0.32), then push it
        obs, _, _, _, info = world.step(np.array([0.15, 0.0], np.float32))
        perception.estimate(obs)
    speeds, hand_err = [], []
    for _ in range(6):
        ee_before = info['ground_truth']['ee_position'][:2]
        obs, _, _, _, info = world.step(np.array([0.1, 0.0], np.float32))
        state = perception.estimate(obs)
        hand = (info['ground_truth']['ee_position'][:2] - ee_before) / world.dt
        hand_err.append(np.abs(state[8:10] - hand).max())
        if perception.visible:
            speeds.append(state[4])
    assert max(hand_err) < 1e-3  # the hand's velocity from exact kinematics
    assert info['ground_truth']['object_velocity'][0] > 0.05  # it is being pushed
    assert len(speeds) >= 3
    assert np.median(speeds) == pytest.approx(0.1, abs=0.03)


def test_hidden_box_keeps_its_last_estimate(world, perception):
    obs, _ = world.reset(seed=4)
    perception.reset()
    first = perception.estimate(obs)
    assert perception.visible
    hidden = dict(obs, rgb=np.full_like(obs['rgb'], 128))  # no red pixel anywhere
    again = perception.estimate(hidden)
    assert not perception.visible
    assert np.array_equal(again[2:6], first[2:6])
    perception.reset()
    assert np.all(np.isnan(perception.estimate(hidden)[2:4]))  # never seen this episode


def test_hidden_box_in_contact_moves_with_the_pushing_hand(world):
    estimator = PushPerception(world.nominal_camera(), PushPerceptionConfig(control_dt=world.dt))
    try:
        box = np.array([0.5, 0.0])
        ahead = estimator.pushed_along(box, np.array([0.455, 0.0]), np.array([0.47, 0.005]))
        np.testing.assert_allclose(ahead, box + [0.015, 0.005])
        back = estimator.pushed_along(box, np.array([0.455, 0.0]), np.array([0.44, 0.0]))
        np.testing.assert_array_equal(back, box)  # the hand retreats: the box stays
        far = estimator.pushed_along(box, np.array([0.40, 0.0]), np.array([0.42, 0.0]))
        np.testing.assert_array_equal(far, box)  # out of reach: no push
        off = PushPerception.__new__(PushPerception)
        off.config = PushPerceptionConfig(contact_radius=0.0)
        np.testing.assert_array_equal(
            off.pushed_along(box, np.array([0.455, 0.0]), np.array([0.47, 0.0])), box)
    finally:
        estimator.close()


def test_box_hidden_during_a_push_is_tracked_against_ground_truth(world):
    """Scripted pushes hide the box behind the hand; the contact rule keeps it close."""
    estimator = PushPerception(world.nominal_camera(), PushPerceptionConfig(control_dt=world.dt))
    hidden_err = []
    try:
        for seed in (2, 14):
            controller = PushScripted(noise_std=0.08, seed=9000 + seed)
            obs, info = world.reset(seed=9000 + seed)
            estimator.reset()
            for _ in range(60):
                state = estimator.estimate(obs)
                if not estimator.visible and np.all(np.isfinite(state[2:4])):
                    truth = info['ground_truth']['object_position'][:2]
                    hidden_err.append(np.linalg.norm(state[2:4] - truth))
                obs, _, terminated, _, info = world.step(controller.act(obs, info))
                if terminated:
                    break
    finally:
        estimator.close()
    assert len(hidden_err) >= 3
    assert np.median(hidden_err) < 0.03


def test_bad_observations_are_refused(world, perception):
    obs, _ = world.reset(seed=5)
    with pytest.raises(ValueError, match='proprio'):
        perception.estimate(dict(obs, proprio=obs['proprio'][:7]))
    with pytest.raises(ValueError, match='64 x 64'):
        perception.estimate(dict(obs, rgb=np.zeros((32, 32, 3), np.uint8),
                                 depth=np.zeros((32, 32), np.float32)))
