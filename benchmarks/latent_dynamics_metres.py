"""How far the latent stack's imagined paths drift, in metres, through the folder's plan probe.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_dynamics_metres.py \
        --model models/cliff_latent --data HELD_OUT_BAGS --horizon 10

On held-out bags: encode every frame, roll the planning dynamics open-loop from each start with
the recorded commands (z = 0, the prior mean; each member), decode every predicted planning
state through the stored probe (`latent_probe.json`; measuring only) and compare with the true
position the bags record. Prints, per step k, the error of the ensemble mean, of the members
(mean over members), and the probe's own error on the encoded frames (the floor), in metres.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    """Encode, roll out, decode, compare."""
    from hlai_ros.latent.checkpoint import load_latent_model
    from hlai_ros.latent.data import load_dataset
    from hlai_ros.latent.planning import planning_part
    from hlai_ros.latent.probes import encode_dataset, load_plan_probe
    from hlai_ros.world_model.checkpoint import load_world_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', required=True, help='latent model folder with a plan probe')
    ap.add_argument('--data', required=True, help='held-out bags with ground truth')
    ap.add_argument('--horizon', type=int, default=10)
    ap.add_argument('--stride', type=int, default=3, help='steps between two starts')
    args = ap.parse_args()
    torch.set_num_threads(1)
    probe = load_plan_probe(args.model)
    if probe is None:
        raise SystemExit(f'{args.model} has no plan probe '
                         '(fit one: python -m hlai_ros.latent.probes --fit)')
    encoder = load_latent_model(args.model)
    dynamics = load_world_model(args.model, 'cpu')
    data = load_dataset(args.data, progress=False)
    truth_all = np.asarray(data.positions[probe.plan_target], dtype=np.float64)
    with torch.no_grad():
        states = encode_dataset(encoder, data)[:, planning_part(encoder)].contiguous()
    floor = np.linalg.norm(probe.decode(states.numpy()) - truth_all, axis=-1)
    h = args.horizon
    episode, valid = data.episode.numpy(), data.valid.numpy()
    starts = [m for m in range(0, len(episode) - h, args.stride)
              if episode[m + h] == episode[m] and valid[m:m + h].all()]
    s0 = states[starts]
    a = torch.stack([data.actions[m:m + h] for m in starts]).float()
    truth = np.stack([truth_all[m:m + h + 1] for m in starts])          # (N, H+1, 2)
    z = torch.zeros(dynamics.ensemble_size, len(s0), dynamics.latent_dim)
    with torch.no_grad():
        pred = dynamics.rollout(s0, a, z).numpy()                       # (E, N, H+1, S)
    members = np.linalg.norm(probe.decode(pred) - truth[None], axis=-1)  # (E, N, H+1)
    mean = np.linalg.norm(probe.decode(pred.mean(0)) - truth, axis=-1)   # (N, H+1)
    print(f'{args.model}: {len(s0)} starts on {data.num_episodes} held-out episodes, '
          f'target {probe.plan_target}; probe on encoded frames (the floor): '
          f'{floor.mean():.3f} m mean, {np.median(floor):.3f} median')
    print('| k | ensemble mean, m (mean / p90) | members, m (mean) |')
    print('|---|---|---|')
    for k in range(h + 1):
        print(f'| {k} | {mean[:, k].mean():.3f} / {np.percentile(mean[:, k], 90):.3f} | '
              f'{members[:, :, k].mean():.3f} |')


if __name__ == '__main__':
    main()
