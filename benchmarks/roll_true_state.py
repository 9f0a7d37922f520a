"""Where the learned roll stack's limit lies: perception in training, at run time, or neither.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_true_state.py train --data DIR --out M \
        [--time-budget 900] [--difference-velocity | --seen-only]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_true_state.py eval --model M \
        [--seed 0] [--episodes 100] [--perception]

A diagnostic, never a product: ground truth is read for measuring only. ``train`` fits the roll
world model on the simulator's true states recorded in the bags (``/ground_truth/state``)
instead of perception's estimates, with the settings of the session-12 models (the ball seen
from the hand, 16-step unrolls); ``--difference-velocity`` gives the ball's velocity as
perception defines it (the difference of the last two centres over the control period) instead
of the simulator's; ``--seen-only`` trains on perception's estimates instead, but only on
frames where the ball was seen in that frame and the one before (runs split at hidden and just
reappeared frames, whose estimates are dead-reckoned), as `hlai train --task roll` now does.
``eval`` runs the learned stack on a model folder (as `hlai eval --controllers learned` does)
but feeds the planner the true state, or with ``--perception`` perception's estimate, and
prints one line per episode (with the goal's and the ball's last distance to the table edge,
and perception's ball error where the ball was seen and where it was hidden) and a JSON
summary. Crossing the two (a model trained on perceived or on true states, fed perceived or
true states) says which one limits the closed loop (BENCHMARKS.md, roll's fourth attempt).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
import time

import numpy as np
import torch


def true_episodes(task, data: Path, difference_velocity: bool) -> list:
    """World-model episodes from the bags' recorded ground truth (runs of valid commands)."""
    from hlai_ros.data import load_episodes
    from hlai_ros.world_model.dataset import Episode as ModelEpisode

    out = []
    for ep in load_episodes(data, progress=True):
        gt, n = ep.ground_truth, ep.num_steps
        if gt is None or ep.task not in (None, task.name):
            continue
        states = np.stack([
            task.true_state(gt[k], gt[k - 1] if k else None, 0.1) if gt[k] is not None
            else np.full(task.state_dim, np.nan, np.float32) for k in range(n + 1)])
        if difference_velocity:
            states[1:, 4:6] = (states[1:, 2:4] - states[:-1, 2:4]) / 0.1
        valid = ep.action_valid & np.isfinite(ep.actions).all(1)
        valid &= np.isfinite(states[:-1]).all(1) & np.isfinite(states[1:]).all(1)
        out += _runs(states, ep.actions, valid, ModelEpisode)
    return out


def seen_episodes(task, data: Path) -> list:
    """World-model episodes from perception's estimates, split where the ball was not seen.

    What `hlai train --task roll` does (`RollTask.train_measured_only`).
    """
    from hlai_ros.data import load_episodes
    from hlai_ros.tasks.pipeline import perceive_task_runs

    recorded = [ep for ep in load_episodes(data, progress=True) if ep.task in (None, task.name)]
    return [run.model_episode() for run in perceive_task_runs(task, recorded)]


def _runs(states, actions, valid, episode_type) -> list:
    """Runs of at least two consecutive valid transitions."""
    from hlai_ros.tasks.pipeline import valid_spans
    return [episode_type(states[s:e + 1].astype(np.float32), actions[s:e].astype(np.float32))
            for s, e in valid_spans(valid) if e - s >= 2]


def train(args: argparse.Namespace) -> None:
    """Fit the world model on true states and save it as `hlai train` would."""
    from hlai_ros.tasks import get_task
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model

    task = get_task('roll')
    t0 = time.perf_counter()
    episodes = (seen_episodes(task, args.data) if args.seen_only
                else true_episodes(task, args.data, args.difference_velocity))
    if not episodes:
        raise SystemExit(f'no roll episodes with recorded ground truth under {args.data}')
    config = WorldModelConfig.from_dict({  # as `hlai train --task roll`
        **task.model_defaults, 'state_dim': task.state_dim, 'action_dim': task.action_dim,
        'seed': 0, 'time_budget_s': args.time_budget})
    metadata = {'task': task.name, 'identity': task.identity('state'),
                'state_names': list(task.model_state_names),
                'action_low': list(task.action_low), 'action_high': list(task.action_high),
                'data': str(args.data), 'seed': 0,
                'command': 'benchmarks/roll_true_state.py train' + (
                    ' --seen-only' if args.seen_only else ' (diagnostic: true states)')}
    _, history = train_world_model(episodes, config, out_dir=args.out, progress=True,
                                   resume=False, metadata=metadata)
    print(json.dumps({'runs': len(episodes), 'transitions': sum(len(e) for e in episodes),
                      'epochs': len(history.val_error), 'best_epoch': history.best_epoch,
                      'val_error': history.val_error[history.best_epoch],
                      'stop_reason': history.stop_reason,
                      'minutes': round((time.perf_counter() - t0) / 60, 1)}))


