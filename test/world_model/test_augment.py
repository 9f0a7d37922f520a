"""Rotation augmentation: windows turn rigidly, and turned data stand in for unseen directions."""
import math

import numpy as np
import pytest
import torch

from hlai_ros.world_model.augment import rotate_windows
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.dataset import Windows
from hlai_ros.world_model.train import train_world_model


def _config(**overrides):
    values = dict(state_dim=8, action_dim=2, frame_origin=(0, 1), frame_points=(2, 3),
                  augment_rotation=math.pi, rotation_vectors=(4, 5, 6, 7),
                  rotation_action_vectors=(0, 1))
    values.update(overrides)
    return WorldModelConfig(**values)


def _windows(shape=(3, 4), horizon=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(*shape, horizon + 1, 8, generator=g)
    actions = torch.randn(*shape, horizon, 2, generator=g)
    return Windows(states, actions, torch.ones(*shape, horizon), None, None)


def test_a_turn_is_rigid_about_the_first_origin_and_undone_by_its_inverse():
    c, w = _config(), _windows()
    angle = torch.rand(3, 4) * 6.0
    turned = rotate_windows(w, angle, c)
    back = rotate_windows(turned, -angle, c)
    assert torch.allclose(back.states, w.states, atol=1e-5)
    assert torch.allclose(back.actions, w.actions, atol=1e-5)
    assert torch.equal(turned.states[..., 0, 0:2], w.states[..., 0, 0:2])  # the centre stays
    for i, j in ((2, 3), (4, 5), (6, 7)):  # lengths kept: relative position and velocities
        before = (w.states[..., i:j + 1] - (w.states[..., 0:2] if i == 2 else 0)).norm(dim=-1)
        after = (turned.states[..., i:j + 1] - (turned.states[..., 0:2] if i == 2 else 0)
                 ).norm(dim=-1)
        assert torch.allclose(before, after, atol=1e-5)
    assert torch.allclose(turned.actions.norm(dim=-1), w.actions.norm(dim=-1), atol=1e-5)


def test_a_quarter_turn_maps_x_to_y():
    w = _windows(shape=(1,), horizon=1)
    w.states.zero_()
    w.states[0, :, 2] = 1.0   # the point 1 m ahead in x of the origin
    w.states[0, :, 4] = 0.5   # moving +x
    w.actions.zero_()
    w.actions[0, :, 0] = 0.2  # commanded +x
    turned = rotate_windows(w, torch.tensor([math.pi / 2]), _config())
    assert torch.allclose(turned.states[0, 0, 2:6], torch.tensor([0.0, 1.0, 0.0, 0.5]), atol=1e-6)
    assert torch.allclose(turned.actions[0, 0], torch.tensor([0.0, 0.2]), atol=1e-6)


def test_the_config_checks_what_a_rotation_needs():
    with pytest.raises(ValueError, match='augment_rotation'):
        WorldModelConfig(state_dim=8, action_dim=2, augment_rotation=1.0)
    with pytest.raises(ValueError, match='pairs'):
        _config(rotation_vectors=(4, 5, 6))
    with pytest.raises(ValueError, match='outside'):
        _config(rotation_action_vectors=(1, 2))
    with pytest.raises(ValueError, match='>= 0'):
        _config(augment_rotation=-1.0)
    c = _config()
    assert WorldModelConfig.from_dict(c.to_dict()) == c


def _pushes_along_x(n_episodes=40, steps=20, seed=0):
    """A hand at a fixed place moves a puck by the command, but only ever along +-x.

    state: hand x, y (fixed), puck x, y, puck velocity, hand velocity (zero); the puck moves
    by dt * command.
    """
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        s = np.zeros((steps + 1, 8), np.float32)
        s[0, 0:2] = rng.uniform(-0.2, 0.2, 2)
        s[0, 2:4] = s[0, 0:2] + rng.uniform(-0.1, 0.1, 2)
        a = np.zeros((steps, 2), np.float32)
        a[:, 0] = rng.uniform(-1.0, 1.0, steps)
        for t in range(steps):
            s[t + 1] = s[t]
            s[t + 1, 4:6] = a[t]
            s[t + 1, 2:4] = s[t, 2:4] + 0.1 * a[t]
        episodes.append({'states': s, 'actions': a})
    return episodes


@pytest.mark.parametrize('augment', [0.0, math.pi])
def test_turned_data_teach_the_direction_the_data_never_show(augment):
    c = _config(augment_rotation=augment, latent_dim=0, ensemble_size=2,
                hidden_sizes=(64, 64), train_horizon=2, batch_size=64, max_epochs=30,
                patience=30, learning_rate=3e-3, time_budget_s=0.0, frame_keep_origin=False)
    model, _ = train_world_model(_pushes_along_x(), c, progress=False, device='cpu')
    s = torch.zeros(1, 8)
    s[0, 2:4] = torch.tensor([0.05, 0.0])
    with torch.no_grad():
        nxt = model.next(s, torch.tensor([[0.0, 1.0]]), torch.zeros(1, 0)).mean(0)[0]
    moved = nxt[2:4] - s[0, 2:4]  # commanded +y for 0.1 s: 0.1 m along y
    error = float((moved - torch.tensor([0.0, 0.1])).norm())
    if augment:
        assert error < 0.03, moved
    else:
        assert error > 0.05, moved  # without it the model never learned +y
