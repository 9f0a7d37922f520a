"""Train the world model from episodes: bootstrap ensemble, multi-step loss, early stopping.

Reads top to bottom: check the data, split by episode, fit the normalisers, cut windows, draw
each member's bootstrap, then epochs of AdamW steps with a validation pass, saving the best
model and a resumable training state to out_dir.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
import time
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from hlai_ros.world_model.augment import random_angles, rotate_windows, turned_transitions
from hlai_ros.world_model.checkpoint import (
    load_training_state,
    load_world_model,
    save_training_state,
    save_world_model,
)
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.dataset import (
    as_episodes,
    episodes_fingerprint,
    make_windows,
    split_episodes,
    transitions,
)
from hlai_ros.world_model.model import WorldModel, default_device
from hlai_ros.world_model.objective import multistep_error, window_loss

BUDGET_FIELDS = ('max_epochs', 'time_budget_s', 'patience', 'checkpoint_every')
"""Config fields that only bound the training run; a resume may change them."""


@dataclass
class TrainingHistory:
    """Per-epoch figures of a training run (errors are normalised multi-step MSE)."""

    train_loss: list[float] = field(default_factory=list)
    """Mean training objective per epoch (prediction + beta * KL + reward)."""

    train_kl: list[float] = field(default_factory=list)
    """Mean KL(q(z | window) || N(0, I)) per window, nats, per epoch."""

    val_error: list[float] = field(default_factory=list)
    """Validation multi-step error with z = posterior mean of each window (early-stop signal)."""

    val_error_prior: list[float] = field(default_factory=list)
    """Validation multi-step error with z = 0, the prior mean (what a planner starts from)."""

    epoch_seconds: list[float] = field(default_factory=list)
    """Wall time of each epoch, seconds (training and validation)."""

    best_epoch: int = -1
    """Index of the epoch whose weights were kept."""

    stop_reason: str = ''
    """Why training ended: patience, max_epochs or time_budget."""

    train_windows: int = 0
    """Number of training windows (before bootstrapping)."""

    val_windows: int = 0
    """Number of validation windows."""

    train_transitions: int = 0
    """Number of transitions in the training episodes."""

    device: str = ''
    """Device the model was trained on."""

    def to_dict(self) -> dict[str, Any]:
        """Return the history as plain JSON-able values."""
        return asdict(self)


def _state_copy(model: WorldModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def stopping(config, bad_epochs: int, epoch_seconds: Sequence[float], epochs: int) -> str:
    """Why a training run stops now: 'patience', 'time_budget', 'max_epochs', or '' (go on).

    config: settings with ``patience``, ``time_budget_s`` (0: none) and ``max_epochs`` (the
    world model's, the latent model's).
    """
    if bad_epochs >= config.patience:
        return 'patience'
    if config.time_budget_s and sum(epoch_seconds) >= config.time_budget_s:
        return 'time_budget'
    if epochs >= config.max_epochs:
        return 'max_epochs'
    return ''


@dataclass
class TrainingRun:
    """What a world-model training run starts from (`prepare_training`)."""

    model: WorldModel
    train_windows: Any
    val_windows: Any
    val_context: Any
    """Validation windows' same-episode context (latent_context 'episode'), else None."""
    by_episode: bool
    history: TrainingHistory
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    """The run's sampling stream (bootstrap, epoch order)."""
    bootstrap: torch.Tensor
    """(E, W) each member's bootstrap of the training windows."""


def fitting_transitions(episodes, config: WorldModelConfig) -> tuple:
    """The transitions the normalisers are fitted on.

    As recorded, or turned as training turns its windows (`WorldModelConfig.augment_rotation`).
    """
    states, actions, next_states, rewards = transitions(episodes)
    if config.augment_rotation > 0:
        states, actions, next_states = turned_transitions(states, actions, next_states, config,
                                                          config.seed)
    return states, actions, next_states, rewards


def training_batch(windows, index: torch.Tensor, config: WorldModelConfig, by_episode: bool,
                   generator: torch.Generator):
    """The windows at `index` (E, B) and what the posterior sees of them.

    The context is another window of the same episode (`latent_context` 'episode'), else None;
    with `augment_rotation` both are turned by one random angle per window.
    """
    context = windows.select(windows.same_episode(index, generator)) if by_episode else None
    batch = windows.select(index)
    if config.augment_rotation > 0:
        angle = random_angles(tuple(index.shape), config.augment_rotation, index.device,
                              generator)
        batch = rotate_windows(batch, angle, config)
        if context is not None:
            context = rotate_windows(context, angle, config)
    return batch, context


def prepare_training(episodes, config: WorldModelConfig, device: torch.device,
                     device_label: str) -> TrainingRun:
    """The start of a training run, in the order that fixes its random numbers.

    Split by episode, seed, build the model with its normalisers, cut the windows, draw the
    bootstrap: shared by a local run (`train_world_model`) and every Ray Train rank
    (`hlai_ros.scale.train`), so that both draw the same numbers.
    """
    c = config
    train_eps, val_eps = split_episodes(episodes, c.val_fraction, c.seed)
    if not val_eps:
        val_eps = train_eps
    torch.manual_seed(c.seed)
    model = WorldModel(c)
    model.fit_normalizers(*fitting_transitions(train_eps, c))
    model.to(device)
    train_w = make_windows(train_eps, c.train_horizon, c.window_stride).to(device)
    val_w = make_windows(val_eps, c.train_horizon, c.window_stride)
    by_episode = c.latent_context == 'episode'
    val_ctx = val_w.select(val_w.same_episode()) if by_episode else None
    history = TrainingHistory(train_windows=len(train_w), val_windows=len(val_w),
                              train_transitions=sum(len(ep) for ep in train_eps),
                              device=device_label)
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.learning_rate,
                                  weight_decay=c.weight_decay)
    generator = torch.Generator(device=device).manual_seed(c.seed)
    n_windows = len(train_w)
    bootstrap = torch.randint(0, n_windows, (c.ensemble_size, n_windows), device=device,
                              generator=generator)
    return TrainingRun(model, train_w, val_w, val_ctx, by_episode, history, optimizer,
                       generator, bootstrap)


