"""Critic and policy checkpoints, saved next to the world model they were trained through.

Same format as `hlai_ros.world_model.checkpoint`: `<stem>.json` (the commit point, written
last) plus `<stem>-<sha>.safetensors`, both replaced atomically; no pickle. The stems are
`critic` and `policy`, so a task's model folder holds world_model, critic and policy side by
side, and `load_critic(dir)` / `load_policy(dir)` return None when a folder has none.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from hlai_ros.actor.policy import Policy, PolicyConfig
from hlai_ros.cost.critic import Critic, CriticConfig
from hlai_ros.world_model.checkpoint import (
    CheckpointError,
    check_identity,
    read_checkpoint,
    write_checkpoint,
)

CRITIC_STEM, POLICY_STEM = 'critic', 'policy'
CRITIC_FORMAT, POLICY_FORMAT = 'hlai_critic', 'hlai_policy'
VERSION = 1


def _config_dict(config) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def _from_dict(cls, values: dict[str, Any]):
    known = set(cls.__dataclass_fields__)
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in values.items() if k in known})


def save_critic(critic: Critic, directory: str | Path,
                metadata: dict[str, Any] | None = None) -> Path:
    """Atomically write critic.json + critic-<sha>.safetensors into directory."""
    header = {'format': CRITIC_FORMAT, 'version': VERSION, 'state_dim': critic.state_dim,
              'config': _config_dict(critic.config), 'metadata': metadata or {}}
    return write_checkpoint(Path(directory), CRITIC_STEM, critic.state_dict(), header)


def save_policy(policy: Policy, directory: str | Path,
                metadata: dict[str, Any] | None = None) -> Path:
    """Atomically write policy.json + policy-<sha>.safetensors into directory."""
    low = (policy.action_mid - policy.action_half).tolist()
    high = (policy.action_mid + policy.action_half).tolist()
    header = {'format': POLICY_FORMAT, 'version': VERSION, 'state_dim': policy.state_dim,
              'action_low': low, 'action_high': high, 'config': _config_dict(policy.config),
              'metadata': metadata or {}}
    return write_checkpoint(Path(directory), POLICY_STEM, policy.state_dict(), header)


def _read(path: Path, stem: str, fmt: str) -> tuple[dict, dict] | None:
    path = Path(path)
    if path.is_dir() and not (path / f'{stem}.json').is_file():
        return None
    tensors, header = read_checkpoint(path, stem)
    if header.get('format') != fmt:
        raise CheckpointError(f'{path}: expected a {fmt} checkpoint, got format '
                              f'{header.get("format")!r}')
    return tensors, header


def _load_into(module: torch.nn.Module, tensors: dict, path: Path) -> None:
    expected = module.state_dict()
    if set(tensors) != set(expected) or any(
            tensors[k].shape != expected[k].shape for k in expected):
        raise CheckpointError(f'{path}: tensors do not match the network its JSON describes')
    module.load_state_dict(tensors)


def _load(path: Path, stem: str, fmt: str, expect_state_dim: int | None, device, build,
          identity: dict | None = None):
    """Read `stem` in folder `path`, check it, build the network and load it (None: absent)."""
    read = _read(path, stem, fmt)
    if read is None:
        return None
    tensors, header = read
    if identity is not None:
        check_identity(path / f'{stem}.json', (header.get('metadata') or {}).get('identity'),
                       identity)
    if expect_state_dim is not None and header['state_dim'] != expect_state_dim:
        raise CheckpointError(f'{path}: {stem} for {header["state_dim"]} state entries, '
                              f'expected {expect_state_dim}')
    module = build(header)
    _load_into(module, tensors, path)
    return module.to(device or 'cpu').eval().requires_grad_(False)


def load_critic(path: str | Path, device: str | torch.device | None = None,
                expect_state_dim: int | None = None,
                identity: dict | None = None) -> Critic | None:
    """The critic saved in a folder (None when it has no critic.json), in eval mode.

    `identity` refuses one trained for another task or layout (`check_identity`).
    """
    return _load(Path(path), CRITIC_STEM, CRITIC_FORMAT, expect_state_dim, device,
                 lambda h: Critic(h['state_dim'], _from_dict(CriticConfig, h['config'])),
                 identity)


def load_policy(path: str | Path, device: str | torch.device | None = None,
                expect_state_dim: int | None = None,
                identity: dict | None = None) -> Policy | None:
    """The policy saved in a folder (None when it has no policy.json), in eval mode.

    `identity` refuses one trained for another task or layout (`check_identity`).
    """
    return _load(Path(path), POLICY_STEM, POLICY_FORMAT, expect_state_dim, device,
                 lambda h: Policy(h['state_dim'], h['action_low'], h['action_high'],
                                  _from_dict(PolicyConfig, h['config'])), identity)
