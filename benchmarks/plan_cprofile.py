"""Plan time per hlai_ros function (cumulative, cProfile), shipped settings, one torch thread.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plan_cprofile.py --task cliff push
"""
import argparse
import cProfile
import pstats
import time

import numpy as np
import torch

from hlai_ros.sim import make
from hlai_ros.tasks.compare import CompareConfig, learned_stack
from hlai_ros.tasks.controllers import LearnedController


def run(task, episodes=3, steps=21, rows=18):
    torch.set_num_threads(1)
    controller = LearnedController(learned_stack(CompareConfig(task=task)))
    env = make(task)
    prof, n, walls = cProfile.Profile(), 0, []
    for k in range(episodes):
        obs, _ = env.reset(seed=k)
        controller.reset(env.unwrapped, seed=k)
        for t in range(steps):
            percept = controller.task.perceive(controller.estimator, obs)
            if t:
                w = time.perf_counter()
                prof.enable()
            action = controller.stack.plan(percept).action
            if t:
                prof.disable()
                walls.append(1e3 * (time.perf_counter() - w))
                n += 1
            obs, _, term, trunc, _ = env.step(action)
            if term or trunc:
                break
    env.close()
    st = pstats.Stats(prof)
    total = sum(walls) / n
    print(f'## {task}: {n} plans, {total:.1f} ms per plan under cProfile '
          f'(median {np.median(walls):.1f})')
    print('| function (hlai_ros) | calls / plan | cumulative ms / plan | share |')
    print('|---|---|---|---|')
    items = [(k, v) for k, v in st.stats.items() if 'hlai_ros' in k[0]]
    items.sort(key=lambda kv: -kv[1][3])
    for (path, line, name), (cc, nc, tt, ct, _) in items[:rows]:
        mod = path.split('hlai_ros/')[-1]
        print(f'| `{mod}:{line} {name}` | {nc / n:.1f} | {1e3 * ct / n:.2f} | '
              f'{1e3 * ct / n / total:.0%} |')
    print()


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--task', nargs='+', default=['cliff', 'push'])
    for task in ap.parse_args().task:
        run(task)
