r"""Event heads compared offline: what they read (latent map or pixels), on held-out episodes.

Encodes a collection with a latent folder's encoder, fits event heads of each kind on 80% of
the episodes (split by episode) and reports, on the rest, the ROC AUC of P(failure within k
steps) over every frame and the precision and recall at p >= 0.5.

    OMP_NUM_THREADS=1 python benchmarks/latent_event_heads.py --model models/cliff_latent \
        --data /work/data/cliff_ev --within 2 --kinds pixels spatial --steps 2000
"""
from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney)."""
    from scipy.stats import rankdata
    r, n1 = rankdata(p), int(y.sum())
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def overrides(variant: str) -> dict:
    """'flips=1,positive_weight=1' -> {'flips': True, 'positive_weight': 1.0}."""
    from dataclasses import fields

    from hlai_ros.latent.events import EventConfig
    types = {f.name: type(f.default) for f in fields(EventConfig)}
    out = {}
    for pair in filter(None, variant.split(',')):
        key, _, value = pair.partition('=')
        out[key] = bool(int(value)) if types[key] is bool else types[key](value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', required=True, help='latent folder (its encoder is used)')
    ap.add_argument('--data', required=True, help='collection with failures (bags)')
    ap.add_argument('--within', type=int, nargs='+', default=[2])
    ap.add_argument('--kinds', nargs='+', default=['pixels', 'spatial'])
    ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--val-fraction', type=float, default=0.2)
    ap.add_argument('--variants', nargs='+', default=[''], metavar='KEY=VALUE,...',
                    help="EventConfig overrides per variant, e.g. '' 'flips=1' "
                    "'flips=1,positive_weight=1' ('': the defaults)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from hlai_ros.latent.checkpoint import load_latent_model
    from hlai_ros.latent.data import load_dataset, split_by_episode
    from hlai_ros.latent.events import EventConfig, _pairs, fit_event_heads
    from hlai_ros.latent.planning import event_labels, event_scenes, planning_part
    from hlai_ros.latent.probes import encode_dataset
    data = load_dataset(args.data)
    enc = load_latent_model(args.model)
    with torch.no_grad():
        latents = encode_dataset(enc, data)
    states = latents[:, planning_part(enc)].contiguous()
    train, val_eps = split_by_episode(data.num_episodes, args.val_fraction, 0)
    ep, st = data.episode.numpy(), data.step.numpy()
    print(f'{len(data)} frames, {data.num_episodes} episodes, {int(data.failed.sum())} failed, '
          f'{int(data.failed[list(val_eps)].sum())} of them held out')
    val = np.flatnonzero(np.isin(ep, list(val_eps)))
    for kind in args.kinds:
        scenes, shape = event_scenes(enc, data, latents, kind)
        small = {'scene_features': 16, 'batch_size': 64} if kind == 'pixels' else {}
        for within, variant in itertools.product(args.within, args.variants):
            labels = event_labels(data, data.failed, within)
            t0 = time.monotonic()
            heads, rep = fit_event_heads(
                scenes, shape, states, labels, ep, st, train, val_eps,
                EventConfig(within=within, kind=kind, steps=args.steps,
                            **{**small, **overrides(variant)}),
                keypoints=enc.config.keypoints)
            seconds = time.monotonic() - t0
            rng = np.random.default_rng(1)
            with torch.no_grad():
                scene_idx = _pairs(ep, st, val, heads.config.scene_lag, rng)
                p = torch.cat([torch.sigmoid(heads.logits(
                    heads.scene_features(scenes[scene_idx[i:i + 1024]]),
                    states[val[i:i + 1024]])) for i in range(0, len(val), 1024)]).numpy()
            print(json.dumps({'kind': kind, 'within': within, 'variant': variant,
                              'auc': round(auc(p, labels[val]), 3),
                              'precision': rep.get('precision'), 'recall': rep.get('recall'),
                              'val_event_frames': rep['val_event_frames'],
                              'seconds': round(seconds)}))


if __name__ == '__main__':
    main()
