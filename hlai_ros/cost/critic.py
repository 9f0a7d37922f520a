"""The critic V(s): a learned estimate of the cost still to come beyond the planning horizon.

An ensemble of small MLPs, trained by TD(lambda) on recorded trajectories and on rollouts
imagined in the world model, against a slowly-moving target network. The planner adds
`weight * V(s[T])` as the terminal cost of each predicted trajectory.

What it sees (`CriticConfig.features`):

- ``'state'``: the model state, positions relative to the goal (`goal_relative_indices`). It
  does not see a scene that is not in the state (cliff's obstacles and edges).
- ``'path'``: the state as the cost's goal term sees it in the perceived scene: the path length
  to the goal around obstacles and away from edges (a geodesic goal term's field), the heading
  along and across that path, how steep the field is there (barriers near), optionally where
  the path will be some way ahead (`lookahead`), and the state's other entries (velocities).
  It is read from the planner's cost (``cost=``), so the critic sees the scene the cost sees;
  without a cost (or a goal term with a field) the straight-line distance and direction to
  the goal stand in.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from hlai_ros.cost.goal import relative_to_goal
from hlai_ros.world_model.ensemble import EnsembleMLP

FEATURES = ('state', 'path')
"""What a critic sees: the (goal-relative) state, or the path features of the scene."""


@dataclass(frozen=True)
class CriticConfig:
    """Critic network and TD(lambda) training settings."""

    hidden: int = 128
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    ensemble_size: int = 3
    """Independent value heads; their mean is the estimate, their spread its doubt."""
    gamma: float = 0.97
    """Discount per control step."""
    lam: float = 0.9
    """TD(lambda) mixing of n-step returns (0: one-step TD, 1: Monte Carlo)."""
    lr: float = 1e-3
    """Adam learning rate."""
    tau: float = 0.02
    """Polyak rate of the target network per update."""
    batch_size: int = 64
    """Trajectories per update."""
    goal_relative_indices: tuple[int, ...] = ()
    """State indices (whole goal-sized groups) seen relative to the goal, so one critic serves
    every goal (e.g. (0, 1) for a robot's x, y); empty: V(s) does not depend on a goal."""
    features: str = 'state'
    """'state' (the state, goal-relative as above) or 'path' (the scene's path features, read
    from the planner's cost; needs `position_indices`); see the module."""
    position_indices: tuple[int, ...] = ()
    """'path': state indices of the (x, y) position whose path to the goal is measured."""
    heading_indices: tuple[int, ...] = ()
    """'path': state indices of (cos yaw, sin yaw), seen along and across the path; empty:
    no heading."""
    lookahead: tuple[float, ...] = ()
    """'path': distances (m, increasing) along the path at which the critic also sees where the
    path will be, relative to the position (in the robot's frame with a heading), so that it
    sees the path bend ahead and not only its direction here."""
    lookahead_step: float = 0.1
    """'path': step (m) of following the path (down the field) to the lookahead points."""
    pessimism: float = 0.0
    """The estimate is the members' mean plus this many times their spread (std), so that the
    planner is not drawn to states the critic knows little about (where its members differ)."""

    def __post_init__(self):
        if self.features not in FEATURES:
            raise ValueError(f'features must be one of {FEATURES}, got {self.features!r}')
        if self.features == 'path' and (len(self.position_indices) != 2
                                        or len(self.heading_indices) not in (0, 2)):
            raise ValueError(f"'path' features need 2 position indices and 0 or 2 heading "
                             f'indices, got {self.position_indices} and {self.heading_indices}')


def feature_size(state_dim: int, config: CriticConfig) -> int:
    """Size of what the critic's network sees for states of `state_dim` entries."""
    if config.features == 'state':
        return state_dim
    used = len(set(config.position_indices) | set(config.heading_indices))
    return (2 + (2 if config.heading_indices else 0) + 2 * len(config.lookahead)
            + state_dim - used)


def path_term(cost):
    """The cost's goal term that measures path length in a scene (one with a field), or None."""
    for term in getattr(cost, 'terms', ()):
        term = term[1] if isinstance(term, tuple) else term
        if hasattr(term, '_lookup') and hasattr(term, 'field'):
            return term
    return None


def path_features(states: torch.Tensor, goal, config: CriticConfig, cost=None) -> torch.Tensor:
    """The 'path' features of states (..., S) -> (..., F), F = `feature_size`.

    [path length to the goal (m), log of the field's steepness (0 in free space, > 0 near
    barriers), heading along and across the path direction (if any), the lookahead points
    (x, y each, m), the other entries].
    """
    if goal is None:
        raise ValueError("'path' features need the goal, got None")
    goal = torch.as_tensor(goal, dtype=states.dtype, device=states.device).reshape(-1)
    position = states[..., list(config.position_indices)]
    term = path_term(cost)
    if term is not None and getattr(term, 'bounds', None) is not None:
        d, gu, gv = term._lookup(position, goal)
    else:  # no scene: the straight line
        diff = position - goal
        d = torch.sqrt(diff.pow(2).sum(-1) + 1e-12)
        gu, gv = diff[..., 0] / d, diff[..., 1] / d
    norm = torch.sqrt(gu.pow(2) + gv.pow(2) + 1e-12)
    parts = [d, torch.log(norm.clamp_min(1e-3)).clamp(-3.0, 6.0)]
    if config.heading_indices:
        c, s = states[..., config.heading_indices[0]], states[..., config.heading_indices[1]]
        # the way to the goal is against the field's gradient
        parts += [-(c * gu + s * gv) / norm, (s * gu - c * gv) / norm]
    if config.lookahead:
        point, travelled, du, dv, left = position, 0.0, -gu / norm, -gv / norm, d
        for ahead in config.lookahead:
            while travelled < ahead - 1e-9:
                step = min(config.lookahead_step, ahead - travelled)
                step_t = torch.minimum(left, torch.full_like(left, step))
                point = point + torch.stack([du, dv], -1) * step_t.unsqueeze(-1)
                travelled += step
                if term is not None and getattr(term, 'bounds', None) is not None:
                    left, gu, gv = term._lookup(point, goal)
                else:
                    diff = point - goal
                    left = torch.sqrt(diff.pow(2).sum(-1) + 1e-12)
                    gu, gv = diff[..., 0] / left, diff[..., 1] / left
                n = torch.sqrt(gu.pow(2) + gv.pow(2) + 1e-12)
                du, dv = -gu / n, -gv / n
            rel = point - position
            if config.heading_indices:  # in the robot's frame
                rel = torch.stack([c * rel[..., 0] + s * rel[..., 1],
                                   c * rel[..., 1] - s * rel[..., 0]], -1)
            parts += [rel[..., 0], rel[..., 1]]
    used = set(config.position_indices) | set(config.heading_indices)
    rest = [i for i in range(states.shape[-1]) if i not in used]
    return torch.cat([torch.stack(parts, -1), states[..., rest]], -1)


class Critic(nn.Module):
    """Ensemble value function V(s) -> expected discounted cost-to-go (cost units)."""

    def __init__(self, state_dim: int, config: CriticConfig = CriticConfig()):
        super().__init__()
        if state_dim <= 0:
            raise ValueError(f'state_dim must be positive, got {state_dim}')
        self.state_dim = state_dim
        self.config = config
        self.input_dim = feature_size(state_dim, config)
        k, h = config.ensemble_size, config.hidden
        self.net = EnsembleMLP(k, self.input_dim, (h,) * config.layers, 1, 'silu')
        self.register_buffer('state_mean', torch.zeros(self.input_dim))
        self.register_buffer('state_std', torch.ones(self.input_dim))
        self.register_buffer('value_scale', torch.ones(()))

    @property
    def sees_cost(self) -> bool:
        """Whether it reads the planner's cost (the scene): 'path' features."""
        return self.config.features == 'path'

    def features(self, states: torch.Tensor, goal: torch.Tensor | None = None,
                 cost=None) -> torch.Tensor:
        """What the network sees of states (..., S): (..., F), before normalisation."""
        if states.shape[-1] != self.state_dim:
            raise ValueError(f'critic expects states (..., {self.state_dim}), '
                             f'got {tuple(states.shape)}')
        if self.config.features == 'path':
            return path_features(states, goal, self.config, cost)
        return relative_to_goal(states, goal, self.config.goal_relative_indices)

    def set_normalization(self, states: torch.Tensor, costs: torch.Tensor | None = None,
                          goal: torch.Tensor | None = None,
                          features: torch.Tensor | None = None) -> None:
        """Fit input normalisation to example states (..., S) and output scale to costs.

        With goal-relative indices, pass the goals (..., P) of the states; or pass the
        `features` (..., F) themselves (states is then ignored).
        """
        if features is None:
            features = self.features(states, goal)
        flat = features.reshape(-1, self.input_dim)
        self.state_mean.copy_(flat.mean(0))
        self.state_std.copy_(flat.std(0).clamp_min(1e-3))
        if costs is not None:
            horizon = 1.0 / (1.0 - self.config.gamma)
            self.value_scale.copy_((costs.abs().mean() * horizon).clamp_min(1e-3))

    def members_of(self, features: torch.Tensor) -> torch.Tensor:
        """Each member's estimate from features (..., F) -> (K, ...), cost units."""
        lead = features.shape[:-1]
        x = ((features - self.state_mean) / self.state_std).reshape(1, -1, self.input_dim)
        x = x.expand(self.config.ensemble_size, -1, -1)
        return (self.net(x).squeeze(-1) * self.value_scale).reshape(-1, *lead)

    def members(self, states: torch.Tensor, goal: torch.Tensor | None = None,
                cost=None) -> torch.Tensor:
        """Each member's estimate: states (..., S), goal broadcastable to (..., P) -> (K, ...).

        The goal is needed (and used) only when `config.goal_relative_indices` is set or the
        features are 'path'; `cost` is the planner's cost ('path' features read its scene).
        """
        return self.members_of(self.features(states, goal, cost))

    def forward(self, states: torch.Tensor, goal: torch.Tensor | None = None,
                cost=None) -> torch.Tensor:
        """Ensemble-mean value: states (..., S), goal (..., P) or (P,) -> (...), cost units.

        With `config.pessimism`, plus that many times the members' spread.
        """
        members = self.members(states, goal, cost)
        if self.config.pessimism and members.shape[0] > 1:
            return members.mean(0) + self.config.pessimism * members.std(0)
        return members.mean(0)


def td_lambda_targets(costs: torch.Tensor, next_values: torch.Tensor, gamma: float, lam: float,
                      dones: torch.Tensor | None = None) -> torch.Tensor:
    """TD(lambda) returns: costs (B, T), next_values V(s[t+1]) (B, T) -> targets (B, T).

    G[t] = c[t] + gamma (1 - d[t]) ((1 - lam) V(s[t+1]) + lam G[t+1]), with G[T] = V(s[T]);
    d[t] = 1 where the episode ended at step t (nothing is owed after it).
    """
    if costs.shape != next_values.shape or costs.dim() != 2:
        raise ValueError(f'costs and next_values must both be (B, T), got '
                         f'{tuple(costs.shape)} and {tuple(next_values.shape)}')
    not_done = torch.ones_like(costs) if dones is None else 1.0 - dones.to(costs.dtype)
    targets = torch.empty_like(costs)
    following = next_values[:, -1]
    for t in range(costs.shape[1] - 1, -1, -1):
        following = costs[:, t] + gamma * not_done[:, t] * (
            (1 - lam) * next_values[:, t] + lam * following)
        targets[:, t] = following
    return targets


class CriticTrainer:
    """TD(lambda) updates of a critic against its Polyak-averaged target copy."""

    def __init__(self, critic: Critic):
        self.critic = critic
        self.target = copy.deepcopy(critic).requires_grad_(False)
        self.optimizer = torch.optim.Adam(critic.parameters(), lr=critic.config.lr)

    def update(self, states: torch.Tensor, costs: torch.Tensor,
               dones: torch.Tensor | None = None, goals: torch.Tensor | None = None) -> float:
        """One step on trajectories states (B, T+1, S), costs (B, T); returns the TD loss.

        dones (B, T) mark steps after which nothing more is owed; goals (B, P) are each
        trajectory's goal, needed when the critic is goal-relative.
        """
        if states.dim() != 3 or costs.dim() != 2 or states.shape[:2] != (
                costs.shape[0], costs.shape[1] + 1):
            raise ValueError(f'need states (B, T+1, S) and costs (B, T), got '
                             f'{tuple(states.shape)} and {tuple(costs.shape)}')
        states = states.detach()
        goal = None if goals is None else goals.detach().unsqueeze(1)
        return self._td_step(lambda net, x: net.members(x, goal), states, costs, dones)

    def _td_step(self, values, inputs: torch.Tensor, costs: torch.Tensor,
                 dones: torch.Tensor | None) -> float:
        """One TD(lambda) step: values(network, inputs[:, t]) of the critic and its target."""
        cfg = self.critic.config
        costs = costs.detach()
        with torch.no_grad():
            next_values = values(self.target, inputs[:, 1:]).mean(0)
            targets = td_lambda_targets(costs, next_values, cfg.gamma, cfg.lam, dones)
        pred = values(self.critic, inputs[:, :-1])
        loss = ((pred - targets) / self.critic.value_scale).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self._follow()
        return float(loss.detach())

    def update_features(self, features: torch.Tensor, costs: torch.Tensor,
                        dones: torch.Tensor | None = None) -> float:
        """One step on features (B, T+1, F) and costs (B, T); returns the TD loss.

        The features are `Critic.features` of each trajectory's states in its own scene;
        dones as in `update`.
        """
        if features.dim() != 3 or costs.dim() != 2 or features.shape[:2] != (
                costs.shape[0], costs.shape[1] + 1):
            raise ValueError(f'need features (B, T+1, F) and costs (B, T), got '
                             f'{tuple(features.shape)} and {tuple(costs.shape)}')
        return self._td_step(lambda net, x: net.members_of(x), features.detach(), costs,
                             dones)

    def _follow(self) -> None:
        """Move the target network towards the critic (Polyak), copy the buffers."""
        with torch.no_grad():
            for p, q in zip(self.critic.parameters(), self.target.parameters()):
                q.lerp_(p, self.critic.config.tau)
            for b, c in zip(self.critic.buffers(), self.target.buffers()):
                c.copy_(b)

    def fit(self, states: torch.Tensor, costs: torch.Tensor, dones: torch.Tensor | None = None,
            steps: int = 500, generator: torch.Generator | None = None,
            goals: torch.Tensor | None = None) -> list[float]:
        """Minibatch updates over recorded trajectories states (B, T+1, S), costs (B, T).

        dones (B, T) and goals (B, P) as in `update`.
        """
        b = states.shape[0]
        losses = []
        for _ in range(steps):
            idx = torch.randint(b, (min(self.critic.config.batch_size, b),), generator=generator)
            losses.append(self.update(states[idx], costs[idx],
                                      None if dones is None else dones[idx],
                                      None if goals is None else goals[idx]))
        return losses
