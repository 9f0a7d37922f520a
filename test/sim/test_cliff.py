"""The cliff world: API, determinism, driving, outcomes, scene rules, scripted baseline."""
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

from hlai_ros.sim.cliff import CliffConfig, CliffWorld
from hlai_ros.sim.cliff_scripted import CliffScripted
import hlai_ros.tasks  # noqa: F401 - registers the tasks and their worlds

FORWARD = np.array([0.5, 0.0], dtype=np.float32)
# nominal platform (randomize_scene=False): x in [-2.5, 2.5], y in [-2.05, 2.05]
FAR_GOAL = (-2.0, 1.6)


def fixed_world(**overrides) -> CliffWorld:
    """Return a world with the nominal platform and no camera, for scripted scenes."""
    return CliffWorld(CliffConfig(randomize_scene=False, render_camera=False, **overrides))


def drive(env, action, steps):
    """Apply `action` until the episode ends or `steps` pass; return the last transition."""
    for step in range(steps):
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated:
            break
    return step + 1, obs, reward, terminated, info


def test_registered_and_passes_env_checker():
    env = gym.make('hlai/Cliff-v0')
    assert isinstance(env.unwrapped, CliffWorld)
    assert env.spec.max_episode_steps == 300
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_deterministic_under_a_seed_images_included():
    def episode():
        env = CliffWorld(image_width=32, image_height=32)
        env.action_space.seed(7)
        obs, _ = env.reset(seed=11)
        out = [obs]
        rewards = []
        for _ in range(15):
            obs, reward, terminated, _, _ = env.step(env.action_space.sample())
            out.append(obs)
            rewards.append(reward)
            if terminated:
                break
        env.close()
        return out, rewards

    (obs_a, rew_a), (obs_b, rew_b) = episode(), episode()
    assert rew_a == rew_b
    for a, b in zip(obs_a, obs_b, strict=True):
        for key in ('rgb', 'depth', 'proprio', 'goal'):
            np.testing.assert_array_equal(a[key], b[key])
    assert obs_a[0]['rgb'].std() > 0  # the camera really renders


def test_driving_straight_off_the_edge_is_a_fall():
    env = fixed_world()
    env.reset(seed=0, options={'start': (0.0, 0.0, 0.0), 'goal': FAR_GOAL, 'obstacles': []})
    steps, obs, reward, terminated, info = drive(env, FORWARD, 100)
    assert terminated and info['failure'] == 'fell' and not info['is_success']
    assert reward < -50
    # it drove about 2.5 m at 0.5 m/s before going over
    assert 40 <= steps <= 70
    assert obs['proprio'][0] > 2.3
    # and it really goes over: after a second more it lies on the ground below
    for _ in range(10):
        _, _, _, _, info = env.step(np.zeros(2, dtype=np.float32))
    gt = info['ground_truth']
    assert gt['base_position'][2] < gt['platform_top'] - 0.5


def test_robot_turns_both_ways():
    env = fixed_world()
    for sign in (1.0, -1.0):
        env.reset(seed=0, options={'start': (0.0, 0.0, 0.0), 'goal': FAR_GOAL, 'obstacles': []})
        _, obs, _, terminated, _ = drive(env, np.array([0.0, sign]), 15)
        assert not terminated
        assert sign * obs['proprio'][2] > 0.8  # turned more than 0.8 rad in 1.5 s
        assert np.hypot(*obs['proprio'][:2]) < 0.3  # nearly on the spot


@pytest.mark.parametrize('shape', ['cylinder', 'box'])
def test_driving_into_an_obstacle_is_a_collision(shape):
    env = fixed_world()
    obstacle = {'x': 1.5, 'y': 0.0, 'radius': 0.25, 'height': 0.4, 'shape': shape}
    env.reset(seed=0, options={'start': (0.0, 0.0, 0.0), 'goal': FAR_GOAL,
                               'obstacles': [obstacle]})
    _, obs, reward, terminated, info = drive(env, FORWARD, 60)
    assert terminated and info['failure'] == 'collision'
    assert reward < -50
    assert obs['proprio'][0] < 1.5 - 0.25  # stopped at the obstacle, not through it


def test_reaching_the_goal_is_a_success():
    env = fixed_world()
    env.reset(seed=0, options={'start': (0.0, 0.0, 0.0), 'goal': (1.5, 0.0), 'obstacles': []})
    _, obs, reward, terminated, info = drive(env, FORWARD, 60)
    assert terminated and info['is_success'] and info['failure'] is None
    assert info['ground_truth']['distance_to_goal'] <= 0.25
    assert reward > 5  # the success bonus


