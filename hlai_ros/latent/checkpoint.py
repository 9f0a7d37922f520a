"""Latent world-model checkpoints, in the state model's format (`hlai_ros.world_model.checkpoint`).

A checkpoint directory holds ``latent_model.json`` (the commit point: config, metadata with the
identity, the weights file's name and SHA-256) and ``latent_model-<sha>.safetensors``; saves
are atomic (temp file + os.replace) and loads never run code from the file. The resumable
training state is ``latent_train_state.json`` + weights, written the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.world_model import checkpoint as world_model_checkpoint
from hlai_ros.world_model.checkpoint import (
    CheckpointError,
    check_identity,
    check_state_dict,
    read_checkpoint,
    write_checkpoint,
)

FORMAT = 'hlai_latent_model'
TRAIN_STATE_FORMAT = 'hlai_latent_train_state'
VERSION = 1
MODEL_STEM = 'latent_model'
TRAIN_STATE_STEM = 'latent_train_state'


def save_latent_model(model: LatentWorldModel, directory: str | Path,
                      metadata: dict[str, Any] | None = None) -> Path:
    """Save weights, normalisers and config into `directory`; return the JSON path.

    metadata should carry ``identity`` (`hlai_ros.tasks.base.Task.identity('latent')`).
    """
    header = {'format': FORMAT, 'version': VERSION, 'config': model.config.to_dict(),
              'metadata': metadata or {}}
    return write_checkpoint(Path(directory), MODEL_STEM, model.state_dict(), header)


def load_latent_model(path: str | Path, identity: dict[str, Any] | None = None
                      ) -> LatentWorldModel:
    """Load a model saved by `save_latent_model` (directory, JSON or weights file), in eval mode.

    Raises:
        CheckpointError: the file is missing, corrupt, of another format, or (with `identity`)
            trained for another task, robot or representation.

    """
    path = Path(path)
    tensors, header = read_checkpoint(path, MODEL_STEM)
    if header.get('format') != FORMAT or header.get('version') != VERSION:
        raise CheckpointError(f'{path} is not a version-{VERSION} {FORMAT} checkpoint (format '
                              f'{header.get("format")!r}, version {header.get("version")!r})')
    if identity is not None:
        check_identity(path, (header.get('metadata') or {}).get('identity'), identity)
    try:
        config = LatentConfig.from_dict(header['config'])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f'{path} holds an invalid latent model config: {err}') from err
    model = LatentWorldModel(config)
    check_state_dict(model, tensors, path)
    model.load_state_dict(tensors)
    model.checkpoint_metadata = header.get('metadata', {})
    return model.eval()


def save_training_state(directory: str | Path, model: LatentWorldModel,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        progress: dict[str, Any]) -> Path:
    """Save what a resume needs: weights, optimiser state, RNG state and progress."""
    return world_model_checkpoint.save_training_state(
        directory, model, optimizer, generator, {}, progress, TRAIN_STATE_STEM,
        TRAIN_STATE_FORMAT)


def load_training_state(directory: str | Path, model: LatentWorldModel,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        ignore: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Restore a state saved by `save_training_state`; return its progress, or None if absent.

    Raises:
        CheckpointError: the state was made with another config (fields in `ignore` aside).

    """
    loaded = world_model_checkpoint.load_training_state(
        directory, model, optimizer, generator, ignore, TRAIN_STATE_STEM, TRAIN_STATE_FORMAT)
    return None if loaded is None else loaded[1]
