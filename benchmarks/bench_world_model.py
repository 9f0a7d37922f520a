"""World-model figures for BENCHMARKS.md: training time from scratch and k-step error.

    .venv/bin/python benchmarks/bench_world_model.py [--threads 2] [--steps 5000] \
        [--scale-transitions 50000] [--scale-epochs 3] [--max-horizon 30] [--plot out/wm.png] \
        [--skip-pendulum]

1. The machine's own torch.mm rate (fp32, 1024 x 1024, same threads), to put times in context
   on a shared machine.
2. Pendulum-v1 (generic gymnasium use): a uniform-random policy collects --steps transitions,
   the default WorldModelConfig (with a reward head) trains from scratch to early stopping (or
   its time budget); held-out random episodes give the k-step error against horizon for the
   model (z = 0, the prior mean, and z drawn from the prior) beside the constant-velocity
   (last change repeated) and zero-motion baselines. The plot is saved as PNG.
3. Scale: --scale-transitions random Pendulum transitions with the default settings, for
   --scale-epochs epochs: seconds per epoch and per 10k transitions, and the projected time to
   the default budget.
The last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
import time


def mm_gflops(seconds: float = 2.0, n: int = 1024) -> float:
    """fp32 torch.mm rate of this machine with the current thread count, GFLOP/s."""
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - t0) / 1e9


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--steps', type=int, default=5000, help='Pendulum training steps')
    parser.add_argument('--test-steps', type=int, default=1000, help='held-out Pendulum steps')
    parser.add_argument('--max-horizon', type=int, default=30, help='longest k for k-step error')
    parser.add_argument('--scale-transitions', type=int, default=50000,
                        help='transitions for the timing at scale (0 = skip)')
    parser.add_argument('--scale-epochs', type=int, default=3, help='epochs timed at scale')
    parser.add_argument('--plot', type=Path, default=Path('out/world_model_pendulum_horizon.png'))
    parser.add_argument('--skip-pendulum', action='store_true',
                        help='only the timing at scale (part 3)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    import torch

    from hlai_ros.world_model.config import WorldModelConfig

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rate = mm_gflops()
    print(f'threads {args.threads}, device cpu, load average {load:.1f}, '
          f'torch.mm {rate:.1f} GFLOP/s', flush=True)
    figures: dict = {'threads': args.threads, 'load_average': load, 'mm_gflops': rate}

    config = WorldModelConfig(state_dim=3, action_dim=1, predict_reward=True, seed=args.seed)
    if not args.skip_pendulum:
        pendulum(args, config, figures)
    if args.scale_transitions:
        scale_timing(args, config, figures)
    print(json.dumps(figures))


def pendulum(args: argparse.Namespace, config, figures: dict) -> None:
    """Train on random Pendulum-v1 data; print time and k-step errors; save the plot."""
    from hlai_ros.world_model.gym_episodes import collect_random_episodes
    from hlai_ros.world_model.horizon import horizon_errors, plot_horizon_errors, summary_table
    from hlai_ros.world_model.train import train_world_model

    train = collect_random_episodes('Pendulum-v1', args.steps, seed=args.seed)
    held_out = collect_random_episodes('Pendulum-v1', args.test_steps, seed=args.seed + 1000)
    print(f'Pendulum-v1: {args.steps} random transitions, default config '
          f'{json.dumps(config.to_dict())}', flush=True)
    t0 = time.perf_counter()
    model, history = train_world_model(train, config, progress=True, device='cpu')
    seconds = time.perf_counter() - t0
    per_epoch = sum(history.epoch_seconds) / len(history.epoch_seconds)
    print(f'trained from scratch in {seconds:.1f} s: {len(history.val_error)} epochs '
          f'({per_epoch:.2f} s/epoch), stopped by {history.stop_reason}, best epoch '
          f'{history.best_epoch}, validation {config.train_horizon}-step error '
          f'{history.val_error[history.best_epoch]:.4f} (posterior z) / '
          f'{history.val_error_prior[history.best_epoch]:.4f} (z = 0)', flush=True)
    errors = horizon_errors(model, held_out, args.max_horizon, latent='prior')
    sampled = horizon_errors(model, held_out, args.max_horizon, latent='sample', seed=args.seed)
    print('k-step error on held-out episodes (RMS / state std), z = 0:')
    print(summary_table(errors, every=5))
    print('model with z ~ prior: ' + ', '.join(
        f'k={k}: {sampled.model[k - 1]:.4f}' for k in errors.horizons
        if k == 1 or k % 10 == 0))
    png = plot_horizon_errors(errors, args.plot, f'Pendulum-v1, {args.steps} random steps')
    print(f'plot: {png}', flush=True)
    figures['pendulum'] = {
        'train_transitions': history.train_transitions, 'train_seconds': seconds,
        'epochs': len(history.val_error), 'seconds_per_epoch': per_epoch,
        'stop_reason': history.stop_reason, 'horizon_errors': errors.to_dict(),
        'horizon_errors_sampled_z': sampled.model}


def scale_timing(args: argparse.Namespace, config, figures: dict) -> None:
    """Time a few epochs with the default settings on --scale-transitions transitions."""
    from hlai_ros.world_model.gym_episodes import collect_random_episodes
    from hlai_ros.world_model.train import train_world_model

    big = collect_random_episodes('Pendulum-v1', args.scale_transitions, seed=args.seed + 1)
    scale = dataclasses.replace(config, max_epochs=args.scale_epochs,
                                patience=args.scale_epochs + 1)
    t0 = time.perf_counter()
    _, hist = train_world_model(big, scale, progress=True, device='cpu')
    total = time.perf_counter() - t0
    epoch_s = sum(hist.epoch_seconds) / len(hist.epoch_seconds)
    windows = min(hist.train_windows, scale.max_windows_per_epoch)
    per_10k = epoch_s * 1e4 / windows
    print(f'scale: {hist.train_transitions} training transitions, {windows} windows/epoch, '
          f'{epoch_s:.1f} s/epoch, {per_10k:.1f} s per 10k windows (each an '
          f'{scale.train_horizon}-step unroll of {scale.ensemble_size} members), '
          f'{total:.1f} s for {len(hist.val_error)} epochs incl. set-up; the default '
          f'time budget {config.time_budget_s:.0f} s allows about '
          f'{config.time_budget_s / epoch_s:.0f} epochs', flush=True)
    print('scale validation error per epoch: '
          + ', '.join(f'{v:.4f}' for v in hist.val_error))
    figures['scale'] = {'train_transitions': hist.train_transitions,
                        'windows_per_epoch': windows, 'seconds_per_epoch': epoch_s,
                        'seconds_per_10k_windows': per_10k, 'total_seconds': total,
                        'val_error': hist.val_error}


if __name__ == '__main__':
    main()
