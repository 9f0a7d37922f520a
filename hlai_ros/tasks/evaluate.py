"""Closed-loop evaluation in the pure-Python loop: seeded episodes of each controller."""
from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np


@dataclass
class Outcome:
    """One episode's result."""

    seed: int
    success: bool
    failure: str | None
    episode_return: float
    steps: int
    seconds_per_step: float
    """Mean controller wall time per control step."""


def run_episode(env, controller, seed: int) -> Outcome:
    """Run one seeded episode of `env` (with its time limit) under `controller`."""
    obs, info = env.reset(seed=seed)
    controller.reset(env.unwrapped, seed=seed)
    total, steps, spent, done = 0.0, 0, 0.0, False
    while not done:
        start = time.perf_counter()
        action = controller.act(obs, info)
        spent += time.perf_counter() - start
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        done = terminated or truncated
    return Outcome(seed, bool(info['is_success']), info['failure'], total, steps,
                   spent / max(steps, 1))


def evaluate(task: str, controller, seeds, world_config=None, progress: bool = True
             ) -> list[Outcome]:
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
