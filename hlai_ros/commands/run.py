"""`hlai run`: the closed loop over the ROS graph, where ROS 2 came from pip.

Starts the nodes of `hlai_ros.graph` (separate processes, or one with ``--compose``), prints
each episode's outcome as it ends, and stops everything cleanly after ``--episodes`` or on
Ctrl-C. ``--json`` prints one JSON object on the last line.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HELP = 'run the closed loop over the ROS graph (simulator, perception, controller, recorder)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai run`."""
    parser.add_argument('--task', choices=['push', 'cliff'], default='push')
    parser.add_argument('--episodes', type=int, default=3, help='episodes to run (default 3)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--controller', choices=['scripted', 'mpc'], default='scripted',
                        help="what closes the loop: 'scripted' is the privileged baseline "
                             '(reads /ground_truth/state) until the learned mpc_actor exists')
    parser.add_argument('--mode', choices=['lockstep', 'realtime'], default='lockstep',
                        help='simulator mode (default lockstep: deterministic)')
    parser.add_argument('--compose', action='store_true',
                        help='run every node in one process on one executor')
    parser.add_argument('--record', type=Path, default=None, metavar='DIR',
                        help='record the graph to a new bag under DIR')
    parser.add_argument('--gui', action='store_true', help='open the PyBullet GUI')
    parser.add_argument('--timeout', type=float, default=0.0,
                        help='give up after this many seconds (default: never)')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help='where node logs go (default: a new temporary directory)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object with the results on the last line')


def run(args: argparse.Namespace) -> int:
    """Run `hlai run`; return the exit status."""
    from hlai_ros.graph import GraphOptions, build, params_file
    from hlai_ros.runner import MONITOR, run_graph, summarize

    if args.episodes < 1:
        raise SystemExit(f'--episodes must be at least 1, got {args.episodes}')
    bag = ''
    if args.record is not None:
        bag = str(args.record / f'{args.task}_{time.strftime("%Y%m%d_%H%M%S")}')
    options = GraphOptions(task=args.task, controller=args.controller, mode=args.mode,
                           gui=args.gui, record=bag, episodes=args.episodes, seed=args.seed,
                           extra_nodes=(MONITOR.name,))
    try:
        specs = build(options)
    except ValueError as exc:
        print(f'hlai run: {exc}', file=sys.stderr)
        return 2
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix='hlai_run_'))
    print(f'hlai run: {args.task}, {args.episodes} episodes, controller {args.controller}, '
          f'{args.mode}, nodes {[s.name for s in specs]}'
          f'{" composed" if args.compose else ""}; logs in {log_dir}', file=sys.stderr)

    def report(marker: dict) -> None:
        outcome = 'success' if marker.get('success') else (marker.get('failure') or 'timeout')
        print(f'episode {marker["episode"]} (seed {marker.get("seed")}): {outcome}, '
              f'{marker.get("steps")} steps, return {marker.get("return", 0.0):.2f}',
              flush=True)

    result = run_graph(specs, params_file(args.task), args.episodes, args.compose, log_dir,
                       args.timeout, report)
    summary = summarize(result['outcomes'])
    summary.update(task=args.task, controller=args.controller, mode=args.mode,
                   compose=bool(args.compose), seed=args.seed,
                   episodes_requested=args.episodes, wall_s=result['wall_s'],
                   interrupted=result['interrupted'], error=result['error'],
                   bag=bag or None, log_dir=result['log_dir'], outcomes=result['outcomes'])
    if result['error']:
        print(f'hlai run: {result["error"]}', file=sys.stderr)
    print(f'success {summary["success_rate"]:.2f}, failure {summary["failure_rate"]:.2f} over '
          f'{summary["episodes"]} episodes', flush=True)
    if args.json:
        print(json.dumps(summary), flush=True)
    if result['interrupted']:
        return 130
    return 1 if result['error'] else 0
