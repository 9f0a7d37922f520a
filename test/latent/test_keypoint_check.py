"""The unsupervised keypoint check.

Keypoints on an object stand out, keypoints on the robot do not, and `hlai train
--representation latent` records the check per epoch and in the folder.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_latent_model import TINY, tiny_data
import torch

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
