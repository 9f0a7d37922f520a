"""Learned event heads: the probability that the episode fails within k steps.

The catastrophe term of the latent stack is learned by watching, not written as geometry: the
bags' outcome markers say which episodes ended in a fall or a collision, and when. A head
reads

- the *scene*: the current frame's latent map (where the platform edge, the obstacles, the
  table are: static within an episode), pooled to a few features once per plan, and
- a *planning state* v (keypoints + proprioception latent), the current one or one the
  dynamics predicts,

and returns P(failure within `within` steps). In training the scene comes from an earlier
frame of the same episode (up to `scene_lag` steps before), so the head learns to take the
robot's position from v and the layout from the scene, as at plan time, where the scene is the
current frame and v runs ahead along each imagined path.

Two heads share that interface (`EventConfig.kind`):

- ``'mlp'`` (`EventHeads`): pooled scene features and the planning state into an MLP;
- ``'spatial'`` (`SpatialEventHeads`): a *danger map* per keypoint, computed from the scene by
  a small conv net at twice the latent map's resolution, read (bilinearly) at each keypoint's
  position in the planning state: logit = bias + sum_k D_k(x_k, y_k). Where the danger lies
  (platform edges, obstacles, the table's rim) comes from the pixels of the scene, which
  keypoint's position matters (the robot's, the box's) from the data. A head that can only say
  "this place is dangerous for this keypoint" cannot learn the exploring policy's habits, so it
  carries over from the few failures of the data to new layouts better than the MLP does.

`fit_event_heads` trains either (weighted binary cross-entropy, events are rare) and reports
the event counts and the precision and recall on held-out episodes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


@dataclass(frozen=True)
class EventConfig:
    """Settings of the event heads and their training."""

    within: int = 10
    """Horizon k of the event: failure within this many steps of the frame."""
    scene_features: int = 32
    """Features the pooled scene map is reduced to."""
    hidden: int = 128
    """Width of the head's hidden layers."""
    scene_lag: int = 15
    """In training, the scene frame is up to this many steps before the state's frame."""
    steps: int = 3000
    """Optimiser steps."""
    batch_size: int = 256
    """Frames per step."""
    learning_rate: float = 1e-3
    """AdamW learning rate."""
    seed: int = 0
    """Seed of the sampling."""
    kind: str = 'mlp'
    """'mlp' (`EventHeads`), 'spatial' (`SpatialEventHeads`, danger maps from the latent map,
    read at the keypoints) or 'pixels' (`PixelEventHeads`, danger maps from the camera's own
    RGB-D frame)."""
    flips: bool = False
    """Pixel heads: in training, mirror each frame at random (left-right, up-down) together
    with its keypoints. From above, what makes a place dangerous does not depend on the
    direction, so every recorded failure counts four times."""
    moving_keypoints: float = 0.0
    """Pixel heads: when > 0, read the danger map only at the keypoints whose
    position varies more than this (std, in [-1, 1] frame units) over the training frames,
    i.e. what moves (the robot). Keypoints that sit still would read the map at fixed places,
    where it can fit the whole scene's risk instead of the place's; 0: every keypoint."""
    positive_weight: float = 0.0
    """Weight of an event frame in the loss (a quarter of every batch is event frames); 0:
    the ratio of other frames to event frames in the training split, at most 50."""
    mask_radius: float = 0.0
    """Pixel heads: when > 0, every scene has a disk of this radius (pixels) round the robot
    (the centroid of the moving keypoints in that frame) blanked to the mean frame, in training
    and at plan time, so the map shows the places and not the robot standing in one. Without
    it the heads learn that where the robot's body is, a failure is near (in an event frame's
    scene the robot is always beside the place it fails): the map marks the robot itself."""
    scene_first: bool = False
    """Pixel heads: the scene is the episode's first frame, in training and at plan time (the
    first frame after `LatentStack.reset` or a new goal), instead of a recent one. The robot
    then stands where it started, in general far from where it fails, so the heads cannot
    learn that the robot's own body marks danger; a static scene (cliff) loses nothing."""
    mask_keypoints: tuple[int, ...] = ()
    """The keypoints whose centroid the mask is centred on; set by `fit_event_heads` to those
    that move (spread above `moving_keypoints`, or 0.1 when that is 0)."""

    def __post_init__(self):
        if self.kind not in EVENT_KINDS:
            raise ValueError(f'EventConfig.kind must be one of {EVENT_KINDS}, got {self.kind!r}')
        object.__setattr__(self, 'mask_keypoints', tuple(int(i) for i in self.mask_keypoints))
        if self.mask_radius < 0:
            raise ValueError(f'EventConfig.mask_radius must be >= 0, got {self.mask_radius}')
        if self.mask_radius and self.kind != 'pixels':
            raise ValueError('EventConfig.mask_radius applies to the pixel heads only')
        if self.scene_first and (self.kind != 'pixels' or self.mask_radius):
            raise ValueError('EventConfig.scene_first applies to the pixel heads without a '
                             'robot mask only')


