"""Synthetic systems for the world-model tests: small, fast, with known structure."""
import numpy as np
import pytest
import torch

from hlai_ros.world_model.config import WorldModelConfig


def point_mass_episodes(n_episodes, steps=40, seed=0, masses=(0.4, 2.5), gain=1.0, dt=0.1,
                        damping=0.5, offset=0.0):
    """1-D point mass pushed by a random force; its mass is hidden and differs per episode.

    state (x [m], v [m/s]), action force [N] in [-1, 1]; v' = v + dt (gain u / m - damping v),
    x' = x + dt v'. The mass is drawn log-uniformly from `masses` per episode; episodes start
    within 1 m of x = offset.
    """
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        mass = float(np.exp(rng.uniform(np.log(masses[0]), np.log(masses[1]))))
        s = np.zeros((steps + 1, 2), np.float32)
        s[0] = rng.uniform(-1.0, 1.0, 2) + (offset, 0.0)
        a = rng.uniform(-1.0, 1.0, (steps, 1)).astype(np.float32)
        for t in range(steps):
            v = s[t, 1] + dt * (gain * a[t, 0] / mass - damping * s[t, 1])
            s[t + 1] = (s[t, 0] + dt * v, v)
        r = -(s[1:, 0] ** 2).astype(np.float32)
        episodes.append({'states': s, 'actions': a, 'rewards': r})
    return episodes


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def small_config():
    """A tiny model that trains in a second or two."""
    return WorldModelConfig(state_dim=2, action_dim=1, latent_dim=2, ensemble_size=3,
                            hidden_sizes=(32, 32), encoder_hidden=16, train_horizon=4,
                            batch_size=64, max_epochs=3, patience=5, learning_rate=3e-3,
                            time_budget_s=0.0)
