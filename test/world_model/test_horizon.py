"""k-step error against horizon, its baselines, the plot, and generic gymnasium use."""
import numpy as np
import pytest
import torch

from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.gym_episodes import collect_random_episodes
from hlai_ros.world_model.horizon import (
    constant_velocity_forecast,
    horizon_errors,
    plot_horizon_errors,
)
from hlai_ros.world_model.model import WorldModel
from hlai_ros.world_model.train import train_world_model


def _coasting_episodes(n=4, steps=15, dt=0.1):
    """A puck coasting at constant velocity: state (x, y, vx, vy); actions do nothing."""
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(n):
        v = rng.normal(size=2)
        t = np.arange(steps + 1)[:, None] * dt
        states = np.concatenate([rng.normal(size=2) + t * v, np.tile(v, (steps + 1, 1))], 1)
        episodes.append((states.astype(np.float32), np.zeros((steps, 1), np.float32)))
    return episodes


def test_constant_velocity_baseline_is_exact_on_a_coasting_puck():
    model = WorldModel(WorldModelConfig(state_dim=4, action_dim=1, ensemble_size=2,
                                        hidden_sizes=(8,)))
    episodes = _coasting_episodes()
    mapped = horizon_errors(model, episodes, 5, velocity_of={0: 2, 1: 3}, dt=0.1)
    fallback = horizon_errors(model, episodes, 5)
    assert mapped.horizons == [1, 2, 3, 4, 5] and mapped.windows == 4 * (15 - 5)
    np.testing.assert_allclose(mapped.constant_velocity, 0.0, atol=1e-5)
    np.testing.assert_allclose(fallback.constant_velocity, 0.0, atol=1e-5)
    # Zero motion is off by k steps of travel: its error grows linearly with k.
    zero = np.array(mapped.zero_motion)
    np.testing.assert_allclose(zero / zero[0], np.arange(1, 6), rtol=1e-4)
    assert np.array(mapped.model_per_dim).shape == (5, 4)


def test_constant_velocity_forecast_needs_dt_with_a_mapping():
    s = torch.zeros(2, 4)
    with pytest.raises(ValueError, match='dt'):
        constant_velocity_forecast(s, s, torch.arange(1, 3), velocity_of={0: 2})


def test_horizon_errors_reject_short_episodes_and_bad_latent():
    model = WorldModel(WorldModelConfig(state_dim=4, action_dim=1, ensemble_size=2,
                                        hidden_sizes=(8,)))
    with pytest.raises(ValueError, match='long enough'):
        horizon_errors(model, _coasting_episodes(steps=4), 5)
    with pytest.raises(ValueError, match='latent'):
        horizon_errors(model, _coasting_episodes(), 5, latent='posterior')


def test_pendulum_model_beats_the_baselines_and_plots(tmp_path):
    torch.set_num_threads(1)
    train = collect_random_episodes('Pendulum-v1', 800, seed=0)
    held_out = collect_random_episodes('Pendulum-v1', 200, seed=1)
    config = WorldModelConfig(state_dim=3, action_dim=1, latent_dim=1, ensemble_size=2,
                              hidden_sizes=(64, 64), encoder_hidden=16, train_horizon=4,
                              batch_size=64, max_epochs=6, patience=6, learning_rate=3e-3,
                              predict_reward=True, time_budget_s=0.0, val_fraction=0.25)
    model, _ = train_world_model(train, config, progress=False, device='cpu')
    errors = horizon_errors(model, held_out, 10)
    for k in (0, 4, 9):
        assert errors.model[k] < errors.zero_motion[k], errors
        assert errors.model[k] < errors.constant_velocity[k], errors
    assert model.reward(torch.zeros(1, 3), torch.zeros(1, 1)).shape == (2, 1)
    png = plot_horizon_errors(errors, tmp_path / 'horizon.png', 'Pendulum-v1')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_gym_collection_rejects_non_box_spaces():
    with pytest.raises(ValueError, match='Box'):
        collect_random_episodes('CartPole-v1', 10)