EVENT_KINDS = ('mlp', 'spatial', 'pixels')


class _SceneHeads(nn.Module):
    """What both kinds share: a scene fixed per plan, probabilities of planning states."""

    _scene: torch.Tensor | None = None

    @property
    def has_scene(self) -> bool:
        """Whether `set_scene` has given the heads a scene."""
        return self._scene is not None

    def clear_scene(self) -> None:
        """Forget the scene: `probability` refuses until the next `set_scene`."""
        self._scene = None

    @torch.no_grad()
    def set_scene(self, latent_map: torch.Tensor) -> None:
        """Fix the scene for the next plans: the current frame's latent map (C*m*m,)."""
        self._scene = self.scene_features(latent_map.reshape(1, -1))[0]

    def probability(self, states: torch.Tensor) -> torch.Tensor:
        """P(failure within k) of planning states (..., S) in the scene set by `set_scene`."""
        if self._scene is None:
            raise RuntimeError('call set_scene(latent_map) before probability()')
        return torch.sigmoid(self.logits(self._scene, states))


class EventHeads(_SceneHeads):
    """P(failure within k steps | scene map, planning state)."""

    def __init__(self, map_shape: tuple[int, int, int], state_dim: int,
                 config: EventConfig = EventConfig()):
        super().__init__()
        self.config = config
        self.map_shape, self.state_dim = tuple(map_shape), state_dim
        c, m, _ = self.map_shape
        self.scene = nn.Sequential(nn.Conv2d(c, 16, 3, 1, 1), nn.GELU(),
                                   nn.Flatten(), nn.Linear(16 * m * m, config.scene_features))
        self.head = nn.Sequential(
            nn.Linear(config.scene_features + state_dim, config.hidden), nn.GELU(),
            nn.Linear(config.hidden, config.hidden), nn.GELU(), nn.Linear(config.hidden, 1))
        self.register_buffer('state_mean', torch.zeros(state_dim))
        self.register_buffer('state_std', torch.ones(state_dim))
        self._scene: torch.Tensor | None = None

    def scene_features(self, maps: torch.Tensor) -> torch.Tensor:
        """Latent maps (B, C*m*m) -> scene features (B, F)."""
        return self.scene(maps.reshape(-1, *self.map_shape))

    def logits(self, scene: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Scene features (..., F) broadcast with states (..., S) -> logits (...)."""
        x = (states - self.state_mean) / self.state_std
        scene = scene.expand(*x.shape[:-1], scene.shape[-1])
        return self.head(torch.cat([scene, x], -1)).squeeze(-1)

    def settings(self) -> dict:
        """JSON-able constructor arguments."""
        return {'map_shape': list(self.map_shape), 'state_dim': self.state_dim,
                'config': asdict(self.config)}


def read_maps(scene: torch.Tensor, states: torch.Tensor, keypoints: int, n: int,
              per_keypoint: bool) -> torch.Tensor:
    """Danger maps read (bilinearly) at each keypoint of planning states -> (..., K).

    scene (..., K*n*n) with a map per keypoint, or (..., n*n) with one map for all; states
    (..., S) whose first 2K entries are the keypoints' (x, y) in [-1, 1] over the map.
    """
    k = keypoints
    kp = states[..., :2 * k].unflatten(-1, (k, 2))
    pos = ((kp.clamp(-1.0, 1.0) + 1.0) * 0.5 * (n - 1))
    low = pos.floor().clamp(0, n - 2)
    frac = pos - low
    x0, y0 = low[..., 0].long(), low[..., 1].long()
    fx, fy = frac[..., 0], frac[..., 1]
    base = y0 * n + x0                                                            # (..., K)
    if per_keypoint:
        base = base + torch.arange(k, device=states.device) * (n * n)
    scene = scene.expand(*states.shape[:-1], scene.shape[-1])
    corner = [torch.gather(scene, -1, base + off) for off in (0, 1, n, n + 1)]
    return ((1 - fx) * (1 - fy) * corner[0] + fx * (1 - fy) * corner[1]
            + (1 - fx) * fy * corner[2] + fx * fy * corner[3])


class SpatialEventHeads(_SceneHeads):
    """P(failure within k steps) = sigmoid(bias + sum_k D_k(keypoint k)), D from the scene.

    The scene features are the danger maps themselves, (K, 2m, 2m) flattened; the planning
    state's first 2K entries are the keypoints' (x, y) in [-1, 1] (the encoder's spatial
    softmax coordinates over the map).
    """

    def __init__(self, map_shape: tuple[int, int, int], state_dim: int, keypoints: int,
                 config: EventConfig = EventConfig(kind='spatial')):
        super().__init__()
        if not 0 < 2 * keypoints <= state_dim:
            raise ValueError(f'{keypoints} keypoints do not fit a {state_dim}-entry state')
        self.config = config
        self.map_shape, self.state_dim, self.keypoints = tuple(map_shape), state_dim, keypoints
        c, m, _ = self.map_shape
        self.size = 2 * m
        width = config.scene_features
        self.encode = nn.Sequential(nn.Conv2d(c, width, 3, 1, 1), nn.GELU())
        self.decode = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.GELU(),
                                    nn.Conv2d(width, keypoints, 1))
        self.bias = nn.Parameter(torch.tensor(-3.0))
        self._scene: torch.Tensor | None = None

    def scene_features(self, maps: torch.Tensor) -> torch.Tensor:
        """Latent maps (B, C*m*m) -> danger maps (B, K*2m*2m)."""
        x = self.encode(maps.reshape(-1, *self.map_shape))
        x = F.interpolate(x, size=(self.size, self.size), mode='bilinear', align_corners=True)
        return self.decode(x).flatten(1)

    def logits(self, scene: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Danger maps (..., K*n*n) read at the keypoints of states (..., S) -> logits (...)."""
        return self.bias + read_maps(scene, states, self.keypoints, self.size, True).sum(-1)

    def settings(self) -> dict:
        """JSON-able constructor arguments."""
        return {'map_shape': list(self.map_shape), 'state_dim': self.state_dim,
                'keypoints': self.keypoints, 'config': asdict(self.config)}


class PixelEventHeads(SpatialEventHeads):
    """Danger maps computed from the frame's pixels, read at the keypoints.

    As `SpatialEventHeads`, but the scene is the camera frame itself (the encoder's normalised
    RGB-D input, mean frame removed: (4, S, S)) rather than the 8 x 8 latent map: a small,
    translation-equivariant conv net (no coordinate channels) draws one danger map at half
    the image's resolution, read at every keypoint (logit = bias + sum_k w_k D(x_k, y_k),
    w_k >= 0 learned: which keypoints are the robot's body). What makes a place dangerous
    (beside an obstacle, at an edge) looks the same wherever it lies, so a few dozen recorded
    failures teach it for every place and layout: on cliff it draws a ring round each
    obstacle, where the robot's centre is when its body touches it.
    """

    def __init__(self, map_shape: tuple[int, int, int], state_dim: int, keypoints: int,
                 config: EventConfig = EventConfig(kind='pixels')):
        nn.Module.__init__(self)
        if not 0 < 2 * keypoints <= state_dim:
            raise ValueError(f'{keypoints} keypoints do not fit a {state_dim}-entry state')
        c, s, s2 = map_shape
        if s != s2 or s % 2:
            raise ValueError(f'pixel scenes must be square with an even side, got {map_shape}')
        self.config = config
        self.map_shape, self.state_dim, self.keypoints = tuple(map_shape), state_dim, keypoints
        self.size = s // 2
        w = config.scene_features
        self.net = nn.Sequential(
            nn.Conv2d(c, w // 2, 3, 2, 1), nn.GELU(),
            nn.Conv2d(w // 2, w, 3, 1, 1), nn.GELU(),
            nn.Conv2d(w, w, 3, 1, 2, dilation=2), nn.GELU(),
            nn.Conv2d(w, w, 3, 1, 4, dilation=4), nn.GELU(),
            nn.Conv2d(w, 1, 1))
        self.bias = nn.Parameter(torch.tensor(-3.0))
        self.keypoint_weight = nn.Parameter(torch.zeros(keypoints))
        self._scene: torch.Tensor | None = None

    @property
    def masks_robot(self) -> bool:
        """Whether the scene needs the robot's planning state (`EventConfig.mask_radius`)."""
        return self.config.mask_radius > 0

    def set_scene_at(self, frame: torch.Tensor, state) -> None:
        """`set_scene` for a camera frame (C*S*S,) and the robot's planning state (S,).

        Where the heads mask the robot (`EventConfig.mask_radius`), it is blanked there as in
        training.
        """
        frame = torch.as_tensor(frame).reshape(1, -1)
        if self.masks_robot:
            state = torch.as_tensor(state, dtype=torch.float32).reshape(1, -1)
            frame = mask_robot(frame, state, self.map_shape, self.keypoints,
                               self.config.mask_keypoints, self.config.mask_radius)
        self.set_scene(frame[0])

    def scene_features(self, maps: torch.Tensor) -> torch.Tensor:
        """Frames (B, C*S*S) -> one danger map each (B, (S/2)**2)."""
        return self.net(maps.reshape(-1, *self.map_shape).float()).flatten(1)

    def logits(self, scene: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """The one danger map (..., n*n) read at every keypoint, weighted -> logits (...)."""
        value = read_maps(scene, states, self.keypoints, self.size, False)
        return self.bias + (F.softplus(self.keypoint_weight) * value).sum(-1)


def make_event_heads(map_shape, state_dim: int, keypoints: int,
                     config: EventConfig = EventConfig()) -> nn.Module:
    """The heads of `config.kind` (`EventHeads` or `SpatialEventHeads`)."""
    if config.kind == 'spatial':
        return SpatialEventHeads(map_shape, state_dim, keypoints, config)
    if config.kind == 'pixels':
        return PixelEventHeads(map_shape, state_dim, keypoints, config)
    return EventHeads(map_shape, state_dim, config)


def event_heads_from_settings(settings: dict) -> nn.Module:
    """The (untrained) heads that `settings()` describes (a saved folder's header)."""
    config = EventConfig(**settings['config'])
    return make_event_heads(tuple(settings['map_shape']), int(settings['state_dim']),
                            int(settings.get('keypoints', 0)), config)


def _pairs(episode: np.ndarray, step: np.ndarray, index: np.ndarray, lag: int,
           rng: np.random.Generator) -> np.ndarray:
    """For frames `index`, a frame of the same episode 0..lag steps earlier (not before 0)."""
    back = rng.integers(0, lag + 1, len(index))
    back = np.minimum(back, step[index])
    out = index - back
    assert (episode[out] == episode[index]).all()
    return out


def _first(episode: np.ndarray, step: np.ndarray, index: np.ndarray) -> np.ndarray:
    """For frames `index`, the first frame (step 0) of the same episode."""
    out = index - step[index]
    assert (episode[out] == episode[index]).all() and (step[out] == 0).all()
    return out


def _mirror(scene: torch.Tensor, states: torch.Tensor, map_shape: tuple[int, int, int],
            keypoints: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror each frame at random, left-right and / or up-down, with its keypoints.

    Frames (B, C*S*S), planning states (B, S) whose first 2K entries are the keypoints' (x, y)
    in [-1, 1] across and down the frame.
    """
    frames = scene.reshape(-1, *map_shape)
    flip = torch.as_tensor(rng.integers(0, 2, (len(frames), 2)).astype(bool))
    frames = torch.where(flip[:, 0, None, None, None], frames.flip(-1), frames)
    frames = torch.where(flip[:, 1, None, None, None], frames.flip(-2), frames)
    sign = 1.0 - 2.0 * flip.float()                                               # (B, 2)
    states = states.clone()
    states[:, :2 * keypoints] *= sign.repeat(1, keypoints)
    return frames.flatten(1), states


def mask_robot(frames: torch.Tensor, states: torch.Tensor, map_shape: tuple[int, int, int],
               keypoints: int, indices: tuple[int, ...], radius: float) -> torch.Tensor:
    """Frames (B, C*S*S) with a disk round the robot blanked to 0 (the mean frame).

    The disk of `radius` pixels is centred on the centroid of keypoints `indices` of each
    frame's planning state (B, S), whose first 2K entries are the keypoints' (x, y) in
    [-1, 1] across and down the frame.
    """
    c, size, _ = map_shape
    kp = states[:, :2 * keypoints].reshape(len(states), keypoints, 2)[:, list(indices)]
    centre = (kp.float().mean(1) + 1.0) * 0.5 * (size - 1)                          # (B, 2)
    axis = torch.arange(size, dtype=torch.float32)
    dx = axis[None, None, :] - centre[:, 0, None, None]
    dy = axis[None, :, None] - centre[:, 1, None, None]
    keep = (dx * dx + dy * dy > radius * radius).to(frames.dtype)                   # (B, S, S)
    return (frames.reshape(-1, c, size, size) * keep[:, None]).flatten(1)


def fit_event_heads(maps: torch.Tensor, map_shape: tuple[int, int, int], states: torch.Tensor,
                    labels: np.ndarray,
                    episode: np.ndarray, step: np.ndarray, train_episodes, val_episodes,
                    config: EventConfig = EventConfig(), progress: bool = False,
                    keypoints: int = 0) -> tuple[nn.Module, dict]:
    """Train the heads on frames of `train_episodes`; report on `val_episodes`.

    maps (M, C*m*m) latent maps of shape `map_shape` (C, m, m), states (M, S) planning
    states, labels (M,) bool (failure within `config.within`), episode / step (M,) of each
    frame; `keypoints` K (the states' first 2K entries), for the spatial heads. Returns the
    heads (eval mode) and a report: events and frames per split, precision and recall at
    p >= 0.5 on held-out frames (None where undefined).
    """
    c = config
    rng = np.random.default_rng(c.seed)
    torch.manual_seed(c.seed)
    heads = make_event_heads(map_shape, states.shape[1], keypoints, c)
    train = np.flatnonzero(np.isin(episode, list(train_episodes)))
    val = np.flatnonzero(np.isin(episode, list(val_episodes)))
    y = torch.as_tensor(labels, dtype=torch.float32)
    if isinstance(heads, EventHeads):
        heads.state_mean.copy_(states[train].mean(0))
        heads.state_std.copy_(states[train].std(0).clamp_min(1e-3))
    pos = float(y[train].sum())
    pos_weight = torch.tensor(c.positive_weight if c.positive_weight > 0 else
                              (len(train) - pos) / max(pos, 1.0)).clamp(1.0, 50.0)
    if c.flips and not isinstance(heads, PixelEventHeads):
        raise ValueError('EventConfig.flips applies to the pixel heads only')
    if c.moving_keypoints > 0 and not isinstance(heads, PixelEventHeads):
        raise ValueError('EventConfig.moving_keypoints applies to the pixel heads only')
    if c.moving_keypoints > 0 or c.mask_radius > 0:   # each keypoint's spread over training
        spread = states[train, :2 * keypoints].unflatten(-1, (keypoints, 2)).std(0).norm(dim=-1)
    if c.moving_keypoints > 0:
        still = spread <= c.moving_keypoints
        if bool(still.all()):
            raise ValueError(f'no keypoint moves more than {c.moving_keypoints} in training')
        with torch.no_grad():     # softplus(-30) ~ 1e-13: a keypoint that is never read
            heads.keypoint_weight[still] = -30.0
        heads.keypoint_weight.register_hook(lambda g: g.masked_fill(still, 0.0))
    if c.mask_radius > 0:
        moving = np.flatnonzero((spread > (c.moving_keypoints or 0.1)).numpy())
        if not len(moving):
            raise ValueError('EventConfig.mask_radius: no keypoint moves in training, so there '
                             'is no robot to mask')
        c = replace(c, mask_keypoints=tuple(int(i) for i in moving))
        heads.config = c

    def scenes(index: np.ndarray) -> torch.Tensor:
        """The scenes of frames `index`, the robot masked where the config says so."""
        if not c.mask_radius:
            return maps[index]
        return mask_robot(maps[index], states[index], map_shape, keypoints, c.mask_keypoints,
                          c.mask_radius)
    opt = torch.optim.AdamW(heads.parameters(), lr=c.learning_rate, weight_decay=1e-4)
    # half of every batch from the frames near an event, so the rare class is seen often
    positives = train[labels[train]]
    steps = range(c.steps)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc='event heads', unit='step', leave=False)
    heads.train()
    for _ in steps:
        idx = rng.choice(train, c.batch_size)
        if len(positives):
            idx[:c.batch_size // 4] = rng.choice(positives, c.batch_size // 4)
        scene_idx = (_first(episode, step, idx) if c.scene_first
                     else _pairs(episode, step, idx, c.scene_lag, rng))
        scene, state = scenes(scene_idx), states[idx]
        if c.flips:
            scene, state = _mirror(scene, state, map_shape, keypoints, rng)
        logits = heads.logits(heads.scene_features(scene), state)
        loss = F.binary_cross_entropy_with_logits(logits, y[idx], pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    heads.eval()
    report = {'kind': c.kind, 'within': c.within, 'train_frames': int(len(train)),
              'train_event_frames': int(labels[train].sum()),
              'val_frames': int(len(val)), 'val_event_frames': int(labels[val].sum()),
              'train_event_episodes': int(len(np.unique(episode[train][labels[train]]))),
              'val_event_episodes': int(len(np.unique(episode[val][labels[val]])))}
    if len(val):
        with torch.no_grad():
            scene_idx = (_first(episode, step, val) if c.scene_first
                         else _pairs(episode, step, val, c.scene_lag, rng))
            p = torch.sigmoid(heads.logits(heads.scene_features(scenes(scene_idx)), states[val]))
        pred = p.numpy() >= 0.5
        truth = labels[val]
        tp = int((pred & truth).sum())
        report.update(
            precision=tp / int(pred.sum()) if pred.sum() else None,
            recall=tp / int(truth.sum()) if truth.sum() else None,
            val_predicted=int(pred.sum()))
    return heads, report
