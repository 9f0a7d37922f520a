"""Rotation augmentation of training windows: the same push, seen from every direction.

A ball pushed over a flat table behaves alike whichever way it is pushed, but a fixed camera
does not see every direction alike: where the hand hides the ball (pushes away from the
camera), training keeps no frames (`Task.train_measured_only`), so the data hold few of those
pushes. Rotating each training window about its first frame origin (the hand) by a random
angle turns the pushes the camera saw into the pushes it could not see. Positions (the frame
origin and `frame_points`) rotate about the origin; planar vectors (velocities, commands)
rotate about zero. Only training batches (and the transitions the normalisers are fitted on)
are rotated; validation measures the data as recorded.
"""
from __future__ import annotations

import torch

from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.dataset import Windows


def _pairs(indices: tuple[int, ...]) -> tuple[list[int], list[int]]:
    return list(indices[0::2]), list(indices[1::2])


def rotate_windows(windows: Windows, angle: torch.Tensor, config: WorldModelConfig) -> Windows:
    """Rotate every window by its own angle (rad) about its first frame origin.

    Args:
        windows: states (..., H+1, S), actions (..., H, A).
        angle: (...) one angle per window.
        config: `frame_origin` (the x, y of the centre), `frame_points` (positions, in pairs),
            `rotation_vectors` (state vectors, in pairs), `rotation_action_vectors` (action
            vectors, in pairs).

    Returns:
        New windows; mask, rewards and episodes are shared.

    """
    c = config
    cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]

    def turn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return cos * x - sin * y, sin * x + cos * y

    states = windows.states.clone()
    ox, oy = c.frame_origin
    centre_x, centre_y = states[..., :1, ox].clone(), states[..., :1, oy].clone()
    xs, ys = _pairs((ox, oy) + tuple(c.frame_points))
    px, py = turn(states[..., xs] - centre_x.unsqueeze(-1),
                  states[..., ys] - centre_y.unsqueeze(-1))
    states[..., xs] = px + centre_x.unsqueeze(-1)
    states[..., ys] = py + centre_y.unsqueeze(-1)
    if c.rotation_vectors:
        xs, ys = _pairs(c.rotation_vectors)
        states[..., xs], states[..., ys] = turn(states[..., xs], states[..., ys])
    actions = windows.actions
    if c.rotation_action_vectors:
        actions = actions.clone()
        xs, ys = _pairs(c.rotation_action_vectors)
        actions[..., xs], actions[..., ys] = turn(actions[..., xs], actions[..., ys])
    return Windows(states, actions, windows.mask, windows.rewards, windows.episode)


def random_angles(shape: tuple[int, ...], limit: float, device: torch.device,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Angles drawn uniformly from [-limit, limit] rad."""
    u = torch.rand(shape, device=device, generator=generator)
    return (2.0 * u - 1.0) * limit


def turned_transitions(states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor,
                       config: WorldModelConfig, seed: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transitions (M, S), (M, A), (M, S), each turned by a random angle as training turns them.

    The normalisers are fitted on these, so that the turned windows training sees are inside
    the statistics (a direction the data never show would otherwise have a zero spread).
    """
    generator = torch.Generator().manual_seed(seed)
    angle = random_angles((states.shape[0],), config.augment_rotation, states.device, generator)
    windows = Windows(torch.stack([states, next_states], 1), actions.unsqueeze(1),
                      torch.ones(states.shape[0], 1), None, None)
    turned = rotate_windows(windows, angle, config)
    return turned.states[:, 0], turned.actions[:, 0], turned.states[:, 1]
