"""`hlai demo`: the learned closed loop over the ROS graph, on every shipped model.

For each task whose trained model is shipped (``models/<task>/world_model.json``) it runs
``hlai run`` headless for a few seeded episodes: the simulator, perception, the learning nodes
and the ``mpc_actor`` as separate processes over DDS. It prints each episode's outcome and the
success rate, and saves a picture of the first episode with the planned paths drawn in. A task
without a shipped model is named and skipped, with the command that would train one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

HELP = 'run the learned closed loop over the ROS graph on every shipped model, with pictures'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai demo`."""
    from hlai_ros.tasks import task_names
    from hlai_ros.tasks.registry import task_argument

    def task_or_all(name: str) -> str:
        return name if name == 'all' else task_argument(name)

    parser.add_argument('--task', type=task_or_all, default='all',
                        help='which task to run: all (default: every one with a shipped '
                             'model) or one of ' + ', '.join(task_names()))
    parser.add_argument('--episodes', type=int, default=3,
                        help='seeded episodes per world (default: 3)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--out', type=Path, default=Path('out/demo'),
                        help='folder for the pictures and node logs (default: out/demo)')
    parser.add_argument('--timeout', type=float, default=900.0,
                        help='give up on a world after this many seconds (default 900)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object with the results on the last line')


def shipped_tasks() -> list[str]:
    """The tasks whose trained model is shipped under models/."""
    from hlai_ros.actor.stack import default_model_dir
    from hlai_ros.tasks import get_task, task_names
    return [t for t in task_names()
            if (default_model_dir(get_task(t)) / 'world_model.json').is_file()]


def run(args: argparse.Namespace) -> int:
    """Run `hlai run` for each task with a shipped model; return 0 when every run finished."""
    from hlai_ros.commands import run as run_command
    from hlai_ros.tasks import task_names

    if args.episodes < 1:
        raise SystemExit('hlai demo: --episodes must be at least 1')
    wanted = list(task_names()) if args.task == 'all' else [args.task]
    shipped = shipped_tasks()
    results, status = {}, 0
    for task in wanted:
        if task not in shipped:
            print(f'{task}: no trained model is shipped (models/{task}) yet; skipped. Train '
                  f'one with `hlai collect --task {task} ...` and `hlai train --task {task} '
                  f'--data DIR`, or run `hlai run --task {task} --controller scripted`.',
                  flush=True)
            results[task] = {'skipped': 'no shipped model'}
            continue
        print(f'== {task}: the learned loop over the ROS graph, {args.episodes} episodes ==',
              flush=True)
        parser = argparse.ArgumentParser()
        run_command.add_arguments(parser)
        run_args = parser.parse_args([
            '--task', task, '--episodes', str(args.episodes), '--seed', str(args.seed),
            '--out', str(args.out), '--log-dir', str(args.out / 'logs' / task),
            '--timeout', str(args.timeout)])
        code, summary = run_command.run_closed_loop(run_args)
        status = status or code
        results[task] = summary
        if 'success_rate' in summary:
            print(f'{task}: learned success {summary["success_rate"]:.0%} over '
                  f'{summary["episodes"]} episodes through the ROS graph; picture: '
                  f'{summary.get("picture")}', flush=True)
    if not any('success_rate' in r for r in results.values()):
        print('hlai demo: no task has a shipped model', file=sys.stderr)
        status = status or 1
    if args.json:
        print(json.dumps(results))
    return status