def evaluate(args: argparse.Namespace) -> None:
    """Closed loop of the learned stack fed the true (or the perceived) state."""
    from hlai_ros.actor.stack import load_stack
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.controllers import LearnedController

    task = get_task('roll')
    stack = load_stack(task, args.model, 'cpu')
    env = make('roll', config=world_config('roll'))
    world = env.unwrapped
    controller = LearnedController(stack)
    success = falls = 0
    for seed in range(args.seed, args.seed + args.episodes):
        obs, _ = env.reset(seed=seed)
        controller.reset(world, seed)
        truth, previous, k, info = world.ground_truth(), None, 0, {}
        errors = {True: [], False: []}  # perception's ball error (m) on seen / hidden frames
        planned = []  # the ball error (m) of the state the stack planned from, hidden frames
        while True:
            percept = task.perceive(controller.estimator, obs)
            true = task.true_state(truth, previous, world.dt)
            errors[bool(controller.estimator.visible)].append(
                float(np.linalg.norm(percept.model_state[2:4] - true[2:4])))
            if not args.perception:
                percept = dataclasses.replace(percept, model_state=true, measured=True)
            action = np.asarray(stack.plan(percept).action)
            if not controller.estimator.visible:
                planned.append(float(np.linalg.norm(stack.state(percept)[2:4] - true[2:4])))
            previous = truth
            obs, _, done, cut, info = env.step(action)
            truth, k = info['ground_truth'], k + 1
            if done or cut:
                break
        success += bool(info.get('is_success'))
        falls += info.get('failure') is not None
        outcome = 'success' if info.get('is_success') else info.get('failure') or 'time limit'
        hidden = errors[False]
        ball = task.true_state(truth, previous, world.dt)[2:4]
        edge = (f'goal {100 * world.distance_to_edge(world.goal):.1f} cm from the table edge, '
                f'the ball ended {100 * world.distance_to_edge(ball):.1f} cm')
        print(f'seed {seed}: {outcome} after {k} steps, {edge}; '
              f'ball hidden in {len(hidden)} frames '
              f'(perceived {1000 * np.mean(hidden or [np.nan]):.0f} mm off there, planned '
              f'from {1000 * np.mean(planned or [np.nan]):.0f} mm off, '
              f'{1000 * np.mean(errors[True]):.1f} mm where seen)', flush=True)
    env.close()
    print(json.dumps({'model': str(args.model), 'fed': 'perception' if args.perception
                      else 'true state', 'seeds': [args.seed, args.seed + args.episodes - 1],
                      'success': success / args.episodes, 'falls': falls / args.episodes}))


def main() -> None:
    """Parse the arguments and run `train` or `eval`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('train', help='fit a world model on the bags\' true states')
    p.add_argument('--data', type=Path, required=True, help='folder of roll bags')
    p.add_argument('--out', type=Path, required=True, help='model folder to write')
    p.add_argument('--time-budget', type=float, default=900.0, help='training time, s')
    p.add_argument('--difference-velocity', action='store_true',
                   help="the ball's velocity as perception defines it")
    p.add_argument('--seen-only', action='store_true',
                   help="perception's estimates, only where the ball was seen")
    p = sub.add_parser('eval', help='closed loop fed the true state')
    p.add_argument('--model', type=Path, required=True, help='model folder')
    p.add_argument('--seed', type=int, default=0, help='first episode seed')
    p.add_argument('--episodes', type=int, default=100)
    p.add_argument('--perception', action='store_true',
                   help="feed perception's estimate instead (as hlai eval does)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train(args) if args.command == 'train' else evaluate(args)


if __name__ == '__main__':
    main()
