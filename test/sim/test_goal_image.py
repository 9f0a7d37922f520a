"""Goal images: the scene rendered at its goal, without disturbing the episode."""
from __future__ import annotations

import numpy as np
import pytest

from hlai_ros.config import world_config
from hlai_ros.sim import make
import hlai_ros.tasks  # noqa: F401  (registers the worlds)


@pytest.mark.parametrize('task', ['cliff', 'push', 'roll'])
def test_goal_observation_shows_the_goal_and_leaves_the_episode_unchanged(task):
    env = make(task, config=world_config(task))
    try:
        world = env.unwrapped
        obs, _ = env.reset(seed=3)
        goal = world.goal_observation()
        assert goal['rgb'].shape == obs['rgb'].shape and goal['depth'].shape == obs['depth'].shape
        assert not np.array_equal(goal['rgb'], obs['rgb'])       # something moved to the goal
        if task == 'cliff':                                     # the robot stands on the goal
            np.testing.assert_allclose(goal['proprio'][:2], obs['goal'], atol=0.05)
        else:                                                   # the arm stays where it is
            np.testing.assert_allclose(goal['proprio'], obs['proprio'], atol=1e-6)
        action = np.zeros(env.action_space.shape, np.float32)
        after, *_ = env.step(action)
        env.reset(seed=3)
        again, *_ = env.step(action)
        for key in ('rgb', 'depth', 'proprio'):                 # same physics, same noise
            np.testing.assert_array_equal(after[key], again[key])
    finally:
        env.close()
