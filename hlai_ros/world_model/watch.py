"""Hot reload: notice a new world-model checkpoint and load it, keeping the old one on error.

A checkpoint directory's ``world_model.json`` is its commit point (`checkpoint` writes the
weights first, then replaces the JSON atomically), so a watcher only needs to look at the JSON:
when its modification time, size or content hash changes, a new checkpoint is complete. A
checkpoint that fails to load (truncated, tampered with, wrong shapes or dimensions) is
reported in `CheckpointWatcher.last_error` and the caller keeps its current model.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from hlai_ros.world_model.checkpoint import MODEL_STEM, CheckpointError, load_world_model
from hlai_ros.world_model.model import WorldModel


class CheckpointWatcher:
    """Poll a checkpoint for changes; `poll()` returns a newly loaded model or None.

    Args:
        path: A checkpoint directory (holding ``world_model.json``) or its JSON file.
        device: Device the loaded model goes to.
        expect: Config fields the model must have, e.g. ``{'state_dim': 6, 'action_dim': 2}``;
            a checkpoint that disagrees is refused (see `load_world_model`).
        identity: What the model must be trained for (`hlai_ros.tasks.base.Task.identity`);
            a checkpoint for another task or layout is refused.

    """

    def __init__(self, path: str | Path, device: str | torch.device | None = None,
                 expect: dict[str, int] | None = None, identity: dict | None = None):
        path = Path(path)
        self.index = path / f'{MODEL_STEM}.json' if path.suffix != '.json' else path
        self.device, self.expect, self.identity = device, dict(expect or {}), identity
        self.last_error: str = ''
        """Why the last changed checkpoint was refused; empty after a good load."""
        self.loads = 0
        """How many checkpoints `poll` has loaded."""
        self._seen = self._signature()

    def _signature(self) -> tuple | None:
        """(mtime_ns, size, sha256) of the JSON index, or None when it does not exist."""
        try:
            stat = self.index.stat()
            digest = hashlib.sha256(self.index.read_bytes()).hexdigest()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, digest

    def mark_current(self) -> None:
        """Take the checkpoint as it is now as already loaded (after loading it yourself)."""
        self._seen = self._signature()

    def poll(self) -> WorldModel | None:
        """Return the new model if the checkpoint changed and loads; otherwise None.

        A changed checkpoint that does not load sets `last_error` and is not retried until it
        changes again.
        """
        signature = self._signature()
        if signature is None or signature == self._seen:
            return None
        self._seen = signature
        try:
            model = load_world_model(self.index.parent, device=self.device, expect=self.expect,
                                     identity=self.identity)
        except CheckpointError as err:
            self.last_error = str(err)
            return None
        self.last_error = ''
        self.loads += 1
        return model
