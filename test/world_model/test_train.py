"""Training: validation error drops, best model saved, interrupted training resumes exactly."""
from point_mass import point_mass_episodes
import pytest
import torch

from hlai_ros.world_model import train as train_module
from hlai_ros.world_model.checkpoint import load_world_model
from hlai_ros.world_model.dataset import as_episodes, make_windows, split_episodes, transitions
from hlai_ros.world_model.model import WorldModel
from hlai_ros.world_model.objective import multistep_error
from hlai_ros.world_model.train import train_world_model


def _val_windows(episodes, config):
    _, val = split_episodes(as_episodes(episodes), config.val_fraction, config.seed)
    return make_windows(val, config.train_horizon)


def test_training_on_a_small_dataset_lowers_validation_error(small_config):
    small_config = small_config.__class__(**dict(small_config.to_dict(), max_epochs=10))
    episodes = point_mass_episodes(20, steps=30, seed=0, masses=(1.0, 1.0))
    torch.manual_seed(small_config.seed)
    untrained = WorldModel(small_config)
    train_eps, _ = split_episodes(as_episodes(episodes), small_config.val_fraction,
                                  small_config.seed)
    untrained.fit_normalizers(*transitions(train_eps))
    val = _val_windows(episodes, small_config)
    before = multistep_error(untrained, val, 'prior')
    model, history = train_world_model(episodes, small_config, progress=False, device='cpu')
    after = multistep_error(model, val, 'prior')
    assert after < 0.5 * before, (before, after)
    assert len(history.val_error) == small_config.max_epochs
    assert history.val_error[history.best_epoch] == min(history.val_error)
    assert history.train_windows > 0 and history.val_windows > 0


def test_best_model_is_saved_and_reloads(tmp_path, small_config):
    episodes = point_mass_episodes(10, steps=20, seed=1)
    model, history = train_world_model(episodes, small_config, out_dir=tmp_path,
                                       progress=False, device='cpu')
    loaded = load_world_model(tmp_path)
    s0, actions = torch.randn(4, 2), torch.randn(4, 3, 1)
    z = torch.zeros(3, 4, 2)
    assert torch.equal(model.rollout(s0, actions, z), loaded.rollout(s0, actions, z))
    assert loaded.checkpoint_metadata['best_epoch'] == history.best_epoch


def _same_run(a, b):
    model_a, hist_a = a
    model_b, hist_b = b
    assert hist_a.val_error == hist_b.val_error
    assert hist_a.train_loss == hist_b.train_loss
    for (name, x), y in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(x, y), name


def test_resume_continues_where_training_stopped(tmp_path, small_config):
    episodes = point_mass_episodes(10, steps=20, seed=2)
    config = small_config.__class__(**dict(small_config.to_dict(), max_epochs=4, patience=99))
    whole = train_world_model(episodes, config, tmp_path / 'a', progress=False, device='cpu')
    first = small_config.__class__(**dict(config.to_dict(), max_epochs=2))
    train_world_model(episodes, first, tmp_path / 'b', progress=False, device='cpu')
    resumed = train_world_model(episodes, config, tmp_path / 'b', progress=False, device='cpu')
    _same_run(whole, resumed)


def test_resume_after_an_interruption(tmp_path, small_config, monkeypatch):
    episodes = point_mass_episodes(10, steps=20, seed=3)
    config = small_config.__class__(**dict(small_config.to_dict(), max_epochs=4, patience=99))
    whole = train_world_model(episodes, config, tmp_path / 'a', progress=False, device='cpu')
    calls = {'n': 0}
    real = train_module.multistep_error

    def interrupted(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] == 5:  # two validation passes per epoch: stop inside epoch 3
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, 'multistep_error', interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_world_model(episodes, config, tmp_path / 'b', progress=False, device='cpu')
    monkeypatch.undo()
    resumed = train_world_model(episodes, config, tmp_path / 'b', progress=False, device='cpu')
    _same_run(whole, resumed)


def test_resume_refuses_other_data(tmp_path, small_config):
    train_world_model(point_mass_episodes(6, steps=10, seed=4), small_config, tmp_path,
                      progress=False, device='cpu')
    with pytest.raises(ValueError, match='other episodes'):
        train_world_model(point_mass_episodes(6, steps=10, seed=5), small_config, tmp_path,
                          progress=False, device='cpu')


def test_episodes_must_fit_the_config(small_config):
    with pytest.raises(ValueError, match='state size 2 and action size 1'):
        train_world_model(point_mass_episodes(3, steps=5), small_config.__class__(
            **dict(small_config.to_dict(), state_dim=4)), progress=False)


def test_time_budget_stops_training(small_config):
    config = small_config.__class__(**dict(small_config.to_dict(), time_budget_s=1e-9,
                                           max_epochs=50))
    model, history = train_world_model(point_mass_episodes(4, steps=10), config,
                                       progress=False, device='cpu')
    assert history.stop_reason == 'time_budget' and len(history.val_error) == 1
    assert model.rollout(torch.zeros(1, 2), torch.zeros(1, 2, 1)).shape == (3, 1, 3, 2)
