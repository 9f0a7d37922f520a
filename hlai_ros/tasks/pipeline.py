"""From recorded episodes to world-model episodes: perception over every frame.

The recordings (hlai_ros.data, from `hlai collect` or a real robot) hold raw sensors and
commands; training needs model states. Each episode gets a fresh estimator built from the
calibrated camera carried by the bag, so the states are what the robot itself would perceive.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hlai_ros.tasks.base import close_estimator, Task
from hlai_ros.world_model.dataset import Episode as ModelEpisode


def perceive_episode(task: Task, episode) -> list[ModelEpisode]:
    """Perceive one recorded episode; return its runs of consecutive valid commands.

    A step whose command is missing (NaN, e.g. a gap in a real recording) splits the episode,
    since the model must never be taught a transition under an unknown action.
    """
    camera = episode.camera
    if camera is None:
        raise ValueError(f'{episode.source} episode {episode.index}: no camera extrinsics '
                         '(/tf_static) in the recording; perception needs the calibrated pose')
    estimator = task.make_perception(camera)
    n = episode.num_steps
    try:
        states = np.stack([task.perceive(estimator, episode.observation(t)).model_state
                           for t in range(n + 1)])
    finally:
        close_estimator(estimator)
    valid = episode.action_valid & np.isfinite(episode.actions).all(axis=1)
    valid &= np.isfinite(states[:-1]).all(axis=1) & np.isfinite(states[1:]).all(axis=1)
    runs, start = [], None
    for t in range(n + 1):
        if t < n and valid[t]:
            start = t if start is None else start
        elif start is not None:
            runs.append(ModelEpisode(states[start:t + 1].astype(np.float32),
                                     episode.actions[start:t].astype(np.float32)))
            start = None
    return runs


def perceive_episodes(task: Task, episodes: Sequence, progress: bool = True
                      ) -> list[ModelEpisode]:
    """Perceive every recorded episode (see `perceive_episode`), with a progress bar."""
    if progress:
        from tqdm import tqdm
        episodes = tqdm(episodes, desc='perception', unit='episode')
    out: list[ModelEpisode] = []
    for ep in episodes:
        out.extend(perceive_episode(task, ep))
    if not out:
        raise ValueError('the recordings hold no transition with a valid command')
    return out
