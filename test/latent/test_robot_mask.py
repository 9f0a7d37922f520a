"""Pixel event heads that mask the robot: the danger map shows places, not the robot in one."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hlai_ros.latent.events import (
    EventConfig,
    PixelEventHeads,
    event_heads_from_settings,
    fit_event_heads,
    mask_robot,
)

SIZE = 16


def _pixel(col: float, row: float) -> list[float]:
    """A pixel's (col, row) in the keypoints' [-1, 1] frame coordinates."""
    return [col / (SIZE - 1) * 2 - 1, row / (SIZE - 1) * 2 - 1]


def test_the_mask_blanks_a_disk_round_the_chosen_keypoints_centroid_only():
    frames = torch.ones(2, 4 * SIZE * SIZE)
    # keypoints 0 and 1 on the robot (centroid at pixel (5, 8)), keypoint 2 far away
    states = torch.tensor([_pixel(4, 8) + _pixel(6, 8) + _pixel(14, 1) + [7.0],
                           _pixel(10, 3) + _pixel(10, 5) + _pixel(0, 15) + [7.0]])
    out = mask_robot(frames, states, (4, SIZE, SIZE), 3, (0, 1), 2.5).view(2, 4, SIZE, SIZE)
    rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing='ij')
    for i, (col, row) in enumerate([(5, 8), (10, 4)]):
        inside = (cols - col) ** 2 + (rows - row) ** 2 <= 6   # 2.5 ** 2: no pixel on the rim
        assert (out[i][:, inside] == 0).all()               # every channel, within the radius
        assert (out[i][:, ~inside] == 1).all()              # untouched outside it
    assert out[0, :, 1, 14].eq(1).all()                     # not centred on keypoint 2


def test_fitted_heads_mask_the_moving_keypoints_and_ignore_what_the_robot_looks_like():
    # One obstacle per episode (channel 3); keypoint 0 is the robot, drawn as a bright 3 x 3
    # blob in channel 0 where it stands; keypoint 1 sits still. A frame fails next to the
    # obstacle.
    rng = np.random.default_rng(0)
    n_ep, steps = 60, 20
    episode = np.repeat(np.arange(n_ep), steps)
    step = np.tile(np.arange(steps), n_ep)
    centre = rng.integers(3, SIZE - 3, (n_ep, 2))
    pix = rng.uniform(1, SIZE - 2, (n_ep * steps, 2))
    frames = torch.zeros(n_ep * steps, 4, SIZE, SIZE)
    for i, ((c, r), (x, y)) in enumerate(zip(centre[episode], pix)):
        frames[i, 3, r - 1:r + 2, c - 1:c + 2] = 1.0
        frames[i, 0, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 1.0
    states = torch.as_tensor(np.concatenate([pix / (SIZE - 1) * 2 - 1,
                                             np.full((len(pix), 2), 0.3)], 1),
                             dtype=torch.float32)
    labels = np.abs(pix - centre[episode]).max(1) <= 2.0
    config = EventConfig(kind='pixels', steps=50, batch_size=64, scene_features=8,
                         scene_lag=0, mask_radius=2.5)
    heads, _ = fit_event_heads(frames.flatten(1), (4, SIZE, SIZE), states, labels, episode,
                               step, range(50), range(50, 60), config, keypoints=2)
    assert heads.masks_robot and heads.config.mask_keypoints == (0,)   # only what moves
    rebuilt = event_heads_from_settings(heads.settings())                # saved and loaded
    assert isinstance(rebuilt, PixelEventHeads) and rebuilt.config == heads.config
    # the same place with and without the robot's blob in the frame: the same map
    plain = frames[0].clone()
    plain[0] = 0.0
    heads.set_scene_at(frames[0].flatten(), states[0])
    with_robot = heads._scene.clone()
    heads.set_scene_at(plain.flatten(), states[0])
    assert torch.equal(with_robot, heads._scene)


def test_a_mask_needs_pixel_heads_and_a_radius_of_zero_or_more():
    with pytest.raises(ValueError, match='pixel heads only'):
        EventConfig(kind='spatial', mask_radius=3.0)
    with pytest.raises(ValueError, match='>= 0'):
        EventConfig(kind='pixels', mask_radius=-1.0)
    assert EventConfig(kind='pixels', mask_keypoints=[2, 3]).mask_keypoints == (2, 3)


def test_the_stack_masks_the_robot_where_its_percept_puts_it(tmp_path):
    from test_latent_stack import _latent_folder

    from hlai_ros.latent.stack import LatentCostWeights, LatentStack, scene_pixels
    task, folder, data, _ = _latent_folder(tmp_path, 'pixels')
    weights = LatentCostWeights(geodesic=0.0)    # the tiny encoder's keypoints hardly move
    base = LatentStack.from_folder(task, folder, weights=weights)
    k = base.heads.keypoints
    config = EventConfig(**{**base.heads.config.__dict__, 'mask_radius': 5.0,
                            'mask_keypoints': (0, 1)})
    heads = PixelEventHeads(base.heads.map_shape, base.heads.state_dim, k, config)
    heads.load_state_dict(base.heads.state_dict())
    stack = LatentStack(task, base.encoder, base.model, base.goal_cost, heads, weights=weights)
    obs = {'rgb': data.rgb[3].permute(1, 2, 0).numpy(),
           'depth': data.depth[3].float().numpy(), 'proprio': data.proprio[3].numpy()}
    percept = stack.perceive(obs)
    frame = scene_pixels(stack.encoder, obs)
    masked = mask_robot(frame[None], torch.as_tensor(percept.state)[None], heads.map_shape, k,
                        (0, 1), 5.0)
    with torch.no_grad():
        expected = heads.scene_features(masked)[0]
        unmasked = heads.scene_features(frame[None])[0]
    assert torch.allclose(heads._scene, expected)
    assert not torch.allclose(heads._scene, unmasked)
    # the ROS path: the camera frame first (masked at the last percept), then the percept
    stack.set_scene_frame(obs)
    assert torch.allclose(heads._scene, expected)
