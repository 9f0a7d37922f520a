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
from hlai_ros.world_model.checkpoint import (
    CheckpointError,
    check_identity,
    read_checkpoint,
    write_checkpoint,
)

FORMAT = 'hlai_latent_model'
TRAIN_STATE_FORMAT = 'hlai_latent_train_state'
VERSION = 1
MODEL_STEM = 'latent_model'
TRAIN_STATE_STEM = 'latent_train_state'


def _check_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        shapes = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise CheckpointError(f'{where} does not match its config: missing {missing}, '
                              f'unexpected {unexpected}, wrong shapes {shapes}')


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
    _check_tensors(model, tensors, path)
    model.load_state_dict(tensors)
    model.checkpoint_metadata = header.get('metadata', {})
    return model.eval()


def save_training_state(directory: str | Path, model: LatentWorldModel,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        progress: dict[str, Any]) -> Path:
    """Save what a resume needs: weights, optimiser state, RNG state and progress."""
    tensors = {f'model.{k}': v for k, v in model.state_dict().items()}
    tensors['rng.generator'] = generator.get_state()
    opt = optimizer.state_dict()
    scalars = {}
    for pid, state in opt['state'].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f'optim.{pid}.{key}'] = value
            else:
                scalars[f'{pid}.{key}'] = value
    header = {'format': TRAIN_STATE_FORMAT, 'version': VERSION,
              'config': model.config.to_dict(), 'param_groups': opt['param_groups'],
              'optim_scalars': scalars, 'progress': progress}
    return write_checkpoint(Path(directory), TRAIN_STATE_STEM, tensors, header)


def load_training_state(directory: str | Path, model: LatentWorldModel,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        ignore: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Restore a state saved by `save_training_state`; return its progress, or None if absent.

    Raises:
        CheckpointError: the state was made with another config (fields in `ignore` aside).

    """
    directory = Path(directory)
    if not (directory / f'{TRAIN_STATE_STEM}.json').is_file():
        return None
    tensors, header = read_checkpoint(directory, TRAIN_STATE_STEM)
    if header.get('format') != TRAIN_STATE_FORMAT or header.get('version') != VERSION:
        raise CheckpointError(f'{directory} holds a training state of another format')
    saved = {k: v for k, v in (header.get('config') or {}).items() if k not in ignore}
    if saved != {k: v for k, v in model.config.to_dict().items() if k not in ignore}:
        raise CheckpointError(f'the training state in {directory} was made with another '
                              f'config; use another output directory or resume=False')
    weights = {k[len('model.'):]: v for k, v in tensors.items() if k.startswith('model.')}
    _check_tensors(model, weights, directory)
    model.load_state_dict(weights)
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith('optim.'):
            _, pid, key = name.split('.', 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in header['optim_scalars'].items():
        pid, key = name.split('.', 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({'state': state, 'param_groups': header['param_groups']})
    generator.set_state(tensors['rng.generator'])
    return header['progress']
