"""Decoded-episode cache, so that repeated epochs do not re-parse bags.

One ``.npz`` file per bag (uncompressed, no pickles) in the cache directory:
``$HLAI_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/hlai_ros/episodes``, else
``~/.cache/hlai_ros/episodes``. The key hashes the cache format version, the bag's absolute
path, the size and modification time of each of its files (so a bag that grows or is rewritten
is parsed again) and the alignment settings. Entries are never reused for a changed bag, but
stale ones stay on disk: clear them with `clear_cache()` or by deleting the directory
(``rm -rf ~/.cache/hlai_ros/episodes``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import tempfile
from typing import Any

import numpy as np

from hlai_ros.data.episode import Episode

CACHE_FORMAT = 2
"""Bump when the decoded layout or the alignment rules change."""


def default_cache_dir() -> Path:
    """Return the cache directory (see the module docstring)."""
    if os.environ.get('HLAI_CACHE_DIR'):
        return Path(os.environ['HLAI_CACHE_DIR'])
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'hlai_ros' / 'episodes'


def clear_cache(directory: str | Path | None = None) -> int:
    """Delete every cached bag in `directory` (default: the default cache); return how many."""
    directory = Path(directory) if directory else default_cache_dir()
    removed = 0
    for f in directory.glob('*.npz'):
        f.unlink(missing_ok=True)
        removed += 1
    return removed


def cache_key(files: list[Path], settings: Any) -> str:
    """Return the key of a bag made of `files`, read with `settings` (a repr-able config)."""
    parts: list[Any] = [CACHE_FORMAT, repr(settings)]
    for f in files:
        st = Path(f).stat()
        parts.append([str(Path(f).resolve()), st.st_size, st.st_mtime_ns])
        meta = Path(f).parent / 'metadata.yaml'
        if meta.exists():
            mst = meta.stat()
            parts.append([str(meta.resolve()), mst.st_size, mst.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


class EpisodeCache:
    """Stores and finds the decoded episodes of bags.

    Args:
        directory: where the .npz files live (default: `default_cache_dir()`).

    """

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()

    def path(self, key: str) -> Path:
        """Return the file of a key."""
        return self.directory / f'{key}.npz'

    def load(self, key: str) -> tuple[list[Episode], dict] | None:
        """Return (episodes, extra info) for `key`, or None on a miss or a damaged entry."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays.pop('__meta__')))
            episodes = [_episode_from(arrays, f'e{i}_', m)
                        for i, m in enumerate(meta['episodes'])]
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            path.unlink(missing_ok=True)
            return None
        return episodes, meta['extra']

    def store(self, key: str, episodes: list[Episode], extra: dict) -> None:
        """Write the entry of `key` atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        metas = []
        for i, e in enumerate(episodes):
            p = f'e{i}_'
            arrays[p + 'stamps'] = e.stamps
            for k, v in e.observations.items():
                arrays[p + k] = v
            arrays[p + 'actions'] = e.actions
            arrays[p + 'valid'] = e.action_valid
            arrays[p + 'K'] = e.K
            if e.T_world_camera is not None:
                arrays[p + 'T'] = e.T_world_camera
            if e.ground_truth is not None:
                arrays[p + 'gt'] = np.array([json.dumps(g) for g in e.ground_truth])
            if e.goal_image is not None:
                arrays[p + 'goal_image_rgb'] = e.goal_image['rgb']
                arrays[p + 'goal_image_depth'] = e.goal_image['depth']
            metas.append({'source': e.source, 'index': e.index,
                          'proprio_names': list(e.proprio_names), 'metadata': e.metadata,
                          'observations': list(e.observations)})
        arrays['__meta__'] = np.array(json.dumps({'episodes': metas, 'extra': extra}))
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez(f, **arrays)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _episode_from(arrays: dict, p: str, m: dict) -> Episode:
    gt = arrays.get(p + 'gt')
    return Episode(
        source=m['source'], index=m['index'], stamps=arrays[p + 'stamps'],
        observations={k: arrays[p + k] for k in m['observations']},
        actions=arrays[p + 'actions'], action_valid=arrays[p + 'valid'],
        proprio_names=tuple(m['proprio_names']), K=arrays[p + 'K'],
        T_world_camera=arrays.get(p + 'T'), metadata=m['metadata'],
        ground_truth=None if gt is None else [json.loads(str(s)) for s in gt],
        goal_image=({'rgb': arrays[p + 'goal_image_rgb'], 'depth': arrays[p + 'goal_image_depth']}
                    if p + 'goal_image_rgb' in arrays else None))
