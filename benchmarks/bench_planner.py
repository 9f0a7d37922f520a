"""Planner benchmark: latency at default settings, arithmetic rate, and pytorch-mppi side by side.

    .venv/bin/python benchmarks/bench_planner.py [--threads 2] [--steps 40] [--members K]
        [--gradient-steps G]

The system is a planar "robot drags an object on a spring": state (robot x, y, vx, vy,
object x, y, vx, vy), 8 entries; action (robot ax, ay) in [-1, 1]^2 m/s^2; dt 0.1 s. A world
model (hlai_ros.world_model.WorldModel, ensemble MLP) is trained on random-action episodes of
it; then, on that same learned model and the same cost (object-to-goal distance + effort), the
script measures in one run:
  1. plan latency of `Planner` at its default PlannerConfig, in closed loop;
  2. the FLOP/s of the planning (counted by torch's FlopCounterMode) as a fraction of this
     machine's torch.mm rate, measured in the same run with the same threads;
  3. closed-loop cost achieved and time per step, hlai Planner vs pytorch_mppi.MPPI at equal
     samples x horizon (pytorch-mppi gets as many sequences per step as the planner samples
     over all its iterations), as ratios.
Figures are printed; nothing is asserted.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import os
import statistics
import time

import torch

DT, K_SPRING, DAMP = 0.1, 4.0, 1.5
GOAL = torch.tensor([0.6, -0.4])


def true_step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The real system: s (..., 8), a (..., 2) -> (..., 8)."""
    rp, rv, op, ov = s[..., 0:2], s[..., 2:4], s[..., 4:6], s[..., 6:8]
    pull = K_SPRING * (rp - op) - DAMP * ov
    rv2 = rv + DT * (a.clamp(-1, 1) - 0.5 * rv)
    ov2 = ov + DT * pull
    return torch.cat([rp + DT * rv2, rv2, op + DT * ov2, ov2], -1)


def collect(episodes: int, steps: int, gen: torch.Generator):
    """Random-action episodes: list of (states (T+1, 8), actions (T, 2))."""
    data = []
    for _ in range(episodes):
        s = torch.cat([torch.rand(2, generator=gen) - 0.5, torch.zeros(2),
                       torch.rand(2, generator=gen) - 0.5, torch.zeros(2)])
        acts = (torch.rand(steps, 2, generator=gen) * 2 - 1)
        acts = torch.cumsum(acts, 0).clamp(-1, 1)  # smoother, reaches further than white noise
        states = [s]
        for a in acts:
            s = true_step(s, a)
            states.append(s)
        data.append((torch.stack(states).numpy(), acts.numpy()))
    return data


