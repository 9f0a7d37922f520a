r"""How well a latent folder's cost ranks progress along held-out episodes (issue 12, "Cost").

For every held-out episode whose tracked object (push, roll) or robot (cliff) moves at least
2 cm, the Spearman correlation between a cost of each frame and the true distance of that
position to where it ends (evaluation only: the truth never enters a cost). The costs, each to
the episode's recorded goal image (as the stack is given it) and to its last frame:

- ``term``: the keypoint goal term (`GoalCost`, the folder's weighting);
- ``value``: the learned steps-to-goal value;
- ``sum``: the goal term plus the value at the task's latent cost weights.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_cost_ranking.py --task push \
        --model models/push_latent --data HELD_OUT
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import spearmanr
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--task', required=True)
    p.add_argument('--model', required=True, help='latent model folder')
    p.add_argument('--data', required=True, help='held-out bags (with goal images)')
    p.add_argument('--min-travel', type=float, default=0.02,
                   help='episodes whose position moves less than this (m) are skipped')
    args = p.parse_args()
    torch.set_num_threads(1)

    from hlai_ros.latent.data import load_dataset
    from hlai_ros.latent.probes import encode_dataset
    from hlai_ros.latent.stack import LatentStack, encode_observation
    from hlai_ros.tasks import get_task
    task = get_task(args.task)
    st = LatentStack.from_folder(task, args.model)
    val = load_dataset(args.data)
    planning = encode_dataset(st.encoder, val)[:, st.part]
    key = task.latent_plan_target          # what the goal is about: the object, or the robot
    pos = val.positions[key]
    gc, w = st.goal_cost, st.weights
    per_episode: dict[str, list[float]] = {}
    pooled: dict[str, tuple[list, list]] = {}
    for e in range(val.num_episodes):
        idx = torch.nonzero(val.episode == e).flatten()
        y = pos[idx.numpy()]
        if not np.isfinite(y).all():
            continue
        truth = np.linalg.norm(y - y[-1], axis=1)
        if truth.max() < args.min_travel:
            continue
        s, t = planning[idx[:-1]], truth[:-1]
        goals = {'last frame': planning[idx[-1]]}
        if val.has_goal_image is not None and bool(val.has_goal_image[e]):
            goals['goal image'] = encode_observation(st.encoder, {
                'rgb': val.goal_rgb[e].permute(1, 2, 0).numpy(),
                'depth': val.goal_depth[e].float().numpy()})[st.part]
        with torch.no_grad():
            for name, g in goals.items():
                costs = {'term': gc(s, g)}
                if st.value is not None:
                    costs['value'] = st.value(s, gc.keypoints(g))
                    costs['sum'] = w.goal * costs['term'] + w.value * costs['value']
                for kind, c in costs.items():
                    label = f'{kind}, to the {name}'
                    c = c.numpy().reshape(-1)
                    rho = spearmanr(c, t).statistic
                    if np.isfinite(rho):
                        per_episode.setdefault(label, []).append(float(rho))
                    pooled.setdefault(label, ([], []))
                    pooled[label][0].append(c)
                    pooled[label][1].append(t)
    print(f'{args.task}: {args.model} on {args.data}, Spearman against the true {key} '
          'distance to where the episode ends')
    print(f'{"cost":32s} {"mean":>6s} {"median":>7s} {"pooled":>7s} episodes')
    for label, rhos in sorted(per_episode.items()):
        c, t = (np.concatenate(x) for x in pooled[label])
        print(f'{label:32s} {np.mean(rhos):6.3f} {np.median(rhos):7.3f} '
              f'{spearmanr(c, t).statistic:7.3f} {len(rhos):5d}')


if __name__ == '__main__':
    main()
