"""Time one control step of the learned stack at the task's default settings: perception, plan.

Runs the shipped model of each task in the pure-Python loop (`hlai_ros.tasks.compare.
learned_stack`: the stack and profile `hlai eval` and the mpc_actor use) for a few seeded
episodes and times, per control step, the perception estimate and the plan (`Stack.plan`:
sampling, gradient refinement, critic and policy as the task's profile sets them) separately, in
wall-clock and process CPU time, with 1 and with 2 torch threads. The first step of each
episode (warm-up of a new scene's cost) is reported apart.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_plan_latency.py --task TASK [TASK ...]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hlai_ros.sim import make
from hlai_ros.tasks import task_names
from hlai_ros.tasks.compare import CompareConfig, learned_stack
from hlai_ros.tasks.controllers import LearnedController
from hlai_ros.tasks.registry import task_argument


def time_steps(task: str, episodes: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Return wall and CPU ms of perception and plan over the steps after each first step."""
    controller = LearnedController(learned_stack(CompareConfig(task=task)))
    env = make(task)
    out = {'perceive_wall': [], 'plan_wall': [], 'plan_cpu': [], 'first_plan_wall': []}
    try:
        for k in range(episodes):
            obs, info = env.reset(seed=seed + k)
            controller.reset(env.unwrapped, seed=seed + k)
            for t in range(steps):
                w0 = time.perf_counter()
                percept = controller.task.perceive(controller.estimator, obs)
                w1, c1 = time.perf_counter(), time.process_time()
                action = controller.stack.plan(percept).action
                w2, c2 = time.perf_counter(), time.process_time()
                if t == 0:
                    out['first_plan_wall'].append(1e3 * (w2 - w1))
                else:
                    out['perceive_wall'].append(1e3 * (w1 - w0))
                    out['plan_wall'].append(1e3 * (w2 - w1))
                    out['plan_cpu'].append(1e3 * (c2 - c1))
                obs, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
    finally:
        env.close()
    return {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    """Print one table row per task and thread count."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', nargs='+', type=task_argument, default=list(task_names()),
                        help='registered tasks (default: all)')
    parser.add_argument('--episodes', type=int, default=3, help='seeded episodes per task')
    parser.add_argument('--steps', type=int, default=40, help='control steps per episode')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='torch thread counts to time')
    args = parser.parse_args()
    print('| task | torch threads | steps | perception p50 ms | plan p50 / p90 ms wall | '
          'plan p50 ms CPU | first plan of an episode, ms |')
    print('|---|---|---|---|---|---|---|')
    for task in args.task:
        for threads in args.threads:
            torch.set_num_threads(threads)
            r = time_steps(task, args.episodes, args.steps, args.seed)
            p50, p90 = np.percentile(r['plan_wall'], [50, 90])
            print(f"| {task} | {threads} | {r['plan_wall'].size} | "
                  f"{np.median(r['perceive_wall']):.1f} | {p50:.1f} / {p90:.1f} | "
                  f"{np.median(r['plan_cpu']):.1f} | "
                  f"{np.median(r['first_plan_wall']):.0f} |", flush=True)


if __name__ == '__main__':
    main()
