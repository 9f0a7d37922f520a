"""The unsupervised keypoint check.

Keypoints on an object stand out, keypoints on the robot do not, and `hlai train
--representation latent` records the check per epoch and in the folder.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from test_latent_model import TINY, tiny_data
import torch

from hlai_ros.latent import train as latent_train
from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.keypoint_check import WARN_BELOW, keypoint_check, unexplained_spread
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.train import train_latent


def _episodes(seed=0, episodes=30, steps=40):
    """Proprioception, keypoints (robot, object, jitter) and episode ids of a fake arm."""
    rng = np.random.default_rng(seed)
    proprio, kps, episode = [], [], []
    for e in range(episodes):
        joints = np.cumsum(rng.normal(0, 0.1, (steps, 3)), 0)
        hand = np.stack([0.3 * joints[:, 0] - 0.2 * joints[:, 1], 0.4 * joints[:, 2]], 1)
        box = np.broadcast_to(rng.uniform(-0.5, 0.5, 2), (steps, 2))   # put once an episode
        jitter = rng.normal(0, 0.05, (steps, 2))
        proprio.append(joints)
        kps.append(np.stack([hand, box, jitter], 1))
        episode.append(np.full(steps, e))
    return np.concatenate(kps), np.concatenate(proprio), np.concatenate(episode)


def test_an_object_keypoint_stands_out_and_robot_and_jitter_do_not():
    kps, proprio, episode = _episodes()
    spread = unexplained_spread(kps, proprio, episode)
    hand, box, jitter = spread
    assert hand < 0.01                     # the joints explain it
    assert box > 0.3                       # uniform over [-0.5, 0.5] in x and y: std ~0.41
    assert jitter < 0.03                   # frame noise averages out within an episode
    assert spread.max() > WARN_BELOW > max(hand, jitter)
    # every keypoint on the robot: nothing stands out
    assert unexplained_spread(kps[:, [0, 0, 2]], proprio, episode).max() < WARN_BELOW


def test_bad_shapes_are_refused():
    kps, proprio, episode = _episodes(episodes=3)
    with pytest.raises(ValueError, match='keypoints'):
        unexplained_spread(kps[..., 0], proprio, episode)
    with pytest.raises(ValueError, match='keypoints'):
        unexplained_spread(kps, proprio[:-1], episode)
    assert unexplained_spread(kps, proprio, np.zeros(len(kps))).tolist() == [0.0, 0.0, 0.0]


def test_keypoint_check_of_a_model_leaves_its_mode_and_skips_models_without_keypoints():
    data = tiny_data(4)
    model = LatentWorldModel(LatentConfig(**TINY))
    model.fit_normalizers(data.rgb, data.depth.float(), data.proprio, data.actions[data.valid])
    model.train()
    check = keypoint_check(model, data, max_frames=30)
    assert model.training
    assert len(check['spread']) == TINY['keypoints']
    assert check['max'] == max(check['spread']) and check['warn'] == (check['max'] < WARN_BELOW)
    no_kp = LatentWorldModel(LatentConfig(**dict(TINY, keypoints=0)))
    assert keypoint_check(no_kp, data) == {}


def test_training_records_the_check_per_epoch_and_in_the_folder(tmp_path):
    torch.manual_seed(0)
    data = tiny_data(6)
    _, hist = train_latent(data, LatentConfig(**TINY), tmp_path, progress=False,
                           check_keypoints=True)
    assert len(hist.keypoint_check) == len(hist.val_loss) == TINY['max_epochs']
    saved = json.loads((tmp_path / 'latent_model.json').read_text())
    assert saved['metadata']['keypoint_check']['max'] == hist.keypoint_check[hist.best_epoch]
    _, off = train_latent(data, LatentConfig(**TINY), tmp_path / 'off', progress=False)
    assert off.keypoint_check == []


def _args(tmp_path, restarts, check_epochs=1):
    return argparse.Namespace(out=tmp_path, no_progress=True, no_resume=False,
                              restarts=restarts, check_epochs=check_epochs)


def test_restarts_start_again_with_the_next_seed_while_the_keypoints_miss(tmp_path,
                                                                          monkeypatch):
    data = tiny_data(6)
    monkeypatch.setattr(latent_train, 'WARN_BELOW', 10.0)  # every check fails
    summary = {}
    hist = latent_train._train_encoder(data, LatentConfig(**dict(TINY, seed=5)),
                                       _args(tmp_path, restarts=2), {}, True, summary)
    assert [a['seed'] for a in summary['attempts']] == [5, 6, 7]
    assert [a['epochs'] for a in summary['attempts']] == [1, 1, TINY['max_epochs']]
    assert [a['stop_reason'] for a in summary['attempts']][:2] == ['keypoints', 'keypoints']
    assert hist.stop_reason != 'keypoints'          # the last attempt is never abandoned
    saved = json.loads((tmp_path / 'latent_model.json').read_text())
    assert saved['config']['seed'] == 7
    # run again: the saved state is the last attempt's, so seeds 5 and 6 are skipped
    again = {}
    latent_train._train_encoder(data, LatentConfig(**dict(TINY, seed=5)),
                                _args(tmp_path, restarts=2), {}, True, again)
    assert [a['seed'] for a in again['attempts']] == [7]


def test_no_restart_when_the_keypoints_pass_or_the_goal_is_the_robot(tmp_path, monkeypatch):
    data = tiny_data(6)
    monkeypatch.setattr(latent_train, 'WARN_BELOW', 0.0)  # every check passes
    summary = {}
    latent_train._train_encoder(data, LatentConfig(**TINY), _args(tmp_path / 'a', 2), {}, True,
                                summary)
    assert [a['seed'] for a in summary['attempts']] == [0]
    monkeypatch.setattr(latent_train, 'WARN_BELOW', 10.0)  # would fail, but is not checked
    robot = {}
    hist = latent_train._train_encoder(data, LatentConfig(**TINY), _args(tmp_path / 'b', 2), {},
                                       False, robot)
    assert 'attempts' not in robot and hist.keypoint_check == []


def test_hlai_train_passes_restarts_and_check_epochs_and_refuses_them_for_state(tmp_path,
                                                                                monkeypatch):
    from hlai_ros.cli import main as hlai
    import hlai_ros.latent.data
    seen = []

    def fake_train_latent(data, config, out_dir, **kwargs):
        seen.append((config.seed, kwargs['check_keypoints'], kwargs['abandon_after']))
        return None, latent_train.LatentHistory(stop_reason='keypoints' if len(seen) < 2
                                                else 'max_epochs', keypoint_check=[0.01])

    monkeypatch.setattr(hlai_ros.latent.data, 'load_dataset', lambda *a, **k: tiny_data(3))
    monkeypatch.setattr(latent_train, 'train_latent', fake_train_latent)
    assert hlai(['train', '--task', 'push', '--representation', 'latent', '--stage', 'encoder',
                 '--data', str(tmp_path), '--out', str(tmp_path / 'm'), '--seed', '3',
                 '--restarts', '2', '--check-epochs', '4', '--quiet']) == 0
    assert seen == [(3, True, 4), (4, True, 4)]   # push's goal is the box: checked, restarted
    seen.clear()
    assert hlai(['train', '--task', 'cliff', '--representation', 'latent', '--stage', 'encoder',
                 '--data', str(tmp_path), '--out', str(tmp_path / 'c'), '--restarts', '2',
                 '--quiet']) == 0
    assert seen == [(0, False, 0)]                 # cliff's goal is the robot: never restarted
    with pytest.raises(SystemExit, match='--restarts'):
        hlai(['train', '--task', 'push', '--data', str(tmp_path), '--restarts', '1'])
