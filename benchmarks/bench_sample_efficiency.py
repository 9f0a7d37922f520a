"""Sample efficiency: closed-loop success of the learned stack against training transitions.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST OMP_NUM_THREADS=1 .venv/bin/python \
        benchmarks/bench_sample_efficiency.py --task TASK --data data/TASK \
        --sizes 1000 3000 8000 --full-model models/TASK --episodes 20 --out out/efficiency

For each size N, trains a world model on the first N transitions of the recordings (whole
episodes, `hlai train --max-transitions N`, with its critic and policy unless --no-actor),
evaluates the learned stack over the same seeded episodes, prints success with its 95% interval,
and saves the curve as a plot (PNG) and a JSON file. `--full-model DIR` adds an already trained
checkpoint (e.g. the shipped one, trained on all the data) as the curve's last point, at the
transition count its JSON records, instead of training it again.

`--representation latent` does the same for the stack learned from the camera's pixels
(`hlai train --representation latent --max-transitions N`: encoder and planning stage on the
same first N transitions, `--latent-time-budget` for the encoder, `--plan-set` for the planning
stage) and evaluates its folder the way `hlai eval --model DIR` does; `both` trains and
evaluates the state models first, then the latent ones, and plots the two curves on the same
axes. The JSON is a list of points, each with its `representation`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

import torch


def evaluate(task: str, model_dir: Path, episodes: int, seed: int, actor: bool = True) -> dict:
    """Success, failure and return of the learned stack in `model_dir` over seeded episodes.

    With `actor` False the planner uses neither a critic nor a policy, even where saved.
    """
    from hlai_ros.tasks.compare import CompareConfig, compare
    summaries, _ = compare(CompareConfig(task=task, episodes=episodes, seed=seed,
                                         controllers=('learned',), model_dir=str(model_dir),
                                         use_critic=actor, use_policy=actor),
                           progress=False, log=None)
    s = summaries['learned']
    return {'success_rate': s.success_rate, 'success_ci95': list(s.success_interval),
            'failure_rate': s.failure_rate, 'mean_return': s.mean_return,
            'episodes': s.episodes, 'ms_per_step': s.mean_step_ms}


SERIES = {'state': ('state model (perceived state)', 'o', 'C0'),
          'latent': ('latent model (RGB-D pixels)', 's', 'C1')}
"""Legend label, marker and colour of each representation's curve."""


