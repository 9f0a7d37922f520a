"""The spatial event heads: danger maps from the scene, read at the keypoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hlai_ros.latent.events import (
    EventConfig,
    EventHeads,
    PixelEventHeads,
    SpatialEventHeads,
    event_heads_from_settings,
    fit_event_heads,
)


def test_the_danger_read_at_a_keypoint_is_bilinear_as_grid_sample():
    torch.manual_seed(0)
    heads = SpatialEventHeads((4, 4, 4), 7, 3, EventConfig(kind='spatial', scene_features=8))
    maps = torch.randn(2, 4 * 4 * 4)
    states = torch.rand(2, 7) * 2 - 1
    scene = heads.scene_features(maps)
    assert scene.shape == (2, 3 * 8 * 8)
    got = heads.logits(scene, states)
    danger = scene.view(2, 3, 8, 8)
    for b in range(2):
        grid = states[b, :6].view(3, 1, 1, 2)
        read = F.grid_sample(danger[b][:, None], grid, align_corners=True)
        assert got[b].item() == pytest.approx((heads.bias + read.sum()).item(), abs=1e-5)


def test_one_scene_broadcasts_over_a_planners_batch_of_imagined_states():
    heads = SpatialEventHeads((4, 4, 4), 7, 3, EventConfig(kind='spatial', scene_features=8))
    heads.set_scene(torch.randn(64))
    states = torch.rand(5, 16, 6, 7) * 2 - 1
    p = heads.probability(states)
    assert p.shape == (5, 16, 6) and ((p > 0) & (p < 1)).all()
    assert torch.allclose(p[2, 3], heads.probability(states[2, 3]))


def test_spatial_heads_learn_a_dangerous_place_from_the_scene():
    # The scene shows a "hole" in one of two places (channel 0 of the map, left or right
    # half); an episode fails when its keypoint 0 enters the hole. The heads must read the
    # hole's place from the scene, not learn one place for all scenes.
    rng = np.random.default_rng(0)
    n_ep, steps, m = 60, 20, 4
    episode = np.repeat(np.arange(n_ep), steps)
    step = np.tile(np.arange(steps), n_ep)
    side = rng.integers(0, 2, n_ep)                           # 0: hole left, 1: hole right
    maps = torch.zeros(n_ep * steps, 2, m, m)
    for value, cols in ((0, slice(None, m // 2)), (1, slice(m // 2, None))):
        hole = torch.as_tensor(side[episode] == value, dtype=torch.float32)
        maps[:, 0, :, cols] = hole[:, None, None]
    states = torch.as_tensor(rng.uniform(-1, 1, (n_ep * steps, 3)), dtype=torch.float32)
    x = states[:, 0].numpy()
    labels = np.where(side[episode] == 0, x < -0.5, x > 0.5)
    heads, report = fit_event_heads(maps.flatten(1), (2, m, m), states, labels, episode, step,
                                    range(45), range(45, 60),
                                    EventConfig(kind='spatial', steps=600, batch_size=128,
                                                scene_features=8, scene_lag=0),
                                    keypoints=1)
    assert isinstance(heads, SpatialEventHeads) and report['kind'] == 'spatial'
    assert report['precision'] > 0.7 and report['recall'] > 0.7
    left, right = torch.tensor([[-0.9, 0.0, 0.0]]), torch.tensor([[0.9, 0.0, 0.0]])
    heads.set_scene(maps[int(np.flatnonzero(side[episode] == 0)[0])].flatten())
    assert heads.probability(left) > 0.7 > 0.3 > heads.probability(right)
    heads.set_scene(maps[int(np.flatnonzero(side[episode] == 1)[0])].flatten())
    assert heads.probability(right) > 0.7 > 0.3 > heads.probability(left)


def test_settings_rebuild_the_same_kind_of_heads():
    spatial = SpatialEventHeads((4, 4, 4), 7, 3, EventConfig(kind='spatial'))
    mlp = EventHeads((4, 4, 4), 7, EventConfig())
    assert isinstance(event_heads_from_settings(spatial.settings()), SpatialEventHeads)
    assert isinstance(event_heads_from_settings(mlp.settings()), EventHeads)
    rebuilt = event_heads_from_settings(spatial.settings())
    rebuilt.load_state_dict(spatial.state_dict())
    with pytest.raises(ValueError, match='kind'):
        EventConfig(kind='magic')
    with pytest.raises(ValueError, match='keypoints'):
        SpatialEventHeads((4, 4, 4), 5, 3, EventConfig(kind='spatial'))


def test_pixel_heads_find_danger_at_an_object_wherever_the_frame_shows_it():
    # Each episode's frame shows one "obstacle" (a bright 3 x 3 square) at a random place; a
    # frame fails when keypoint 0 is on it. Held-out episodes put the obstacle where no
    # training episode had it near, so the heads must read danger from what the pixels show.
    rng = np.random.default_rng(1)
    n_ep, steps, size = 80, 24, 16
    episode = np.repeat(np.arange(n_ep), steps)
    step = np.tile(np.arange(steps), n_ep)
    centre = rng.integers(3, size - 3, (n_ep, 2))              # obstacle pixel (col, row)
    frames = torch.zeros(n_ep, 4, size, size)
    for e, (c, r) in enumerate(centre):
        frames[e, 3, r - 1:r + 2, c - 1:c + 2] = 1.0
    maps = frames[episode].flatten(1)
    near = rng.random(n_ep * steps) < 0.3               # a third of the frames near the obstacle
    pix = np.where(near[:, None], centre[episode] + rng.uniform(-1, 1, (n_ep * steps, 2)),
                   rng.uniform(0, size - 1, (n_ep * steps, 2)))
    kp = pix / (size - 1) * 2 - 1                                  # [-1, 1] image coordinates
    states = torch.as_tensor(np.concatenate([kp, rng.normal(size=(len(kp), 1))], 1),
                             dtype=torch.float32)
    labels = np.abs(pix - centre[episode]).max(1) <= 1.5
    heads, report = fit_event_heads(maps, (4, size, size), states, labels, episode, step,
                                    range(60), range(60, 80),
                                    EventConfig(kind='pixels', steps=500, batch_size=128,
                                                scene_features=8, scene_lag=0),
                                    keypoints=1)
    assert isinstance(heads, PixelEventHeads) and report['kind'] == 'pixels'
    assert report['precision'] > 0.6 and report['recall'] > 0.6
    e = 70
    heads.set_scene(frames[e].flatten())
    at = torch.tensor([[*(centre[e] / (size - 1) * 2 - 1), 0.0]], dtype=torch.float32)
    away = torch.tensor([[*((centre[e] + 6) % size / (size - 1) * 2 - 1), 0.0]],
                        dtype=torch.float32)
    assert heads.probability(at) > 0.5 > heads.probability(away)
    assert isinstance(event_heads_from_settings(heads.settings()), PixelEventHeads)
