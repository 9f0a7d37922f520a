"""Plan time of the learned stack with and without a critic, at a given horizon (issue 14).

Like `bench_plan_latency.py` (one thread, perception not counted, each episode's first plan
left out), for planner settings and a model folder of one's choosing: each `--case` is
``NAME:KEY=VALUE,...`` with the profile's ``planner.*`` keys and ``model=FOLDER``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/critic_plan_time.py --task TASK \
        --case h16: --case h8:planner.horizon=8 \
        --case h8_critic:planner.horizon=8,planner.critic_weight=0.3,model=FOLDER
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


def plan_ms(task: str, profile, model, episodes: int, steps: int, seed: int) -> np.ndarray:
    """Wall ms of every plan after the first of each episode."""
    controller = LearnedController(learned_stack(CompareConfig(
        task=task, profile=tuple(profile), model_dir=model, use_policy=False)))
    env, out = make(task), []
    try:
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            controller.reset(env.unwrapped, seed=seed + k)
            for t in range(steps):
                percept = controller.task.perceive(controller.estimator, obs)
                start = time.perf_counter()
                action = controller.stack.plan(percept).action
                if t:
                    out.append(1e3 * (time.perf_counter() - start))
                obs, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
    finally:
        env.close()
    return np.asarray(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', type=task_argument, required=True)
    parser.add_argument('--case', action='append', required=True, metavar='NAME:K=V,...')
    parser.add_argument('--episodes', type=int, default=3)
    parser.add_argument('--steps', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for case in args.case:
        name, _, spec = case.partition(':')
        pairs = [p.split('=', 1) for p in spec.split(',') if p]
        model = next((v for k, v in pairs if k == 'model'), None)
        profile = [(k, float(v)) for k, v in pairs if k != 'model']
        ms = plan_ms(args.task, profile, model, args.episodes, args.steps, args.seed)
        print(f'{args.task} {name}: plan p50 {np.percentile(ms, 50):.1f} ms, p90 '
              f'{np.percentile(ms, 90):.1f} ms over {len(ms)} plans', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
