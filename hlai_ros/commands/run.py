"""`hlai run`: the closed loop over the ROS graph, where ROS 2 came from pip.

Starts the nodes of `hlai_ros.graph` (separate processes, or one with ``--compose``), with the
learned ``mpc_actor`` closing the loop on the shipped model by default, prints each episode's
outcome as it ends, and stops everything cleanly after ``--episodes`` or on Ctrl-C. It saves a
top-down picture of the first episode: the true path (evaluation-only ground truth) with the
actor's plans (``/hlai/plan``) drawn in. ``--view`` adds the live view (rerun's web viewer on
http://127.0.0.1:9090). ``--json`` prints one JSON object on the last line.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import tempfile
import time

HELP = 'run the closed loop over the ROS graph (simulator, perception, learned actor, ...)'


def _checked(check, *args):
    """An argparse ``type`` from a check of `hlai_ros.graph`: the launch files' messages."""
    def convert(text: str):
        try:
            return check(*args[:1], text, *args[1:])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = args[0]
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai run`."""
    from hlai_ros.graph import CONTROLLERS, MODES, check_choice, check_integer
    from hlai_ros.tasks import task_names
    from hlai_ros.tasks.registry import task_argument
    parser.add_argument('--task', type=task_argument, required=True,
                        help='the task: ' + ', '.join(task_names()))
    parser.add_argument('--episodes', type=_checked(check_integer, 'episodes', 1), default=3,
                        help='episodes to run (default 3)')
    parser.add_argument('--seed', type=_checked(check_integer, 'seed', 0), default=0,
                        help='seed of the first episode')
    parser.add_argument('--controller', default='mpc',
                        type=_checked(check_choice, 'controller', CONTROLLERS),
                        help="what closes the loop: 'mpc' the learned actor (default), "
                             "'scripted' the privileged baseline (reads /ground_truth/state)")
    parser.add_argument('--model', type=Path, default=None, metavar='DIR',
                        help="the actor's model folder (default: the shipped models/<task>)")
    parser.add_argument('--online', type=Path, default=None, metavar='DIR',
                        help='learn online: the world_model node writes checkpoints to DIR '
                             'and the actor hot-reloads each one (default: off)')
    parser.add_argument('--set', action='append', default=[], metavar='NODE.PARAM=VALUE',
                        dest='node_parameters',
                        help='override a node parameter, e.g. cost_critic.planner.samples=64 '
                             '(the cost profile: the actor plans with it too) or '
                             'mpc_actor.deadline_s=0.2 (repeatable; VALUE is JSON, else a '
                             'string; wins over --params-file and the options)')
    parser.add_argument('--params-file', type=Path, default=None, metavar='FILE',
                        help='a ROS 2 parameter file (<node>: ros__parameters: ..., the form of '
                             'config/<task>.yaml) over the task\'s own; the options and --set win '
                             'over it; checked with the nodes\' own checks before any node '
                             'starts (the launch files\' params_file:=)')
    parser.add_argument('--out', type=Path, default=Path('out/run'),
                        help='folder for the picture of the first episode (default out/run)')
    parser.add_argument('--mode', type=_checked(check_choice, 'mode', MODES), default='lockstep',
                        help='simulator mode (default lockstep: deterministic)')
    parser.add_argument('--compose', action='store_true',
                        help='run every node in one process on one executor')
    parser.add_argument('--record', type=Path, default=None, metavar='DIR',
                        help='record the graph to a new bag under DIR')
    parser.add_argument('--gui', action='store_true', help='open the PyBullet GUI')
    parser.add_argument('--view', action='store_true',
                        help='stream the graph into rerun (camera, state, plan, imagined '
                             'rollouts, costs, gate): the web viewer on http://127.0.0.1:9090 '
                             '(--set view.web_port=...; needs the view extra, rerun-sdk)')
    parser.add_argument('--timeout', type=float, default=0.0,
                        help='give up after this many seconds (default: never)')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help='where node logs go (default: a new temporary directory)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object with the results on the last line')


def run(args: argparse.Namespace) -> int:
    """Run `hlai run`; return the exit status."""
    status, summary = run_closed_loop(args)
    if args.json and summary:
        print(json.dumps(summary), flush=True)
    return status


def run_closed_loop(args: argparse.Namespace) -> tuple[int, dict]:
    """Run the graph of `args`, printing each outcome; return (exit status, summary)."""
    from hlai_ros.graph import GraphOptions, checked_build, params_file
    from hlai_ros.runner import MONITOR, run_graph, summarize

    if args.episodes < 1:
        raise SystemExit(f'--episodes must be at least 1, got {args.episodes}')
    view = getattr(args, 'view', False)
    if view:
        import importlib.util
        if importlib.util.find_spec('rerun') is None:
            from hlai_ros.view.session import INSTALL_HINT
            print(f'hlai run: --view: {INSTALL_HINT}', file=sys.stderr)
            return 2, {}
    if args.controller == 'none':
        print("hlai run: controller 'none' leaves the simulated robot without commands; use "
              "'mpc' or 'scripted'", file=sys.stderr)
        return 2, {}
    try:
        overrides = tuple(parse_override(text) for text in args.node_parameters)
    except ValueError as exc:
        print(f'hlai run: {exc}', file=sys.stderr)
        return 2, {}
    model = ''
    if args.controller == 'mpc':
        from hlai_ros.actor.stack import default_model_dir
        from hlai_ros.tasks import get_task
        folder = args.model or default_model_dir(get_task(args.task))
        if not (folder / 'world_model.json').is_file():
            hint = ('Train one' if args.model
                    else f'None is shipped for {args.task} yet; train one')
            print(f'hlai run: no trained {args.task} model at {folder} (no world_model.json). '
                  f'{hint} with `hlai train --task {args.task} --data DIR --out MODEL_DIR` '
                  'and pass --model MODEL_DIR, or run the privileged baseline with --controller '
                  'scripted.', file=sys.stderr)
            return 2, {}
        model = str(folder.resolve()) if args.model else ''
    bag = ''
    if args.record is not None:
        bag = str(args.record / f'{args.task}_{time.strftime("%Y%m%d_%H%M%S")}')
    options = GraphOptions(task=args.task, controller=args.controller, mode=args.mode,
                           gui=args.gui, record=bag, view=view, episodes=args.episodes,
                           seed=args.seed,
                           extra_nodes=(MONITOR.name,), model=model,
                           online=str(args.online.resolve()) if args.online else '',
                           node_parameters=overrides)
    notes: list[str] = []
    try:  # every node's own checks of its parameters, before anything starts
        specs = checked_build(options, getattr(args, 'params_file', None) or '', notes)
    except ValueError as exc:
        print(f'hlai run: {exc}', file=sys.stderr)
        return 2, {}
    for note in notes:
        print(f'hlai run: {note}', file=sys.stderr)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix='hlai_run_'))
    print(f'hlai run: {args.task}, {args.episodes} episodes, controller {args.controller}, '
          f'{args.mode}, nodes {[s.name for s in specs]}'
          f'{" composed" if args.compose else ""}; logs in {log_dir}', file=sys.stderr)
    if view:
        print(f'hlai run: view: {view_address(specs)}', file=sys.stderr, flush=True)

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
                   bag=bag or None, log_dir=result['log_dir'], outcomes=result['outcomes'],
                   exit_codes=result['exit_codes'], stop_s=result['stop_s'])
    summary['picture'] = None
    if result['trace'] and result['outcomes']:
        picture = args.out / f'{args.task}_{args.controller}_episode.png'
        save_plan_picture(result['trace'], result['outcomes'][0], args.task, args.controller,
                          picture)
        summary['picture'] = str(picture)
        print(f'picture of episode {result["outcomes"][0]["episode"]}: {picture}', flush=True)
    print(f'success {summary["success_rate"]:.2f}, failure {summary["failure_rate"]:.2f} over '
          f'{summary["episodes"]} episodes', flush=True)
    if result['error']:  # last, so that it is what a user sees
        print(f'hlai run: {result["error"]}', file=sys.stderr, flush=True)
    if result['interrupted']:
        return 130, summary
    return (1 if result['error'] else 0), summary


def view_address(specs) -> str:
    """Where the view node of `specs` shows the graph (its web page, viewer or file)."""
    from hlai_ros.view.config import ViewNodeConfig
    from hlai_ros.view.session import viewer_url

    spec = next(s for s in specs if s.name == 'view')
    cfg = ViewNodeConfig(**{k: v for k, v in spec.parameters if k != 'use_sim_time'})
    if cfg.web:
        return f'open {viewer_url(cfg.grpc_port, cfg.web_port)} in a browser'
    return f'streaming to {cfg.connect or cfg.save}'


def parse_override(text: str) -> tuple[str, str, object]:
    """Parse ``NODE.PARAM=VALUE`` (VALUE as JSON, else as a string) into a triple."""
    target, sep, value = text.partition('=')
    node, dot, key = target.partition('.')
    if not sep or not dot or not node or not key:
        raise ValueError(f'--set expects NODE.PARAM=VALUE, e.g. cost_critic.planner.samples=64,'
                         f' got {text!r}')
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return node, key, parsed


def workspace_bounds(task) -> list[float] | None:
    """The fixed bounds (x0, x1, y0, y1) that one of the task's cost terms keeps to, if any.

    A perceived scene's bounds (the ground truth's ``platform_bounds``) come first; this is
    for tasks whose workspace is fixed (e.g. a table top), where the cost term carries it.
    """
    terms = task.cost_terms()
    return next((list(terms[name]['bounds']) for name in terms['terms']
                 if isinstance(terms.get(name), dict) and 'bounds' in terms[name]), None)


def save_plan_picture(trace: list[dict], outcome: dict, task: str, controller: str,
                      path: Path) -> None:
    """Save a top-down picture of a traced episode: true path, plans, goal, scene (metres)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.patches import Circle, Rectangle
    import matplotlib.pyplot as plt

    from hlai_ros.tasks import get_task

    truths = [t for t in trace if t['kind'] == 'truth']
    plans = [t for t in trace if t['kind'] == 'plan' and t['points']]
    fig, ax = plt.subplots(figsize=(6, 5.5))
    scene = next((t['scene'] for t in truths if 'scene' in t), {})
    bounds = scene.get('platform_bounds') or workspace_bounds(get_task(task))
    if bounds is not None:
        x0, x1, y0, y1 = bounds
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color='0.4', lw=1.5,
                               label='workspace'))
    for k, (centre, radius) in enumerate(zip(scene.get('obstacle_positions', []),
                                             scene.get('obstacle_radii', []))):
        ax.add_patch(Circle(centre, radius, color='tab:red', alpha=0.4,
                            label='obstacle' if k == 0 else None))
    for k, plan in enumerate(plans[::max(1, len(plans) // 12)]):
        xy = list(zip(*plan['points']))
        ax.plot(xy[0], xy[1], '-', color='tab:orange', alpha=0.7, lw=1,
                label='planned (/hlai/plan)' if k == 0 else None)
    if truths:
        xy = list(zip(*[t['position'] for t in truths]))
        ax.plot(xy[0], xy[1], '-', color='tab:blue', lw=2, label='true path')
        ax.plot(xy[0][0], xy[1][0], 'o', color='tab:blue')
        if truths[-1]['goal']:
            ax.plot(*truths[-1]['goal'], '*', color='tab:green', ms=16, label='goal')
    verdict = 'success' if outcome.get('success') else (outcome.get('failure') or 'time limit')
    ax.set_title(f'{task} ({controller}) over the ROS graph, seed {outcome.get("seed")}: '
                 f'{verdict}, {outcome.get("steps")} steps', fontsize=10)
    ax.set_xlabel('x (m)')
    ax.set_ylabel('y (m)')
    ax.set_aspect('equal')
    ax.legend(loc='best', fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
