"""Where one plan's time goes, per operation, at the shipped settings (issue 14 part 2).

Runs the shipped learned stack of each task (`hlai_ros.tasks.compare.learned_stack`, as
benchmarks/bench_plan_latency.py) for a few seeded episodes with one torch thread, skips the
first step of each episode (the new scene's warm-up), and profiles the `Stack.plan` calls of
the other steps with torch.profiler (CPU). Prints the operators by self CPU time and the
plan's wall time per step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plan_profile.py --task cliff push
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from hlai_ros.sim import make
from hlai_ros.tasks.compare import CompareConfig, learned_stack
from hlai_ros.tasks.controllers import LearnedController
from hlai_ros.tasks.registry import task_argument


def run(task: str, episodes: int, steps: int, seed: int, rows: int) -> None:
    torch.set_num_threads(1)
    controller = LearnedController(learned_stack(CompareConfig(task=task)))
    env = make(task)
    walls, n = [], 0
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for k in range(episodes):
                obs, _ = env.reset(seed=seed + k)
                controller.reset(env.unwrapped, seed=seed + k)
                for t in range(steps):
                    percept = controller.task.perceive(controller.estimator, obs)
                    if t == 0:
                        action = controller.stack.plan(percept).action
                    else:
                        w = time.perf_counter()
                        with record_function('plan'):
                            action = controller.stack.plan(percept).action
                        walls.append(1e3 * (time.perf_counter() - w))
                        n += 1
                    obs, _, term, trunc, _ = env.step(action)
                    if term or trunc:
                        break
    finally:
        env.close()
    events = [e for e in prof.key_averages() if e.key != 'plan']
    plan_total = sum(e.cpu_time_total for e in prof.key_averages() if e.key == 'plan') / 1e3
    self_total = sum(e.self_cpu_time_total for e in events) / 1e3
    print(f'## {task}: {n} plans profiled, wall {np.mean(walls):.1f} ms mean / '
          f'{np.median(walls):.1f} median per plan (under the profiler); '
          f'profiled plan CPU {plan_total / n:.1f} ms per plan, '
          f'ops self total {self_total / n:.1f} ms')
    print('| operator | calls / plan | self CPU ms / plan | share of plan |')
    print('|---|---|---|---|')
    events.sort(key=lambda e: -e.self_cpu_time_total)
    for e in events[:rows]:
        ms = e.self_cpu_time_total / 1e3 / n
        print(f'| `{e.key}` | {e.count / n:.1f} | {ms:.2f} | {ms / (plan_total / n):.1%} |')
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', nargs='+', type=task_argument, default=['cliff', 'push'])
    ap.add_argument('--episodes', type=int, default=3)
    ap.add_argument('--steps', type=int, default=11)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--rows', type=int, default=20)
    args = ap.parse_args()
    for task in args.task:
        run(task, args.episodes, args.steps, args.seed, args.rows)


if __name__ == '__main__':
    main()
