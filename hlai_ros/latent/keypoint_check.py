"""An unsupervised check of whether the keypoints track what the joints do not explain.

A keypoint encoder can spend all its keypoints on the robot: the arm moves in every frame, so
reconstructing it pays most, and a run can end with no keypoint on the object the task is
about (measured on push: the shipped encoder found the box; its recipe on the collection as
re-recorded since puts every keypoint on the arm, with either seed tried; BENCHMARKS.md, "Push
from scratch again"). Such a model plans blind to the object, and nothing in the training
loss shows it.

This check needs no ground truth. The robot's joint states (proprioception, which the robot
always has) explain where its own keypoints are; an object's keypoint sits where the object
was put, which differs from episode to episode whatever the joints do. So, per keypoint:
regress its position on the proprioception (linear, with an intercept) over held-out frames,
and take the spread *across episodes* of the per-episode mean residual. An object keypoint
keeps a large one (the object's start differs per episode); a keypoint on the robot, or
jitter, keeps almost none. `hlai train --representation latent` reports the largest value per
epoch and warns when it stays below `WARN_BELOW`.
"""
from __future__ import annotations

import numpy as np
import torch

WARN_BELOW = 0.04
"""Largest per-keypoint spread (frame units, [-1, 1] across the image) below which no keypoint
is taken to track an object. Measured on push's held-out episodes: the shipped encoder 0.090
(its box keypoints), the run whose keypoints all went to the arm 0.020 (about the geometric
mean of the two; the shipped roll encoder gives 0.049 on its training data). Only for tasks
whose goal is about an object (`Task.latent_plan_target`); where the goal is the robot's own
place (cliff, whose proprioception holds the odometry) nothing else should move."""


def unexplained_spread(keypoints: np.ndarray, proprio: np.ndarray,
                       episode: np.ndarray) -> np.ndarray:
    """Per keypoint, what the joints do not explain and that differs between episodes.

    keypoints (M, K, 2) in frame units, proprio (M, P), episode (M,) ids -> (K,): the
    standard deviation across episodes of each episode's mean residual of a linear fit of the
    keypoint's (x, y) on the proprioception (both coordinates together).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    proprio = np.asarray(proprio, dtype=np.float64)
    episode = np.asarray(episode)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or len(keypoints) != len(proprio) \
            or len(episode) != len(keypoints):
        raise ValueError(f'need keypoints (M, K, 2), proprio (M, P) and episode (M,), got '
                         f'{keypoints.shape}, {proprio.shape}, {episode.shape}')
    m, k, _ = keypoints.shape
    ids = np.unique(episode)
    if k == 0 or len(ids) < 2:
        return np.zeros(k)
    x = np.concatenate([(proprio - proprio.mean(0)) / (proprio.std(0) + 1e-9),
                        np.ones((m, 1))], 1)
    y = keypoints.reshape(m, 2 * k)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = (y - x @ coef).reshape(m, k, 2)
    means = np.stack([residual[episode == e].mean(0) for e in ids])       # (episodes, K, 2)
    return np.sqrt(means.var(0).sum(-1))


@torch.no_grad()
def keypoint_check(model, data, max_frames: int = 4000, batch: int = 256) -> dict:
    """`unexplained_spread` of a `LatentWorldModel`'s keypoints on a `LatentDataset`.

    Uses at most `max_frames` frames (whole episodes, in order). Returns {'spread': per
    keypoint (list), 'max': the largest, 'warn': max < WARN_BELOW}; empty when the model has
    no keypoints.
    """
    if not getattr(model.config, 'keypoints', 0) or len(data) == 0:
        return {}
    episode = data.episode.numpy()
    ids, first, sizes = np.unique(episode, return_index=True, return_counts=True)
    order = np.argsort(first)                                   # episodes in data order
    chosen = ids[order][np.cumsum(sizes[order]) <= max(max_frames, sizes[order][:2].sum())]
    keep = np.flatnonzero(np.isin(episode, chosen))
    was_training = model.training
    model.eval()
    kps = []
    try:
        for i in range(0, len(keep), batch):
            f = data.frames(torch.as_tensor(keep[i:i + batch]))
            kps.append(model.keypoints(model.pixels(f['rgb'], f['depth'])))
    finally:
        model.train(was_training)
    spread = unexplained_spread(torch.cat(kps).numpy(), data.proprio[keep].numpy(),
                                episode[keep])
    top = float(spread.max()) if len(spread) else 0.0
    return {'spread': [round(float(s), 4) for s in spread], 'max': round(top, 4),
            'warn': top < WARN_BELOW}
