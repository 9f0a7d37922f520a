"""`hlai eval --task --ray`: one Ray task per (controller, seed), the same outcomes as locally.

A local `hlai eval --task` runs every controller over seeds ``seed .. seed + n - 1`` in one
world (`hlai_ros.tasks.compare.compare`). Every controller starts each episode afresh from its
seed (the random stream, the planner's generator and the oracle's are re-seeded by
``reset(world, seed)``, the world by ``reset(seed=...)``), so an episode's outcome depends on
its seed only and the episodes can run anywhere: each Ray task builds the controller once per
worker process, runs `hlai_ros.evaluation.rollouts.run_episode` and returns its
`EpisodeRecord`. The driver puts the records back in seed order and summarises them as
`compare` does.

The learned stack is read from ``--model`` (default models/<task>) on the worker's node: on a
multi-machine cluster that folder must be on every node (the same path, or a shared mount).
"""
from __future__ import annotations

from typing import Callable

from hlai_ros.scale import connect, require_ray
from hlai_ros.tasks.compare import CompareConfig, make_controller, summarise_outcomes

MAX_RETRIES = 3
"""Times Ray re-runs an episode whose worker died."""

_CACHE: dict[tuple, tuple] = {}
"""This worker process's (world, controller) per (config, controller name)."""


def evaluate_episode(config: CompareConfig, name: str, seed: int):
    """Run controller `name` of `config` for the episode of `seed` (one Ray task)."""
    from hlai_ros.config import world_config
    from hlai_ros.evaluation.rollouts import run_episode
    from hlai_ros.sim import make
    key = (config, name)
    if key not in _CACHE:
        if name in ('learned', 'oracle'):
            import torch
            torch.set_num_threads(1)  # one task per CPU
        _CACHE[key] = (make(config.task, config=world_config(config.task)),
                       make_controller(name, config))
    env, controller = _CACHE[key]
    return run_episode(env, controller, seed)


def compare_ray(config: CompareConfig, address: str | None = None, progress: bool = True,
                log: Callable[[str], None] | None = print, max_retries: int = MAX_RETRIES):
    """`hlai_ros.tasks.compare.compare` on a Ray cluster; returns (summaries, outcomes).

    All (controller, seed) episodes are submitted at once; the cluster runs as many at a time
    as it has CPUs. A progress bar counts finished episodes over all controllers.
    """
    ray = require_ray()
    if config.episodes < 1:
        raise ValueError(f'episodes must be at least 1, got {config.episodes}')
    connect(address)
    remote = ray.remote(num_cpus=1, max_retries=max_retries)(evaluate_episode)
    plan = {}
    for name in config.controllers:
        n = config.episodes
        if name == 'oracle' and config.oracle_episodes is not None:
            n = min(n, config.oracle_episodes)
        plan[name] = [remote.remote(config, name, s)
                      for s in range(config.seed, config.seed + n)]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=sum(len(refs) for refs in plan.values()),
                   desc=f'{config.task} (ray)', unit='episode')
    pending = [ref for refs in plan.values() for ref in refs]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            if bar is not None:
                bar.update(len(ready))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    summaries, outcomes = {}, {}
    for name, refs in plan.items():
        result = ray.get(refs)
        outcomes[name] = result
        summaries[name] = s = summarise_outcomes(name, result)
        if log is not None:
            n = len(result)
            falls = sum(o.failure_reason is not None for o in result)
            log(f'{config.task} {name}: success {s.success_rate:.0%}, failure '
                f'{falls / n:.0%}, mean return {s.mean_return:.2f} over {n} episodes, '
                f'{s.mean_step_ms:.1f} ms/step (ray)')
    return summaries, outcomes
