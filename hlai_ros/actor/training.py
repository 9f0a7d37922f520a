"""Training the critic and the policy of a learned world model, from recorded trajectories.

Two stages, read top to bottom in `train_critic_and_policy`:

1. the critic V(s) learns by TD(lambda) on recorded trajectories, cut into fixed-length
   windows, with their per-step task costs (a window that ends the episode in success or
   failure owes nothing after it);
2. the policy P(s) learns by backprop through imagined rollouts of the frozen world model from
   recorded start states, and every policy step also gives the critic one TD(lambda) step on
   those imagined rollouts.

Goals enter both networks when their configs set `goal_relative_indices` (one network serves
every goal); then each trajectory carries its goal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import Sequence

import numpy as np
import torch

from hlai_ros.actor.policy import Policy, PolicyConfig, PolicyTrainer
from hlai_ros.cost.critic import Critic, CriticConfig, CriticTrainer
from hlai_ros.world_model.protocol import Dynamics


@dataclass(frozen=True)
class ValueTrajectory:
    """A recorded trajectory with its costs: what TD(lambda) learns from."""

    states: np.ndarray
    """States s[0..T], float32 (T+1, S)."""
    costs: np.ndarray
    """Cost of each step c[0..T-1], float32 (T,), cost units."""
    terminal: bool = False
    """Nothing is owed after the last step (the episode ended in success or failure)."""
    goal: np.ndarray | None = None
    """Goal (P,) of the trajectory, for goal-relative critics and policies."""


@dataclass(frozen=True)
class ActorTrainingConfig:
    """Settings of critic and policy training."""

    critic: CriticConfig = CriticConfig()
    """Critic network and TD(lambda) settings."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Policy network and training-through-the-model settings."""
    window: int = 32
    """Length of the recorded windows TD(lambda) trains on, steps (at most the longest run)."""
    critic_steps: int = 1500
    """TD(lambda) updates on recorded windows."""
    policy_steps: int = 300
    """Policy updates through the model (each with one critic update on imagined rollouts)."""
    time_budget_s: float = 300.0
    """Wall-clock budget of both stages together, seconds (each stage gets half)."""
    seed: int = 0
    """Seed of minibatch sampling and imagined latents."""

    def __post_init__(self):
        if self.window < 1 or self.critic_steps < 0 or self.policy_steps < 0:
            raise ValueError(f'need window >= 1 and non-negative step counts, got '
                             f'{self.window}, {self.critic_steps}, {self.policy_steps}')


@dataclass
class ActorTrainingResult:
    """The trained networks and their loss curves."""

    critic: Critic
    policy: Policy
    critic_losses: list[float]
    """TD loss (normalised) of each update on recorded windows."""
    policy_losses: list[float]
    """Imagined cost of each policy update."""
    seconds: float


def windows(trajectories: Sequence[ValueTrajectory], length: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Cut trajectories into windows: states (B, L+1, S), costs (B, L), dones (B, L), goals.

    Windows step by L/2. A trajectory shorter than L is padded after its end (repeated last
    state, zero cost, done) when it is terminal, and dropped otherwise (nothing to bootstrap
    from). The last window of a terminal trajectory is done at its final step.
    """
    states, costs, dones, goals = [], [], [], []
    stride = max(1, length // 2)
    for tr in trajectories:
        n = len(tr.costs)
        if tr.states.shape[0] != n + 1:
            raise ValueError(f'a trajectory needs states (T+1, S) for costs (T,), got '
                             f'{tr.states.shape} and {tr.costs.shape}')
        if n < length:
            if not tr.terminal or n == 0:
                continue
            pad = length - n
            s = np.concatenate([tr.states, np.repeat(tr.states[-1:], pad, 0)])
            c = np.concatenate([tr.costs, np.zeros(pad, np.float32)])
            d = np.zeros(length, np.float32)
            d[n - 1:] = 1.0
            starts = [(0, s, c, d)]
        else:
            starts = []
            offsets = list(range(0, n - length + 1, stride))
            if offsets[-1] != n - length:
                offsets.append(n - length)
            for o in offsets:
                d = np.zeros(length, np.float32)
                if tr.terminal and o + length == n:
                    d[-1] = 1.0
                starts.append((o, tr.states[o:o + length + 1], tr.costs[o:o + length], d))
        for _, s, c, d in starts:
            states.append(s)
            costs.append(c)
            dones.append(d)
            goals.append(tr.goal)
    if not states:
        raise ValueError(f'no trajectory is long enough for windows of {length} steps (or '
                         'terminal)')
    goal_t = None if goals[0] is None else torch.as_tensor(np.stack(goals), dtype=torch.float32)
    return (torch.as_tensor(np.stack(states), dtype=torch.float32),
            torch.as_tensor(np.stack(costs), dtype=torch.float32),
            torch.as_tensor(np.stack(dones), dtype=torch.float32), goal_t)


def train_critic_and_policy(model: Dynamics, policy_cost, trajectories: Sequence[ValueTrajectory],
                            action_low, action_high,
                            config: ActorTrainingConfig = ActorTrainingConfig(),
                            progress: bool = True) -> ActorTrainingResult:
    """Train a critic on recorded trajectories, then a policy (and the critic) in imagination.

    `policy_cost` is the Cost the policy minimises in imagined rollouts (the task cost without
    scene-specific terms, since imagined starts have no perceived scene of their own).
    """
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    longest = max((len(tr.costs) for tr in trajectories), default=0)
    states, costs, dones, goals = windows(trajectories, max(1, min(config.window, longest)))
    s_dim = states.shape[-1]
    critic = Critic(s_dim, config.critic)
    critic.set_normalization(states, costs, None if goals is None else goals.unsqueeze(1))
    critic_trainer = CriticTrainer(critic)
    bar = _bar(progress, config.critic_steps, 'critic TD(lambda)')
    critic_losses = []
    for _ in range(config.critic_steps):
        critic_losses += critic_trainer.fit(states, costs, dones, steps=1, generator=gen,
                                            goals=goals)
        _tick(bar, critic_losses[-1])
        if time.perf_counter() - start > config.time_budget_s / 2:
            break
    _close(bar)

    policy = Policy(s_dim, action_low, action_high, config.policy)
    starts = states[:, :-1].reshape(-1, s_dim)
    start_goals = None if goals is None else goals.unsqueeze(1).expand(
        -1, states.shape[1] - 1, -1).reshape(-1, goals.shape[-1])
    policy.set_normalization(starts, start_goals)
    trainer = PolicyTrainer(policy, model, policy_cost, critic_trainer)
    bar = _bar(progress, config.policy_steps, 'policy through the model')
    policy_losses = []
    for _ in range(config.policy_steps):
        policy_losses += trainer.fit(starts, 1, generator=gen, goals=start_goals)
        _tick(bar, policy_losses[-1])
        if time.perf_counter() - start > config.time_budget_s:
            break
    _close(bar)
    critic.eval().requires_grad_(False)
    policy.eval().requires_grad_(False)
    return ActorTrainingResult(critic, policy, critic_losses, policy_losses,
                               time.perf_counter() - start)


def _bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='step', leave=False)


def _tick(bar, loss: float) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f'{loss:.3g}')


def _close(bar) -> None:
    if bar is not None:
        bar.close()
