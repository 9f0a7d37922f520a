"""Every registered world passes gymnasium's checker and repeats itself under a seed."""
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

from hlai_ros.sim import env_ids

ENV_IDS = env_ids()


def test_registry_lists_exactly_the_registered_worlds():
    assert set(ENV_IDS) == {i for i in gym.registry if i.startswith('hlai/')}


@pytest.mark.parametrize('env_id', ENV_IDS)
def test_check_env(env_id):
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize('env_id', ENV_IDS)
def test_same_seed_same_episode(env_id):
    def rollout():
        env = gym.make(env_id)
        env.action_space.seed(7)
        obs, _ = env.reset(seed=11)
        frames, rewards = [obs], []
        for _ in range(5):
            obs, reward, *_ = env.step(env.action_space.sample())
            frames.append(obs)
            rewards.append(reward)
        env.close()
        return frames, rewards

    (a, ra), (b, rb) = rollout(), rollout()
    assert ra == rb
    for fa, fb in zip(a, b):
        for key in fa:
            np.testing.assert_array_equal(fa[key], fb[key])