def test_odometry_is_the_base_state_without_noise():
    env = CliffWorld(render_camera=False)
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        obs, _, _, _, info = env.step(np.array([0.4, 0.3]))
    gt = info['ground_truth']
    np.testing.assert_allclose(obs['proprio'][:3], [*gt['base_position'][:2], gt['base_rpy'][2]],
                               atol=1e-5)
    assert obs['proprio'][3] > 0.2 and obs['proprio'][4] > 0.1
    assert env.proprio_names == ('x', 'y', 'yaw', 'v', 'omega')


def test_goals_tempt_the_robot_to_an_edge_and_obstacles_leave_room():
    env = CliffWorld(render_camera=False)
    frictions = set()
    for seed in range(20):
        _, info = env.reset(seed=seed)
        gt = info['ground_truth']
        goal, start = gt['goal'], gt['base_position'][:2]
        assert 0.3 - 1e-9 <= env.distance_to_edge(goal) <= 0.6 + 1e-9
        assert np.linalg.norm(goal - start) >= 1.5
        assert 2 <= len(gt['obstacles']) <= 4
        for c, r in zip(gt['obstacle_positions'], gt['obstacle_radii']):
            assert np.linalg.norm(c - start) >= r + 1.0 - 1e-9
            assert np.linalg.norm(c - goal) >= r + 0.75 - 1e-9
            assert env.distance_to_edge(c) >= r
        frictions.add(round(gt['wheel_friction'], 6))
    assert len(frictions) == 20  # dynamics randomised every episode


def test_bad_reset_options_are_rejected():
    env = fixed_world()
    with pytest.raises(ValueError, match='off the platform'):
        env.reset(seed=0, options={'goal': (9.0, 0.0)})
    with pytest.raises(ValueError, match='unknown reset options'):
        env.reset(seed=0, options={'gaol': (1.0, 0.0)})


def test_scripted_controller_reaches_the_goal():
    env = CliffWorld(render_camera=False)
    ctrl = CliffScripted()
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        ctrl.reset()
        for _ in range(300):
            obs, _, terminated, _, info = env.step(ctrl.act(obs, info))
            if terminated:
                break
        assert info['is_success'], f'seed {seed}: {info["failure"]}'


def test_snapshot_restore_replays_exactly():
    env = CliffWorld(render_camera=False)
    env.reset(seed=4)
    for _ in range(5):
        env.step(np.array([0.3, 0.2]))
    snap = env.snapshot()

    def replay():
        out = []
        for i in range(15):
            obs, reward, _, _, _ = env.step(np.array([0.5, 0.8 if i % 3 == 0 else -0.5]))
            out.append(np.r_[obs['proprio'], reward])
        return np.array(out)

    first = replay()
    env.restore(snap)
    np.testing.assert_array_equal(replay(), first)
    env.release(snap)


def test_odometry_noise_is_seeded_and_render_gives_a_picture():
    def first_proprio(seed):
        env = CliffWorld(CliffConfig(render_camera=False, odometry_noise=0.01))
        obs, info = env.reset(seed=seed)
        gt = info['ground_truth']
        return obs['proprio'], np.r_[gt['base_position'][:2], gt['base_rpy'][2]]

    a, truth = first_proprio(5)
    b, _ = first_proprio(5)
    np.testing.assert_array_equal(a, b)
    assert 0 < np.abs(a[:3] - truth).max() < 0.05
    env = CliffWorld(render_mode='rgb_array', render_camera=False)
    env.reset(seed=0)
    picture = env.render()
    assert picture.shape == (240, 320, 3) and picture.std() > 10


def test_scripted_registry_gives_a_noisy_bounded_controller():
    from hlai_ros.sim.scripted import make_scripted
    env = CliffWorld(render_camera=False)
    obs, info = env.reset(seed=0)
    clean = make_scripted('cliff').act(obs, info)
    noisy = make_scripted('cliff', noise_std=0.2, seed=1)
    assert isinstance(noisy, CliffScripted)
    actions = np.array([noisy.act(obs, info) for _ in range(50)])
    assert env.action_space.contains(clean)
    assert np.all(actions >= env.action_space.low) and np.all(actions <= env.action_space.high)
    assert 0.05 < np.abs(actions - clean).mean() < 0.3
