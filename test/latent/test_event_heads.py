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


def test_a_mirrored_frame_keeps_each_keypoint_on_what_it_marked():
    from hlai_ros.latent.events import _mirror
    size, rng = 16, np.random.default_rng(0)
    frames, states = torch.zeros(64, 4, size, size), torch.zeros(64, 5)
    pix = rng.integers(0, size, (64, 2))                                          # (col, row)
    for i, (c, r) in enumerate(pix):
        frames[i, 3, r, c] = 1.0
    states[:, :2] = torch.as_tensor(pix / (size - 1) * 2 - 1, dtype=torch.float32)
    states[:, 2:4], states[:, 4] = 0.5, 7.0                       # a second keypoint, a latent
    mirrored, moved = _mirror(frames.flatten(1), states, (4, size, size), 2, rng)
    mirrored = mirrored.reshape(-1, 4, size, size)
    back = ((moved[:, :2] + 1) / 2 * (size - 1)).round().long()
    assert torch.equal(mirrored[torch.arange(64), 3, back[:, 1], back[:, 0]], torch.ones(64))
    assert set(moved[:, 2].tolist()) == {0.5, -0.5} and set(moved[:, 4].tolist()) == {7.0}
    assert not torch.equal(moved[:, :2], states[:, :2])                   # some were mirrored


def test_pixel_heads_with_mirroring_read_danger_only_at_keypoints_that_move():
    # As above, with a second keypoint that never moves (a fixed mark in the scene): with
    # moving_keypoints set the heads may not read the map there, and mirroring keeps the
    # danger at the obstacle.
    rng = np.random.default_rng(1)
    n_ep, steps, size = 80, 24, 16
    episode = np.repeat(np.arange(n_ep), steps)
    step = np.tile(np.arange(steps), n_ep)
    centre = rng.integers(3, size - 3, (n_ep, 2))
    frames = torch.zeros(n_ep, 4, size, size)
    for e, (c, r) in enumerate(centre):
        frames[e, 3, r - 1:r + 2, c - 1:c + 2] = 1.0
    near = rng.random(n_ep * steps) < 0.3
    pix = np.where(near[:, None], centre[episode] + rng.uniform(-1, 1, (n_ep * steps, 2)),
                   rng.uniform(0, size - 1, (n_ep * steps, 2)))
    kp = pix / (size - 1) * 2 - 1
    still = np.full((len(kp), 2), 0.3)
    states = torch.as_tensor(np.concatenate([kp, still], 1), dtype=torch.float32)
    labels = np.abs(pix - centre[episode]).max(1) <= 1.5
    heads, report = fit_event_heads(frames[episode].flatten(1), (4, size, size), states,
                                    labels, episode, step, range(60), range(60, 80),
                                    EventConfig(kind='pixels', steps=500, batch_size=128,
                                                scene_features=8, scene_lag=0, flips=True,
                                                moving_keypoints=0.05),
                                    keypoints=2)
    weight = F.softplus(heads.keypoint_weight.detach())
    assert weight[1] < 1e-9 < weight[0]
    assert report['precision'] > 0.6 and report['recall'] > 0.6
    with pytest.raises(ValueError, match='pixel heads only'):
        fit_event_heads(frames[episode].flatten(1), (4, size, size), states, labels, episode,
                        step, range(60), range(60, 80),
                        EventConfig(kind='spatial', steps=1, flips=True), keypoints=2)


def test_planning_settings_read_switches_as_0_or_1():
    from hlai_ros.latent.planning import PlanningSettings
    s = PlanningSettings().with_overrides(['event_flips=1', 'event_moving=0.05'])
    assert s.event_flips is True and s.event_moving == 0.05
    off = PlanningSettings(event_flips=True).with_overrides(['event_flips=0'])
    assert off.event_flips is False
    with pytest.raises(ValueError, match='0 or 1'):
        PlanningSettings().with_overrides(['event_flips=maybe'])
