"""Online learning: keep training the world model on new transitions without forgetting.

Each update step trains on a mix of recent transitions (a ring buffer) and a reservoir of old
ones: a uniform sample (Vitter's algorithm R) of the original training data and of every
transition that has left the recent buffer. `replay_ratio` is the share of old transitions in
each batch, so the old data stays in the objective and its error cannot drift far unchecked.
The loss is the training objective on one-step windows. With the default
latent_context='episode', z for a transition is inferred from `context_size` other transitions
of the same store (recent transitions: the regime the robot is in now; the reservoir: old
data), so z keeps meaning "what is constant over a stretch of experience"; with 'window' it is
inferred from the transition itself. The normalisers stay those fitted on the original data.
"""
from __future__ import annotations

import random
from typing import Any, Sequence

import torch

from hlai_ros.world_model.dataset import Episode, Windows, transitions
from hlai_ros.world_model.model import WorldModel
from hlai_ros.world_model.objective import window_loss


class _TransitionStore:
    """Fixed-capacity tensors of transitions (s, a, s_next, r) on one device."""

    def __init__(self, capacity: int, s_dim: int, a_dim: int, device: torch.device):
        self.capacity, self.size = capacity, 0
        self.s = torch.zeros(capacity, s_dim, device=device)
        self.a = torch.zeros(capacity, a_dim, device=device)
        self.s2 = torch.zeros(capacity, s_dim, device=device)
        self.r = torch.zeros(capacity, device=device)

    def put(self, i: int, s, a, s2, r) -> None:
        self.s[i], self.a[i], self.s2[i], self.r[i] = s, a, s2, r

    def windows(self, index: torch.Tensor) -> Windows:
        """One-step windows for index (E, B): states (E, B, 2, S), actions (E, B, 1, A)."""
        states = torch.stack([self.s[index], self.s2[index]], dim=2)
        return Windows(states, self.a[index].unsqueeze(2),
                       torch.ones(*index.shape, 1, device=index.device),
                       self.r[index].unsqueeze(2))


class OnlineLearner:
    """Update a trained WorldModel in place from a stream of transitions, with replay."""

    def __init__(self, model: WorldModel, buffer_size: int = 10000, replay_ratio: float = 0.5,
                 reservoir: Sequence[Any] | None = None, reservoir_size: int = 20000,
                 batch_size: int = 256, learning_rate: float | None = None, seed: int = 0,
                 context_size: int = 16):
        """Wrap `model`.

        buffer_size: recent transitions kept; replay_ratio in [0, 1): share of each batch drawn
        from the reservoir of old transitions; reservoir: the original training episodes (see
        `hlai_ros.world_model.dataset.as_episode`), of which a uniform sample of reservoir_size
        transitions is kept; learning_rate defaults to the model's config; context_size:
        transitions the posterior of z sees per sample (latent_context 'episode').
        """
        if not 0.0 <= replay_ratio < 1.0:
            raise ValueError(f'replay_ratio must be in [0, 1), got {replay_ratio}')
        if buffer_size < 1 or reservoir_size < 1 or batch_size < 1:
            raise ValueError('buffer_size, reservoir_size and batch_size must be >= 1')
        self.model, self.replay_ratio, self.batch_size = model, replay_ratio, batch_size
        self.context_size = max(int(context_size), 1)
        dev = model.device
        s_dim, a_dim = model.state_dim, model.action_dim
        self.recent = _TransitionStore(buffer_size, s_dim, a_dim, dev)
        self.old = _TransitionStore(reservoir_size, s_dim, a_dim, dev)
        self._next_recent = 0
        self._old_seen = 0
        self._rng = random.Random(seed)
        self.generator = torch.Generator(device=dev).manual_seed(seed)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=learning_rate or model.config.learning_rate,
            weight_decay=model.config.weight_decay)
        if reservoir is not None:
            s, a, s2, r = transitions(reservoir)
            r = torch.zeros(s.shape[0]) if r is None else r
            # A uniform sample without replacement is what algorithm R keeps after M items.
            keep = torch.randperm(s.shape[0], generator=torch.Generator().manual_seed(seed))
            keep = keep[:reservoir_size]
            n = keep.numel()
            self.old.s[:n], self.old.a[:n] = s[keep].to(dev), a[keep].to(dev)
            self.old.s2[:n], self.old.r[:n] = s2[keep].to(dev), r[keep].to(dev)
            self.old.size, self._old_seen = n, s.shape[0]

    def __len__(self) -> int:
        """Number of recent transitions held."""
        return self.recent.size

    def _to_reservoir(self, s, a, s2, r) -> None:
        """Algorithm R: every old transition ends up in the reservoir with equal probability."""
        self._old_seen += 1
        if self.old.size < self.old.capacity:
            self.old.put(self.old.size, s, a, s2, r)
            self.old.size += 1
            return
        j = self._rng.randrange(self._old_seen)
        if j < self.old.capacity:
            self.old.put(j, s, a, s2, r)

    def add(self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor,
            r: torch.Tensor | float | None = None) -> None:
        """Add transitions: s (S,) or (M, S), a (A,) or (M, A), s_next like s, r () or (M,)."""
        dev = self.model.device
        s = torch.as_tensor(s, dtype=torch.float32, device=dev).reshape(-1, self.model.state_dim)
        a = torch.as_tensor(a, dtype=torch.float32, device=dev).reshape(-1, self.model.action_dim)
        s2 = torch.as_tensor(s_next, dtype=torch.float32, device=dev).reshape(
            -1, self.model.state_dim)
        if not s.shape[0] == a.shape[0] == s2.shape[0]:
            raise ValueError(f'add expects as many states, actions and next states, got '
                             f'{s.shape[0]}, {a.shape[0]} and {s2.shape[0]}')
        if r is None and self.model.reward_head is not None:
            raise ValueError('the model predicts reward: add(s, a, s_next, r) needs r')
        r = torch.zeros(s.shape[0], device=dev) if r is None else torch.as_tensor(
            r, dtype=torch.float32, device=dev).reshape(-1).expand(s.shape[0])
        for i in range(s.shape[0]):
            k = self._next_recent
            if self.recent.size == self.recent.capacity:
                self._to_reservoir(self.recent.s[k].clone(), self.recent.a[k].clone(),
                                   self.recent.s2[k].clone(), float(self.recent.r[k]))
            self.recent.put(k, s[i], a[i], s2[i], r[i])
            self.recent.size = min(self.recent.size + 1, self.recent.capacity)
            self._next_recent = (k + 1) % self.recent.capacity

    def _draw(self, store: _TransitionStore, n: int
              ) -> tuple[Windows, tuple[torch.Tensor, ...]] | None:
        """N transitions per member as one-step windows, and context sets (E, n, C, ...)."""
        if n == 0 or store.size == 0:
            return None
        e, dev = self.model.ensemble_size, self.model.device
        index = torch.randint(0, store.size, (e, n), device=dev, generator=self.generator)
        ctx = torch.randint(0, store.size, (e, n, self.context_size), device=dev,
                            generator=self.generator)
        return store.windows(index), (store.s[ctx], store.a[ctx], store.s2[ctx])

    def update(self, steps: int = 1) -> dict[str, float]:
        """Take `steps` optimiser steps on mixed batches; return the mean loss terms."""
        if self.recent.size == 0:
            raise ValueError('OnlineLearner.update: no new transitions yet; call add() first')
        n_old = int(round(self.batch_size * self.replay_ratio)) if self.old.size else 0
        n_new = self.batch_size - n_old
        model = self.model
        model.train()
        total = {'loss': 0.0, 'prediction': 0.0, 'kl': 0.0}
        for _ in range(steps):
            parts = [w for w in (self._draw(self.recent, n_new), self._draw(self.old, n_old))
                     if w is not None]
            batch = Windows(*(torch.cat([getattr(p[0], f) for p in parts], dim=1)
                              for f in ('states', 'actions', 'mask', 'rewards')))
            posterior = None
            if model.config.latent_context == 'episode':
                posterior = model.posterior_from_transitions(
                    *(torch.cat([p[1][i] for p in parts], dim=1) for i in range(3)))
            terms = window_loss(model, batch, self.generator, posterior=posterior)
            self.optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            if model.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), model.config.grad_clip)
            self.optimizer.step()
            total['loss'] += float(terms.total.detach()) / steps
            total['prediction'] += float(terms.prediction.detach()) / steps
            total['kl'] += float(terms.kl.detach()) / steps
        model.eval()
        return total


