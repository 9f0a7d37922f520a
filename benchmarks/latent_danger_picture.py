r"""A picture of what the learned event heads fear: the danger map over fresh scenes.

The pixel event heads (`hlai_ros.latent.events.PixelEventHeads`) turn the camera's own RGB-D
frame into a danger map, learned from nothing but the bags' failure markers; the latent
planner reads it at the keypoints of every imagined step. This draws, for a few fresh scenes
of the task's world (seeds never recorded), the camera frame, its depth and the danger map
(logit per cell), side by side.

    OMP_NUM_THREADS=1 python benchmarks/latent_danger_picture.py --task cliff \
        --model models/cliff_latent --seeds 1000 1001 1002 \
        --out docs/figures/latent_danger_cliff.png
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
    args = p.parse_args()
    torch.set_num_threads(1)

    from hlai_ros.actor.stack import load_stack
    from hlai_ros.latent.stack import scene_pixels
    from hlai_ros.sim import make
    from hlai_ros.tasks import get_task
    task = get_task(args.task)
    stack = load_stack(task, args.model, 'cpu')
    if not getattr(stack, 'reads_pixels', False):
        raise SystemExit(f'{args.model}: its event heads do not read pixels (event_kind)')
    env = make(args.task)
    rows = len(args.seeds)
    fig, ax = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    for row, seed in enumerate(args.seeds):
        obs, _ = env.reset(seed=seed)
        with torch.no_grad():
            danger = stack.heads.scene_features(scene_pixels(stack.encoder, obs)[None])[0]
        n = stack.heads.size
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
