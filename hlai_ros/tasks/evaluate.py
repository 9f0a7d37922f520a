"""Closed-loop evaluation in the pure-Python loop: seeded episodes of each controller.

Each episode is `hlai_ros.evaluation.rollouts.run_episode` in the task's world, with its
time limit; its `EpisodeRecord` is the outcome.
"""
from __future__ import annotations

import numpy as np

from hlai_ros.evaluation.rollouts import EpisodeRecord, run_episode


def evaluate(task: str, controller, seeds, world_config=None, progress: bool = True
             ) -> list[EpisodeRecord]:
    """Run `controller` on `task` for every seed; return the outcomes in seed order."""
    from hlai_ros.config import world_config as default_world_config
    from hlai_ros.sim import make
    env = make(task, config=world_config or default_world_config(task))
    seeds = list(seeds)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(seeds), desc=f'{task} {controller.name}', unit='episode',
                   leave=False)
    outcomes = []
    try:
        for seed in seeds:
            outcomes.append(run_episode(env, controller, seed))
            if bar is not None:
                bar.update(1)
                ok = np.mean([o.success for o in outcomes])
                bar.set_postfix(success=f'{ok:.0%}')
    finally:
        if bar is not None:
            bar.close()
        env.close()
    return outcomes