def train_world_model(episodes: Sequence[Any], config: WorldModelConfig,
                      out_dir: str | Path | None = None, progress: bool = True,
                      resume: bool = True, device: str | torch.device | None = None,
                      metadata: dict[str, Any] | None = None
                      ) -> tuple[WorldModel, TrainingHistory]:
    """Train G(s, a, z) on episodes and return (best model in eval mode, history).

    episodes: Episode objects, mappings or (states (T+1, S), actions (T, A)[, rewards (T,)])
    tuples. With out_dir, the best model is saved there (safetensors + JSON) whenever the
    validation error improves, and the training state every config.checkpoint_every epochs; a
    later call with the same data and config resumes from it (budget fields may differ).
    With a single episode or val_fraction 0, validation uses the training windows.
    """
    c = config
    episodes = as_episodes(episodes)
    s_dim, a_dim = episodes[0].states.shape[1], episodes[0].actions.shape[1]
    if (s_dim, a_dim) != (c.state_dim, c.action_dim):
        raise ValueError(f'episodes have state size {s_dim} and action size {a_dim}; the config '
                         f'expects {c.state_dim} and {c.action_dim}')
    device = torch.device(device) if device is not None else default_device()
    run = prepare_training(episodes, c, device, str(device))
    model, train_w, val_w, val_ctx = run.model, run.train_windows, run.val_windows, run.val_context
    history, optimizer, generator, bootstrap = (run.history, run.optimizer, run.generator,
                                                run.bootstrap)
    by_episode, n_windows = run.by_episode, len(train_w)
    fingerprint = episodes_fingerprint(episodes)
    best_val, bad_epochs, start_epoch, finished = float('inf'), 0, 0, False
    best_state = _state_copy(model)
    out_dir = Path(out_dir) if out_dir is not None else None

    if out_dir is not None and resume:
        loaded = load_training_state(out_dir, model, optimizer, generator,
                                     ignore=BUDGET_FIELDS)
        if loaded is not None:
            extra, saved = loaded
            if saved['fingerprint'] != fingerprint:
                raise ValueError(f'{out_dir} holds a training state for other episodes; use '
                                 f'another out_dir or resume=False')
            bootstrap = extra['bootstrap'].to(device)
            history = TrainingHistory(**saved['history'])
            best_val, bad_epochs = saved['best_val'], saved['bad_epochs']
            start_epoch = len(history.val_error)
            if history.best_epoch >= 0:
                best_state = load_world_model(out_dir, device=device).state_dict()

    def stop_reason() -> str:
        return stopping(c, bad_epochs, history.epoch_seconds, len(history.val_error))

    finished = start_epoch > 0 and bool(stop_reason())

    def save_state() -> None:
        if out_dir is not None:
            save_training_state(out_dir, model, optimizer, generator, {'bootstrap': bootstrap},
                                {'fingerprint': fingerprint, 'history': history.to_dict(),
                                 'best_val': best_val, 'bad_epochs': bad_epochs})

    per_epoch = min(n_windows, c.max_windows_per_epoch)
    bar = tqdm(range(start_epoch, c.max_epochs), desc='world model', unit='epoch',
               disable=not progress or finished, initial=start_epoch, total=c.max_epochs)
    try:
        for epoch in ([] if finished else bar):
            history.stop_reason = ''
            t0 = time.monotonic()
            model.train()
            order = torch.rand(c.ensemble_size, n_windows, device=device,
                               generator=generator).argsort(dim=1)[:, :per_epoch]
            sums = torch.zeros(2, device=device)
            n_batches = 0
            spent = sum(history.epoch_seconds)
            for i in range(0, per_epoch, c.batch_size):
                if c.time_budget_s and spent + time.monotonic() - t0 >= c.time_budget_s:
                    break  # the budget ends inside an epoch: validate what there is, stop

                index = bootstrap.gather(1, order[:, i:i + c.batch_size])
                batch, context = training_batch(train_w, index, c, by_episode, generator)
                terms = window_loss(model, batch, generator, context=context)
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                if c.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
                optimizer.step()
                sums += torch.stack([terms.total.detach(), terms.kl.detach()])
                n_batches += 1
            model.eval()
            val = multistep_error(model, val_w, 'posterior', context=val_ctx)
            val_prior = multistep_error(model, val_w, 'prior') if c.latent_dim > 0 else val
            mean_loss, mean_kl = (sums / max(n_batches, 1)).tolist()
            history.train_loss.append(mean_loss)
            history.train_kl.append(mean_kl)
            history.val_error.append(val)
            history.val_error_prior.append(val_prior)
            history.epoch_seconds.append(time.monotonic() - t0)
            if val < best_val:
                best_val, bad_epochs, history.best_epoch = val, 0, epoch
                best_state = _state_copy(model)
                if out_dir is not None:
                    save_world_model(model, out_dir, dict(metadata or {},
                                                          best_epoch=epoch, val_error=val))
            else:
                bad_epochs += 1
            bar.set_postfix(loss=f'{mean_loss:.4f}', val=f'{val:.4f}', best=f'{best_val:.4f}')
            history.stop_reason = stop_reason()
            if history.stop_reason or (epoch + 1) % c.checkpoint_every == 0:
                save_state()
            if history.stop_reason:
                break
    finally:
        bar.close()
    model.load_state_dict(best_state)
    return model.eval(), history
