"""World-model checkpoints: safetensors for tensors, a plain JSON file for everything else.

A checkpoint is a directory holding `<stem>.json` and `<stem>-<sha>.safetensors`. The JSON names
the weights file and its SHA-256, and is the commit point: a save writes the new weights under a
new name (temp file + os.replace), then replaces the JSON (temp file + os.replace), then removes
the old weights. A save that fails at any point leaves the previous checkpoint loadable. No
pickle anywhere: loading never executes code from the file.

The weights file is self-describing too (the config and a hash of the tensors are in its
safetensors metadata), so a single `.safetensors` file can be shipped and loaded on its own.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import tempfile
from typing import Any

from safetensors import safe_open
from safetensors.torch import save as safetensors_save
import torch

from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel

FORMAT = 'hlai_world_model'
TRAIN_STATE_FORMAT = 'hlai_world_model_train_state'
VERSION = 1
MODEL_STEM = 'world_model'
TRAIN_STATE_STEM = 'train_state'


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, tampered with, or does not match what was expected."""


IDENTITY_KEYS = ('task', 'embodiment', 'representation', 'state_names', 'action_names')
"""What a checkpoint says it was trained for (``metadata['identity']``,
`hlai_ros.tasks.base.Task.identity`)."""


def describe_identity(identity: dict[str, Any]) -> str:
    """One line naming a checkpoint identity: task, robot, representation, layouts."""
    return (f"task {identity.get('task')!r} on {identity.get('embodiment')!r}, "
            f"{identity.get('representation')} representation, state "
            f"{list(identity.get('state_names') or [])}, actions "
            f"{list(identity.get('action_names') or [])}")


def check_identity(where: Path | str, found: dict[str, Any] | None,
                   expected: dict[str, Any]) -> None:
    """Refuse a checkpoint whose identity is missing or differs from `expected`.

    Raises:
        CheckpointError: naming what the checkpoint is for and what was expected.

    """
    if not isinstance(found, dict):
        raise CheckpointError(f'{where} carries no identity (task, embodiment, representation, '
                              f'state and action names), so it cannot be checked against '
                              f'{describe_identity(expected)}; retrain it with hlai train')
    differs = [k for k in IDENTITY_KEYS if found.get(k) != expected.get(k)]
    if differs:
        raise CheckpointError(f'{where} was trained for {describe_identity(found)}; it cannot '
                              f'be loaded for {describe_identity(expected)} (differs in '
                              f'{", ".join(differs)})')


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path via a temp file in the same directory and os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of tensors, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_checkpoint(directory: Path, stem: str, tensors: dict[str, torch.Tensor],
                     header: dict[str, Any]) -> Path:
    """Atomically save tensors and a JSON header as `<stem>.json` + weights; return the JSON."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    header = dict(header, tensors_sha256=tensors_sha256(tensors))
    data = safetensors_save(tensors, metadata={'header': json.dumps(header)})
    sha = hashlib.sha256(data).hexdigest()
    weights = f'{stem}-{sha[:16]}.safetensors'
    atomic_write_bytes(directory / weights, data)
    index = dict(header, weights=weights, sha256=sha)
    atomic_write_bytes(directory / f'{stem}.json',
                       (json.dumps(index, indent=2, sort_keys=True) + '\n').encode())
    for old in directory.glob(f'{stem}-*.safetensors'):
        if old.name != weights:
            old.unlink(missing_ok=True)
    return directory / f'{stem}.json'


def _read_safetensors(path: Path, expected_sha: str | None = None
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a weights file; return its tensors and header."""
    if not path.is_file():
        raise CheckpointError(f'checkpoint weights file {path} is missing')
    data = path.read_bytes()
    if expected_sha is not None and hashlib.sha256(data).hexdigest() != expected_sha:
        raise CheckpointError(f'checkpoint weights file {path} does not match the SHA-256 in its '
                              f'JSON index: it was truncated, modified or replaced')
    try:
        tensors, metadata = {}, None
        with safe_open(str(path), framework='pt') as f:
            metadata = f.metadata() or {}
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
        header = json.loads(metadata['header'])
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure means a bad file
        raise CheckpointError(f'{path} is not a readable hlai checkpoint (truncated or corrupt '
                              f'safetensors file?): {err}') from err
    if tensors_sha256(tensors) != header.get('tensors_sha256'):
        raise CheckpointError(f'the tensors in {path} do not match the hash in its header: the '
                              f'file was modified')
    return tensors, header


