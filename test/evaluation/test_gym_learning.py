"""The generic gym pipeline: Pendulum-v1 learned from a small budget beats random actions."""
import pytest
import torch

from hlai_ros.actor import OptimizerConfig, PlannerConfig
from hlai_ros.evaluation import GymLearningConfig, learn_and_evaluate, mean_interval, rate_interval

torch.set_num_threads(1)

SMOKE = GymLearningConfig(
    random_fraction=1.0, rounds=0, episodes=3, max_episode_steps=100,
    planner=PlannerConfig(horizon=15, sampling=OptimizerConfig(samples=128, iterations=2),
                          gradient_steps=0, policy_fraction=0.0, critic_weight=0.0),
    model={'latent_dim': 0, 'ensemble_size': 3, 'hidden_sizes': (64, 64), 'train_horizon': 4,
           'max_epochs': 40, 'patience': 5, 'time_budget_s': 8.0, 'batch_size': 128})


def test_pendulum_learned_from_a_small_budget_beats_random():
    """1000 random steps train the model (with its reward head); the planner then swings up."""
    results = learn_and_evaluate('Pendulum-v1', budget_steps=1000, seed=0, config=SMOKE)
    random, planner = results.controllers['random'], results.controllers['planner']
    assert results.transitions == 1000
    assert planner.episodes == random.episodes == 3
    assert planner.success_rate is None  # Pendulum reports no success
    # random actions score about -500 over 100 steps; require a clear margin above that
    assert planner.mean_return > random.mean_return + 0.3 * abs(random.mean_return), (
        planner.mean_return, random.mean_return)


def test_non_box_spaces_are_rejected():
    with pytest.raises(ValueError, match='Box'):
        learn_and_evaluate('CartPole-v1', budget_steps=10, config=SMOKE)


def test_intervals():
    mean, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and lo < 2.0 < hi
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)
    p, lo, hi = rate_interval(8, 10)
    assert p == 0.8 and 0.4 < lo < 0.8 < hi < 1.0
    with pytest.raises(ValueError):
        rate_interval(3, 2)
