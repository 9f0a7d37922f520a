"""Sampling optimizers over action sequences: MPPI and CEM (with iCEM's elite carry-over).

They know nothing of robots or models: they minimise `objective(actions (N, T, A)) -> (N,)`
inside box bounds, starting from a mean sequence (T, A) and a standard deviation (T, A).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class OptimizerConfig:
    """Settings shared by MPPI and CEM."""

    samples: int = 256
    """Action sequences N evaluated per iteration."""
    iterations: int = 2
    """Sample-evaluate-update rounds per call."""
    temperature: float = 0.3
    """MPPI: softmin temperature, in units of the standard deviation of the costs."""
    elite_fraction: float = 0.1
    """CEM: fraction of samples that form the elite set."""
    keep_elite_fraction: float = 0.3
    """CEM (iCEM): fraction of the previous iteration's elites carried into the next one."""
    noise_beta: float = 0.0
    """Exponent of the power-law (coloured) sampling noise along time (iCEM; 0 is white)."""
    momentum: float = 0.1
    """Weight kept of the old mean and std at each update (0 replaces them)."""
    min_std: float = 0.02
    """Floor of the sampling std, in action units relative to the half range."""

    def __post_init__(self):
        if self.samples < 2 or self.iterations < 1:
            raise ValueError(f'need samples >= 2 and iterations >= 1, got {self.samples} '
                             f'and {self.iterations}')
        if not 0 < self.elite_fraction <= 1 or not 0 <= self.keep_elite_fraction <= 1:
            raise ValueError('elite_fraction must be in (0, 1] and keep_elite_fraction in [0, 1]')
        if self.temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {self.temperature}')


@dataclass
class OptimizerResult:
    """Outcome of one optimisation call."""

    mean: torch.Tensor
    """Final sampling mean (T, A)."""
    std: torch.Tensor
    """Final sampling std (T, A)."""
    best: torch.Tensor
    """Lowest-cost sequence evaluated (T, A)."""
    best_cost: float
    """Its cost."""
    evaluations: int
    """Number of sequences evaluated."""


def coloured_noise(n: int, t: int, a: int, beta: float, generator: torch.Generator | None,
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Unit-variance Gaussian noise (n, t, a) with power spectrum ~ 1/f^beta along t."""
    white = torch.randn(n, t, a, generator=generator, device=device, dtype=dtype)
    if beta == 0.0 or t < 2:
        return white
    spec = torch.fft.rfft(white, dim=1)
    freqs = torch.fft.rfftfreq(t, device=device).to(dtype)
    freqs[0] = freqs[1]
    spec = spec * freqs.pow(-beta / 2).view(1, -1, 1)
    noise = torch.fft.irfft(spec, n=t, dim=1)
    return noise / noise.std(dim=1, keepdim=True).clamp_min(1e-6)


class SamplingOptimizer:
    """Base of MPPI and CEM: sampling inside bounds, the loop, and the best-so-far record."""

    def __init__(self, config: OptimizerConfig = OptimizerConfig()):
        self.config = config

    def update(self, samples: torch.Tensor, costs: torch.Tensor, mean: torch.Tensor,
               std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """New (mean, std) from samples (N, T, A) and their costs (N,)."""
        raise NotImplementedError

    def optimize(self, objective: Objective, mean: torch.Tensor, std: torch.Tensor,
                 lower: torch.Tensor, upper: torch.Tensor,
                 proposals: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> OptimizerResult:
        """Minimise objective from mean/std (T, A) within bounds (A,); proposals (M, T, A).

        The first iteration also evaluates the mean itself and the proposals, so the result
        is never worse than the warm start.
        """
        cfg = self.config
        if mean.dim() != 2 or std.shape != mean.shape:
            raise ValueError(f'mean and std must be (T, A), got {tuple(mean.shape)} '
                             f'and {tuple(std.shape)}')
        t, a = mean.shape
        if lower.shape != (a,) or upper.shape != (a,):
            raise ValueError(f'bounds must be ({a},), got {tuple(lower.shape)}, '
                             f'{tuple(upper.shape)}')
        min_std = cfg.min_std * (upper - lower) / 2
        n_keep = int(cfg.keep_elite_fraction * max(1, int(cfg.elite_fraction * cfg.samples)))
        best, best_cost, evaluations = mean, float('inf'), 0
        kept = None
        for i in range(cfg.iterations):
            noise = coloured_noise(cfg.samples, t, a, cfg.noise_beta, generator, mean.device,
                                   mean.dtype)
            samples = mean + std * noise
            fixed = [mean.unsqueeze(0)] if i == 0 else []
            if i == 0 and proposals is not None:
                if proposals.shape[1:] != (t, a):
                    raise ValueError(f'proposals must be (M, {t}, {a}), '
                                     f'got {tuple(proposals.shape)}')
                fixed.append(proposals)
            if kept is not None:
                fixed.append(kept)
            if fixed:
                fixed_t = torch.cat(fixed)[:cfg.samples]
                samples = torch.cat([fixed_t, samples[fixed_t.shape[0]:]])
            samples = torch.max(torch.min(samples, upper), lower)
            costs = objective(samples)
            if costs.shape != (samples.shape[0],):
                raise ValueError(f'objective must return ({samples.shape[0]},), '
                                 f'got {tuple(costs.shape)}')
            costs = torch.nan_to_num(costs, nan=float('inf'))
            evaluations += samples.shape[0]
            j = int(torch.argmin(costs))
            if float(costs[j]) < best_cost:
                best, best_cost = samples[j].clone(), float(costs[j])
            if n_keep > 0:
                kept = samples[torch.topk(costs, n_keep, largest=False).indices]
            new_mean, new_std = self.update(samples, costs, mean, std)
            mean = cfg.momentum * mean + (1 - cfg.momentum) * new_mean
            std = torch.max(cfg.momentum * std + (1 - cfg.momentum) * new_std, min_std)
            mean = torch.max(torch.min(mean, upper), lower)
        return OptimizerResult(mean=mean, std=std, best=best, best_cost=best_cost,
                               evaluations=evaluations)


class MPPIOptimizer(SamplingOptimizer):
    """Model-predictive path integral: the mean becomes the softmin-weighted sample average."""

    def update(self, samples, costs, mean, std):
        """Softmin weights over costs normalised by their spread; weighted mean and std."""
        finite = torch.isfinite(costs)
        spread = costs[finite].std() if int(finite.sum()) > 1 else costs.new_ones(())
        logits = -(costs - costs.min()) / (self.config.temperature * spread.clamp_min(1e-8))
        w = torch.softmax(logits, 0).view(-1, 1, 1)
        new_mean = (w * samples).sum(0)
        new_std = torch.sqrt((w * (samples - new_mean).pow(2)).sum(0))
        return new_mean, new_std


class CEMOptimizer(SamplingOptimizer):
    """Cross-entropy method: the mean and std become those of the elite samples."""

    def update(self, samples, costs, mean, std):
        """Mean and std of the lowest-cost elite_fraction of samples."""
        k = max(2, int(self.config.elite_fraction * samples.shape[0]))
        elites = samples[torch.topk(costs, k, largest=False).indices]
        return elites.mean(0), elites.std(0)


OPTIMIZERS = {'mppi': MPPIOptimizer, 'cem': CEMOptimizer}
"""Optimizers by name, as chosen in PlannerConfig.optimizer."""