def mm_rate(n: int = 512, reps: int = 20) -> float:
    """This machine's torch.mm rate, FLOP/s, for n x n float32 matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def closed_loop(act, starts, steps, cost_step, cpu_times=None):
    """Run act(state) -> action on the true system from each start; (mean cost, ms/step).

    cpu_times, when a list, receives the process CPU seconds of each call: unlike wall time it
    does not count waiting for a core, so on a loaded machine it estimates a quiet one's time.
    """
    totals, times = [], []
    for s in starts:
        total = 0.0
        for _ in range(steps):
            c, t = time.process_time(), time.perf_counter()
            a = act(s)
            times.append(time.perf_counter() - t)
            if cpu_times is not None:
                cpu_times.append(time.process_time() - c)
            s = true_step(s, a)
            total += float(cost_step(s, a))
        totals.append(total)
    return statistics.mean(totals), 1e3 * statistics.mean(times), times


def main() -> None:
    """Train, then measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default 2)')
    parser.add_argument('--steps', type=int, default=40, help='closed-loop steps per episode')
    parser.add_argument('--starts', type=int, default=4, help='closed-loop episodes (1-4)')
    parser.add_argument('--train-epochs', type=int, default=20,
                        help='world-model epochs (a fixed count, so that every run plans with '
                             'the same seeded model whatever the load)')
    parser.add_argument('--hidden', type=int, nargs='+', default=[64, 64])
    parser.add_argument('--ensemble', type=int, default=5)
    parser.add_argument('--members', type=int, default=None,
                        help="the planner's ensemble members per plan (PlannerConfig.members; "
                             'default: its default, 0 = all); pytorch-mppi always averages all')
    parser.add_argument('--gradient-steps', type=int, default=None,
                        help="the planner's gradient refinement steps (default: its default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    from hlai_ros.actor import Planner, PlannerConfig
    from hlai_ros.cost import Cost, CostContext, EffortCost, GoalCost
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model

    print(f'threads {torch.get_num_threads()}, cpus {os.cpu_count()}, '
          f'load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}')
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    model, hist = train_world_model(
        collect(120, 40, gen),
        WorldModelConfig(state_dim=8, action_dim=2, ensemble_size=args.ensemble,
                         hidden_sizes=tuple(args.hidden), time_budget_s=3600.0,
                         max_epochs=args.train_epochs, patience=1000, seed=0), progress=False)
    model.eval()
    print(f'world model: E={args.ensemble}, hidden {args.hidden}, latent '
          f'{model.latent_dim}; trained {time.perf_counter() - t:.1f} s on '
          f'{hist.train_transitions} transitions')

    ctx = CostContext(goal=GOAL)
    cost = Cost([('goal', GoalCost(position_indices=(4, 5)), 1.0, 1.0),
                 ('effort', EffortCost(), 0.05, 1.0)])

    def cost_step(s, a):
        return (s[4:6] - GOAL).norm() + 0.05 * a.pow(2).sum()

    starts = [torch.tensor([x, y, 0, 0, x, y, 0, 0], dtype=torch.float32)
              for x, y in [(-0.4, 0.3), (-0.2, -0.4), (0.3, 0.3), (-0.5, -0.1)][:args.starts]]
    low, high = -torch.ones(2), torch.ones(2)

    config = PlannerConfig()
    if args.members is not None:
        config = replace(config, members=args.members)
    if args.gradient_steps is not None:
        config = replace(config, gradient_steps=args.gradient_steps)
    planner = Planner(model, cost, low, high, config)
    samples, iters = config.sampling.samples, config.sampling.iterations
    print(f'planner: {config.optimizer}, {samples} samples x {iters} iterations, '
          f'horizon {config.horizon}, {config.latents} latent(s), '
          f'{config.gradient_steps} gradient steps, members {config.members or "all"}')

    from pytorch_mppi import MPPI
    e = model.ensemble_size
    z_fixed = model.sample_z(1, generator=torch.Generator().manual_seed(0))

    def dynamics(state, action):
        k = state.shape[0]
        with torch.no_grad():
            nxt = model.next(state.unsqueeze(0).expand(e, k, 8),
                             action.unsqueeze(0).expand(e, k, 2), z_fixed.expand(e, k, -1))
        return nxt.mean(0)

    def running_cost(state, action):
        states = torch.stack([state, state], 1).unsqueeze(0)
        return cost(states, action.unsqueeze(1), ctx)

    controllers = {'hlai Planner': (lambda x: planner.plan(x, ctx).action, planner.reset)}
    for lam in (0.01, 0.1):
        ctrl = MPPI(dynamics, running_cost, 8,
                    noise_sigma=torch.eye(2) * (config.init_std * 1.0) ** 2,
                    num_samples=samples * iters, horizon=config.horizon, lambda_=lam,
                    u_min=low, u_max=high)
        controllers[f'pytorch-mppi l={lam}'] = (ctrl.command, ctrl.reset)
    for act, reset in controllers.values():  # warm up both before timing
        reset()
        act(starts[0])
    costs = {k: [] for k in controllers}
    times = {k: [] for k in controllers}
    cpu = {k: [] for k in controllers}
    for s in starts:  # interleaved episode by episode, so load changes hit all alike
        for name, (act, reset) in controllers.items():
            reset()
            c, _, tt = closed_loop(act, [s], args.steps, cost_step, cpu[name])
            costs[name].append(c)
            times[name] += tt

    ms = sorted(1e3 * x for x in times['hlai Planner'])
    print(f'\nplan latency (default settings, {torch.get_num_threads()} threads): mean '
          f'{statistics.mean(ms):.1f} ms, median {ms[len(ms) // 2]:.1f} ms, '
          f'p90 {ms[int(0.9 * len(ms))]:.1f} ms over {len(ms)} control steps '
          f'(target <= 50 ms on two quiet cores)')
    cpu_ms = sorted(1e3 * x for x in cpu['hlai Planner'])
    print(f'plan CPU time (all threads together; ~ wall time on a quiet machine at 1 thread): '
          f'median {cpu_ms[len(cpu_ms) // 2]:.1f} ms, p90 {cpu_ms[int(0.9 * len(cpu_ms))]:.1f} ms')

    planner.reset()
    with FlopCounterMode(display=False) as counter:
        planner.plan(starts[0], ctx)
    flops = counter.get_total_flops()
    mm_before = mm_rate()
    planner.reset()
    reps = 10
    t = time.perf_counter()
    for _ in range(reps):
        planner.plan(starts[0], ctx)
    plan_s = (time.perf_counter() - t) / reps
    mm = (mm_before + mm_rate()) / 2
    print(f'arithmetic: {flops / 1e6:.1f} MFLOP (matmul, forward + backward) per plan in '
          f'{1e3 * plan_s:.1f} ms = {flops / plan_s / 1e9:.2f} GFLOP/s; torch.mm 512x512 '
          f'{mm / 1e9:.2f} GFLOP/s (mean of before and after); fraction {flops / plan_s / mm:.3f}')

    print(f'\nside by side at {samples * iters} sequences x horizon {config.horizon} per step '
          f'on the same learned model and cost, {len(starts)} episodes x {args.steps} steps '
          f'on the true system (lower cost is better):')
    summary = {k: (statistics.mean(costs[k]), 1e3 * statistics.median(times[k]))
               for k in controllers}
    for name, (c, m) in summary.items():
        print(f'  {name:<22} cost {c:8.2f}   median {m:7.1f} ms/step wall, '
              f'{1e3 * statistics.median(cpu[name]):7.1f} ms/step CPU')
    best = min((k for k in summary if k != 'hlai Planner'), key=lambda k: summary[k][0])
    ours = summary['hlai Planner']
    cpu_ratio = statistics.median(cpu['hlai Planner']) / statistics.median(cpu[best])
    print(f'ratio hlai / best pytorch-mppi ({best}): cost {ours[0] / summary[best][0]:.3f}, '
          f'wall time per step {ours[1] / summary[best][1]:.3f}, CPU time per step '
          f'{cpu_ratio:.3f}  (below 1: hlai better)')


if __name__ == '__main__':
    main()
