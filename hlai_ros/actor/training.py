"""Training the critic and the policy of a learned world model, from recorded trajectories.

Two stages (`ActorTraining.run`, which `train_critic_and_policy` and every Ray Train rank of
`hlai_ros.scale.actor` step alike):

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

from dataclasses import asdict, dataclass, field
import functools
import json
from pathlib import Path
import time
from typing import Sequence

import numpy as np
import torch

from hlai_ros.actor.policy import Policy, PolicyConfig, PolicyTrainer
from hlai_ros.cost.critic import Critic, CriticConfig, CriticTrainer
from hlai_ros.world_model.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
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


ACTOR_STATE_STEM = 'actor_state'
"""Stem of the training state of critic and policy (`ActorTraining.save_state`): a Ray run's
checkpoints hold it beside critic.json and policy.json; a local run writes none."""
ACTOR_STATE_FORMAT = 'hlai_actor_train_state'


class _PresetLatents:
    """The world model, except that `sample_z` returns latents drawn beforehand (once)."""

    def __init__(self, model: Dynamics):
        self.model = model
        self.preset: torch.Tensor | None = None

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z, self.preset = self.preset, None
        if z is None:
            return self.model.sample_z(n, generator=generator)
        if z.shape[1] != n:
            raise RuntimeError(f'preset latents for {z.shape[1]} starts, asked for {n}')
        return z

    def __getattr__(self, name):
        return getattr(self.model, name)


class _RoutedCritic:
    """The critic, with `members` (the TD update's forward pass) routed through `members`."""

    def __init__(self, critic: Critic, members):
        self.critic, self._members = critic, members

    def members(self, *args, **kwargs):
        return self._members(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.critic(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.critic, name)


class ActorTraining:
    """Critic and policy training as a state stepped one update at a time.

    The local run (`train_critic_and_policy`) and every Ray Train rank
    (`hlai_ros.scale.actor`) build it alike from the same data and seed, so all draw the same
    minibatches and imagined latents from one seeded stream. With ``size`` > 1 each rank
    trains on its ``rank``-th share of every minibatch (`share`); `synchronise` routes the
    gradient-bearing forward passes through DistributedDataParallel, which combines the ranks'
    gradients into the whole minibatch's. The state (`save_state`, `load_state`) holds
    everything needed to continue bit for bit: weights, the critic's target, both optimisers,
    the stream and the losses so far.
    """

    def __init__(self, model: Dynamics, policy_cost, trajectories: Sequence[ValueTrajectory],
                 action_low, action_high, config: ActorTrainingConfig = ActorTrainingConfig(),
                 rank: int = 0, size: int = 1, device: str | torch.device = 'cpu'):
        if not 0 <= rank < size:
            raise ValueError(f'need 0 <= rank < size, got rank {rank} of {size}')
        self.config, self.rank, self.size, self.model = config, rank, size, model
        self.device = torch.device(device)
        self.started = time.perf_counter()
        self.generator = torch.Generator().manual_seed(config.seed)
        # minibatches are drawn on the CPU, the imagined latents where the model is (the same
        # stream as the minibatches' on the CPU, as a local run draws them)
        self.latent_generator = self.generator if self.device.type == 'cpu' else \
            torch.Generator(self.device).manual_seed(config.seed)
        torch.manual_seed(config.seed)
        longest = max((len(tr.costs) for tr in trajectories), default=0)
        self.states, self.costs, self.dones, self.goals = (
            None if t is None else t.to(self.device)
            for t in windows(trajectories, max(1, min(config.window, longest))))
        s_dim = self.states.shape[-1]
        self.critic = Critic(s_dim, config.critic).to(self.device)
        self.critic.set_normalization(self.states, self.costs, None if self.goals is None
                                      else self.goals.unsqueeze(1))
        self.critic_trainer = CriticTrainer(self.critic)
        self.policy = Policy(s_dim, action_low, action_high, config.policy).to(self.device)
        self.starts = self.states[:, :-1].reshape(-1, s_dim)
        self.start_goals = None if self.goals is None else self.goals.unsqueeze(1).expand(
            -1, self.states.shape[1] - 1, -1).reshape(-1, self.goals.shape[-1])
        self.policy.set_normalization(self.starts, self.start_goals)
        self._dynamics = _PresetLatents(model)
        self.policy_trainer = PolicyTrainer(self.policy, self._dynamics, policy_cost,
                                            self.critic_trainer)
        self.critic_losses: list[float] = []
        self.policy_losses: list[float] = []
        self.critic_done = False
        """The critic stage is over (all its steps, or half the time budget)."""
        self.fraction = 1.0
        """This rank's share of the current minibatch (its size over the whole one's)."""

    def share(self, n: int) -> torch.Tensor:
        """Positions in a minibatch of `n` that this rank trains on; sets `fraction`.

        Rank r takes positions r, r + size, ...; a rank left without one (n < size) takes
        position 0 with fraction 0, so that it still joins the gradient all-reduce.
        """
        mine = torch.arange(n)[self.rank::self.size]
        self.fraction = len(mine) / n
        return mine if len(mine) else torch.zeros(1, dtype=torch.long)

    def seconds(self) -> float:
        """Time spent on this training (including before a resume), s."""
        return time.perf_counter() - self.started

    def critic_step(self) -> float:
        """One TD(lambda) update on a minibatch of recorded windows; returns its loss."""
        b = self.states.shape[0]
        idx = torch.randint(b, (min(self.critic.config.batch_size, b),),
                            generator=self.generator)
        idx = idx[self.share(len(idx))].to(self.device)
        return self.critic_trainer.update(
            self.states[idx], self.costs[idx], self.dones[idx],
            None if self.goals is None else self.goals[idx])

    def policy_step(self) -> float:
        """One policy update through the model (and one critic update on its rollouts)."""
        b = self.starts.shape[0]
        idx = torch.randint(b, (min(self.policy.config.batch_size, b),),
                            generator=self.generator)
        # the latents of the whole minibatch, as a local run's rollout draws them
        z = self.model.sample_z(len(idx), generator=self.latent_generator)
        mine = self.share(len(idx))
        self._dynamics.preset = z[:, mine.to(z.device)]
        idx = idx[mine].to(self.device)
        return self.policy_trainer.update(
            self.starts[idx], self.generator,
            None if self.start_goals is None else self.start_goals[idx])

    def synchronise(self, wrap) -> None:
        """Route the critic's and the policy's training forward passes through `wrap`.

        ``wrap(module, forward)`` returns a callable that runs ``forward`` with the gradients
        of ``module``'s parameters combined over the ranks (a DistributedDataParallel wrapper).
        """
        self.critic_trainer.critic = _RoutedCritic(
            self.critic, wrap(self.critic, self.critic.members))
        self.policy_trainer.objective = wrap(
            self.policy, functools.partial(PolicyTrainer.objective, self.policy_trainer))

    def run(self, progress: bool = False, over_budget=None, after_step=None) -> None:
        """Run (or continue) both stages to their step counts or time budgets.

        over_budget(limit_s) -> bool decides after each step whether the stage's budget is
        spent (default: `seconds` > limit_s); after_step(stage, ended) runs after every
        step (ended False) and when a stage ends (ended True), stage 'critic' or 'policy'.
        """
        c = self.config
        over_budget = over_budget or (lambda limit: self.seconds() > limit)
        stages = ((self.critic_step, self.critic_losses, c.critic_steps, c.time_budget_s / 2,
                   'critic TD(lambda)'),
                  (self.policy_step, self.policy_losses, c.policy_steps, c.time_budget_s,
                   'policy through the model'))
        for i, (step, losses, steps, limit, desc) in enumerate(stages):
            if i == 0 and self.critic_done:
                continue
            bar = _bar(progress, steps, desc)
            if bar is not None:
                bar.update(len(losses))
            while len(losses) < steps:
                losses.append(step())
                _tick(bar, losses[-1])
                if after_step is not None:
                    after_step(('critic', 'policy')[i], False)
                if over_budget(limit):
                    break
            _close(bar)
            if i == 0:
                self.critic_done = True
            if after_step is not None:
                after_step(('critic', 'policy')[i], True)

    def result(self) -> ActorTrainingResult:
        """The trained networks (eval mode, no gradients) and their loss curves."""
        self.critic.eval().requires_grad_(False)
        self.policy.eval().requires_grad_(False)
        return ActorTrainingResult(self.critic, self.policy, list(self.critic_losses),
                                   list(self.policy_losses), self.seconds())

    def save_state(self, directory: str | Path) -> Path:
        """Write the training state (`ACTOR_STATE_STEM`) into `directory`."""
        tensors = {'rng.generator': self.generator.get_state(),
                   'rng.latents': self.latent_generator.get_state()}
        for prefix, module in (('critic', self.critic), ('target', self.critic_trainer.target),
                               ('policy', self.policy)):
            tensors.update({f'{prefix}.{k}': v for k, v in module.state_dict().items()})
        for prefix, optimizer in (('critic_optim', self.critic_trainer.optimizer),
                                  ('policy_optim', self.policy_trainer.optimizer)):
            for pid, state in optimizer.state_dict()['state'].items():
                tensors.update({f'{prefix}.{pid}.{k}': torch.as_tensor(v)
                                for k, v in state.items()})
        header = {'format': ACTOR_STATE_FORMAT, 'version': 1,
                  'config': json.loads(json.dumps(asdict(self.config))),
                  'progress': {'critic_losses': self.critic_losses,
                               'policy_losses': self.policy_losses,
                               'critic_done': self.critic_done, 'seconds': self.seconds()}}
        return write_checkpoint(Path(directory), ACTOR_STATE_STEM, tensors, header)

    def load_state(self, directory: str | Path) -> bool:
        """Continue from a state `save_state` wrote into `directory`; False when it has none."""
        if not (Path(directory) / f'{ACTOR_STATE_STEM}.json').is_file():
            return False
        tensors, header = read_checkpoint(Path(directory), ACTOR_STATE_STEM)
        if header.get('format') != ACTOR_STATE_FORMAT or header.get('config') != json.loads(
                json.dumps(asdict(self.config))):
            raise CheckpointError(f'{directory}: the critic and policy training state was made '
                                  'with other settings')
        for prefix, module in (('critic', self.critic), ('target', self.critic_trainer.target),
                               ('policy', self.policy)):
            module.load_state_dict({k[len(prefix) + 1:]: v for k, v in tensors.items()
                                    if k.startswith(f'{prefix}.')})
        for prefix, optimizer in (('critic_optim', self.critic_trainer.optimizer),
                                  ('policy_optim', self.policy_trainer.optimizer)):
            state: dict[int, dict] = {}
            for name, value in tensors.items():
                if name.startswith(f'{prefix}.'):
                    _, pid, key = name.split('.', 2)
                    state.setdefault(int(pid), {})[key] = value
            optimizer.load_state_dict({'state': state,
                                       'param_groups': optimizer.state_dict()['param_groups']})
        self.generator.set_state(tensors['rng.generator'])
        self.latent_generator.set_state(tensors['rng.latents'])
        saved = header['progress']
        self.critic_losses[:] = saved['critic_losses']
        self.policy_losses[:] = saved['policy_losses']
        self.critic_done = saved['critic_done']
        self.started = time.perf_counter() - saved['seconds']
        return True


def train_critic_and_policy(model: Dynamics, policy_cost, trajectories: Sequence[ValueTrajectory],
                            action_low, action_high,
                            config: ActorTrainingConfig = ActorTrainingConfig(),
                            progress: bool = True) -> ActorTrainingResult:
    """Train a critic on recorded trajectories, then a policy (and the critic) in imagination.

    `policy_cost` is the Cost the policy minimises in imagined rollouts (the task cost without
    scene-specific terms, since imagined starts have no perceived scene of their own).
    `hlai_ros.scale.actor.train_actor_ray` runs the same training data-parallel on Ray.
    """
    training = ActorTraining(model, policy_cost, trajectories, action_low, action_high, config)
    training.run(progress)
    return training.result()


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


def train_critic_on_features(critic: Critic, trajectories: Sequence[ValueTrajectory],
                             steps: int = 3000, window: int = 32, seed: int = 0,
                             time_budget_s: float = 600.0) -> list[float]:
    """TD(lambda) on trajectories whose ``states`` are the critic's features (T+1, F).

    For a critic that sees the scene ('path' features): each trajectory's features were read
    in its own scene (`hlai_ros.tasks.pipeline.critic_trajectories`), recorded or imagined.
    Fits the critic's normalisation to them, then runs `steps` minibatch updates (or until
    the budget); returns the losses. The critic is left in eval mode without gradients.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    longest = max((len(tr.costs) for tr in trajectories), default=0)
    feats, costs, dones, _ = windows(trajectories, max(1, min(window, longest)))
    critic.set_normalization(None, costs, features=feats)
    trainer = CriticTrainer(critic)
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(feats.shape[0], (min(critic.config.batch_size, feats.shape[0]),),
                            generator=generator)
        losses.append(trainer.update_features(feats[idx], costs[idx], dones[idx]))
        if time.perf_counter() - start > time_budget_s:
            break
    critic.eval().requires_grad_(False)
    return losses
