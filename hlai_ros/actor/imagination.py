"""Closed-loop rollouts of a policy inside the world model ("imagination").

Shared by policy training, critic training on imagined trajectories, and the planner's
policy proposals. The policy acts on the ensemble-mean predicted state, so every member
receives the same action sequence (N, T, A), as the planner's open-loop samples do.
"""
from __future__ import annotations

from typing import Callable

import torch

from hlai_ros.cost.base import CostContext
from hlai_ros.world_model.protocol import Dynamics

ActFunction = Callable[[torch.Tensor], torch.Tensor]


def imagine(model: Dynamics, act: ActFunction, s0: torch.Tensor, horizon: int,
            z: torch.Tensor | None = None, noise_std: torch.Tensor | float = 0.0,
            lower: torch.Tensor | None = None, upper: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll act (N, S) -> (N, A) through the model from s0 (N, S) or (E, N, S).

    Returns states (E, N, T+1, S) and actions (N, T, A); differentiable w.r.t. the policy
    and s0. Gaussian noise_std (A,) or scalar, in action units, is added to each action and
    the result clamped to [lower, upper] when those are given.
    """
    if horizon < 1:
        raise ValueError(f'horizon must be >= 1, got {horizon}')
    e = model.ensemble_size
    s = s0.unsqueeze(0).expand(e, *s0.shape) if s0.dim() == 2 else s0
    if s.dim() != 3 or s.shape[0] != e or s.shape[-1] != model.state_dim:
        raise ValueError(f's0 must be (N, {model.state_dim}) or ({e}, N, {model.state_dim}), '
                         f'got {tuple(s0.shape)}')
    n = s.shape[1]
    if z is None:
        z = model.sample_z(n, generator=generator)
    states, actions = [s], []
    for _ in range(horizon):
        a = act(s.mean(0))
        if not isinstance(noise_std, float) or noise_std > 0:
            a = a + noise_std * torch.randn(a.shape, generator=generator, device=a.device,
                                            dtype=a.dtype)
        if lower is not None and upper is not None:
            a = torch.max(torch.min(a, upper), lower)
        s = model.next(s, a.unsqueeze(0).expand(e, *a.shape), z)
        states.append(s)
        actions.append(a)
    return torch.stack(states, 2), torch.stack(actions, 1)


def member_step_costs(cost, states: torch.Tensor, actions: torch.Tensor,
                      context: CostContext | None = None) -> torch.Tensor:
    """Per-step cost along each member's own trajectory: (E, N, T+1, S) -> (E*N, T).

    Each member's prediction is scored as its own trajectory (so disagreement terms are 0),
    which is what a critic trained on imagined rollouts should see.
    """
    e, n, t1, s = states.shape
    flat = states.reshape(1, e * n, t1, s)
    acts = actions.unsqueeze(0).expand(e, *actions.shape).reshape(e * n, *actions.shape[1:])
    return cost.per_step(flat, acts, context)


class frozen:
    """Context in which a torch module's parameters take no gradient (restored after).

    Backprop through the world model to actions or a policy should not accumulate
    gradients in the model's own parameters.
    """

    def __init__(self, module):
        self.params = [p for p in getattr(module, 'parameters', lambda: [])()
                       if p.requires_grad]

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)
        return self

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)
        return False
