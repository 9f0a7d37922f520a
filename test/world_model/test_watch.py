"""Hot reload: a watcher loads each new checkpoint once and keeps the old model on a bad one."""
import json

import torch

from hlai_ros.world_model.checkpoint import save_world_model
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel
from hlai_ros.world_model.watch import CheckpointWatcher


def _model(seed, state_dim=3):
    torch.manual_seed(seed)
    return WorldModel(WorldModelConfig(state_dim=state_dim, action_dim=2, latent_dim=2,
                                       ensemble_size=2, hidden_sizes=(8,),
                                       encoder_hidden=8)).eval()


def test_new_checkpoint_is_loaded_once(tmp_path):
    save_world_model(_model(0), tmp_path)
    watcher = CheckpointWatcher(tmp_path, expect={'state_dim': 3})
    assert watcher.poll() is None  # the checkpoint present at start counts as loaded
    new = _model(1)
    save_world_model(new, tmp_path)
    loaded = watcher.poll()
    assert loaded is not None and watcher.loads == 1 and watcher.last_error == ''
    for name, value in new.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
    assert watcher.poll() is None


def test_watcher_waits_for_a_checkpoint_to_appear(tmp_path):
    watcher = CheckpointWatcher(tmp_path / 'later')
    assert watcher.poll() is None
    save_world_model(_model(0), tmp_path / 'later')
    assert watcher.poll() is not None


def test_bad_checkpoint_is_refused_with_the_reason(tmp_path):
    save_world_model(_model(0), tmp_path)
    watcher = CheckpointWatcher(tmp_path, expect={'state_dim': 3})
    save_world_model(_model(1, state_dim=4), tmp_path)
    assert watcher.poll() is None
    assert 'state_dim=4, expected 3' in watcher.last_error
    index = tmp_path / 'world_model.json'
    save_world_model(_model(2), tmp_path)
    (tmp_path / json.loads(index.read_text())['weights']).write_bytes(b'truncated')
    assert watcher.poll() is None and 'SHA-256' in watcher.last_error

