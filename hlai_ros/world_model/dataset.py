"""Episodes as arrays, and the H-step training windows cut from them.

The task code turns bags into episodes of perception-estimated states; this module only sees
arrays: states (T+1, S), actions (T, A), optional rewards (T,). Windows never cross an episode
boundary, and the train/validation split is by episode, never by step.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
from typing import Any, Iterable, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Episode:
    """One episode: states (T+1, S), actions (T, A), rewards (T,) or None; float32 arrays."""

    states: np.ndarray
    """States s[0..T] in physical units, (T+1, S)."""

    actions: np.ndarray
    """Actions a[0..T-1], a[t] taken in s[t], (T, A)."""

    rewards: np.ndarray | None = None
    """Rewards r[0..T-1] received for a[t] in s[t], (T,), or None."""

    def __len__(self) -> int:
        """Number T of transitions."""
        return int(self.actions.shape[0])


def as_episode(item: Any, index: int = 0) -> Episode:
    """Return item as a checked Episode.

    item is an Episode, a mapping with keys 'states', 'actions' and optionally 'rewards', an
    object with those attributes, or a tuple (states, actions[, rewards]).
    """
    if isinstance(item, Episode):
        states, actions, rewards = item.states, item.actions, item.rewards
    elif isinstance(item, dict):
        try:
            states, actions = item['states'], item['actions']
        except KeyError as err:
            raise ValueError(f'episode {index}: a mapping needs keys "states" and "actions", '
                             f'got {sorted(item)}') from err
        rewards = item.get('rewards')
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
        states, actions = item[0], item[1]
        rewards = item[2] if len(item) == 3 else None
    elif hasattr(item, 'states') and hasattr(item, 'actions'):
        states, actions, rewards = item.states, item.actions, getattr(item, 'rewards', None)
    else:
        raise ValueError(f'episode {index}: expected an Episode, a mapping, an object with '
                         f'.states/.actions or a tuple (states, actions[, rewards]), got '
                         f'{type(item).__name__}')
    states = np.asarray(states, dtype=np.float32)
    actions = np.asarray(actions, dtype=np.float32)
    if states.ndim != 2 or actions.ndim != 2 or states.shape[0] != actions.shape[0] + 1:
        raise ValueError(f'episode {index}: expected states (T+1, S) and actions (T, A), got '
                         f'{states.shape} and {actions.shape}')
    if actions.shape[0] < 1:
        raise ValueError(f'episode {index}: needs at least one transition')
    if rewards is not None:
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
        if rewards.shape[0] != actions.shape[0]:
            raise ValueError(f'episode {index}: expected rewards ({actions.shape[0]},), got '
                             f'{rewards.shape}')
    for name, arr in (('states', states), ('actions', actions), ('rewards', rewards)):
        if arr is not None and not np.isfinite(arr).all():
            raise ValueError(f'episode {index}: {name} contain NaN or infinite values')
    return Episode(states, actions, rewards)


def as_episodes(items: Iterable[Any]) -> list[Episode]:
    """Check a collection of episodes and that they agree on S, A and on having rewards."""
    episodes = [as_episode(item, i) for i, item in enumerate(items)]
    if not episodes:
        raise ValueError('no episodes given')
    s, a = episodes[0].states.shape[1], episodes[0].actions.shape[1]
    for i, ep in enumerate(episodes):
        if ep.states.shape[1] != s or ep.actions.shape[1] != a:
            raise ValueError(f'episode {i} has state size {ep.states.shape[1]} and action size '
                             f'{ep.actions.shape[1]}; episode 0 has {s} and {a}')
    return episodes


def split_episodes(episodes: Sequence[Episode], val_fraction: float, seed: int = 0
                   ) -> tuple[list[Episode], list[Episode]]:
    """Split by episode into (train, validation); at least one of each when there are two."""
    n = len(episodes)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    val = [episodes[i] for i in sorted(order[:n_val])]
    train = [episodes[i] for i in sorted(order[n_val:])]
    return train, val


def episodes_fingerprint(episodes: Sequence[Episode]) -> str:
    """Return a SHA-256 of the episodes' arrays (to tell whether a resume sees the same data)."""
    h = hashlib.sha256()
    for ep in episodes:
        for arr in (ep.states, ep.actions, ep.rewards):
            if arr is not None:
                h.update(str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Windows:
    """H-step windows cut from episodes, padded at episode ends and masked.

    states (W, H+1, S), actions (W, H, A), mask (W, H) with 1 for a real step, rewards
    (W, H) or None, episode (W,) the index of the episode each window was cut from (or None).
    A window shorter than H (from an episode with fewer steps left) repeats its last state and
    has zero actions where the mask is 0.
    """

    states: torch.Tensor
    actions: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor | None
    episode: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number W of windows."""
        return int(self.states.shape[0])

    def to(self, device: torch.device | str) -> Windows:
        """Return the windows on `device`."""
        return Windows(*(None if t is None else t.to(device) for t in (
            self.states, self.actions, self.mask, self.rewards, self.episode)))

    def select(self, index: torch.Tensor) -> Windows:
        """Return windows at `index` (any shape I...): tensors (I..., H(+1), ...)."""
        return Windows(*(None if t is None else t[index] for t in (
            self.states, self.actions, self.mask, self.rewards, self.episode)))

    def episode_ranges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of the first window of each window's episode, and that episode's window count.

        Returns two (W,) long tensors; windows of one episode must be contiguous (as cut).
        """
        if self.episode is None:
            raise ValueError('these windows do not record their episodes')
        ep = self.episode
        index = torch.arange(len(self), device=ep.device)
        change = torch.ones_like(ep, dtype=torch.bool)
        change[1:] = ep[1:] != ep[:-1]
        first = torch.cummax(torch.where(change, index, torch.zeros_like(index)), dim=0).values
        group = torch.cumsum(change.long(), 0) - 1
        return first, torch.bincount(group)[group]

    def same_episode(self, index: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """For windows `index` (any shape; None = all), a window of the same episode.

        With a generator the partner is drawn uniformly from the episode's windows; without,
        it is the window half an episode's windows away (deterministic, for validation).
        """
        first, count = self.episode_ranges()
        if index is None:
            index = torch.arange(len(self), device=first.device)
        first, count = first[index], count[index]
        if generator is None:
            offset = (index - first + count // 2) % count
        else:
            offset = (torch.rand(index.shape, device=index.device, generator=generator)
                      * count).long().clamp_max(count - 1)
        return first + offset


def make_windows(episodes: Sequence[Episode], horizon: int, stride: int = 1) -> Windows:
    """Cut H-step windows (H = horizon) starting every `stride` steps, within each episode.

    Windows start at t = 0, stride, ... up to T - H (or at 0 only when T <= H); none crosses an
    episode boundary.
    """
    if horizon < 1 or stride < 1:
        raise ValueError(f'horizon and stride must be >= 1, got {horizon} and {stride}')
    episodes = as_episodes(episodes)
    with_rewards = all(ep.rewards is not None for ep in episodes)
    s_list, a_list, m_list, r_list, e_list = [], [], [], [], []
    for i, ep in enumerate(episodes):
        t_len = len(ep)
        starts = np.arange(0, max(t_len - horizon, 0) + 1, stride)
        for t0 in starts:
            n = min(horizon, t_len - t0)
            s = np.repeat(ep.states[t0 + n:t0 + n + 1], horizon + 1, axis=0)
            s[:n + 1] = ep.states[t0:t0 + n + 1]
            a = np.zeros((horizon, ep.actions.shape[1]), np.float32)
            a[:n] = ep.actions[t0:t0 + n]
            m = np.zeros(horizon, np.float32)
            m[:n] = 1.0
            s_list.append(s)
            a_list.append(a)
            m_list.append(m)
            e_list.append(i)
            if with_rewards:
                r = np.zeros(horizon, np.float32)
                r[:n] = ep.rewards[t0:t0 + n]
                r_list.append(r)
    return Windows(torch.from_numpy(np.stack(s_list)), torch.from_numpy(np.stack(a_list)),
                   torch.from_numpy(np.stack(m_list)),
                   torch.from_numpy(np.stack(r_list)) if with_rewards else None,
                   torch.tensor(e_list, dtype=torch.long))


def transitions(episodes: Sequence[Episode]) -> tuple[torch.Tensor, ...]:
    """All transitions: states (M, S), actions (M, A), next states (M, S), rewards (M,) or None."""
    episodes = as_episodes(episodes)
    s = np.concatenate([ep.states[:-1] for ep in episodes])
    a = np.concatenate([ep.actions for ep in episodes])
    s2 = np.concatenate([ep.states[1:] for ep in episodes])
    r = (np.concatenate([ep.rewards for ep in episodes])
         if all(ep.rewards is not None for ep in episodes) else None)
    return (torch.from_numpy(s), torch.from_numpy(a), torch.from_numpy(s2),
            None if r is None else torch.from_numpy(r))
