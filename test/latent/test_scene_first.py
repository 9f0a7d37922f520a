"""Pixel event heads that read the episode's first frame (`EventConfig.scene_first`).

In training every frame is paired with its episode's first frame; at plan time the stack keeps
the first frame it is given until `reset` or a new goal image.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hlai_ros.latent import events
from hlai_ros.latent.events import EventConfig, PixelEventHeads, fit_event_heads

SIZE = 16


def test_training_pairs_every_frame_with_its_episodes_first_frame(monkeypatch):
    n_ep, steps = 6, 10
    episode = np.repeat(np.arange(n_ep), steps)
    step = np.tile(np.arange(steps), n_ep)
    # each frame carries its own index in every pixel, so the scene shows which frame it was
    frames = torch.arange(n_ep * steps, dtype=torch.float32)[:, None].expand(-1, 4 * SIZE * SIZE)
    states = torch.zeros(n_ep * steps, 4)
    labels = step == steps - 1
    seen = []
    real = PixelEventHeads.scene_features

    def spy(self, maps):
        seen.append(maps[:, 0].clone())
        return real(self, maps)

    monkeypatch.setattr(PixelEventHeads, 'scene_features', spy)
    config = EventConfig(kind='pixels', steps=3, batch_size=8, scene_features=8,
                         scene_first=True)
    fit_event_heads(frames.contiguous(), (4, SIZE, SIZE), states, labels, episode, step,
                    range(4), range(4, 6), config, keypoints=2)
    firsts = set(float(i) for i in np.flatnonzero(step == 0))
    used = set(torch.cat(seen).tolist())
    assert used and used <= firsts      # only first frames, in training and for the report


def test_scene_first_needs_pixel_heads_without_a_mask():
    with pytest.raises(ValueError, match='without a robot mask'):
        EventConfig(kind='spatial', scene_first=True)
    with pytest.raises(ValueError, match='without a robot mask'):
        EventConfig(kind='pixels', scene_first=True, mask_radius=3.0)
    assert events._first(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]),
                         np.array([1, 3, 2])).tolist() == [0, 2, 2]


def test_the_stack_keeps_the_first_frame_until_reset_or_a_new_goal(tmp_path):
    from test_latent_stack import _latent_folder

    from hlai_ros.latent.stack import LatentCostWeights, LatentStack, scene_pixels
    task, folder, data, _ = _latent_folder(tmp_path, 'pixels')
    weights = LatentCostWeights(geodesic=0.0)
    base = LatentStack.from_folder(task, folder, weights=weights)
    config = EventConfig(**{**base.heads.config.__dict__, 'scene_first': True})
    heads = PixelEventHeads(base.heads.map_shape, base.heads.state_dim, base.heads.keypoints,
                            config)
    heads.load_state_dict(base.heads.state_dict())
    stack = LatentStack(task, base.encoder, base.model, base.goal_cost, heads, weights=weights)
    assert stack.scene_first

    def obs(i):
        return {'rgb': data.rgb[i].permute(1, 2, 0).numpy(),
                'depth': data.depth[i].float().numpy(), 'proprio': data.proprio[i].numpy()}

    def scene_of(i):
        with torch.no_grad():
            return heads.scene_features(scene_pixels(stack.encoder, obs(i))[None])[0]

    assert not torch.equal(scene_of(0), scene_of(5))
    stack.set_goal(obs(11))
    stack.reset()
    stack.perceive(obs(0))
    stack.perceive(obs(5))
    stack.set_scene_frame(obs(5))            # the ROS path: every camera frame
    assert torch.equal(heads._scene, scene_of(0))
    stack.set_goal(obs(11))                  # the same goal again: still the first frame
    stack.perceive(obs(6))
    assert torch.equal(heads._scene, scene_of(0))
    stack.reset()                            # a new episode
    stack.perceive(obs(5))
    assert torch.equal(heads._scene, scene_of(5))
    stack.set_goal_latent(stack.encode(obs(11)) + 1.0)   # a new goal image
    stack.perceive(obs(6))
    assert torch.equal(heads._scene, scene_of(6))
