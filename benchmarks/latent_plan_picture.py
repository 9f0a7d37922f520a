r"""A picture of a latent plan: the probe's decoding of the planned path, drawn from above.

The latent stack plans in keypoints and a proprioception latent, which have no metres. A
linear probe, fitted on held-out episodes from the planning state to the true position of what
the task is about (the cliff robot, the push box), decodes every ensemble member's imagined
path into metres, for the picture only: the probe never enters the cost. Drawn over the
episode's true path, the goal and (cliff) the platform and obstacles from the simulator.

    OMP_NUM_THREADS=1 python benchmarks/latent_plan_picture.py --task cliff \\
        --model models/cliff_latent --probe-data /work/data/cliff_lat_val --seed 3 \\
        --steps 10 20 40 --out docs/figures/latent_plan_cliff.png
"""
from __future__ import annotations

import argparse

import matplotlib
import numpy as np
import torch

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

KEYS = {'cliff': 'base_position', 'push': 'object_position', 'roll': 'object_position'}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--task', required=True)
    p.add_argument('--model', required=True, help='latent model folder')
    p.add_argument('--probe-data', required=True, help='held-out bags to fit the probe on')
    p.add_argument('--seed', type=int, default=3, help='episode seed')
    p.add_argument('--steps', type=int, nargs='+', default=[10, 20, 40],
                   help='control steps whose plans are drawn')
    p.add_argument('--out', required=True, help='PNG to write')
    args = p.parse_args()
    torch.set_num_threads(1)

    from hlai_ros.actor.stack import load_stack
    from hlai_ros.config import world_config
    from hlai_ros.latent.data import load_dataset
    from hlai_ros.latent.probes import Ridge, encode_dataset
    from hlai_ros.sim import make
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.controllers import LearnedController

    task = get_task(args.task)
    stack = load_stack(task, args.model, 'cpu')
    key = KEYS[args.task]
    data = load_dataset(args.probe_data)
    with torch.no_grad():
        states = encode_dataset(stack.encoder, data)[:, stack.part].numpy()
    truth = data.positions[key]
    ok = np.isfinite(truth).all(1)
    probe = Ridge(states[ok], truth[ok])
    fit = probe.predict(states[ok], 1.0)
    err = np.linalg.norm(fit - truth[ok], axis=1)
    print(f'probe from the planning state to {key}: mean error {1000 * err.mean():.1f} mm on '
          f'{ok.sum()} held-out frames (in-sample fit, for drawing only)')

    env = make(args.task, config=world_config(args.task))
    controller = LearnedController(stack)
    obs, _ = env.reset(seed=args.seed)
    controller.reset(env.unwrapped, args.seed)
    gt = env.unwrapped.ground_truth()
    path, plans = [np.asarray(gt[key])[:2]], {}
    for t in range(max(args.steps) + 1):
        action = controller.act(obs)
        if t in args.steps:
            predicted = stack.planner.predict(controller.last_percept.state,
                                              stack.last_plan.actions).numpy()
            plans[t] = probe.predict(predicted.reshape(-1, predicted.shape[-1]), 1.0
                                     ).reshape(*predicted.shape[:2], 2)
        obs, _, terminated, truncated, info = env.step(action)
        path.append(np.asarray(info['ground_truth'][key])[:2])
        if terminated or truncated:
            break
    path = np.array(path)

    fig, ax = plt.subplots(figsize=(7, 5.5))
    if 'platform_bounds' in gt:
        x0, x1, y0, y1 = gt['platform_bounds']
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fc='0.92', ec='0.4'))
        for c, r in zip(gt['obstacle_positions'], gt['obstacle_radii']):
            ax.add_patch(plt.Circle(c, r, fc='0.6', ec='0.3'))
    ax.plot(*path.T, 'k-', lw=1.5, label='true path')
    goal = np.asarray(gt['goal'])[:2]
    ax.plot(*goal, marker='*', ms=16, color='tab:green', ls='', label='goal')
    colours = plt.cm.viridis(np.linspace(0.1, 0.9, len(plans)))
    for (t, members), colour in zip(sorted(plans.items()), colours):
        for m, xy in enumerate(members):
            ax.plot(*xy.T, '-', color=colour, alpha=0.8, lw=1,
                    label=f'plan at step {t} (probe decoding, {len(members)} members)'
                    if m == 0 else None)
        ax.plot(*path[t], 'o', color=colour)
    ax.set_aspect('equal')
    ax.set_xlabel('x, m')
    ax.set_ylabel('y, m')
    ax.set_title(f'{args.task}, seed {args.seed}: latent plans decoded by a linear probe '
                 '(drawing only)', fontsize=9)
    ax.legend(fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
