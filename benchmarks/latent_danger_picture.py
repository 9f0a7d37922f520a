r"""A picture of what the learned event heads fear: the danger map over fresh scenes.

The pixel event heads (`hlai_ros.latent.events.PixelEventHeads`) turn the camera's own RGB-D
frame into a danger map, learned from nothing but the bags' failure markers; the latent
planner reads it at the keypoints of every imagined step. This draws, for a few fresh scenes
of the task's world (seeds never recorded), the camera frame, its depth and the danger map
(logit per cell), side by side; with `--geodesic W` (the latent cost weight of that name) a
fourth panel shows what the geodesic goal term makes of the map: the path length from every
cell to where the goal image shows the robot (`hlai_ros.latent.cost.GeodesicGoalTerm`).

    OMP_NUM_THREADS=1 python benchmarks/latent_danger_picture.py --task cliff \
        --model models/cliff_latent --seeds 1000 1001 1002 \
        --out docs/figures/latent_danger_cliff.png [--geodesic 10]
"""
from __future__ import annotations

import argparse

import matplotlib
import torch

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--task', required=True)
    p.add_argument('--model', required=True, help='latent model folder with pixel event heads')
    p.add_argument('--seeds', type=int, nargs='+', default=[1000, 1001, 1002])
    p.add_argument('--out', required=True, help='PNG to write')
    p.add_argument('--geodesic', type=float, default=0.0,
                   help='draw the geodesic goal field at this danger weight (0: no panel)')
    args = p.parse_args()
    torch.set_num_threads(1)

    from hlai_ros.actor.stack import load_stack
    from hlai_ros.sim import make
    from hlai_ros.tasks import get_task
    task = get_task(args.task)
    stack = load_stack(task, args.model, 'cpu')
    if not getattr(stack, 'reads_pixels', False):
        raise SystemExit(f'{args.model}: its event heads do not read pixels (event_kind)')
    env = make(args.task)
    rows, cols = len(args.seeds), 3 + bool(args.geodesic)
    fig, ax = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    term = None
    if args.geodesic:
        from hlai_ros.latent.cost import GeodesicGoalTerm
        term = GeodesicGoalTerm(stack.goal_cost, heads=stack.heads,
                                danger_weight=args.geodesic)
    for row, seed in enumerate(args.seeds):
        obs, _ = env.reset(seed=seed)
        stack.set_goal(env.unwrapped.goal_observation())
        now = stack.perceive(obs).state   # the map as the planner reads it (robot masked or not)
        danger = stack.heads._scene
        n = stack.heads.size
        if term is not None:
            fields = term.fields(stack.goal).view(-1, n, n)
            moving = term.moving.nonzero().flatten().tolist()
            im = ax[row, 3].imshow(fields[moving].mean(0).numpy(), cmap='viridis')
            for k, (colour, state) in enumerate((('w', stack.goal.numpy()), ('r', now))):
                xy = (state[:2 * len(term.moving)].reshape(-1, 2)[moving] + 1) * 0.5 * (n - 1)
                ax[row, 3].plot(xy[:, 0], xy[:, 1], colour + ('*' if k == 0 else 'o'), ms=6)
            ax[row, 3].set_title('path to goal (* goal, o robot)')
            fig.colorbar(im, ax=ax[row, 3], fraction=0.046)
        ax[row, 0].imshow(obs['rgb'])
        ax[row, 0].set_title(f'seed {seed}: camera')
        ax[row, 1].imshow(obs['depth'])
        ax[row, 1].set_title('depth')
        im = ax[row, 2].imshow(danger.view(n, n).numpy(), cmap='magma')
        ax[row, 2].set_title('learned danger (logit)')
        fig.colorbar(im, ax=ax[row, 2], fraction=0.046)
        for a in ax[row]:
            a.set_xticks([])
            a.set_yticks([])
    env.close()
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
