"""`hlai demo`: run each world with its scripted controller and save a picture of an episode."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HELP = 'run each world with its scripted controller and save a picture of an episode'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai demo`."""
    parser.add_argument('--task', choices=['push', 'cliff', 'all'], default='all',
                        help='which world to run (default: all)')
    parser.add_argument('--episodes', type=int, default=3,
                        help='seeded episodes per world (default: 3)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--out', type=Path, default=Path('out/demo'),
                        help='folder for the pictures (default: out/demo)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object with the results on the last line')


def run_episode(task: str, seed: int, frames: int = 6):
    """Run one scripted episode; return (outcome dict, list of third-person frames)."""
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    from hlai_ros.sim.scripted import make_scripted

    env = make(task, config=world_config(task))
    controller = make_scripted(task, seed=seed)
    try:
        obs, info = env.reset(seed=seed)
        controller.reset()
        views, total, done, steps = [env.unwrapped.render_view(320, 240)], 0.0, False, 0
        while not done:
            obs, reward, terminated, truncated, info = env.step(controller.act(obs, info))
            total += reward
            steps += 1
            done = terminated or truncated
            if steps % 5 == 0 or done:
                views.append(env.unwrapped.render_view(320, 240))
        pick = np.unique(np.linspace(0, len(views) - 1, num=frames).round().astype(int))
        views = [views[i] for i in pick]
        outcome = {'task': task, 'seed': seed, 'success': bool(info['is_success']),
                   'failure': info['failure'], 'return': round(total, 3), 'steps': steps}
        return outcome, views
    finally:
        env.close()


def save_strip(views, outcome, path: Path) -> None:
    """Save frames side by side with the episode's outcome as the title."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(views), figsize=(3 * len(views), 2.6))
    for i, (ax, view) in enumerate(zip(np.atleast_1d(axes), views)):
        ax.imshow(view)
        ax.set_axis_off()
        ax.set_title('start' if i == 0 else ('end' if i == len(views) - 1 else ''), fontsize=9)
    verdict = 'success' if outcome['success'] else (outcome['failure'] or 'time limit')
    fig.suptitle(f"{outcome['task']} (scripted), seed {outcome['seed']}: {verdict} after "
                 f"{outcome['steps']} steps, return {outcome['return']:.2f}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0."""
    if args.episodes < 1:
        raise SystemExit('hlai demo: --episodes must be at least 1')
    tasks = ['push', 'cliff'] if args.task == 'all' else [args.task]
    results = {}
    for task in tasks:
        outcomes = []
        for k in range(args.episodes):
            outcome, views = run_episode(task, args.seed + k)
            outcomes.append(outcome)
            verdict = 'success' if outcome['success'] else (outcome['failure'] or 'time limit')
            print(f"{task} seed {outcome['seed']}: {verdict} in {outcome['steps']} steps, "
                  f"return {outcome['return']:.2f}", flush=True)
            if k == 0:
                picture = args.out / f'{task}_episode.png'
                save_strip(views, outcome, picture)
                print(f'  picture: {picture}', flush=True)
        rate = sum(o['success'] for o in outcomes) / len(outcomes)
        print(f'{task}: scripted success {rate:.0%} over {len(outcomes)} episodes', flush=True)
        results[task] = {'success_rate': rate, 'episodes': outcomes}
    if args.json:
        print(json.dumps(results))
    return 0
