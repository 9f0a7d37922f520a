"""The self-supervised objective: multi-step prediction error plus the latent regulariser.

For a window s[0..H], a[0..H-1] the model infers z ~ q(z | window), unrolls H steps from s[0]
with the true actions and that z, and is scored on every predicted step by the mean squared
error normalised per dimension by the spread of one-step changes (so each dimension counts in
units of "a typical step"). The latent pays beta * KL(q || N(0, I)) per window.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.world_model.dataset import Windows
from hlai_ros.world_model.latent import kl_to_standard_normal
from hlai_ros.world_model.model import WorldModel


@dataclass(frozen=True)
class LossTerms:
    """Scalar parts of the objective (tensors, differentiable)."""

    total: torch.Tensor
    """prediction + beta * kl + reward."""

    prediction: torch.Tensor
    """Normalised multi-step MSE over all predicted steps, dimensions and members."""

    kl: torch.Tensor
    """Mean KL(q(z | window) || N(0, I)) per window, nats."""

    reward: torch.Tensor
    """Normalised reward MSE (0 without a reward head)."""


def _member_batch(model: WorldModel, batch: Windows) -> Windows:
    """Give a batch (B, ...) a leading member dim (E, B, ...)."""
    if batch.states.ndim == 4:
        return batch
    e = model.ensemble_size
    return Windows(*(None if t is None else t.expand(e, *t.shape) for t in (
        batch.states, batch.actions, batch.mask, batch.rewards, batch.episode)))


def prediction_error(model: WorldModel, pred: torch.Tensor, states: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
    """Per-step normalised squared error (E, B, H) of predicted states (E, B, H+1, S), masked."""
    err = ((pred[:, :, 1:] - states[:, :, 1:]) / model.delta_norm.std).square().mean(dim=-1)
    return err * mask


def window_loss(model: WorldModel, batch: Windows, generator: torch.Generator | None = None,
                sample: bool = True, context: Windows | None = None,
                posterior: tuple[torch.Tensor, torch.Tensor] | None = None) -> LossTerms:
    """Objective on a batch of windows: tensors (E, B, H+1, S) etc. or (B, ...) shared by all.

    context (same shapes as batch) is what the posterior sees; None means the batch itself.
    posterior, (mu, log_std) each (E, B, Z), replaces the inference of z from the context.
    sample=False uses the posterior mean instead of a reparameterised draw (for validation).
    """
    batch = _member_batch(model, batch)
    beta = model.config.beta
    if posterior is None:
        ctx = batch if context is None else _member_batch(model, context)
        posterior = model.posterior(ctx.states, ctx.actions, ctx.mask)
    mu, log_std = posterior
    if sample and model.latent_dim > 0:
        eps = torch.randn(mu.shape, device=mu.device, generator=generator)
        z = mu + torch.exp(log_std) * eps
    else:
        z = mu
    pred = model.rollout(batch.states[:, :, 0], batch.actions, z)
    steps = batch.mask.sum().clamp_min(1.0)
    prediction = prediction_error(model, pred, batch.states, batch.mask).sum() / steps
    kl = (kl_to_standard_normal(mu, log_std).mean() if model.latent_dim > 0
          else pred.new_zeros(()))
    reward = pred.new_zeros(())
    if model.reward_head is not None:
        if batch.rewards is None:
            raise ValueError('the model has a reward head but the windows carry no rewards')
        r_pred = model.reward(batch.states[:, :, :-1].flatten(1, 2),
                              batch.actions.flatten(1, 2))
        r_err = (r_pred - batch.rewards.flatten(1, 2)) / model.reward_norm.std
        reward = (r_err.square() * batch.mask.flatten(1, 2)).sum() / steps
    return LossTerms(prediction + beta * kl + reward, prediction, kl, reward)


@torch.no_grad()
def multistep_error(model: WorldModel, windows: Windows, latent: str = 'posterior',
                    batch_size: int = 4096, context: Windows | None = None) -> float:
    """Mean normalised multi-step MSE of all members on `windows` (B, H+1, S) etc.

    latent 'posterior' uses z = posterior mean given `context` (windows aligned with
    `windows`; None = each window itself); 'prior' uses z = 0, the prior mean (what a planner
    knows before seeing the episode).
    """
    if latent not in ('posterior', 'prior'):
        raise ValueError(f"latent must be 'posterior' or 'prior', got {latent!r}")
    total, steps = 0.0, 0.0
    for i in range(0, len(windows), batch_size):
        b = _member_batch(model, windows.select(slice(i, i + batch_size)).to(model.device))
        if latent == 'posterior':
            ctx = b if context is None else _member_batch(
                model, context.select(slice(i, i + batch_size)).to(model.device))
            z = model.infer_z(ctx.states, ctx.actions, ctx.mask)
        else:
            z = b.states.new_zeros(*b.states.shape[:2], model.latent_dim)
        pred = model.rollout(b.states[:, :, 0], b.actions, z)
        total += float(prediction_error(model, pred, b.states, b.mask).sum())
        steps += float(b.mask.sum())
    return total / max(steps, 1.0)
