"""Push world model: k-step prediction error on held-out bags, beside the baselines.

    .venv/bin/python benchmarks/push_world_model.py --data DIR [--model models/push] \
        [--max-horizon 10] [--threads 1]

Perceives every episode under --data (bags from `hlai collect --task push`, not seen in
training) with the task's perception, unrolls the world model open loop from every start point
with the recorded actions (z = 0, the prior mean), and prints per horizon k: the normalised RMS
error (per-dimension RMS over that dimension's spread, averaged) of the model, of the
constant-velocity baseline (the last step's change repeated) and of zero motion, then the
model's RMS error in metres of the hand and of the box. Also the box error over the windows in
which the box moves (more than 5 mm over the horizon), where the contact physics shows. The last
line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, required=True, help='held-out push bags')
    parser.add_argument('--model', type=Path, default=Path('models/push'))
    parser.add_argument('--max-horizon', type=int, default=10)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from hlai_ros.data import load_episodes
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_episodes
    from hlai_ros.world_model.checkpoint import load_world_model
    from hlai_ros.world_model.horizon import horizon_errors, summary_table

    torch.set_num_threads(args.threads)
    task = get_task('push')
    episodes = perceive_episodes(task, load_episodes(args.data, progress=False), progress=False)
    model = load_world_model(args.model, device='cpu',
                             expect={'state_dim': task.state_dim, 'action_dim': 2})
    errors = horizon_errors(model, episodes, args.max_horizon, latent='prior')
    print(f'{len(episodes)} held-out episodes, {sum(len(e) for e in episodes)} transitions, '
          f'{errors.windows} windows per horizon')
    print(summary_table(errors))
    per_dim = np.asarray(errors.model_per_dim)
    hand = np.sqrt((per_dim[:, 0:2] ** 2).sum(axis=1))
    box = np.sqrt((per_dim[:, 2:4] ** 2).sum(axis=1))

    # box error where the box actually moves within the horizon (the pushes)
    h = args.max_horizon
    moving_err, moving_cv, moving_zero = [], [], []
    with torch.no_grad():
        for ep in episodes:
            states, actions = torch.from_numpy(ep.states), torch.from_numpy(ep.actions)
            for t in range(1, len(ep) - h + 1):
                future = states[t + 1:t + h + 1, 2:4]
                if float((future[-1] - states[t, 2:4]).norm()) < 0.005:
                    continue
                z = torch.zeros(model.ensemble_size, 1, model.latent_dim)
                pred = model.rollout(states[t][None], actions[t:t + h][None], z)
                pred = pred[:, 0, 1:, 2:4].mean(0)
                moving_err.append((pred - future).norm(dim=-1).numpy())
                step = states[t, 2:4] - states[t - 1, 2:4]
                k = torch.arange(1, h + 1, dtype=torch.float32)[:, None]
                moving_cv.append((states[t, 2:4] + k * step - future).norm(dim=-1).numpy())
                moving_zero.append((states[t, 2:4] - future).norm(dim=-1).numpy())
    print(f'{"k":>3} {"hand RMS (m)":>13} {"box RMS (m)":>12} | box moving: {"model":>7} '
          f'{"const-vel":>9} {"zero":>7} (mean m, {len(moving_err)} windows)')
    rows = []
    for i, k in enumerate(errors.horizons):
        m = float(np.mean([e[i] for e in moving_err])) if moving_err else float('nan')
        c = float(np.mean([e[i] for e in moving_cv])) if moving_cv else float('nan')
        z = float(np.mean([e[i] for e in moving_zero])) if moving_zero else float('nan')
        rows.append({'k': k, 'hand_rms_m': float(hand[i]), 'box_rms_m': float(box[i]),
                     'box_moving_model_m': m, 'box_moving_const_vel_m': c,
                     'box_moving_zero_m': z})
        print(f'{k:3d} {hand[i]:13.4f} {box[i]:12.4f} |             {m:7.4f} {c:9.4f} {z:7.4f}')
    print(json.dumps({'data': str(args.data), 'model': str(args.model),
                      'episodes': len(episodes), 'horizon_errors': errors.to_dict(),
                      'metres': rows, 'moving_windows': len(moving_err)}))


if __name__ == '__main__':
    main()
