"""The trajectory optimizer: plans T x A action sequences inside the world model.

One call of `Planner.plan` reads as the three steps of a sampling MPC controller, plus a
gradient step: warm-start the mean from the last plan (shifted one step), optimise by sampling
(MPPI or CEM) with some samples proposed by the policy, move the mean and the best sequence by
backprop through the model (the adjoint method), let them compete in the last sampling round,
and return the first action of the best sequence. (With one sampling round the gradient step
comes after it and the refined sequences are scored on their own.)

Every evaluation is one batched `model.rollout`: E members in front, and N = samples x latents
flattened behind them. The cost of a sequence is its task cost averaged over latents, plus the
critic's cost-to-go at the horizon's end.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import time

import torch

from hlai_ros.actor.imagination import frozen, imagine
from hlai_ros.actor.optimizer import OPTIMIZERS, OptimizerConfig
from hlai_ros.cost.base import CostContext
from hlai_ros.world_model.protocol import Dynamics


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of the MPC planner; defaults sized for <= 50 ms a step on two quiet CPU cores.

    benchmarks/bench_planner.py measures it for an 8-state, 2-action ensemble MLP model.
    """

    horizon: int = 15
    """Planning horizon T, control steps."""
    optimizer: str = 'mppi'
    """Sampling optimizer: 'mppi' or 'cem'."""
    sampling: OptimizerConfig = OptimizerConfig()
    """Samples, iterations and update rule of the optimizer."""
    latents: int = 1
    """Latent draws z per action sequence (costs are averaged over them)."""
    fixed_latents: bool = True
    """Draw the latents once per episode (at reset) rather than at every control step, so
    successive plans score sequences in the same sampled worlds and warm starts stay consistent."""
    init_std: float = 0.5
    """Initial sampling std, as a fraction of the action half-range."""
    policy_fraction: float = 0.1
    """Fraction of samples proposed by rolling the policy through the model."""
    policy_noise: float = 0.1
    """Std of the noise on policy proposals, as a fraction of the half-range."""
    gradient_steps: int = 1
    """Adam steps of gradient refinement of the best sequence through the model."""
    gradient_lr: float = 0.05
    """Adam step size of the refinement, as a fraction of the half-range."""
    critic_weight: float = 1.0
    """Weight of the critic's cost-to-go added at the horizon's end."""
    seed: int = 0
    """Seed of the planner's own random generator."""
    members: int = 0
    """Ensemble members the planner rolls out (0: all). With 0 < members < the ensemble's
    size, a subset of that many is drawn with the latents (once an episode with
    fixed_latents), so a plan costs about members / size of the rollouts' arithmetic, and
    the uncertainty and cost terms see that subset. Models without member subsets (a
    `rollout` only), and planning dynamics of the latent representation (checkpoint identity
    'latent', evaluated only with all members so far), roll out all members."""
    infer_latents: int = 0
    """Identify the episode's hidden physics online: plan with z inferred from up to this many
    of the episode's most recent transitions (the posterior q(z | transitions), each member
    its own, `WorldModel.posterior_from_transitions`; consecutive plans' states with the
    previous action between them), once `infer_min` are in; until then, and with 0, z is
    drawn from the prior. Models without a posterior always draw from the prior."""
    infer_min: int = 3
    """Transitions of the episode before z is inferred (`infer_latents`)."""

    def __post_init__(self):
        if self.members < 0:
            raise ValueError(f'members must be >= 0 (0: all), got {self.members}')
        if self.infer_latents < 0 or self.infer_min < 1:
            raise ValueError(f'need infer_latents >= 0 (0: off) and infer_min >= 1, got '
                             f'{self.infer_latents} and {self.infer_min}')
        if self.horizon < 1 or self.latents < 1 or self.gradient_steps < 0:
            raise ValueError('need horizon >= 1, latents >= 1 and gradient_steps >= 0, got '
                             f'{self.horizon}, {self.latents}, {self.gradient_steps}')
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f'optimizer must be one of {sorted(OPTIMIZERS)}, '
                             f'got {self.optimizer!r}')
        if not 0 <= self.policy_fraction < 1:
            raise ValueError(f'policy_fraction must be in [0, 1), got {self.policy_fraction}')


def planner_config_from_dict(section: dict) -> PlannerConfig:
    """Build a PlannerConfig from plain values; `sampling` is a nested dict of OptimizerConfig.

    Unknown keys are rejected by name, so a typo in a YAML file fails at start-up.
    """
    known = set(PlannerConfig.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f'unknown planner settings {unknown}; known: {sorted(known)}')
    values = dict(section)
    if 'sampling' in values and isinstance(values['sampling'], dict):
        sampling = values['sampling']
        bad = sorted(set(sampling) - set(OptimizerConfig.__dataclass_fields__))
        if bad:
            raise ValueError(f'unknown sampling settings {bad}; known: '
                             f'{sorted(OptimizerConfig.__dataclass_fields__)}')
        values['sampling'] = OptimizerConfig(**sampling)
    return PlannerConfig(**values)


