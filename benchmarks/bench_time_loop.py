"""The rollout's horizon loop in TorchScript against the same loop in Python (issue 14).

Rolls out the shipped world model of a task at its planner's shapes (members x samples x
horizon from config/<task>.yaml) with the loop of `hlai_ros/world_model/time_loop.py` run
both ways, and the bare batched matmuls of the same rollout (no bias, no activation), in
turns, one torch thread, CPU time per rollout. Prints the medians and checks that both loops
give the same states bit for bit.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_time_loop.py --task cliff push
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from hlai_ros.tasks.compare import CompareConfig, learned_stack
from hlai_ros.tasks.registry import task_argument
from hlai_ros.world_model import time_loop


def _inputs(model, members: int, samples: int, horizon: int):
    """The folded weights of `members` members and a filled input buffer's recipe."""
    (w_s, w_a, w_z, *hidden), biases, acts = model._folded_cached()
    w_sa = torch.cat([w_s, w_a], dim=1)[:members].contiguous()
    hidden = [w[:members].contiguous() for w in hidden]
    biases = [b[:members].contiguous() for b in biases]
    g = torch.Generator().manual_seed(0)
    z = torch.randn(members, samples, w_z.shape[1], generator=g)
    zb = torch.baddbmm(biases[0], z, w_z[:members])
    size, a = model.state_dim, model.action_dim
    x0 = torch.zeros(horizon + 1, members, samples, size + a)
    x0[:horizon, :, :, size:] = torch.rand(horizon, members, samples, a, generator=g) * 2 - 1
    return x0, zb, w_sa, hidden, biases[1:], time_loop.activation_code(acts)


def run(task: str, rounds: int) -> None:
    torch.set_num_threads(1)
    stack = learned_stack(CompareConfig(task=task))
    model, cfg = stack.planner.model, stack.planner.config
    members = cfg.members or model.ensemble_size
    samples, horizon = cfg.sampling.samples, cfg.horizon
    x0, zb, w_sa, hidden, biases, code = _inputs(model, members, samples, horizon)
    size, delta = model.state_dim, model.config.predict_delta
    scripted = time_loop._SCRIPTED_LOOP
    if scripted is None:
        raise SystemExit('TorchScript is not available here (or HLAI_TORCHSCRIPT=0)')

    def python_loop(x):
        time_loop._loop(x, zb, w_sa, hidden, biases, code, horizon, size, delta)

    def script_loop(x):
        scripted(x, zb, w_sa, hidden, biases, code, horizon, size, delta)

    def bare(x):
        for k in range(horizon):
            h = torch.bmm(x[k], w_sa)
            for w in hidden:
                h = torch.bmm(h, w)

    with torch.inference_mode():
        a, b = x0.clone(), x0.clone()
        python_loop(a)
        script_loop(b)
        same = torch.equal(a, b)
        for _ in range(5):
            script_loop(x0.clone())
        times = {'python': [], 'torchscript': [], 'bare': []}
        for _ in range(rounds):
            for name, fn in (('python', python_loop), ('torchscript', script_loop),
                             ('bare', bare)):
                x = x0.clone()
                t0 = time.process_time_ns()
                fn(x)
                times[name].append((time.process_time_ns() - t0) / 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'| {task} | {members} x {samples} x {horizon} | {med["python"]:.3f} | '
          f'{med["torchscript"]:.3f} | {med["torchscript"] / med["python"]:.3f} | '
          f'{med["bare"]:.3f} | {med["torchscript"] / med["bare"]:.2f} | {same} |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', nargs='+', type=task_argument, default=['cliff', 'push'])
    parser.add_argument('--rounds', type=int, default=400, help='rollouts per variant')
    args = parser.parse_args()
    print('| task | members x samples x horizon | Python loop ms CPU | TorchScript loop ms CPU | '
          'ratio | bare matmuls ms CPU | TorchScript / bare | same states |')
    print('|---|---|---|---|---|---|---|---|')
    for task in args.task:
        run(task, args.rounds)


if __name__ == '__main__':
    main()
