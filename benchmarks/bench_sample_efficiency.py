"""Sample efficiency: closed-loop success of the learned stack against training transitions.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python benchmarks/bench_sample_efficiency.py \
        --task cliff --data data/cliff --sizes 1000 3000 10000 --episodes 20 --out out/efficiency

For each size, trains a world model on the first N transitions of the recordings (whole
episodes, `hlai train --max-transitions N`), evaluates the learned stack over seeded episodes,
prints success with its 95% interval, and saves the curve as a plot and a JSON file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    """Train, evaluate and plot."""
    from hlai_ros.cli import main as hlai
    from hlai_ros.tasks.compare import compare, CompareConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', choices=['push', 'cliff'], required=True)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--sizes', type=int, nargs='+', required=True)
    ap.add_argument('--episodes', type=int, default=20)
    ap.add_argument('--time-budget', type=float, default=300.0)
    ap.add_argument('--out', type=Path, default=Path('out/efficiency'))
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for n in sorted(args.sizes):
        model_dir = args.out / f'{args.task}_{n}'
        hlai(['train', '--task', args.task, '--data', str(args.data), '--out', str(model_dir),
              '--max-transitions', str(n), '--time-budget', str(args.time_budget), '--quiet'])
        summaries, _ = compare(CompareConfig(task=args.task, episodes=args.episodes,
                                             controllers=('learned',),
                                             model_dir=str(model_dir)), log=None)
        s = summaries['learned']
        rows.append({'transitions': n, 'success_rate': s.success_rate,
                     'success_ci95': list(s.success_interval), 'failure_rate': s.failure_rate,
                     'mean_return': s.mean_return, 'episodes': s.episodes})
        print(f'{args.task} {n:>7} transitions: success {s.success_rate:.0%} '
              f'[{s.success_interval[0]:.0%}, {s.success_interval[1]:.0%}], failure '
              f'{s.failure_rate:.0%}, over {s.episodes} episodes', flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f'{args.task}_efficiency.json').write_text(json.dumps(rows, indent=1))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    x = [r['transitions'] for r in rows]
    y = [r['success_rate'] for r in rows]
    lo = [r['success_rate'] - r['success_ci95'][0] for r in rows]
    hi = [r['success_ci95'][1] - r['success_rate'] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(x, y, yerr=[lo, hi], marker='o', capsize=3)
    ax.set_xscale('log')
    ax.set_xlabel('training transitions')
    ax.set_ylabel('success rate (95% CI)')
    ax.set_ylim(0, 1)
    ax.set_title(f'{args.task}: learned stack, {args.episodes} seeded episodes each')
    fig.tight_layout()
    path = args.out / f'{args.task}_efficiency.png'
    fig.savefig(path, dpi=100)
    print(f'plot: {path}')


if __name__ == '__main__':
    main()