def plot(rows: list[dict], title: str, path: Path) -> None:
    """Success (with 95% intervals) against training transitions, log x axis.

    One curve per representation; where both are drawn they are nudged 2% apart along x so
    that the intervals do not hide each other (the tick labels give the true counts).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    reps = [k for k in SERIES if any(r.get('representation', 'state') == k for r in rows)]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ticks: list[int] = []
    for i, name in enumerate(reps):
        part = sorted((r for r in rows if r.get('representation', 'state') == name),
                      key=lambda r: r['transitions'])
        x = [r['transitions'] for r in part]
        y = [r['success_rate'] for r in part]
        lo = [r['success_rate'] - r['success_ci95'][0] for r in part]
        hi = [r['success_ci95'][1] - r['success_rate'] for r in part]
        nudge = 1.0 if len(reps) == 1 else (0.98, 1.02)[i % 2]
        label, marker, colour = SERIES[name]
        ax.errorbar([v * nudge for v in x], y, yerr=[lo, hi], marker=marker, capsize=3,
                    color=colour, label=label)
        ticks += [v for v in x if all(abs(v - t) > 0.08 * t for t in ticks)]
    ax.set_xscale('log')
    ax.set_xticks(ticks, [f'{v:,}' for v in ticks])
    ax.minorticks_off()
    if len(reps) > 1:
        ax.legend(fontsize=8, loc='best')
    ax.set_xlabel('world-model training transitions')
    ax.set_ylabel('success rate (95% CI)')
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    """Train, evaluate and plot."""
    from hlai_ros.cli import main as hlai
    from hlai_ros.tasks.registry import task_argument

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', type=task_argument, required=True, help='a registered task')
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--sizes', type=int, nargs='+', required=True)
    ap.add_argument('--full-model', type=Path, default=None,
                    help='an already trained checkpoint folder to add as the last point')
    ap.add_argument('--episodes', type=int, default=20)
    ap.add_argument('--seed', type=int, default=0, help='first evaluation seed')
    ap.add_argument('--time-budget', type=float, default=300.0,
                    help='world-model training budget per size, s')
    ap.add_argument('--actor-seconds', type=float, default=120.0,
                    help='critic + policy training budget per size, s')
    ap.add_argument('--no-actor', action='store_true',
                    help='world models only: train no critic or policy and plan without them')
    ap.add_argument('--representation', choices=('state', 'latent', 'both'), default='state',
                    help='which models to train and evaluate (both: state first, then latent)')
    ap.add_argument('--latent-time-budget', type=float, default=360.0,
                    help='latent: encoder training budget per size, s (hlai train '
                         '--representation latent --time-budget)')
    ap.add_argument('--plan-set', nargs='+', default=[], metavar='KEY=VALUE',
                    help='latent: planning-stage settings (hlai train --plan-set), e.g. '
                         'dynamics_budget_s=150 event_kind=pixels')
    ap.add_argument('--out', type=Path, default=Path('out/efficiency'))
    ap.add_argument('--plot', type=Path, default=None, help='PNG path (default: in --out)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--evaluate-only', action='store_true',
                    help='train nothing: evaluate the models an earlier run left in --out '
                         '(e.g. again after a planner change)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    from hlai_ros.actor.stack import folder_representation
    rows = []
    reps = ('state', 'latent') if args.representation == 'both' else (args.representation,)
    points = [(rep, n, args.out / (f'{args.task}_{n}' if rep == 'state'
                                   else f'{args.task}_latent_{n}'))
              for rep in reps for n in sorted(args.sizes)]
    if args.full_model is not None:
        points.append((folder_representation(args.full_model), 0, args.full_model))
    stem = args.task if args.representation == 'state' else f'{args.task}_{args.representation}'
    for rep, n, model_dir in points:
        t = time.perf_counter()
        if args.evaluate_only and not (model_dir / 'world_model.json').is_file():
            raise SystemExit(f'--evaluate-only: no model in {model_dir}; run without it first')
        if model_dir != args.full_model and not args.evaluate_only:
            argv = ['train', '--task', args.task, '--data', str(args.data), '--out',
                    str(model_dir), '--max-transitions', str(n), '--quiet', '--fresh',
                    '--threads', str(args.threads)]
            if rep == 'state':
                argv += ['--time-budget', str(args.time_budget)]
                argv += ['--no-actor'] if args.no_actor else ['--actor-seconds',
                                                              str(args.actor_seconds)]
            else:
                argv += ['--representation', 'latent', '--stage', 'all', '--time-budget',
                         str(args.latent_time_budget)]
                argv += ['--plan-set', *args.plan_set] if args.plan_set else []
            code = hlai(argv)
            if code:
                raise SystemExit(f'hlai {" ".join(argv)} exited with {code}')
        train_s = time.perf_counter() - t
        meta = json.loads((model_dir / 'world_model.json').read_text())['metadata']
        n = int(meta['transitions'])  # whole episodes: at least the size asked for
        # a latent folder is evaluated as `hlai eval --model DIR` does (its value and event
        # heads are in latent_cost.json; it has no critic or policy)
        actor = not args.no_actor if rep == 'state' else True
        row = {'representation': rep, 'transitions': n, 'episodes_trained': meta.get('episodes'),
               'model': str(model_dir), 'train_s': round(train_s, 1),
               **evaluate(args.task, model_dir, args.episodes, args.seed, actor)}
        rows.append(row)
        print(f'{args.task} {rep:>6} {n:>7} transitions: success {row["success_rate"]:.0%} '
              f'[{row["success_ci95"][0]:.0%}, {row["success_ci95"][1]:.0%}], failure '
              f'{row["failure_rate"]:.0%}, over {row["episodes"]} episodes '
              f'(trained in {train_s / 60:.1f} min)', flush=True)
        (args.out / f'{stem}_efficiency.json').write_text(json.dumps(rows, indent=1))
    path = args.plot or args.out / f'{stem}_efficiency.png'
    path.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, f'{args.task}: learned stack, {args.episodes} seeded episodes per point', path)
    print(f'plot: {path}')


if __name__ == '__main__':
    main()
