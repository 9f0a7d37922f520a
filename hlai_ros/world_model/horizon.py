"""k-step prediction error against horizon, beside constant-velocity and zero-motion baselines.

Errors are RMS over held-out windows, per state dimension divided by that dimension's standard
deviation over the evaluation states (so dimensions in different units can be averaged), then
averaged over dimensions: 1.0 means an error as large as the state's own spread.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from hlai_ros.world_model.dataset import as_episodes
from hlai_ros.world_model.model import WorldModel


@dataclass(frozen=True)
class HorizonErrors:
    """Normalised RMS error per horizon k = 1..K for the model and the baselines."""

    horizons: list[int]
    """Prediction horizons k, steps."""

    model: list[float]
    """World model (ensemble mean, open loop with the true actions)."""

    constant_velocity: list[float]
    """Positions move at the last velocity (or the last step's change is repeated)."""

    zero_motion: list[float]
    """The state stays as it is."""

    model_per_dim: list[list[float]]
    """World model RMS error per horizon and dimension, in the state's physical units (K, S)."""

    windows: int
    """Number of evaluation windows (start points) per horizon."""

    latent: str
    """How z was set: 'prior' (z = 0), 'sample' (z ~ prior) or 'episode' (episode posterior)."""

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-able values."""
        return asdict(self)


def constant_velocity_forecast(previous: torch.Tensor, current: torch.Tensor, k: torch.Tensor,
                               velocity_of: Mapping[int, int] | None = None,
                               dt: float | None = None) -> torch.Tensor:
    """Constant-velocity forecast k steps ahead: previous, current (B, S), k (K,) -> (B, K, S).

    With velocity_of {position index: velocity index} and the step dt (s), each position moves
    by k dt v and every other entry stays; without it, the last change current - previous is
    repeated k times (constant velocity in every entry).
    """
    k = k.to(current).view(1, -1, 1)
    if velocity_of is None:
        return current.unsqueeze(1) + k * (current - previous).unsqueeze(1)
    if dt is None or dt <= 0:
        raise ValueError('constant_velocity_forecast: a velocity_of mapping needs dt > 0 (s)')
    rate = torch.zeros_like(current)
    for pos, vel in velocity_of.items():
        rate[:, pos] = current[:, vel] * dt
    return current.unsqueeze(1) + k * rate.unsqueeze(1)


@torch.no_grad()
def horizon_errors(model: WorldModel, episodes: Sequence[Any], max_horizon: int,
                   velocity_of: Mapping[int, int] | None = None, dt: float | None = None,
                   latent: str = 'prior', stride: int = 1, seed: int = 0) -> HorizonErrors:
    """k-step errors for k = 1..max_horizon on held-out episodes (arrays, see as_episode).

    Start points t >= 1 (the baseline needs s[t-1]) with t + max_horizon <= T, every `stride`
    steps. latent 'prior' sets z = 0 (the prior mean); 'sample' draws z from the prior per
    window and member (as a sampling planner does; seeded by `seed`); 'episode' uses each
    episode's posterior mean z (hindsight, an upper bound on what inferring z online gives).
    """
    if latent not in ('prior', 'sample', 'episode'):
        raise ValueError(f"latent must be 'prior', 'sample' or 'episode', got {latent!r}")
    if max_horizon < 1:
        raise ValueError(f'max_horizon must be >= 1, got {max_horizon}')
    episodes = as_episodes(episodes)
    dev = model.device
    prev, s0, acts, futures, zs = [], [], [], [], []
    for ep in episodes:
        states = torch.from_numpy(ep.states)
        actions = torch.from_numpy(ep.actions)
        starts = range(1, len(ep) - max_horizon + 1, stride)
        if not len(starts):
            continue
        if latent == 'episode' and model.latent_dim > 0:
            z = model.infer_z(states[None].to(dev), actions[None].to(dev))[:, 0]
        else:
            z = torch.zeros(model.ensemble_size, model.latent_dim, device=dev)
        for t in starts:
            prev.append(states[t - 1])
            s0.append(states[t])
            acts.append(actions[t:t + max_horizon])
            futures.append(states[t + 1:t + max_horizon + 1])
            zs.append(z)
    if not s0:
        raise ValueError(f'no episode is long enough for horizon {max_horizon} (needs more than '
                         f'{max_horizon} transitions)')
    prev, s0, acts, futures = (torch.stack(x) for x in (prev, s0, acts, futures))
    z = torch.stack(zs, dim=1)
    if latent == 'sample':
        z = model.sample_z(z.shape[1], torch.Generator(device=dev).manual_seed(seed))
    pred = []
    for i in range(0, s0.shape[0], 2048):
        sl = slice(i, i + 2048)
        roll = model.rollout(s0[sl].to(dev), acts[sl].to(dev), z[:, sl])
        pred.append(roll[:, :, 1:].mean(dim=0).cpu())
    pred = torch.cat(pred)
    k = torch.arange(1, max_horizon + 1)
    cv = constant_velocity_forecast(prev, s0, k, velocity_of, dt)
    zero = s0.unsqueeze(1).expand_as(futures)
    all_states = torch.cat([torch.from_numpy(ep.states) for ep in episodes])
    scale = all_states.std(dim=0).clamp_min(1e-6)

    def rms(forecast: torch.Tensor) -> torch.Tensor:
        return (forecast - futures).square().mean(dim=0).sqrt()

    def normalised(forecast: torch.Tensor) -> list[float]:
        return (rms(forecast) / scale).mean(dim=-1).tolist()

    return HorizonErrors(k.tolist(), normalised(pred), normalised(cv), normalised(zero),
                         rms(pred).tolist(), int(s0.shape[0]), latent)


def plot_horizon_errors(errors: HorizonErrors, path: str | Path, title: str = '') -> Path:
    """Save a plot of error against horizon (model and baselines) as PNG; return the path."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    ax.plot(errors.horizons, errors.model, 'o-', label='world model')
    ax.plot(errors.horizons, errors.constant_velocity, 's--', label='constant velocity')
    ax.plot(errors.horizons, errors.zero_motion, '^:', label='zero motion')
    ax.set_xlabel('prediction horizon k (steps)')
    ax.set_ylabel('RMS error / state std')
    ax.set_yscale('log')
    ax.set_title(title or f'k-step prediction error ({errors.windows} windows)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def summary_table(errors: HorizonErrors, every: int = 1) -> str:
    """Return a plain-text table of the errors, one row per horizon (every `every` steps)."""
    rows = ['   k    model  const-vel  zero-motion']
    for i, k in enumerate(errors.horizons):
        if k == 1 or k % every == 0 or k == errors.horizons[-1]:
            rows.append(f'{k:4d}  {errors.model[i]:7.4f}  {errors.constant_velocity[i]:9.4f}  '
                        f'{errors.zero_motion[i]:11.4f}')
    return '\n'.join(rows)


def as_array(errors: HorizonErrors) -> np.ndarray:
    """Return (K, 3) errors: model, constant velocity, zero motion."""
    return np.array([errors.model, errors.constant_velocity, errors.zero_motion]).T
