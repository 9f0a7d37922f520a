"""Time one control step of the learned stack at the task's default settings: perception, plan.

Runs the shipped model of each task in the pure-Python loop (`hlai_ros.tasks.compare.
learned_stack`: the stack and profile `hlai eval` and the mpc_actor use) for a few seeded
episodes and times, per control step, the perception estimate and the plan (`Stack.plan`:
sampling, gradient refinement, critic and policy as the task's profile sets them) separately, in
wall-clock and process CPU time, with 1 and with 2 torch threads. The first step of each
episode (warm-up of a new scene's cost) is reported apart.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_plan_latency.py --task TASK [TASK ...]

`--device cuda` plans on the GPU (the wall time is taken after a CUDA synchronize).
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


def time_steps(task: str, episodes: int, steps: int, seed: int,
               device: str | None = None) -> dict[str, np.ndarray]:
    """Return wall and CPU ms of perception and plan over the steps after each first step."""
    controller = LearnedController(learned_stack(CompareConfig(task=task, device=device)))
    sync = (torch.cuda.synchronize if device is not None and str(device).startswith('cuda')
            else (lambda: None))
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
                sync()
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


class RolloutShapes:
    """Records the shapes of every rollout a plan runs (wraps the model's `_rollout_folded`)."""

    def __init__(self, model):
        self.model, self.plans, self.current = model, [], None
        self.inner = getattr(model, '_rollout_folded', None)
        if self.inner is not None:
            model._rollout_folded = self._record

    def _record(self, folded, s, actions, z):
        if self.current is not None:
            e, n, t, _ = actions.shape
            self.current.append(([tuple(w.shape) for w in folded[0][3:]], first_layer(folded), e,
                                 n, t, torch.is_grad_enabled()))
        return self.inner(folded, s, actions, z)

    def start(self):
        self.current = []

    def stop(self):
        self.plans.append(self.current)
        self.current = None


def first_layer(folded) -> tuple[int, int]:
    """Inputs (S + A) and outputs of the first layer's state-action part."""
    w_s, w_a = folded[0][0], folded[0][1]
    return w_s.shape[1] + w_a.shape[1], w_s.shape[2]


def bare_matmul_ms(rollouts, device, reps: int = 20) -> float:
    """CPU ms of the bare batched matmuls of one plan's rollouts (same shapes, same order).

    Per rollout step, one torch.bmm per layer (the first layer on (s, a), no bias, no
    activation, no cost); a rollout with autograd (the gradient step) counts twice, for the
    backward's one matmul per layer to the inputs (the weights take no gradient).
    """
    work = []
    for shapes, (first_in, hidden), e, n, t, grad in rollouts:
        mats = [(torch.randn(e, n, first_in, device=device),
                 torch.randn(e, first_in, hidden, device=device))]
        mats += [(torch.randn(e, n, i, device=device), torch.randn(e, i, o, device=device))
                 for _, i, o in shapes]
        work.append((mats, t * (2 if grad else 1)))

    def once():
        for mats, steps in work:
            for _ in range(steps):
                for x, w in mats:
                    torch.bmm(x, w)
    once()
    times = []
    for _ in range(reps):
        c = time.process_time()
        once()
        times.append(1e3 * (time.process_time() - c))
    return float(np.median(times))


def bare_ratio(task: str, seed: int, device: str | None, plans: int = 10) -> tuple[float, float]:
    """Plan CPU ms p50 and the bare matmuls' CPU ms of the same plans, in one run."""
    controller = LearnedController(learned_stack(CompareConfig(task=task, device=device)))
    recorder = RolloutShapes(controller.stack.planner.model)
    env = make(task)
    cpu, bare = [], []
    try:
        obs, info = env.reset(seed=seed)
        controller.reset(env.unwrapped, seed=seed)
        for t in range(plans + 1):
            percept = controller.task.perceive(controller.estimator, obs)
            recorder.start()
            c = time.process_time()
            action = controller.stack.plan(percept).action
            cpu.append(1e3 * (time.process_time() - c))
            recorder.stop()
            if t > 0:
                bare.append(bare_matmul_ms(recorder.plans[-1], controller.stack.planner.device))
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
    finally:
        env.close()
    return float(np.median(cpu[1:])), float(np.median(bare))


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
    parser.add_argument('--device', default=None,
                        help='torch device of the planner: cpu or cuda (default: cuda if '
                             'present, as the mpc_actor chooses)')
    parser.add_argument('--bare', action='store_true',
                        help='also time the bare batched matmuls of the same plans\' rollouts '
                             '(same shapes, same run) and print plan / bare')
    args = parser.parse_args()
    print('| task | torch threads | steps | perception p50 ms | plan p50 / p90 ms wall | '
          'plan p50 ms CPU | first plan of an episode, ms |')
    print('|---|---|---|---|---|---|---|')
    for task in args.task:
        for threads in args.threads:
            torch.set_num_threads(threads)
            r = time_steps(task, args.episodes, args.steps, args.seed, args.device)
            p50, p90 = np.percentile(r['plan_wall'], [50, 90])
            print(f"| {task} | {threads} | {r['plan_wall'].size} | "
                  f"{np.median(r['perceive_wall']):.1f} | {p50:.1f} / {p90:.1f} | "
                  f"{np.median(r['plan_cpu']):.1f} | "
                  f"{np.median(r['first_plan_wall']):.0f} |", flush=True)

    if args.bare:
        print('\n| task | plan p50 ms CPU | bare matmuls of its rollouts, ms CPU | plan / bare |')
        print('|---|---|---|---|')
        torch.set_num_threads(args.threads[0])
        for task in args.task:
            plan, bare = bare_ratio(task, args.seed, args.device)
            print(f'| {task} | {plan:.1f} | {bare:.1f} | {plan / bare:.2f} |', flush=True)


if __name__ == '__main__':
    main()
