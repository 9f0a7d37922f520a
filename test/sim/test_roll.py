"""The roll world: gymnasium contract, determinism, momentum, outcomes, scripted controller."""
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

from hlai_ros.sim.push import PushWorld
from hlai_ros.sim.roll import RollConfig, RollWorld, rolling_deceleration
from hlai_ros.sim.roll_scripted import RollScripted


@pytest.fixture
def fast_world():
    env = RollWorld(render_camera=False)
    yield env
    env.close()


def test_passes_the_env_checker_with_a_time_limit():
    env = gym.wrappers.TimeLimit(RollWorld(), 200)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset(seed=0)
        assert obs['rgb'].shape == (64, 64, 3) and obs['proprio'].shape == (14,)
        gt = info['ground_truth']
        for key in ('ee_position', 'object_position', 'object_velocity', 'goal',
                    'object_radius', 'object_mass', 'object_rolling_friction'):
            assert key in gt, key
        assert gt['object_position'].shape == gt['object_velocity'].shape == (3,)
        # the ball is blue in the camera image: the colour perception segments
        rgb = obs['rgb'].astype(int)
        assert ((rgb[..., 2] > 120) & (rgb[..., 0] < 60) & (rgb[..., 1] < 80)).sum() >= 4
    finally:
        env.close()


def test_same_embodiment_as_push():
    roll, push = RollWorld(render_camera=False), PushWorld(render_camera=False)
    try:
        assert roll.proprio_names == push.proprio_names
        assert roll.action_space == push.action_space
        assert np.array_equal(roll.table_half, push.table_half)
        assert np.allclose(roll.nominal_camera().T_world_camera,
                           push.nominal_camera().T_world_camera)
    finally:
        roll.close()
        push.close()


def _rollout(seed: int, steps: int = 12):
    env = RollWorld()
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
    assert ra == rb and len(a) == len(b)
    for x, y in zip(a, b):
        for key in ('rgb', 'depth', 'proprio', 'goal'):
            assert np.array_equal(x[key], y[key]), key
    c, _ = _rollout(8, steps=0)
    assert not np.array_equal(a[0]['rgb'], c[0]['rgb'])


def test_a_free_ball_rolls_on_and_stops_where_its_friction_says(fast_world):
    _, info = fast_world.reset(seed=1, options={'object': (0.4, -0.1), 'velocity': (0.15, 0.0),
                                                'goal': (0.4, 0.15)})
    gt = info['ground_truth']
    decel = rolling_deceleration(gt['object_rolling_friction'], gt['object_radius'])
    assert gt['object_deceleration'] == pytest.approx(decel)
    start = gt['object_position'][:2]
    hand = np.zeros(2, np.float32)
    _, _, _, _, info = fast_world.step(hand)
    assert info['ground_truth']['object_velocity'][0] > 0.13  # momentum: it keeps rolling
    for _ in range(60):
        _, _, terminated, _, info = fast_world.step(hand)
        assert not terminated
    gt = info['ground_truth']
    assert gt['object_speed'] < 1e-3
    rolled = gt['object_position'][0] - start[0]
    assert 0.1 < rolled < 0.4
    assert rolled == pytest.approx(0.15 ** 2 / (2 * decel), rel=0.05)


def test_a_tap_sends_the_ball_rolling(fast_world):
    fast_world.reset(seed=2, options={'object': (0.42, 0.0), 'velocity': (0.0, 0.0),
                                      'goal': (0.6, 0.2)})
    for _ in range(5):  # the hand starts at x = 0.32 and strikes the ball at 0.15 m/s
        fast_world.step(np.array([0.15, 0.0], np.float32))
    for _ in range(3):
        _, _, _, _, info = fast_world.step(np.array([-0.15, 0.0], np.float32))
    gt = info['ground_truth']
    assert gt['object_velocity'][0] > 0.05  # rolling on, away from the retreating hand
    assert gt['object_position'][0] - gt['ee_position'][0] > 0.07


def test_a_ball_rolling_off_the_edge_is_a_fall(fast_world):
    fast_world.reset(seed=3, options={'object': (0.6, 0.0), 'velocity': (0.15, 0.0),
                                      'goal': (0.4, -0.1)})
    terminated, info, reward, steps = False, {}, 0.0, 0
    while not terminated and steps < 40:
        _, reward, terminated, _, info = fast_world.step(np.zeros(2, np.float32))
        steps += 1
    assert terminated and info['failure'] == 'fell' and not info['is_success']
    assert reward < -50.0


def test_success_needs_the_ball_at_rest_near_the_goal(fast_world):
    fast_world.reset(seed=4, options={'object': (0.5, 0.1), 'velocity': (0.0, 0.0),
                                      'goal': (0.52, 0.1)})
    _, reward, terminated, _, info = fast_world.step(np.zeros(2, np.float32))
    assert terminated and info['is_success'] and info['failure'] is None
    assert reward == pytest.approx(10.0 - 0.02, abs=0.005)
    # rolling through the goal is not a success
    fast_world.reset(seed=4, options={'object': (0.45, 0.1), 'velocity': (0.12, 0.0),
                                      'goal': (0.47, 0.1)})
    passed = []
    for _ in range(4):
        _, _, terminated, _, info = fast_world.step(np.zeros(2, np.float32))
        passed.append(info['ground_truth']['distance_to_goal'])
        assert not terminated
    assert min(passed) < 0.03