def read_checkpoint(path: Path, stem: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load tensors and header from a checkpoint directory, its JSON, or a bare weights file."""
    path = Path(path)
    if path.suffix == '.safetensors':
        return _read_safetensors(path)
    index_path = path / f'{stem}.json' if path.is_dir() else path
    if not index_path.is_file():
        raise CheckpointError(f'no checkpoint at {path}: expected a directory with {stem}.json, '
                              f'a {stem}.json file or a .safetensors file')
    try:
        index = json.loads(index_path.read_text())
        weights, sha = index['weights'], index['sha256']
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f'{index_path} is not a valid checkpoint index (truncated or '
                              f'edited JSON?): {err}') from err
    if Path(weights).name != weights:
        raise CheckpointError(f'{index_path} names weights outside its directory: {weights!r}')
    tensors, header = _read_safetensors(index_path.parent / weights, sha)
    for key, value in header.items():
        if index.get(key) != value:
            raise CheckpointError(f'{index_path} disagrees with its weights file on {key!r}: '
                                  f'the JSON was edited')
    return tensors, header


def save_world_model(model: WorldModel, directory: str | Path,
                     metadata: dict[str, Any] | None = None) -> Path:
    """Save model weights, normalisers and config into `directory`; return the JSON path.

    metadata (JSON-able: task, state names, data size, command) is stored with the config.
    """
    header = {'format': FORMAT, 'version': VERSION, 'config': model.config.to_dict(),
              'metadata': metadata or {}}
    return write_checkpoint(Path(directory), MODEL_STEM, model.state_dict(), header)


def check_state_dict(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: Path
                      ) -> None:
    """Raise CheckpointError naming missing, unexpected or mis-shaped tensors."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f'{k}: file {tuple(tensors[k].shape)}, config {expected[k]}'
              for k in sorted(set(expected) & set(tensors))
              if tuple(tensors[k].shape) != expected[k]]
    if missing or unexpected or shapes:
        raise CheckpointError(f'{where} does not match its config: missing {missing}, '
                              f'unexpected {unexpected}, wrong shapes {shapes}')


def load_world_model(path: str | Path, device: str | torch.device | None = None,
                     expect: dict[str, int] | None = None,
                     identity: dict[str, Any] | None = None) -> WorldModel:
    """Load a world model saved by save_world_model (directory, its JSON, or weights file).

    expect, e.g. {'state_dim': 9, 'action_dim': 2}, checks the model fits its user; `identity`
    (`hlai_ros.tasks.base.Task.identity`) checks that it was trained for the task, robot and
    layouts at hand (`check_identity`). A mismatch raises CheckpointError. The model is returned
    in eval mode on `device` (default: CPU).
    """
    path = Path(path)
    tensors, header = read_checkpoint(path, MODEL_STEM)
    if header.get('format') != FORMAT or header.get('version') != VERSION:
        raise CheckpointError(f'{path} is not a version-{VERSION} {FORMAT} checkpoint (format '
                              f'{header.get("format")!r}, version {header.get("version")!r})')
    try:
        config = WorldModelConfig.from_dict(header['config'])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f'{path} holds an invalid world model config: {err}') from err
    if identity is not None:
        check_identity(path, (header.get('metadata') or {}).get('identity'), identity)
    for key, value in (expect or {}).items():
        if getattr(config, key) != value:
            raise CheckpointError(f'{path} has {key}={getattr(config, key)}, expected {value}')
    model = WorldModel(config)
    check_state_dict(model, tensors, path)
    model.load_state_dict(tensors)
    model.checkpoint_metadata = header.get('metadata', {})
    return model.to(device or 'cpu').eval()


def save_training_state(directory: str | Path, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        extra_tensors: dict[str, torch.Tensor], progress: dict[str, Any],
                        stem: str = TRAIN_STATE_STEM, format_name: str = TRAIN_STATE_FORMAT
                        ) -> Path:
    """Save everything needed to resume training: weights, optimiser, RNG and progress.

    `model` is any module with a ``config.to_dict()`` (the world model, the latent model);
    `stem` and `format_name` name its training state's files and format.
    """
    tensors = {f'model.{k}': v for k, v in model.state_dict().items()}
    tensors.update({f'extra.{k}': v for k, v in extra_tensors.items()})
    tensors['rng.generator'] = generator.get_state()
    opt = optimizer.state_dict()
    scalars = {}
    for pid, state in opt['state'].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f'optim.{pid}.{key}'] = value
            else:
                scalars[f'{pid}.{key}'] = value
    header = {'format': format_name, 'version': VERSION,
              'config': model.config.to_dict(), 'param_groups': opt['param_groups'],
              'optim_scalars': scalars, 'progress': progress}
    return write_checkpoint(Path(directory), stem, tensors, header)


def load_training_state(directory: str | Path, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        ignore: tuple[str, ...] = (), stem: str = TRAIN_STATE_STEM,
                        format_name: str = TRAIN_STATE_FORMAT
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Restore a state saved by save_training_state; return (extra tensors, progress) or None.

    None means there is nothing to resume in `directory`. A state made with another config
    (apart from the fields named in `ignore`) raises CheckpointError.
    """
    directory = Path(directory)
    if not (directory / f'{stem}.json').is_file():
        return None
    tensors, header = read_checkpoint(directory, stem)
    if header.get('format') != format_name or header.get('version') != VERSION:
        raise CheckpointError(f'{directory} holds a training state of another format')
    saved = {k: v for k, v in (header.get('config') or {}).items() if k not in ignore}
    if saved != {k: v for k, v in model.config.to_dict().items() if k not in ignore}:
        raise CheckpointError(f'the training state in {directory} was made with another config; '
                              f'use another out_dir or resume=False')
    weights = {k[len('model.'):]: v for k, v in tensors.items() if k.startswith('model.')}
    check_state_dict(model, weights, directory)
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
    extra = {k[len('extra.'):]: v for k, v in tensors.items() if k.startswith('extra.')}
    return extra, header['progress']
