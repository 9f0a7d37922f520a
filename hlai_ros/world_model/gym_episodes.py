"""Episodes from any gymnasium environment with Box observation and action spaces."""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from hlai_ros.world_model.dataset import Episode


def collect_random_episodes(env_id: str, steps: int, seed: int = 0, progress: bool = False,
                            **make_kwargs) -> list[Episode]:
    """Run a uniform-random policy for `steps` environment steps; observations are the states.

    Returns episodes with states (T+1, obs size), actions (T, action size), rewards (T,).
    Raises ValueError for an environment whose spaces are not Box.
    """
    import gymnasium as gym

    env = gym.make(env_id, **make_kwargs)
    if not (isinstance(env.observation_space, gym.spaces.Box)
            and isinstance(env.action_space, gym.spaces.Box)):
        env.close()
        raise ValueError(f'{env_id}: expected Box observation and action spaces, got '
                         f'{env.observation_space} and {env.action_space}')
    env.action_space.seed(seed)
    episodes: list[Episode] = []
    obs, _ = env.reset(seed=seed)
    states, actions, rewards = [obs], [], []
    for _ in tqdm(range(steps), desc=f'collect {env_id}', disable=not progress):
        action = env.action_space.sample()
        obs, reward, terminated, truncated, _ = env.step(action)
        states.append(obs)
        actions.append(action)
        rewards.append(reward)
        if terminated or truncated:
            episodes.append(Episode(np.asarray(states, np.float32),
                                    np.asarray(actions, np.float32),
                                    np.asarray(rewards, np.float32)))
            obs, _ = env.reset()
            states, actions, rewards = [obs], [], []
    if actions:
        episodes.append(Episode(np.asarray(states, np.float32), np.asarray(actions, np.float32),
                                np.asarray(rewards, np.float32)))
    env.close()
    return episodes