def _representation(model) -> str | None:
    """The representation ('state', 'latent') of a model's checkpoint identity, if it has one."""
    metadata = getattr(model, 'checkpoint_metadata', None) or {}
    return (metadata.get('identity') or {}).get('representation')


def uses_goal(module) -> bool:
    """Whether a critic or policy takes the goal.

    Its config has goal_relative_indices, or it says so itself (``takes_goal``, e.g.
    `hlai_ros.latent.policy.LatentPolicy`).
    """
    if getattr(module, 'takes_goal', False):
        return True
    return bool(getattr(getattr(module, 'config', None), 'goal_relative_indices', ()))


@dataclass
class PlanResult:
    """A plan for the current state."""

    action: torch.Tensor
    """The action to apply now (A,)."""
    actions: torch.Tensor
    """The whole planned sequence (T, A)."""
    cost: float
    """Its predicted cost (task cost + critic)."""
    evaluations: int
    """Action sequences evaluated (times latents for rollouts)."""
    seconds: float
    """Wall time of the call."""


class Planner:
    """MPC over action sequences in a world model: sampling, policy proposals, gradients."""

    def __init__(self, model: Dynamics, cost, action_low, action_high,
                 config: PlannerConfig = PlannerConfig(), critic=None, policy=None,
                 device: torch.device | str | None = None):
        self.model, self.cost, self.critic, self.policy = model, cost, critic, policy
        self.config = config
        self.device = torch.device(device) if device is not None else torch.device('cpu')
        self.lower = torch.as_tensor(action_low, dtype=torch.float32,
                                     device=self.device).reshape(-1)
        self.upper = torch.as_tensor(action_high, dtype=torch.float32,
                                     device=self.device).reshape(-1)
        if self.lower.numel() != model.action_dim or self.lower.shape != self.upper.shape:
            raise ValueError(f'bounds must have {model.action_dim} entries (the model action '
                             f'size), got {self.lower.numel()} and {self.upper.numel()}')
        if not bool((self.upper > self.lower).all()):
            raise ValueError(f'need action_low < action_high, got {self.lower}, {self.upper}')
        self.optimizer = OPTIMIZERS[config.optimizer](config.sampling)
        iterations = config.sampling.iterations
        self._head = OPTIMIZERS[config.optimizer](
            replace(config.sampling, iterations=max(1, iterations - 1)))
        self._tail = OPTIMIZERS[config.optimizer](replace(config.sampling, iterations=1))
        self.generator = torch.Generator(device=self.device)
        self.reset()

    @property
    def half_range(self) -> torch.Tensor:
        """Half the action range (A,)."""
        return (self.upper - self.lower) / 2

    def reset(self) -> None:
        """Forget the warm start (call at the start of an episode)."""
        self.generator.manual_seed(self.config.seed)
        mid = (self.upper + self.lower) / 2
        self.mean = mid.expand(self.config.horizon, -1).clone()
        self._planned = False
        self._z = None
        self._members = None
        self._last_state = None
        self._transitions: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def warm_start(self) -> torch.Tensor:
        """The initial mean (T, A): the last plan shifted one step, last action repeated."""
        mean = self.mean.clone()
        if self._planned:
            mean[:-1] = self.mean[1:]
        return mean

    def _draw_members(self, z: torch.Tensor):
        """The member subset of `config.members` and its latents, or None for all members."""
        size = getattr(self.model, 'ensemble_size', z.shape[0])
        k = self.config.members
        if (not 0 < k < size or not hasattr(self.model, '_rollout_members')
                or _representation(self.model) == 'latent'):
            return None
        members = torch.randperm(size, generator=self.generator, device=self.device)[:k]
        members = members.sort().values
        return tuple(members.tolist()), z[members]

    def _identify(self, s0: torch.Tensor, context: CostContext) -> None:
        """Record the last transition and plan with z inferred from the recent ones.

        See `PlannerConfig.infer_latents`. The transition is the previous plan's state, the
        action applied since (`context.previous_action`) and `s0`.
        """
        cfg = self.config
        posterior = getattr(self.model, 'posterior_from_transitions', None)
        if (cfg.infer_latents < 1 or posterior is None
                or getattr(self.model, 'latent_dim', 0) < 1):
            return
        if self._last_state is not None and context.previous_action is not None:
            action = torch.as_tensor(context.previous_action, dtype=s0.dtype,
                                     device=self.device).reshape(-1)
            self._transitions.append((self._last_state, action, s0))
            del self._transitions[:-cfg.infer_latents]
        self._last_state = s0
        if len(self._transitions) < cfg.infer_min or self._z is None:
            return
        s, a, s_next = (torch.stack(x)[None] for x in zip(*self._transitions))
        with torch.no_grad():
            z = posterior(s, a, s_next)[0]  # (E, 1, Z): each member's posterior mean
        self._z = z.expand(-1, self._z.shape[1], -1).contiguous()
        if self._members is not None:
            members = self._members[0]
            self._members = (members, self._z[list(members)])

    def objective(self, s0: torch.Tensor, z: torch.Tensor, context: CostContext,
                  actions: torch.Tensor, with_states: bool = False):
        """Cost of action sequences (N, T, A) from s0 (S,) under latents z (E, L, Z) -> (N,)."""
        n, t, a = actions.shape
        lat = z.shape[1]
        members = None
        if self._members is not None:  # a subset of the ensemble: its members' latents
            members, z = self._members
        if lat == 1:  # no copies of the samples for a single latent draw
            flat_actions, flat_z = actions, z.expand(-1, n, -1)
        else:
            flat_actions, flat_z = actions.repeat_interleave(lat, dim=0), z.repeat(1, n, 1)
        starts = s0.expand(n * lat, -1)
        if members is None:
            states = self.model.rollout(starts, flat_actions, flat_z)
        else:
            states = self.model._rollout_members(starts, flat_actions, flat_z, members)
        costs = self.cost(states, flat_actions, context)
        if self.critic is not None and self.config.critic_weight:
            costs = costs + self.config.critic_weight * self.terminal_value(
                states[:, :, -1], context).mean(0)
        costs = costs.view(n, lat).mean(1)
        return (costs, states) if with_states else costs

    def terminal_value(self, states: torch.Tensor, context: CostContext) -> torch.Tensor:
        """The critic's cost-to-go of the horizon's last states (E, N, S) -> (E, N).

        A goal-relative critic (config.goal_relative_indices) is given the context's goal; one
        that sees the scene (`sees_cost`) is also given the planner's cost.
        """
        if getattr(self.critic, 'sees_cost', False):
            return self.critic(states, context.goal, cost=self.cost)
        if uses_goal(self.critic):
            return self.critic(states, context.goal)
        return self.critic(states)

    def proposals(self, s0: torch.Tensor, z: torch.Tensor,
                  context: CostContext | None = None) -> torch.Tensor | None:
        """Sequences (M, T, A) from rolling the policy through the model, the first noise-free.

        A goal-relative policy is given the context's goal.
        """
        m = int(self.config.policy_fraction * self.config.sampling.samples)
        if self.policy is None or m < 1:
            return None
        noise = self.config.policy_noise * self.half_range.expand(m, -1).clone()
        noise[0] = 0.0
        idx = torch.arange(m, device=self.device) % z.shape[1]
        policy = self.policy
        if uses_goal(policy):
            goal = (context or CostContext()).goal
            policy = lambda s: self.policy(s, goal)  # noqa: E731
        _, actions = imagine(self.model, policy, s0.expand(m, -1), self.config.horizon,
                             z=z[:, idx], noise_std=noise, lower=self.lower, upper=self.upper,
                             generator=self.generator)
        return actions

    def refine(self, s0: torch.Tensor, z: torch.Tensor, context: CostContext,
               candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Adam on candidates (M, T, A) by backprop through the model; returns (seqs, costs).

        Works in units of the half-range, clamps to the bounds after each step, and keeps each
        candidate's best iterate (the initial one included).
        """
        mid, half = (self.upper + self.lower) / 2, self.half_range
        u = ((candidates - mid) / half).clone().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=self.config.gradient_lr)
        best, best_cost = candidates.clone(), torch.full(
            (candidates.shape[0],), float('inf'), device=self.device)
        with frozen(self.model), frozen(self.critic):
            for step in range(self.config.gradient_steps + 1):
                final = step == self.config.gradient_steps
                with torch.set_grad_enabled(not final):
                    acts = mid + half * u
                    costs = self.objective(s0, z, context, acts)
                better = costs.detach() < best_cost
                best = torch.where(better.view(-1, 1, 1), acts.detach(), best)
                best_cost = torch.where(better, costs.detach(), best_cost)
                if final:
                    break
                opt.zero_grad()
                costs.sum().backward()
                opt.step()
                with torch.no_grad():
                    u.clamp_(-1.0, 1.0)
        return best, best_cost

    def descend(self, s0: torch.Tensor, z: torch.Tensor, context: CostContext,
                candidates: torch.Tensor) -> torch.Tensor:
        """`gradient_steps` Adam steps on candidates (M, T, A) by backprop; -> the stepped ones.

        Unlike `refine` it does not evaluate the result: the caller scores the stepped
        sequences among its next batch of samples, which costs no extra rollout.
        """
        mid, half = (self.upper + self.lower) / 2, self.half_range
        u = ((candidates - mid) / half).clone().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=self.config.gradient_lr)
        with frozen(self.model), frozen(self.critic):
            for _ in range(self.config.gradient_steps):
                opt.zero_grad()
                self.objective(s0, z, context, mid + half * u).sum().backward()
                opt.step()
                with torch.no_grad():
                    u.clamp_(-1.0, 1.0)
        return (mid + half * u).detach()

    def plan(self, state, context: CostContext | None = None) -> PlanResult:
        """Plan from the current state (S,); the result's action is the one to apply now."""
        start = time.perf_counter()
        cfg = self.config
        context = context or CostContext()
        s0 = torch.as_tensor(state, dtype=torch.float32, device=self.device).reshape(-1)
        if s0.numel() != self.model.state_dim:
            raise ValueError(f'state must have {self.model.state_dim} entries, '
                             f'got {s0.numel()}')
        mean = self.warm_start()
        std = cfg.init_std * self.half_range.expand_as(mean).clone()
        z = self._z if cfg.fixed_latents else None
        if z is None:
            with torch.no_grad():
                z = self._z = self.model.sample_z(cfg.latents, generator=self.generator)
                self._members = self._draw_members(z)
        self._identify(s0, context)
        z = self._z
        def objective(acts):
            return self.objective(s0, z, context, acts)
        if cfg.gradient_steps > 0 and cfg.sampling.iterations > 1:
            # sample, descend from the mean and the best, then sample once more with the
            # descended sequences among the samples: they are scored in that batch for free
            with torch.inference_mode():  # sampling needs no autograd bookkeeping at all
                head = self._head.optimize(objective, mean, std, self.lower, self.upper,
                                           self.proposals(s0, z, context), self.generator)
            candidates = torch.stack([head.mean, head.best]).clone()  # leave inference mode
            stepped = self.descend(s0, z, context, candidates)
            with torch.inference_mode():
                tail = self._tail.optimize(objective, head.mean, head.std, self.lower,
                                           self.upper, torch.cat([stepped, head.best[None]]),
                                           self.generator)
            chosen = tail.best.clone()
            self.mean, self._planned = chosen.clone(), True
            evaluations = head.evaluations + tail.evaluations + 2 * cfg.gradient_steps
            return PlanResult(action=chosen[0].clone(), actions=chosen,
                              cost=float(tail.best_cost), evaluations=evaluations * cfg.latents,
                              seconds=time.perf_counter() - start)
        with torch.inference_mode():  # sampling needs no autograd bookkeeping at all
            result = self.optimizer.optimize(
                objective, mean, std, self.lower, self.upper, self.proposals(s0, z, context),
                self.generator)
        candidates = torch.stack([result.mean, result.best]).clone()  # leave inference mode
        evaluations = result.evaluations
        if cfg.gradient_steps > 0:
            seqs, costs = self.refine(s0, z, context, candidates)
            evaluations += 2 * (cfg.gradient_steps + 1)
        else:
            with torch.no_grad():
                seqs, costs = candidates, self.objective(s0, z, context, candidates)
            evaluations += 2
        k = int(torch.argmin(costs))
        chosen = seqs[k].detach()
        self.mean, self._planned = chosen.clone(), True
        return PlanResult(action=chosen[0].clone(), actions=chosen, cost=float(costs[k]),
                          evaluations=evaluations * cfg.latents,
                          seconds=time.perf_counter() - start)

    @torch.no_grad()
    def predict(self, state, actions: torch.Tensor) -> torch.Tensor:
        """Predicted states (E, T+1, S) of a plan's actions (T, A) from state (S,).

        Uses the planner's current latent draw (for showing the plan, e.g. /hlai/imagined).
        """
        s0 = torch.as_tensor(state, dtype=torch.float32, device=self.device).reshape(1, -1)
        z = self._z if self._z is not None else self.model.sample_z(1, generator=self.generator)
        return self.model.rollout(s0, actions.unsqueeze(0), z[:, :1])[:, 0]

    def with_config(self, **changes) -> 'Planner':
        """A planner sharing model, cost, critic and policy with some settings changed."""
        return Planner(self.model, self.cost, self.lower, self.upper,
                       replace(self.config, **changes), self.critic, self.policy, self.device)
