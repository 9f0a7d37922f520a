"""The push world: gymnasium contract, determinism, outcomes, and its scripted controller."""
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

from hlai_ros.sim.push import PushConfig, PushWorld
from hlai_ros.sim.push_scripted import PushScripted
import hlai_ros.tasks  # noqa: F401 - registers the tasks and their worlds


@pytest.fixture
def world():
    env = PushWorld()
    yield env
    env.close()


@pytest.fixture
def fast_world():
    env = PushWorld(render_camera=False)
    yield env
    env.close()


def test_registered_env_passes_the_env_checker():
    env = gym.make('hlai/Push-v0')
    try:
        assert isinstance(env.unwrapped, PushWorld)
        assert env.spec.max_episode_steps == 200
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_render_gives_a_third_person_picture():
    env = PushWorld(render_mode='rgb_array')
    try:
        env.reset(seed=0)
        picture = env.render()
        assert picture.shape == (240, 320, 3) and picture.dtype == np.uint8
        assert picture.std() > 10  # a scene, not a blank image
    finally:
        env.close()


def _rollout(seed: int, steps: int = 15):
    env = PushWorld()
    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        frames, rewards = [obs], []
        for _ in range(steps):
            obs, reward, terminated, _, _ = env.step(env.action_space.sample())
            frames.append(obs)
            rewards.append(reward)
            if terminated:
                break
        return frames, rewards
    finally:
        env.close()


def test_same_seed_gives_identical_episodes_including_images():
    a, ra = _rollout(7)
    b, rb = _rollout(7)
    assert ra == rb
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for key in ('rgb', 'depth', 'proprio', 'goal'):
            assert np.array_equal(x[key], y[key]), key
    c, _ = _rollout(8, steps=0)
    assert not np.array_equal(a[0]['rgb'], c[0]['rgb'])


def test_observation_layout(world):
    obs, info = world.reset(seed=1)
    assert obs['rgb'].shape == (64, 64, 3) and obs['depth'].shape == (64, 64)
    assert obs['proprio'].shape == (len(world.proprio_names),) == (14,)
    assert world.proprio_names[0] == 'panda_joint1.position'
    assert world.proprio_names[7] == 'panda_joint1.velocity'
    gt = info['ground_truth']
    for key in ('object_position', 'object_yaw', 'object_velocity', 'ee_position', 'goal',
                'object_mass', 'object_friction', 'object_size'):
        assert key in gt, key
    assert np.allclose(gt['goal'], obs['goal'])
    # the box is red in the camera image: the colour perception segments
    rgb = obs['rgb'].astype(int)
    assert ((rgb[..., 0] > 120) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).sum() >= 4


def test_bad_actions_are_refused_and_large_ones_bounded(fast_world):
    fast_world.reset(seed=2)
    with pytest.raises(ValueError, match='shape'):
        fast_world.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match='finite'):
        fast_world.step(np.array([np.nan, 0.0], np.float32))
    vmax = float(fast_world.action_space.high[0])
    assert vmax == pytest.approx(0.2)
    before = fast_world.ee_position()[:2]
    for _ in range(3):
        fast_world.step(np.array([5.0, 0.0], np.float32))
    moved = fast_world.ee_position()[:2] - before
    assert 0.02 < moved[0] <= 3 * vmax * fast_world.dt + 0.005
    assert abs(moved[1]) < 0.01


def test_end_effector_follows_the_commanded_velocity_at_its_height(fast_world):
    fast_world.reset(seed=3, options={'object': (0.6, 0.2, 0.0), 'goal': (0.5, 0.2)})
    start = fast_world.ee_position()
    for _ in range(10):
        fast_world.step(np.array([0.0, -0.1], np.float32))
    end = fast_world.ee_position()
    assert end[1] - start[1] == pytest.approx(-0.1, abs=0.02)  # 1 s at 0.1 m/s
    assert abs(end[2] - fast_world.ee_z) < 0.005


def test_box_pushed_off_the_edge_is_a_fall(fast_world):
    fast_world.reset(seed=4, options={'object': (0.6, 0.0, 0.0), 'goal': (0.4, -0.1)})
    fast_world.ee_position()
    vmax = fast_world.action_space.high
    terminated, info, reward, steps = False, {}, 0.0, 0
    while not terminated and steps < 60:
        _, reward, terminated, _, info = fast_world.step(np.array([vmax[0], 0.0]))
        steps += 1
    assert terminated
    assert info['failure'] == 'fell' and not info['is_success']
    assert reward < -50.0
    assert info['ground_truth']['object_position'][0] > 0.6  # it was pushed, not teleported


def test_box_at_the_goal_is_a_success(fast_world):
    fast_world.reset(seed=5, options={'object': (0.5, 0.1, 0.3), 'goal': (0.52, 0.1)})
    _, reward, terminated, _, info = fast_world.step(np.zeros(2, np.float32))
    assert terminated and info['is_success'] and info['failure'] is None
    assert reward == pytest.approx(10.0 - 0.02, abs=0.005)


def test_snapshot_restores_the_arm_controller_too(fast_world):
    fast_world.reset(seed=6)
    for _ in range(3):
        fast_world.step(np.array([0.2, 0.1], np.float32))
    snap = fast_world.snapshot()
    actions = [np.array([0.1, -0.2], np.float32)] * 4
    first = [fast_world.step(a)[0]['proprio'] for a in actions]
    fast_world.restore(snap)
    again = [fast_world.step(a)[0]['proprio'] for a in actions]
    fast_world.release(snap)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


def test_reset_options_are_checked(fast_world):
    with pytest.raises(ValueError, match='unknown reset options'):
        fast_world.reset(seed=0, options={'start': (0.0, 0.0)})
    with pytest.raises(ValueError, match='off the table'):
        fast_world.reset(seed=0, options={'goal': (2.0, 0.0)})
    with pytest.raises(ValueError, match='finite'):
        fast_world.reset(seed=0, options={'object': (0.5, np.nan, 0.0)})


def test_goals_are_feasible_and_sometimes_near_the_edge(fast_world):
    edge_distances = []
    for seed in range(20):
        _, info = fast_world.reset(seed=seed)
        gt = info['ground_truth']
        goal, box = gt['goal'], gt['object_position'][:2]
        assert fast_world.on_table(goal, margin=0.049)
        assert 0.1 <= np.linalg.norm(goal - box) <= 0.3
        edge_distances.append(fast_world.distance_to_edge(goal))
    assert min(edge_distances) < 0.08


def test_dynamics_randomisation_is_switchable():
    masses = set()
    env = PushWorld(render_camera=False)
    nominal = PushWorld(PushConfig(render_camera=False, randomize_dynamics=False))
    try:
        for seed in range(3):
            masses.add(round(env.reset(seed=seed)[1]['ground_truth']['object_mass'], 6))
            gt = nominal.reset(seed=seed)[1]['ground_truth']
            assert gt['object_mass'] == pytest.approx(0.3)
            assert gt['object_friction'] == pytest.approx(0.5)
            assert np.allclose(gt['object_size'], [0.048, 0.048, 0.04])
        assert len(masses) == 3
    finally:
        env.close()
        nominal.close()


def test_scripted_controller_succeeds(fast_world):
    controller = PushScripted()
    successes = 0
    for seed in range(5):
        obs, info = fast_world.reset(seed=100 + seed)
        controller.reset()
        for _ in range(200):
            action = controller.act(obs, info)
            assert fast_world.action_space.contains(action)
            obs, _, terminated, _, info = fast_world.step(action)
            if terminated:
                break
        successes += bool(info['is_success'])
    assert successes >= 4
