"""Live learning without ROS: surprise, rollouts, and online checkpoints that keep identity."""
import dataclasses

import numpy as np
import pytest
import torch

from hlai_ros.paths import model_dir
from hlai_ros.tasks import get_task, task_names
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model
from hlai_ros.world_model.live import LiveLearner, WorldModelNodeConfig
from hlai_ros.world_model.surprise import EpisodeContext


def _model_states(model, n, action):
    """Model states (n, S) that the model itself predicts from rest under `action`."""
    s = torch.zeros(model.state_dim)
    s[2] = 1.0  # cos(yaw) of the cliff layout
    z = torch.zeros(model.ensemble_size, 1, model.latent_dim)
    out = []
    with torch.no_grad():
        for _ in range(n):
            out.append(s.numpy().copy())
            s = model.next(s[None], torch.tensor([action]), z).mean(0)[0]
    return np.array(out, dtype=np.float32)


@pytest.fixture(scope='module')
def cliff_model():
    torch.set_num_threads(1)
    return load_world_model(model_dir() / 'cliff', 'cpu')


def test_surprise_is_small_for_predicted_motion_and_large_for_a_jump(cliff_model):
    context = EpisodeContext(cliff_model, context_size=4)
    states = _model_states(cliff_model, 6, (0.3, 0.4))
    action = np.array([0.3, 0.4], np.float32)
    values = []
    for s, s_next in zip(states[:-1], states[1:]):
        values.append(context.surprise(s, action, s_next))
        context.remember(s, action, s_next)
    assert len(context.transitions) == 4  # the newest context_size
    jump = states[-1] + np.array([1.0, 0, 0, 0, 0, 0], np.float32)
    assert context.surprise(states[-2], action, jump) > 5 * max(values)
    paths = context.imagine(states[0], action, 7)
    assert paths.shape == (cliff_model.ensemble_size, 8, cliff_model.state_dim)
    assert np.allclose(paths[:, 0], states[0])
    context.reset()
    assert context.transitions == [] and not context.latent().any()


def test_online_checkpoint_keeps_identity_and_is_refused_for_another_task(tmp_path):
    cliff = get_task('cliff')
    cfg = WorldModelNodeConfig(task='cliff', output_dir=str(tmp_path / 'online'),
                               rehearsal_size=16, batch_size=8, min_transitions=2,
                               replay_size=50, device='cpu')
    live = LiveLearner(cliff, cfg)
    assert live.model is not None, live.error
    states = _model_states(live.model, 5, (0.3, 0.4))
    for k, state in enumerate(states):
        live.on_command(np.array([0.3, 0.4], np.float32), 100 * k + 50)
        live.on_state(state, 100 * k + 100)
    assert live.stats['transitions'] == len(states) - 1
    assert live.save() is None  # nothing learnt yet
    assert live.update() and live.save() is not None
    assert live.save() is None  # no new updates

    loaded = load_world_model(tmp_path / 'online', identity=cliff.identity('state'))
    assert loaded.checkpoint_metadata['identity'] == cliff.identity('state')
    assert loaded.checkpoint_metadata['online']['updates'] == 1
    other = next(get_task(n) for n in task_names() if n != 'cliff')
    with pytest.raises(CheckpointError, match='cannot be loaded'):
        load_world_model(tmp_path / 'online', identity=other.identity('state'))


def test_without_a_model_it_waits_and_config_checks_the_task(tmp_path):
    cfg = WorldModelNodeConfig(task='cliff', model_path=str(tmp_path / 'none'), device='cpu')
    live = LiveLearner(get_task('cliff'), cfg)
    assert live.model is None and f'no world model at {tmp_path / "none"}' in live.error
    assert live.on_state(np.zeros(6, np.float32), 1) is None and not live.update()
    with pytest.raises(ValueError, match='known tasks'):
        dataclasses.replace(cfg, task='nope')


@pytest.mark.parametrize('measured_only, learned', [(False, 6), (True, 3)])
def test_live_learning_skips_unmeasured_states_as_hlai_train_does(tmp_path, measured_only,
                                                                   learned):
    class Measured(type(get_task('cliff'))):
        train_measured_only = measured_only

    cfg = WorldModelNodeConfig(task='cliff', output_dir=str(tmp_path / 'online'),
                               rehearsal_size=16, batch_size=8, min_transitions=2,
                               replay_size=50, device='cpu')
    live = LiveLearner(Measured(), cfg)
    states = _model_states(live.model, 7, (0.3, 0.4))
    seen = [True, True, True, False, True, True, True]  # 3 hidden, 4 just back: 0-1, 1-2, 5-6
    for k, (state, measured) in enumerate(zip(states, seen)):
        live.on_command(np.array([0.3, 0.4], np.float32), 100 * k + 50)
        live.on_state(state, 100 * k + 100, measured)
    assert live.stats['transitions'] == learned
