"""Simulator figures for BENCHMARKS.md: physics and env throughput, baseline success rates.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python benchmarks/bench_sim.py \
        [--task TASK|all] [--episodes 100] [--workers 2]

Prints, per world: physics steps/s (stepSimulation alone, scene loaded), env steps/s with the
camera at the default resolution and at 640x480, and the scripted and uniform-random policies'
success / failure rates over seeded episodes (seeds 0..N-1, camera off, since neither policy
reads images), with 95% Wilson intervals.
"""
from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
import time


def physics_rate(task: str, seconds: float = 2.0) -> float:
    """Raw stepSimulation calls per second in the task's scene."""
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    env = make(task, config=world_config(task, render_camera=False))
    env.reset(seed=0)
    b = env.unwrapped.bullet
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(240):
            b.stepSimulation()
        n += 240
    rate = n / (time.perf_counter() - t0)
    env.close()
    return rate


def env_rate(task: str, width: int, height: int, steps: int) -> float:
    """Env steps per second (camera rendered every step) with random actions."""
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    env = make(task, config=world_config(task, image_width=width, image_height=height))
    env.reset(seed=0)
    env.action_space.seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def episode(job: tuple[str, str, int]) -> tuple[bool, str | None]:
    """Run one seeded episode with the 'scripted' or 'random' policy; return the outcome."""
    task, policy, seed = job
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    from hlai_ros.sim.scripted import make_scripted
    env = make(task, config=world_config(task, render_camera=False))
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    ctl = make_scripted(task, seed=seed) if policy == 'scripted' else None
    if ctl:
        ctl.reset()
    done = False
    while not done:
        action = ctl.act(obs, info) if ctl else env.action_space.sample()
        obs, _, term, trunc, info = env.step(action)
        done = term or trunc
    env.close()
    return bool(info['is_success']), info['failure']


def main() -> None:
    """Print the figures."""
    from hlai_ros.tasks import task_names
    from hlai_ros.tasks.registry import task_argument

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', type=lambda t: t if t == 'all' else task_argument(t),
                    default='all', help="a registered task or 'all' (default)")
    ap.add_argument('--episodes', type=int, default=100)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--skip-rates', action='store_true', help='throughput only')
    args = ap.parse_args()
    tasks = list(task_names()) if args.task == 'all' else [args.task]
    for task in tasks:
        print(f'## {task}')
        print(f'physics steps/s: {physics_rate(task):,.0f}')
        print(f'env steps/s, camera 64x64: {env_rate(task, 64, 64, 200):,.1f}')
        print(f'env steps/s, camera 640x480: {env_rate(task, 640, 480, 20):,.2f}')
        if args.skip_rates:
            continue
        from tqdm import tqdm

        from hlai_ros.evaluation.statistics import rate_interval
        for policy in ('scripted', 'random'):
            jobs = [(task, policy, s) for s in range(args.episodes)]
            with ProcessPoolExecutor(args.workers) as pool:
                outs = list(tqdm(pool.map(episode, jobs), total=len(jobs),
                                 desc=f'{task} {policy}', leave=False))
            n = len(outs)
            ok = sum(s for s, _ in outs)
            kinds = sorted({f for _, f in outs if f})
            fails = {k: sum(f == k for _, f in outs) for k in kinds}
            _, lo, hi = rate_interval(ok, n)
            fail_txt = ', '.join(f'{k} {v / n:.0%}' for k, v in fails.items()) or 'none'
            timeouts = (n - ok - sum(fails.values())) / n
            print(f'{policy}: success {ok / n:.0%} [{lo:.0%}, {hi:.0%}] over {n} seeded '
                  f'episodes; failures: {fail_txt}; time limit {timeouts:.0%}')
        print()


if __name__ == '__main__':
    main()