def test_randomisation_varies_the_ball_and_is_switchable():
    env = RollWorld(render_camera=False)
    nominal = RollWorld(RollConfig(render_camera=False, randomize_dynamics=False,
                                   randomize_velocity=False))
    keys = ('object_radius', 'object_mass', 'object_rolling_friction',
            'object_spinning_friction', 'object_friction')
    try:
        seen = {k: set() for k in keys}
        speeds = []
        for seed in range(4):
            gt = env.reset(seed=seed)[1]['ground_truth']
            for k in keys:
                seen[k].add(round(gt[k], 8))
            speeds.append(gt['object_speed'])
            gt = nominal.reset(seed=seed)[1]['ground_truth']
            assert gt['object_radius'] == pytest.approx(0.0225)
            assert gt['object_speed'] == 0.0
        assert all(len(v) == 4 for v in seen.values())
        assert max(speeds) > 0.03
    finally:
        env.close()
        nominal.close()


def test_goals_are_feasible(fast_world):
    for seed in range(10):
        _, info = fast_world.reset(seed=seed)
        gt = info['ground_truth']
        assert fast_world.on_table(gt['goal'], margin=0.049)
        assert 0.1 <= np.linalg.norm(gt['goal'] - fast_world.object_start()) <= 0.3


def test_snapshot_restore_replays_exactly(fast_world):
    fast_world.reset(seed=6)
    for _ in range(3):
        fast_world.step(np.array([0.2, 0.1], np.float32))
    snap = fast_world.snapshot()
    actions = [np.array([0.1, -0.2], np.float32)] * 5

    def play():
        out = []
        for a in actions:
            obs, reward, _, _, info = fast_world.step(a)
            out.append((obs['proprio'], reward, info['ground_truth']['object_position']))
        return out

    first = play()
    fast_world.restore(snap)
    again = play()
    fast_world.release(snap)
    for (p1, r1, b1), (p2, r2, b2) in zip(first, again):
        assert np.array_equal(p1, p2) and r1 == r2 and np.array_equal(b1, b2)


def test_reset_options_are_checked(fast_world):
    with pytest.raises(ValueError, match='unknown reset options'):
        fast_world.reset(seed=0, options={'start': (0.0, 0.0)})
    with pytest.raises(ValueError, match='off the table'):
        fast_world.reset(seed=0, options={'object': (2.0, 0.0)})
    with pytest.raises(ValueError, match='finite'):
        fast_world.reset(seed=0, options={'velocity': (0.1, np.nan)})


def test_scripted_controller_succeeds(fast_world):
    controller = RollScripted()
    successes = 0
    for seed in (1, 3, 5, 8):
        obs, info = fast_world.reset(seed=seed)
        controller.reset()
        for _ in range(200):
            action = controller.act(obs, info)
            assert fast_world.action_space.contains(action)
            obs, _, terminated, _, info = fast_world.step(action)
            if terminated:
                break
        successes += bool(info['is_success'])
    assert successes >= 3


def test_the_largest_ball_passes_under_the_palm(fast_world):
    """Only the closed fingers touch the ball, never the palm.

    The palm (21 cm wide across y, its underside 5.3-5.7 cm above the table) passes over the
    largest ball, however the hand moves round it (a larger ball was pressed from above
    whenever the hand passed within ~10 cm).
    """
    from hlai_ros.sim.roll import load_scene
    largest = max(load_scene()['ball']['radius'])
    fast_world.scene['ball']['radius'] = [largest, largest]
    b = fast_world._bullet
    fast_world.reset(seed=0)  # the robot is loaded
    palm = next(j for j in range(b.getNumJoints(fast_world._robot))
                if b.getJointInfo(fast_world._robot, j)[12] == b'panda_hand')
    rng = np.random.default_rng(0)
    touched = 0
    for seed in range(12):
        fast_world.reset(seed=seed)
        ee = fast_world.ee_position()[:2]
        distance, angle = rng.uniform(0.045, 0.09), rng.uniform(-np.pi / 2, np.pi / 2)
        ball = ee + distance * np.array([np.cos(angle), np.sin(angle)])
        fast_world.reset(seed=seed, options={'object': ball, 'velocity': [0.0, 0.0]})
        turn = rng.choice([-1.0, 1.0])
        for k in range(15):  # round the ball at full speed, so that the hand tilts most
            rel = fast_world.ee_position()[:2] - fast_world.ball_position()[:2]
            tangent = turn * np.array([-rel[1], rel[0]]) / np.linalg.norm(rel)
            fast_world.step((0.2 * tangent).astype(np.float32))
            touched += len(b.getContactPoints(fast_world._robot, fast_world._object, palm))
    assert touched == 0
