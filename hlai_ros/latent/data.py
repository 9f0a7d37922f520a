"""Training tensors for the latent world model, built from recorded episodes.

`LatentDataset` holds every frame of a set of episodes once (RGB uint8, depth float16,
proprioception float32) with the action taken at each frame, and cuts H-step windows whose H
actions were all in force. Ground-truth positions are kept apart (`positions`) for the probes
only: nothing in training reads them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

PROBE_KEYS = ('object_position', 'ee_position', 'base_position')
"""Ground-truth entries (world-frame positions, m) the probes decode when a world records them."""


@dataclass
class LatentDataset:
    """Frames of a set of episodes, in episode order (M frames in all).

    Frame m of an episode of T steps is followed by frame m + 1 unless it is the episode's last.
    """

    rgb: torch.Tensor
    """(M, 3, H, W) uint8."""
    depth: torch.Tensor
    """(M, H, W) float16, metres (non-finite readings replaced by the far value)."""
    proprio: torch.Tensor
    """(M, P) float32, the embodiment's proprioception vector."""
    actions: torch.Tensor
    """(M, A) float32: the command in force from frame m (NaN at an episode's last frame)."""
    valid: torch.Tensor
    """(M,) bool: frame m has a valid command and a next frame."""
    episode: torch.Tensor
    """(M,) int64 index of the frame's episode."""
    step: torch.Tensor
    """(M,) int64 step of the frame within its episode."""
    positions: dict[str, np.ndarray]
    """Ground truth for the probes only: key -> (M, 2) float64 xy, m (NaN where missing)."""
    proprio_names: tuple[str, ...] = ()
    """Labels of the proprioception vector."""
    failed: np.ndarray | None = None
    """(episodes,) bool: the episode's end marker names a failure (fall, collision): what the
    event heads learn from. None: unknown."""
    succeeded: np.ndarray | None = None
    """(episodes,) bool: the episode's end marker names a success: what the goal-conditioned
    policy learns from (`hlai_ros.latent.policy`). None: unknown."""
    goal_rgb: torch.Tensor | None = None
    """(episodes, 3, H, W) uint8: each episode's recorded goal image (zeros where none)."""
    goal_depth: torch.Tensor | None = None
    """(episodes, H, W) float16 metres: its depth."""
    has_goal_image: np.ndarray | None = None
    """(episodes,) bool: the episode's bag holds its goal image."""

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def num_episodes(self) -> int:
        """Number of episodes."""
        return int(self.episode.max().item()) + 1 if len(self) else 0

    def window_starts(self, horizon: int) -> torch.Tensor:
        """(W,) int64 frames that start a window of `horizon` valid commands."""
        ok = self.valid.clone()
        run = ok.to(torch.int64)
        # run[m] = number of consecutive valid commands from m, capped at horizon
        count = torch.zeros_like(run)
        for k in range(horizon):
            shifted = torch.zeros_like(run)
            shifted[:len(run) - k] = run[k:]
            same = torch.zeros_like(ok)
            same[:len(ok) - k] = self.episode[k:] == self.episode[:len(ok) - k]
            count += shifted * same
        return torch.nonzero(count == horizon).flatten()

    def windows(self, starts: torch.Tensor, horizon: int) -> dict[str, torch.Tensor]:
        """Cut windows of `horizon` steps starting at `starts` (B,).

        Returns rgb (B, H+1, 3, h, w) uint8, depth (B, H+1, h, w), proprio (B, H+1, P) and
        actions (B, H, A).
        """
        idx = starts.view(-1, 1) + torch.arange(horizon + 1).view(1, -1)
        return {'rgb': self.rgb[idx], 'depth': self.depth[idx].float(),
                'proprio': self.proprio[idx], 'actions': self.actions[idx[:, :-1]]}

    def same_episode_frames(self, index: torch.Tensor, generator: torch.Generator | None = None
                            ) -> torch.Tensor:
        """(B,) a uniformly random frame of the episode of each frame in `index` (B,)."""
        _, counts = torch.unique_consecutive(self.episode, return_counts=True)
        first = torch.cumsum(counts, 0) - counts
        ep = self.episode[index]
        u = torch.rand(len(index), generator=generator)
        return first[ep] + (u * counts[ep]).long().clamp_max(counts[ep] - 1)

    def frames(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Single frames: rgb (B, 3, h, w) uint8, depth (B, h, w), proprio (B, P)."""
        return {'rgb': self.rgb[index], 'depth': self.depth[index].float(),
                'proprio': self.proprio[index]}

    def subset(self, episodes: Sequence[int]) -> 'LatentDataset':
        """The frames of the listed episodes, renumbered 0..n-1 in the given order."""
        parts = [torch.nonzero(self.episode == e).flatten() for e in episodes]
        index = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
        renum = torch.cat([torch.full((len(p),), i, dtype=torch.int64)
                           for i, p in enumerate(parts)]) if parts else index
        return LatentDataset(self.rgb[index], self.depth[index], self.proprio[index],
                             self.actions[index], self.valid[index], renum, self.step[index],
                             {k: v[index.numpy()] for k, v in self.positions.items()},
                             self.proprio_names,
                             None if self.failed is None else self.failed[list(episodes)],
                             None if self.succeeded is None
                             else self.succeeded[list(episodes)],
                             *((None, None, None) if self.has_goal_image is None else
                               (self.goal_rgb[list(episodes)], self.goal_depth[list(episodes)],
                                self.has_goal_image[list(episodes)])))

    def fingerprint(self) -> str:
        """SHA-256 of the frames and actions (tells whether a resume sees the same data)."""
        import hashlib
        h = hashlib.sha256()
        for t in (self.rgb, self.depth, self.proprio, self.actions, self.episode):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()


def _positions(ground_truth: list | None, n: int) -> dict[str, np.ndarray]:
    out = {k: np.full((n, 2), np.nan) for k in PROBE_KEYS}
    for t, gt in enumerate(ground_truth or [None] * n):
        for k in PROBE_KEYS:
            if gt and gt.get(k) is not None:
                out[k][t] = np.asarray(gt[k], dtype=np.float64).reshape(-1)[:2]
    return out


def fill_non_finite(depth) -> np.ndarray:
    """Depth (..., H, W) as float32 metres, with its non-finite readings filled.

    Each becomes the array's farthest finite reading (0 when none is finite): what the encoder
    reads as 'nothing nearer'.
    """
    d = np.asarray(depth, dtype=np.float32)
    finite = np.isfinite(d)
    return np.where(finite, d, float(d[finite].max()) if finite.any() else 0.0)


def dataset_from_episodes(episodes: Sequence) -> LatentDataset:
    """Build a `LatentDataset` from `hlai_ros.data.Episode` objects (one task, one camera).

    Raises:
        ValueError: no episodes, or episodes of different image or vector shapes.

    """
    if not episodes:
        raise ValueError('no episodes to build a latent dataset from')
    shapes = {(e.observations['rgb'].shape[1:], e.observations['proprio'].shape[1:],
               e.actions.shape[1:]) for e in episodes}
    if len(shapes) > 1:
        raise ValueError(f'episodes differ in image, proprioception or action shapes: '
                         f'{sorted(map(str, shapes))}')
    rgb, depth, proprio, actions, valid, episode, step = [], [], [], [], [], [], []
    positions: dict[str, list[np.ndarray]] = {k: [] for k in PROBE_KEYS}
    for n, e in enumerate(episodes):
        obs = e.observations
        m = obs['rgb'].shape[0]
        rgb.append(np.ascontiguousarray(obs['rgb'].transpose(0, 3, 1, 2)))
        depth.append(fill_non_finite(obs['depth']).astype(np.float16))
        p = obs['proprio'].astype(np.float32)
        proprio.append(np.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0))
        a = np.full((m, e.actions.shape[1]), np.nan, dtype=np.float32)
        a[:m - 1] = e.actions
        ok = np.zeros(m, dtype=bool)
        ok[:m - 1] = np.asarray(e.action_valid, dtype=bool) & np.isfinite(e.actions).all(1)
        ok[:m - 1] &= np.isfinite(p[:-1]).all(1) & np.isfinite(p[1:]).all(1)
        actions.append(np.where(ok[:, None], a, np.nan).astype(np.float32))
        valid.append(ok)
        episode.append(np.full(m, n, dtype=np.int64))
        step.append(np.arange(m, dtype=np.int64))
        for k, v in _positions(e.ground_truth, m).items():
            positions[k].append(v)
    cat = np.concatenate
    size = rgb[0].shape[1:]
    goal_rgb = np.zeros((len(episodes), *size), np.uint8)
    goal_depth = np.zeros((len(episodes), *size[1:]), np.float16)
    has_goal = np.zeros(len(episodes), bool)
    for n, e in enumerate(episodes):
        g = getattr(e, 'goal_image', None)
        if g is not None and g['rgb'].shape[:2] == size[1:]:
            goal_rgb[n] = g['rgb'].transpose(2, 0, 1)
            goal_depth[n] = fill_non_finite(g['depth'])
            has_goal[n] = True
    return LatentDataset(torch.from_numpy(cat(rgb)), torch.from_numpy(cat(depth)),
                         torch.from_numpy(cat(proprio)), torch.from_numpy(cat(actions)),
                         torch.from_numpy(cat(valid)), torch.from_numpy(cat(episode)),
                         torch.from_numpy(cat(step)),
                         {k: cat(v) for k, v in positions.items()},
                         tuple(episodes[0].proprio_names),
                         *(np.array([bool((getattr(e, 'metadata', None) or {}).get(key))
                                     for e in episodes]) for key in ('failure', 'success')),
                         torch.from_numpy(goal_rgb), torch.from_numpy(goal_depth), has_goal)


def load_dataset(path: str | Path, progress: bool = False) -> LatentDataset:
    """Load every bag under `path` (`hlai_ros.data.load_episodes`) into a `LatentDataset`."""
    from hlai_ros.data import load_episodes
    return dataset_from_episodes(load_episodes(path, progress=progress))


def split_by_episode(n_episodes: int, val_fraction: float, seed: int = 0
                     ) -> tuple[list[int], list[int]]:
    """Episode indices (train, validation); at least one of each when there are two."""
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = int(round(val_fraction * n_episodes))
    if val_fraction > 0 and n_episodes >= 2:
        n_val = min(max(n_val, 1), n_episodes - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
