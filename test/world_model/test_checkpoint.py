"""Checkpoints: round trip, clear errors for bad files, atomic save."""
import json
import os

import pytest
import torch

from hlai_ros.world_model import checkpoint
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model, save_world_model
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(state_dim=3, action_dim=2, latent_dim=2, ensemble_size=3, hidden_sizes=(16, 16),
               encoder_hidden=8, predict_reward=True)
    cfg.update(kw)
    model = WorldModel(WorldModelConfig(**cfg))
    s, a = torch.randn(40, 3) * 3 + seed, torch.randn(40, 2)
    model.fit_normalizers(s, a, s + torch.randn(40, 3), torch.randn(40))
    return model.eval()


def _predictions(model):
    g = torch.Generator().manual_seed(0)
    s0, actions = torch.randn(5, 3, generator=g), torch.randn(5, 4, 2, generator=g)
    z = torch.randn(3, 5, 2, generator=g)
    with torch.no_grad():
        return (model.rollout(s0, actions, z), model.reward(s0, actions[:, 0]),
                model.infer_z(torch.randn(5, 3, 3, generator=g), actions[:, :2]))


def _weights(directory):
    return directory / json.loads((directory / 'world_model.json').read_text())['weights']


def test_round_trip_gives_identical_predictions(tmp_path):
    model = _model()
    index = save_world_model(model, tmp_path, metadata={'task': 'push'})
    for path in (tmp_path, index, _weights(tmp_path)):
        loaded = load_world_model(path)
        for a, b in zip(_predictions(model), _predictions(loaded)):
            assert torch.equal(a, b)
        assert loaded.config == model.config
    assert load_world_model(tmp_path).checkpoint_metadata == {'task': 'push'}
    config = json.loads(index.read_text())['config']
    assert config['state_dim'] == 3 and config['hidden_sizes'] == [16, 16]


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match='no checkpoint'):
        load_world_model(tmp_path / 'nowhere')
    save_world_model(_model(), tmp_path)
    _weights(tmp_path).unlink()
    with pytest.raises(CheckpointError, match='missing'):
        load_world_model(tmp_path)


def test_tampered_weights_are_detected(tmp_path):
    save_world_model(_model(), tmp_path)
    weights = _weights(tmp_path)
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_world_model(tmp_path)
    with pytest.raises(CheckpointError, match='modified'):
        load_world_model(weights)


def test_truncated_files_are_detected(tmp_path):
    save_world_model(_model(), tmp_path)
    weights = _weights(tmp_path)
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match='truncated'):
        load_world_model(tmp_path)
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_world_model(weights)
    save_world_model(_model(), tmp_path)
    index = tmp_path / 'world_model.json'
    index.write_text(index.read_text()[:40])
    with pytest.raises(CheckpointError, match='not a valid checkpoint index'):
        load_world_model(tmp_path)


def test_mismatched_config_is_detected(tmp_path):
    save_world_model(_model(), tmp_path)
    index = tmp_path / 'world_model.json'
    doc = json.loads(index.read_text())
    doc['config']['hidden_sizes'] = [32, 32]
    index.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match='edited'):
        load_world_model(tmp_path)
    # A self-consistent file whose tensors do not fit its config.
    model = _model()
    model.config = WorldModelConfig(**dict(model.config.to_dict(), hidden_sizes=(32, 32)))
    save_world_model(model, tmp_path)
    with pytest.raises(CheckpointError, match='wrong shapes'):
        load_world_model(tmp_path)
    save_world_model(_model(), tmp_path)
    with pytest.raises(CheckpointError, match='state_dim=3, expected 9'):
        load_world_model(tmp_path, expect={'state_dim': 9})


@pytest.mark.parametrize('fail_at', [1, 2])
def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch, fail_at):
    old = _model(seed=0)
    save_world_model(old, tmp_path)
    expected = _predictions(old)
    calls = {'n': 0}
    real_replace = os.replace

    def failing_replace(src, dst):
        calls['n'] += 1
        if calls['n'] == fail_at:  # 1: writing the weights, 2: committing the JSON index
            raise OSError('disk full')
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, 'replace', failing_replace)
    with pytest.raises(OSError, match='disk full'):
        save_world_model(_model(seed=1), tmp_path)
    monkeypatch.undo()
    for a, b in zip(expected, _predictions(load_world_model(tmp_path))):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob('*.tmp')), 'temp files left behind'
    # The next good save cleans up and wins.
    new = _model(seed=1)
    save_world_model(new, tmp_path)
    assert torch.equal(_predictions(load_world_model(tmp_path))[0], _predictions(new)[0])
    assert len(list(tmp_path.glob('world_model-*.safetensors'))) == 1
