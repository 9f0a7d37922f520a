"""`hlai collect` throughput for BENCHMARKS.md: transitions/s and episodes/s, 1 and 2 workers.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python benchmarks/bench_collect.py \
        --task TASK [--episodes 8] [--max-steps 50] [--workers 1 2] [--policy mixed]

Runs the real collector (spawned worker processes writing MCAP bags, camera at the task
config's default resolution) into a temporary directory for each worker count, and prints:

- end-to-end rates over the whole command's wall time (process start-up and world
  construction included, what a user waits for);
- collection-phase rates, from the first worker's first episode to the last worker's end;
- bag bytes per transition, and the time to load the bags back (first parse, then from cache).

A machine with fewer free cores than workers shows no speed-up: the figures say so honestly.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import tempfile
import time


def run_once(task: str, episodes: int, workers: int, max_steps: int, policy: str,
             root: Path) -> dict:
    """Collect into root/<workers>w and load the result; return the figures."""
    from hlai_ros.data import load_episodes, loader
    from hlai_ros.data.collection import CollectSettings, collect

    out = root / f'{workers}w'
    settings = CollectSettings(task=task, episodes=episodes, out=out, workers=workers,
                               policy=policy, seed=0, max_steps=max_steps)
    summary = collect(settings, progress=False)
    if summary['errors']:
        raise RuntimeError('\n'.join(summary['errors']))
    cache = root / f'cache{workers}'
    t0 = time.perf_counter()
    first = load_episodes(out, cache_dir=cache)
    t1 = time.perf_counter()
    load_episodes(out, cache_dir=cache)
    t2 = time.perf_counter()
    assert loader.stats.cache_hits >= workers
    n = summary['transitions']
    return {
        'workers': workers, 'episodes': summary['episodes'], 'transitions': n,
        'wall_s': summary['wall_s'], 'collect_s': summary['collect_s'],
        'tps': summary['transitions_per_s'], 'eps': summary['episodes_per_s'],
        'tps_phase': n / summary['collect_s'] if summary['collect_s'] else float('nan'),
        'eps_phase': summary['episodes'] / summary['collect_s'] if summary['collect_s']
        else float('nan'),
        'bytes_per_transition': summary['bytes'] / max(n, 1),
        'load_s': t1 - t0, 'cached_load_s': t2 - t1,
        'loaded_transitions': sum(int(e.action_valid.sum()) for e in first),
    }


def main() -> None:
    """Parse options, run each worker count, print a table."""
    from hlai_ros.tasks.registry import task_argument

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', type=task_argument, required=True, help='a registered task')
    parser.add_argument('--episodes', type=int, default=8)
    parser.add_argument('--max-steps', type=int, default=50)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--policy', default='mixed')
    args = parser.parse_args()

    from hlai_ros.config import world_config
    cfg = world_config(args.task)
    print(f'task {args.task}, {args.episodes} episodes x <= {args.max_steps} steps, policy '
          f'{args.policy}, camera {cfg.image_width}x{cfg.image_height}, '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}')
    with tempfile.TemporaryDirectory(prefix='bench_collect_') as tmp:
        rows = [run_once(args.task, args.episodes, k, args.max_steps, args.policy, Path(tmp))
                for k in args.workers]
    print(f'{"workers":>7} {"trans":>6} {"wall s":>7} {"trans/s":>8} {"ep/s":>6} '
          f'{"phase trans/s":>13} {"phase ep/s":>10} {"B/trans":>8} {"load s":>7} '
          f'{"cached s":>8}')
    for r in rows:
        print(f'{r["workers"]:>7} {r["transitions"]:>6} {r["wall_s"]:>7.1f} {r["tps"]:>8.1f} '
              f'{r["eps"]:>6.2f} {r["tps_phase"]:>13.1f} {r["eps_phase"]:>10.2f} '
              f'{r["bytes_per_transition"]:>8.0f} {r["load_s"]:>7.2f} '
              f'{r["cached_load_s"]:>8.3f}')


if __name__ == '__main__':
    main()