@torch.no_grad()
def rehearsal_transitions(model: WorldModel, count: int, action_low: Sequence[float],
                          action_high: Sequence[float], seed: int = 0) -> list[Episode]:
    """Transitions that replay what `model` knows, as a reservoir when its data is not at hand.

    Pseudo-rehearsal (Robins, 1995): states drawn from N(mean, std) of the model's training
    states (its input normaliser), actions uniform within [action_low, action_high], next
    states (and rewards, if it predicts them) the model's own ensemble-mean prediction with z
    at its prior mean 0. Given to `OnlineLearner` as `reservoir`, they hold the model near its
    starting function away from the live data. Returns `count` one-step episodes: states
    (2, S), actions (1, A), physical units.
    """
    if count < 1:
        raise ValueError(f'count must be >= 1, got {count}')
    low = torch.as_tensor(action_low, dtype=torch.float32)
    high = torch.as_tensor(action_high, dtype=torch.float32)
    if low.shape != (model.action_dim,) or high.shape != low.shape or not bool(
            (low <= high).all()):
        raise ValueError(f'action bounds must be {model.action_dim} values each with low <= '
                         f'high, got {low.tolist()} and {high.tolist()}')
    generator = torch.Generator().manual_seed(seed)
    s_dim = model.state_dim
    mean = model.next_norm.mean.cpu()  # the states' statistics (the input normaliser's are of
    std = model.next_norm.std.cpu()    # the dynamics' inputs, relative to a frame if it has one)
    states = mean + std * torch.randn(count, s_dim, generator=generator)
    actions = low + (high - low) * torch.rand(count, model.action_dim, generator=generator)
    z = torch.zeros(model.ensemble_size, count, model.latent_dim, device=model.device)
    s, a = states.to(model.device), actions.to(model.device)
    nxt = model.next(s, a, z).mean(0).cpu()
    rewards = (model.reward(s, a).mean(0).cpu().numpy() if model.reward_head is not None
               else None)
    return [Episode(torch.stack([states[i], nxt[i]]).numpy(), actions[i:i + 1].numpy(),
                    None if rewards is None else rewards[i:i + 1])
            for i in range(count)]
