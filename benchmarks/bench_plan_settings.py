"""Plan time of several planner settings on the same states, interleaved in one process.

On a machine whose speed drifts (shared cores), separate runs of `bench_plan_latency.py` differ
by up to 30%; this benchmark plans from the same few states of a seeded episode of the learned
stack with each setting in turn, round after round, so the settings see the same machine and
their ratios hold. Each setting is HORIZONxSAMPLESxGRADIENT_STEPS (two sampling rounds, the
task's model and cost; the first plan of each round, from a cold start, is not timed).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_plan_settings.py --task TASK \
        --threads 2 --settings 12x128x1 16x80x1 16x80x0
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hlai_ros.sim import make
from hlai_ros.tasks.compare import CompareConfig, learned_stack
from hlai_ros.tasks.controllers import LearnedController
from hlai_ros.tasks.registry import task_argument


def parse_setting(text: str) -> tuple[int, int, int]:
    """'16x80x1' -> (horizon, samples, gradient steps)."""
    try:
        horizon, samples, steps = (int(v) for v in text.split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r}: expected HORIZONxSAMPLESxGRADIENT_STEPS, e.g. 16x80x1') from None
    if horizon < 1 or samples < 2 or steps < 0:
        raise argparse.ArgumentTypeError(f'{text!r}: need horizon >= 1, samples >= 2, steps >= 0')
    return horizon, samples, steps


def main() -> None:
    """Print the median and p90 plan time of each setting."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', type=task_argument, required=True, help='a registered task')
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    parser.add_argument('--settings', nargs='+', type=parse_setting,
                        default=[(12, 128, 1), (16, 80, 1), (16, 80, 0)],
                        help='HORIZONxSAMPLESxGRADIENT_STEPS, e.g. 16x80x1')
    parser.add_argument('--rounds', type=int, default=15, help='timed plans per setting')
    parser.add_argument('--seed', type=int, default=0, help='episode seed of the states')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    controller = LearnedController(learned_stack(CompareConfig(task=args.task)))
    env = make(args.task)
    obs, _ = env.reset(seed=args.seed)
    controller.reset(env.unwrapped, seed=args.seed)
    for _ in range(10):  # a few steps in, so the state is not the resting start
        obs, *_ = env.step(controller.act(obs))
    env.close()
    percept = controller.last_percept
    # one stack per setting: the task's profile with the setting's planner values
    stacks = {f'{h}x{n}x{g}': learned_stack(CompareConfig(task=args.task, profile=(
        ('planner.horizon', h), ('planner.samples', n), ('planner.gradient_steps', g))))
        for h, n, g in args.settings}
    times = {name: [] for name in stacks}
    for _ in range(args.rounds):
        for name, stack in stacks.items():
            stack.reset()
            stack.plan(percept)  # cold start, untimed
            start = time.perf_counter()
            stack.plan(percept)
            times[name].append(1e3 * (time.perf_counter() - start))
    print('| task | horizon x samples x gradient steps | torch threads | plans | plan median ms '
          '| plan p90 ms |\n|---|---|---|---|---|---|')
    for name, values in times.items():
        print(f'| {args.task} | {name} | {args.threads} | {len(values)} | '
              f'{np.median(values):.1f} | {np.percentile(values, 90):.1f} |')


if __name__ == '__main__':
    main()
