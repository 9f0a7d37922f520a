"""MPPI and CEM on objectives with known optima, and their bounds."""
import pytest
import torch

from hlai_ros.actor.optimizer import CEMOptimizer, MPPIOptimizer, OptimizerConfig, coloured_noise

torch.set_num_threads(1)
T, A = 6, 2


def _quadratic(target):
    def objective(actions):
        return (actions - target).pow(2).sum((1, 2))
    return objective


@pytest.mark.parametrize('optimizer_cls', [MPPIOptimizer, CEMOptimizer])
def test_finds_the_optimum_of_a_quadratic(optimizer_cls):
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(T, A, generator=gen) * 1.6 - 0.8
    config = OptimizerConfig(samples=200, iterations=15, elite_fraction=0.1, momentum=0.1,
                             min_std=0.005, noise_beta=0.0 if optimizer_cls is MPPIOptimizer
                             else 1.0)
    lower, upper = -torch.ones(A), torch.ones(A)
    result = optimizer_cls(config).optimize(_quadratic(target), torch.zeros(T, A),
                                            torch.full((T, A), 0.5), lower, upper, generator=gen)
    assert float((result.mean - target).abs().max()) < 0.05
    assert result.best_cost < 0.05
    assert result.evaluations == 200 * 15


@pytest.mark.parametrize('optimizer_cls', [MPPIOptimizer, CEMOptimizer])
def test_samples_and_result_stay_within_bounds(optimizer_cls):
    seen = []
    target = torch.full((T, A), 3.0)  # optimum outside the box: the answer is the upper bound

    def objective(actions):
        seen.append(actions.clone())
        return _quadratic(target)(actions)

    lower, upper = torch.tensor([-1.0, -0.5]), torch.tensor([1.0, 0.5])
    result = optimizer_cls(OptimizerConfig(samples=64, iterations=8)).optimize(
        objective, torch.zeros(T, A), torch.ones(T, A), lower, upper,
        generator=torch.Generator().manual_seed(1))
    allseen = torch.cat(seen)
    assert bool((allseen >= lower).all() and (allseen <= upper).all())
    assert bool((result.mean >= lower).all() and (result.mean <= upper).all())
    assert torch.allclose(result.best, upper.expand(T, A), atol=0.1)


def test_warm_start_and_proposals_are_evaluated_first():
    target = torch.full((T, A), 0.3)
    proposal = target.unsqueeze(0)
    result = MPPIOptimizer(OptimizerConfig(samples=16, iterations=1)).optimize(
        _quadratic(target), torch.zeros(T, A), torch.ones(T, A), -torch.ones(A), torch.ones(A),
        proposals=proposal, generator=torch.Generator().manual_seed(0))
    assert result.best_cost == 0.0 and torch.equal(result.best, target)


def test_coloured_noise_is_smoother_than_white():
    gen = torch.Generator().manual_seed(0)
    white = coloured_noise(2000, 16, 1, 0.0, gen, torch.device('cpu'), torch.float32)
    pink = coloured_noise(2000, 16, 1, 2.0, gen, torch.device('cpu'), torch.float32)
    assert pink.shape == (2000, 16, 1)
    rough = lambda x: float((x[:, 1:] - x[:, :-1]).pow(2).mean())  # noqa: E731
    assert rough(pink) < 0.5 * rough(white)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match='samples'):
        OptimizerConfig(samples=1)
    with pytest.raises(ValueError, match='must return'):
        MPPIOptimizer(OptimizerConfig(samples=4, iterations=1)).optimize(
            lambda a: a.sum(), torch.zeros(T, A), torch.ones(T, A), -torch.ones(A),
            torch.ones(A))
