"""Measure the latent representation (issue 12, stage 1): probes, collapse, k-step prediction.

Trains a latent world model on --data (unless --model already holds one), then on the held-out
collection --val-data:
- ridge probes from the *image* part of the latent to every recorded true position (grouped
  5-fold over held-out episodes): R², mean / median / p90 error, mm;
- collapse: per-dimension std and effective rank of the image and proprioception latents;
- k-step latent prediction error (ensemble mean) against copy-last, and the box / robot error
  of the probe applied to the k-step *predicted* latents;
- the goal cost's ranking (`hlai_ros.latent.goal`): Spearman of the cost to each held-out
  episode's last frame against the true distance of the box (push) or robot (cliff) to its
  last-frame position, for the plain latent distances and the keypoint goal costs (their
  keypoint weights fitted on unlabelled training latents).
Prints a table and one JSON line.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_representation.py --task push \
        --data /work/data/push_lat --val-data /work/data/push_lat_val \
        --model /work/data/push_latent --time-budget 1500
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

import numpy as np
import torch

from hlai_ros.latent.checkpoint import load_latent_model
from hlai_ros.latent.data import load_dataset
from hlai_ros.latent.goal import fit_goal_cost, goal_ranking, latent_distance
from hlai_ros.latent.probes import (
    Ridge,
    collapse_stats,
    encode_dataset,
    prediction_errors,
    probe_positions,
)


def c_kp(model) -> int:
    """Keypoints of the model (0 for a model saved before they existed)."""
    return model.config.keypoints


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--task', required=True)
    p.add_argument('--data', required=True, help='training bags (used when training)')
    p.add_argument('--val-data', required=True, help='held-out bags (probes and figures)')
    p.add_argument('--model', required=True, help='model directory (trained into if empty)')
    p.add_argument('--time-budget', type=float, default=1500.0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE')
    p.add_argument('--horizon', type=int, default=5, help='k of the k-step figures')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--goal-fit-frames', type=int, default=6000,
                   help='training frames whose latents fit the goal cost (unlabelled)')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = Path(args.model)
    train_s = None
    if not (model_dir / 'latent_model.json').is_file() or \
            (model_dir / 'latent_train_state.json').is_file() and args.set:
        from hlai_ros.latent.train import main as train_main
        t0 = time.monotonic()
        argv = ['--task', args.task, '--data', args.data, '--out', args.model,
                '--time-budget', str(args.time_budget), '--seed', str(args.seed),
                '--threads', str(args.threads)]
        if args.set:
            argv += ['--set', *args.set]
        if args.no_progress:
            argv.append('--no-progress')
        train_main(argv)
        train_s = time.monotonic() - t0
    from hlai_ros.tasks import get_task
    model = load_latent_model(model_dir, identity=get_task(args.task).identity('latent'))
    meta = model.checkpoint_metadata
    val = load_dataset(args.val_data)

    t0 = time.monotonic()
    latents = encode_dataset(model, val)
    encode_ms = (time.monotonic() - t0) / max(len(val), 1) * 1000.0
    image = model.image_part(latents)
    features = image.numpy()
    probes = probe_positions(features, val)
    proprio_probes = probe_positions(latents[:, model.image_dim:].numpy(), val)
    collapse = {'image': collapse_stats(image), 'proprio': collapse_stats(
        latents[:, model.image_dim:])}
    kp_probes = probe_positions(model.keypoint_part(latents).numpy(), val) \
        if c_kp(model) else {}
    pred = prediction_errors(model, val, args.horizon)

    # goal cost ranking: keypoint weights fitted on unlabelled training latents
    train = load_dataset(args.data)
    order = torch.randperm(train.num_episodes, generator=torch.Generator().manual_seed(0))
    lengths = torch.bincount(train.episode, minlength=train.num_episodes)[order]
    n_eps = int(torch.searchsorted(torch.cumsum(lengths, 0), args.goal_fit_frames)) + 1
    fit_lat = encode_dataset(model, train.subset(sorted(order[:n_eps].tolist())))
    del train
    goal_key = next(k for k in ('object_position', 'base_position') if k in probes)
    travel = 0.02 if goal_key == 'object_position' else 0.2
    ki = model.image_dim
    costs = {'latent_all': latent_distance(slice(None)),
             'latent_image': latent_distance(slice(0, ki)),
             'proprio': latent_distance(slice(ki, None))}
    ranking = {name: goal_ranking(fn, latents, val, goal_key, travel)
               for name, fn in costs.items()}
    if c_kp(model):
        kc = fit_goal_cost(model, fit_lat)
        uniform = fit_goal_cost(model, fit_lat, weighting='uniform')
        ranking['keypoints_uniform'] = goal_ranking(uniform, latents, val, goal_key, travel)
        ranking['keypoints_world'] = goal_ranking(kc, latents, val, goal_key, travel)
        kp_map = fit_goal_cost(model, fit_lat, map_weight=1.0)
        ranking['keypoints_world+map_goal_energy'] = goal_ranking(
            kp_map, latents, val, goal_key, travel,
            per_goal=lambda g: kp_map.with_goal_energy(model, g))
        ranking['keypoints_residual'] = goal_ranking(
            fit_goal_cost(model, fit_lat, weighting='residual'), latents, val, goal_key, travel)
        ranking['keypoints_self'] = goal_ranking(
            fit_goal_cost(model, fit_lat, weighting='self'), latents, val, goal_key, travel)
        ranking['keypoints_world+proprio'] = goal_ranking(
            fit_goal_cost(model, fit_lat, proprio_weight=1.0), latents, val, goal_key, travel)
        keypoint_weights = [round(float(v), 3) for v in kc.keypoint_weights]
    else:
        keypoint_weights = []

    # the probe (fitted on every held-out frame) read on the k-step predicted latents
    predicted_probe = {}
    if pred:
        starts = pred['starts']
        pl = model.image_part(pred['predicted_latents']).numpy()       # (B, H, F)
        for key, res in probes.items():
            y = val.positions[key]
            ok = np.isfinite(y).all(1)
            fit = Ridge(features[ok].astype(np.float64), y[ok])
            errs = []
            for k in range(args.horizon):
                truth = y[(starts + k + 1).numpy()]
                est = fit.predict(pl[:, k].astype(np.float64), res.alpha)
                errs.append(float(np.nanmean(np.linalg.norm(est - truth, axis=1)) * 1000.0))
            predicted_probe[key] = errs

    c = model.config
    print(f'\nlatent representation, task {args.task}: {meta.get("transitions")} training '
          f'transitions, {val.num_episodes} held-out episodes ({len(val)} frames); image '
          f'latent {c.map_channels}x{c.map_size}x{c.map_size}, proprio {c.proprio_latent_dim}')
    print(f'{"probe (image latent)":28s} {"R2":>6s} {"mean mm":>8s} {"median":>7s} '
          f'{"p90":>7s} {"spread":>7s}')
    for key, r in probes.items():
        print(f'{key:28s} {r.r2:6.3f} {r.mean_error_mm:8.1f} {r.median_error_mm:7.1f} '
              f'{r.p90_error_mm:7.1f} {r.spread_mm:7.1f}')
    for key, r in kp_probes.items():
        print(f'{key + " (keypoints only)":28s} {r.r2:6.3f} {r.mean_error_mm:8.1f} '
              f'{r.median_error_mm:7.1f} {r.p90_error_mm:7.1f} {r.spread_mm:7.1f}')
    for key, r in proprio_probes.items():
        print(f'{key + " (proprio latent)":28s} {r.r2:6.3f} {r.mean_error_mm:8.1f} '
              f'{r.median_error_mm:7.1f} {r.p90_error_mm:7.1f} {r.spread_mm:7.1f}')
    for name, s in collapse.items():
        print(f'collapse {name:8s}: dims {s["dims"]}, std min {s["std_min"]:.3f} median '
              f'{s["std_median"]:.3f} max {s["std_max"]:.3f}, dead {s["dead_fraction"]:.3f}, '
              f'effective rank {s["effective_rank"]:.1f}')
    if pred:
        print('k-step error (relative to latent variance)  ' + ' '.join(
            f'k={k + 1:<5d}' for k in range(args.horizon)))
        for name in ('model_image', 'copy_image', 'model_all', 'copy_all', 'model_keypoints',
                     'copy_keypoints', 'disagreement_all'):
            if name not in pred:
                continue
            print(f'{name:43s} ' + ' '.join(f'{v:7.3f}' for v in pred[name]))
        for key, errs in predicted_probe.items():
            print(f'{"probe on predicted " + key + ", mm":43s} ' + ' '.join(
                f'{v:7.1f}' for v in errs))
    print(f'goal cost ranking vs true {goal_key} distance to the last frame (held-out episodes '
          f'moving >= {travel} m); keypoint weights {keypoint_weights}')
    print(f'{"cost":34s} {"mean rho":>9s} {"median":>7s} {"pooled":>7s} {"episodes":>8s}')
    for name, r in ranking.items():
        if r.get('episodes'):
            print(f'{name:34s} {r["spearman_mean"]:9.3f} {r["spearman_median"]:7.3f} '
                  f'{r["spearman_pooled"]:7.3f} {r["episodes"]:8d}')
    figures = {
        'task': args.task, 'transitions': meta.get('transitions'),
        'train_s': None if train_s is None else round(train_s, 1),
        'best_epoch': meta.get('best_epoch'), 'val_episodes': val.num_episodes,
        'config': c.to_dict(), 'encode_ms_per_frame': round(encode_ms, 2),
        'probes': {k: r.to_dict() for k, r in probes.items()},
        'proprio_probes': {k: r.to_dict() for k, r in proprio_probes.items()},
        'keypoint_probes': {k: r.to_dict() for k, r in kp_probes.items()},
        'goal_ranking': ranking, 'goal_key': goal_key, 'goal_keypoint_weights': keypoint_weights,
        'collapse': collapse,
        'kstep': {k: v for k, v in pred.items() if k not in ('predicted_latents', 'starts')},
        'probe_on_predicted_mm': predicted_probe}
    print(json.dumps(figures))


if __name__ == '__main__':
    main()
