"""A goal-conditioned policy over planning states: proposals for the latent planner.

A sampling planner with a 16-step horizon rarely finds "walk the hand round the box, then push
it" by chance (BENCHMARKS.md, issue 12: 5% on push with the keypoint goal cost and the
steps-to-goal value alone). The recorded episodes show how it is done. `GoalPolicy` pi(v, g)
learns, by hindsight relabelling (Andrychowicz et al. 2017; goal-conditioned behaviour
cloning, Ghosh et al. 2019), the action the recorded behaviour took in planning state v on its
way to the goal keypoints g, where g is what the episode's *last* frame shows (the encoder's
codes only: no labels, no ground truth). Only episodes that ended in success are used: their
last frame is the goal they were driven to.

The planner rolls the policy through the planning dynamics to propose some of its samples
(`hlai_ros.actor.planner.PlannerConfig.policy_fraction`), as TD-MPC2 mixes policy samples into
MPPI; the cost still chooses. Run alone it is also the stack's fallback for a late plan.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from hlai_ros.actor.policy import action_bounds
from hlai_ros.latent.goal import GoalCost


@dataclass(frozen=True)
class PolicyFitConfig:
    """Settings of the goal-conditioned policy and its training."""

    hidden: int = 256
    """Width of the hidden layers."""
    layers: int = 3
    """Hidden layers."""
    steps: int = 3000
    """Optimiser steps at most; the weights kept are those of the best held-out check."""
    check_every: int = 100
    """Steps between held-out checks (the policy overfits the recorded episodes within a few
    thousand steps: held-out error 0.21 after 1,000 steps, 0.35 after 6,000, on push)."""
    batch_size: int = 512
    """Frames per step."""
    learning_rate: float = 1e-3
    """AdamW learning rate (cosine-decayed to a tenth)."""
    seed: int = 0
    """Seed of the batches and initialisation."""


class GoalPolicy(nn.Module):
    """pi(planning state (..., S), goal keypoints (..., G) or (G,)) -> action (..., A).

    Its inputs are the state, the goal keypoints and their difference to the state's own
    keypoints (`GoalCost.keypoints`), each normalised; the action is squashed into bounds.
    """

    def __init__(self, state_dim: int, goal_dim: int, action_low, action_high,
                 config: PolicyFitConfig = PolicyFitConfig()):
        super().__init__()
        low, high = action_bounds(action_low, action_high)
        self.config, self.state_dim, self.goal_dim = config, state_dim, goal_dim
        self.action_dim = low.numel()
        dims = [state_dim + 2 * goal_dim] + [config.hidden] * config.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], self.action_dim))
        self.register_buffer('action_mid', (high + low) / 2)
        self.register_buffer('action_half', (high - low) / 2)
        self.register_buffer('state_mean', torch.zeros(state_dim))
        self.register_buffer('state_std', torch.ones(state_dim))
        self.register_buffer('goal_mean', torch.zeros(goal_dim))
        self.register_buffer('goal_std', torch.ones(goal_dim))
        self.register_buffer('delta_std', torch.ones(goal_dim))

    def forward(self, states: torch.Tensor, goal: torch.Tensor,
                state_keypoints: torch.Tensor) -> torch.Tensor:
        """Actions (..., A) towards goal keypoints (G,) or (..., G).

        states (..., S); state_keypoints (..., G): the states' own keypoints as the goal cost
        compares them (`GoalCost.keypoints`).
        """
        goal = goal.expand(*states.shape[:-1], self.goal_dim)
        x = torch.cat([(states - self.state_mean) / self.state_std,
                       (goal - self.goal_mean) / self.goal_std,
                       (goal - state_keypoints) / self.delta_std], -1)
        return self.action_mid + self.action_half * torch.tanh(self.net(x))

    def settings(self) -> dict:
        """What rebuilds it (`policy_from_settings`)."""
        return {'state_dim': self.state_dim, 'goal_dim': self.goal_dim,
                'action_low': (self.action_mid - self.action_half).tolist(),
                'action_high': (self.action_mid + self.action_half).tolist(),
                'config': asdict(self.config)}


def policy_from_settings(settings: dict) -> GoalPolicy:
    """A `GoalPolicy` of the shape `GoalPolicy.settings` describes (weights not loaded)."""
    return GoalPolicy(int(settings['state_dim']), int(settings['goal_dim']),
                      settings['action_low'], settings['action_high'],
                      PolicyFitConfig(**settings['config']))


class LatentPolicy(nn.Module):
    """The policy as the planner calls it: pi(states (..., S), goal planning state (S,)).

    The goal cost turns the goal's planning state into the keypoints the policy was trained
    to reach (`takes_goal`: the planner hands it the plan's goal).
    """

    takes_goal = True

    def __init__(self, policy: GoalPolicy, goal_cost: GoalCost):
        super().__init__()
        self.policy, self.goal_cost = policy, goal_cost

    def forward(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Actions (..., A) towards the goal planning state (S,) or (..., S)."""
        return self.policy(states, self.goal_cost.keypoints(goal),
                           self.goal_cost.keypoints(states))

    @torch.no_grad()
    def act(self, state, goal) -> np.ndarray:
        """The action for one planning state (S,) and goal (S,), float32 (A,)."""
        s = torch.as_tensor(np.asarray(state, dtype=np.float32))
        return self(s, torch.as_tensor(goal, dtype=torch.float32)).numpy()


def hindsight_pairs(episode: np.ndarray, valid: np.ndarray, succeeded: np.ndarray,
                    episodes, goal_rows: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(frames, goal rows) of `episodes` that ended in success.

    Every frame with a valid command is paired with its episode's goal: ``goal_rows[e]``
    where given and >= 0 (the row of its recorded goal image's planning state), else the
    episode's last frame (hindsight).
    """
    frames, goals = [], []
    for e in episodes:
        if not succeeded[e]:
            continue
        idx = np.flatnonzero(episode == e)
        keep = idx[valid[idx]]
        if len(keep):
            row = goal_rows[e] if goal_rows is not None and goal_rows[e] >= 0 else idx[-1]
            frames.append(keep)
            goals.append(np.full(len(keep), row))
    if not frames:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(frames), np.concatenate(goals)


def fit_goal_policy(states: torch.Tensor, actions: torch.Tensor, valid: np.ndarray,
                    episode: np.ndarray, succeeded: np.ndarray, goal_cost: GoalCost,
                    action_low, action_high, train_episodes, val_episodes,
                    config: PolicyFitConfig = PolicyFitConfig(), progress: bool = False,
                    goal_states: torch.Tensor | None = None
                    ) -> tuple[GoalPolicy | None, dict]:
    """Train pi on the goal pairs of `train_episodes`; report it on `val_episodes`.

    states (M, S) planning states in episode order, actions (M, A) the command in force from
    each frame, valid (M,) whether it is one, episode (M,), succeeded (episodes,) bool.
    goal_states (episodes, S), NaN rows where an episode has none: the planning states of
    the episodes' recorded goal images, the goal each was driven to as the stack will be
    given it; without one an episode's goal is its last frame.
    Returns (policy or None when no successful episode is there to learn from, report with the
    held-out mean squared error per action half-range against predicting the mean action, and
    the cosine between predicted and recorded commands).
    """
    c = config
    rng = np.random.default_rng(c.seed)
    torch.manual_seed(c.seed)
    rows, table = None, states
    if goal_states is not None:
        has = torch.isfinite(goal_states).all(1).numpy()
        rows = np.where(has, len(states) + np.arange(len(goal_states)), -1)
        table = torch.cat([states, torch.nan_to_num(goal_states)])
    train_f, train_g = hindsight_pairs(episode, valid, succeeded, train_episodes, rows)
    val_f, val_g = hindsight_pairs(episode, valid, succeeded, val_episodes, rows)
    report = {'train_frames': int(len(train_f)), 'val_frames': int(len(val_f)),
              'successful_episodes': int(np.asarray(succeeded).sum()),
              'goal_images': 0 if rows is None else int((rows >= 0).sum())}
    if not len(train_f):
        return None, report
    goal_dim = 2 * len(goal_cost.keypoint_weights)
    policy = GoalPolicy(states.shape[1], goal_dim, action_low, action_high, c)
    with torch.no_grad():
        kp = goal_cost.keypoints(table)
    policy.state_mean.copy_(states.mean(0))
    policy.state_std.copy_(states.std(0).clamp_min(1e-3))
    policy.goal_mean.copy_(kp.mean(0))
    policy.goal_std.copy_(kp.std(0).clamp_min(1e-3))
    tf, tg = torch.as_tensor(train_f), torch.as_tensor(train_g)
    policy.delta_std.copy_((kp[tg] - kp[tf]).std(0).clamp_min(1e-3))
    low = torch.as_tensor(action_low, dtype=torch.float32)
    high = torch.as_tensor(action_high, dtype=torch.float32)
    target = torch.max(torch.min(actions.float(), high), low)
    half = policy.action_half
    opt = torch.optim.AdamW(policy.parameters(), lr=c.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, c.steps, c.learning_rate / 10)
    steps = range(c.steps)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc='goal policy', unit='step', leave=False)
    vf, vg = torch.as_tensor(val_f), torch.as_tensor(val_g)

    def held_out() -> tuple[float, torch.Tensor]:
        with torch.no_grad():
            pred = policy(states[vf], kp[vg], kp[vf])
        return float(((pred - target[vf]) / half).pow(2).mean()), pred

    best, best_step, best_state = float('inf'), 0, None
    policy.train()
    for step in steps:
        b = torch.as_tensor(rng.integers(0, len(tf), c.batch_size))
        f, g = tf[b], tg[b]
        pred = policy(states[f], kp[g], kp[f])
        loss = F.mse_loss(pred / half, target[f] / half)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if len(vf) and (step + 1) % c.check_every == 0:
            policy.eval()
            error, _ = held_out()
            policy.train()
            if error < best:
                best, best_step = error, step + 1
                best_state = {k: v.clone() for k, v in policy.state_dict().items()}
    if best_state is not None:
        policy.load_state_dict(best_state)
    policy.eval()
    if len(vf):
        error, pred = held_out()
        truth = target[vf]
        mean = target[tf].mean(0)
        report.update(
            best_step=best_step, val_mse=error,
            val_mse_mean_baseline=float(((mean - truth) / half).pow(2).mean()),
            val_cosine=float(F.cosine_similarity(pred, truth, dim=-1, eps=1e-6).mean()))
    return policy, report
