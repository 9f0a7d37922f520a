"""`hlai collect`: run simulator processes in parallel and record episodes as rosbag2 MCAP bags.

Example::

    hlai collect --task <task> --episodes 200 --workers 2 --out data/<task> --policy mixed

Each worker writes the bag ``OUT/worker_<k>`` with the topics of the running ROS graph
(`hlai_ros.contract.episode_topics`) and episode markers; `hlai_ros.data.load_episodes(OUT)`
reads them. With ``--ray [ADDRESS]`` the episodes run as Ray tasks on a cluster and this
process writes the same bags (`hlai_ros.scale.collect`, docs/ray.md).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = 'record exploration episodes from the simulator as rosbag2 MCAP bags'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai collect`."""
    from hlai_ros.tasks import task_names
    from hlai_ros.tasks.registry import task_argument
    parser.add_argument('--task', type=task_argument, required=True,
                        help='the task whose world runs: ' + ', '.join(task_names()))
    parser.add_argument('--episodes', type=int, required=True, help='episodes to record')
    parser.add_argument('--out', type=Path, required=True,
                        help='output directory (one bag per worker inside)')
    parser.add_argument('--workers', type=int, default=1,
                        help='simulator processes in parallel (default: 1)')
    parser.add_argument('--policy', default='mixed',
                        help='exploration: random, scripted (with noise), mixed (each episode '
                             'one or the other; default) or learned (the learned stack on '
                             '--model, with noise: data where the planner goes)')
    parser.add_argument('--noise', type=float, default=None,
                        help='scripted or learned controller action noise std, action units '
                             '(default: a quarter of the action bound)')
    parser.add_argument('--model', type=Path, default=None,
                        help='model folder of --policy learned (default: models/<task>)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of episode 0; episode i uses seed + i (default: 0)')
    parser.add_argument('--width', type=int, default=None,
                        help='camera width, pixels (default: config/<task>.yaml)')
    parser.add_argument('--height', type=int, default=None,
                        help='camera height, pixels (default: config/<task>.yaml)')
    parser.add_argument('--max-steps', type=int, default=None,
                        help="cut episodes after this many steps (default: the world's limit)")
    parser.add_argument('--flush-period', type=float, default=0.5,
                        help='longest time between bag flushes, seconds (default: 0.5)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier collection in --out')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--json', action='store_true',
                        help='print the summary as one JSON object on the last line')
    parser.add_argument('--ray', nargs='?', const='', default=None, metavar='ADDRESS',
                        help='run the episodes as Ray tasks on the cluster at ADDRESS (without '
                             'it: RAY_ADDRESS, else a new Ray instance on this machine); this '
                             'process writes the same bags (docs/ray.md). Needs the ray extra')


def run(args: argparse.Namespace) -> int:
    """Collect; return 0 on success, 1 if a worker failed, 130 if interrupted."""
    from hlai_ros.data.collection import CollectSettings, collect

    if args.ray is not None:
        from hlai_ros.scale import RayMissingError, require_ray
        try:
            require_ray()
        except RayMissingError as exc:
            raise SystemExit(f'hlai collect: {exc}') from None
    try:
        settings = CollectSettings(
            task=args.task, episodes=args.episodes, out=args.out, workers=args.workers,
            policy=args.policy, noise=args.noise, seed=args.seed, width=args.width,
            height=args.height, max_steps=args.max_steps, flush_period_s=args.flush_period,
            overwrite=args.overwrite, model=args.model)
        if args.ray is not None:
            from hlai_ros.scale.collect import collect_ray
            summary = collect_ray(settings, args.ray or None, progress=not args.no_progress)
        else:
            summary = collect(settings, progress=not args.no_progress)
    except ValueError as exc:
        raise SystemExit(f'hlai collect: {exc}') from None
    _print_summary(summary)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != 'settings'}))
    if summary['errors']:
        return 1
    return 130 if summary['interrupted'] else 0


def _print_summary(s: dict) -> None:
    n = max(s['episodes'], 1)
    head = 'interrupted: ' if s['interrupted'] else ''
    print(f"{head}{s['episodes']}/{s['episodes_requested']} {s['task']} episodes, "
          f"{s['transitions']} transitions, {s['workers']} worker(s), {s['wall_s']:.1f} s "
          f"({s['transitions_per_s']:.1f} transitions/s, {s['episodes_per_s']:.2f} episodes/s)")
    cut = f", cut by the interruption {s['interrupted_episodes']}" if s['interrupted'] else ''
    print(f"  success {s['success']} ({s['success'] / n:.0%}), failure {s['failure']} "
          f"({s['failure'] / n:.0%}), cut by the step limit {s['truncated']}{cut}")
    for name, g in s['by_policy'].items():
        print(f"  {name}: {g['episodes']} episodes, success {g['success_rate']:.0%}, "
              f"failure {g['failure_rate']:.0%}")
    print(f"  bags: {', '.join(s['bags'])} ({s['bytes'] / 1e6:.1f} MB)")
    for error in s['errors']:
        print(f'  ERROR {error}')
