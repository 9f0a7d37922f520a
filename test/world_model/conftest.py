"""Synthetic systems for the world-model tests: small, fast, with known structure."""
import pytest
import torch

from hlai_ros.world_model.config import WorldModelConfig


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
