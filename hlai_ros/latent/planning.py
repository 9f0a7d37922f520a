"""The planning state of the pixel world model, and the dynamics the actor plans with.

The latent of `hlai_ros.latent.model.LatentWorldModel` is large (a 16 x 8 x 8 map, keypoints,
the proprioception latent: about 1,060 numbers) and its convolutional predictor takes 170 ms
to roll 64 sequences 12 steps on one core: far too slow for a 10 Hz MPC that scores thousands
of steps per plan. The actor therefore plans in the *vector part* of the latent, the planning
state

    v = [keypoints (2K) | proprioception latent (Dp)],

through the same latent-variable ensemble MLP as the state stack (`hlai_ros.world_model`), here
trained on the encoder's own codes of the recorded frames: the state it predicts is what the
encoder computes from pixels and the robot's own sensors, never a hand-written estimate.

- `planning_episodes`: per-episode arrays (states (T+1, S), actions (T, A)) of planning states,
  cut at frames without a valid command, for `hlai_ros.world_model.train.train_world_model`.
- `event_labels`: per frame, whether the episode fails within k steps (the outcome markers of
  the bags), for the learned catastrophe heads (`hlai_ros.latent.events`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hlai_ros.latent.data import LatentDataset
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.probes import encode_dataset


def planning_part(model: LatentWorldModel) -> slice:
    """Where the planning state lies in the latent: keypoints then the proprioception latent."""
    return slice(model.map_dim, None)


@dataclass(frozen=True)
class PlanningEpisode:
    """One stretch of consecutive valid commands: states (T+1, S), actions (T, A)."""

    states: np.ndarray
    actions: np.ndarray
    episode: int
    """Index of the recorded episode it comes from."""


def planning_episodes(data: LatentDataset, states: torch.Tensor, min_steps: int = 2
                      ) -> list[PlanningEpisode]:
    """Cut the planning states (M, S) of every frame into runs of valid commands.

    A run holds frames m..m+T where the commands at m..m+T-1 are valid (`LatentDataset.valid`);
    runs shorter than `min_steps` transitions are dropped.
    """
    valid = data.valid.numpy()
    episode = data.episode.numpy()
    s = states.numpy().astype(np.float32)
    a = data.actions.numpy()
    out: list[PlanningEpisode] = []
    start = 0
    m = len(valid)
    while start < m:
        end = start
        while end < m and valid[end] and (end + 1 < m and episode[end + 1] == episode[start]):
            end += 1
        if end - start >= min_steps:
            out.append(PlanningEpisode(s[start:end + 1], a[start:end], int(episode[start])))
        start = end + 1
    return out


@torch.no_grad()
def pixel_scenes(encoder: LatentWorldModel, rgb: torch.Tensor, depth: torch.Tensor
                 ) -> torch.Tensor:
    """Frames as the pixel event heads read them: the encoder's normalised RGB-D, flattened.

    rgb (B, 3, S, S) uint8, depth (B, S, S) m -> (B, 4*S*S).
    """
    return encoder.pixels(rgb, depth).flatten(1)


@torch.no_grad()
def event_scenes(encoder: LatentWorldModel, data: LatentDataset, latents: torch.Tensor,
                 kind: str, batch: int = 512) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """What the event heads of `kind` read as the scene of every frame, and its shape.

    'pixels': the encoder's normalised RGB-D frames (M, 4*S*S), float16 to halve the memory;
    otherwise the latent maps (M, C*m*m) of `latents`.
    """
    if kind != 'pixels':
        c = encoder.config
        return latents[:, :encoder.map_dim].contiguous(), (c.map_channels, c.map_size,
                                                           c.map_size)
    out = []
    for i in range(0, len(data), batch):
        f = data.frames(torch.arange(i, min(i + batch, len(data))))
        out.append(pixel_scenes(encoder, f['rgb'], f['depth']).half())
    size = int(data.rgb.shape[-1])
    return torch.cat(out), (4, size, size)


def event_labels(data: LatentDataset, failed: np.ndarray, within: int) -> np.ndarray:
    """(M,) bool: the frame's episode ends in failure within `within` steps of it.

    failed: (num_episodes,) bool, whether each recorded episode ended in a failure marker.
    """
    episode = data.episode.numpy()
    step = data.step.numpy()
    last = np.zeros(data.num_episodes, dtype=np.int64)
    np.maximum.at(last, episode, step)
    return failed[episode] & (last[episode] - step <= within)


@dataclass(frozen=True)
class PlanningSettings:
    """Settings of the planning stage (dynamics, goal cost, event heads) of a latent folder."""

    dynamics_budget_s: float = 300.0
    """Training time of the planning dynamics, s."""
    ensemble_size: int = 5
    """Members of the planning dynamics."""
    latent_dim: int = 2
    """Size of its latent variable z (what the frames leave undetermined)."""
    goal_weighting: str = 'world'
    """Keypoint weighting of the goal cost (`hlai_ros.latent.goal.fit_goal_cost`)."""
    event_within: int = 10
    """Horizon of the event heads, steps."""
    event_steps: int = 3000
    """Optimiser steps of the event heads."""
    event_batch: int = 256
    """Frames per optimiser step of the event heads."""
    event_features: int = 32
    """Width of the event heads' scene network (`EventConfig.scene_features`)."""
    event_flips: bool = False
    """Pixel event heads: mirror frames and keypoints at random in training
    (`EventConfig.flips`)."""
    event_moving: float = 0.0
    """Pixel event heads: read the map only at keypoints that move more than this
    (`EventConfig.moving_keypoints`); 0: at every keypoint."""
    event_mask_radius: float = 0.0
    """Pixel event heads: blank a disk of this radius (pixels) round the robot in every scene,
    in training and at plan time (`EventConfig.mask_radius`); 0: no mask."""
    event_scene_first: bool = False
    """Pixel event heads: read the episode's first frame as the scene, in training and at plan
    time (`EventConfig.scene_first`)."""
    event_positive_weight: float = 0.0
    """Loss weight of an event frame (`EventConfig.positive_weight`); 0: the class ratio."""
    event_kind: str = 'mlp'
    """Event heads: 'mlp', 'spatial' (danger maps from the latent map, read at the keypoints)
    or 'pixels' (danger maps from the camera frame; `hlai_ros.latent.events`)."""
    value_steps: int = 4000
    """Optimiser steps of the steps-to-goal value (`hlai_ros.latent.value`); 0: none."""
    value_reach: float = 0.05
    """Goal cost under which a hindsight goal counts as reached."""
    policy_steps: int = 3000
    """Optimiser steps of the goal-conditioned policy (`hlai_ros.latent.policy`), learned
    from the episodes that ended in success; 0: none."""
    val_fraction: float = 0.1
    """Episodes held out (event-head report; the dynamics split their own)."""
    seed: int = 0
    """Seed of every split and initialisation."""

    def with_overrides(self, pairs) -> 'PlanningSettings':
        """Apply ``key=value`` strings (types from the defaults).

        Raises:
            ValueError: an unknown key or a malformed pair.

        """
        from dataclasses import fields, replace
        types = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        updates = {}
        for pair in pairs:
            key, sep, value = pair.partition('=')
            if not sep or key not in types:
                raise ValueError(f'bad planning setting {pair!r}; known: {sorted(types)}')
            if types[key] is bool:
                if value.lower() not in ('0', '1', 'true', 'false'):
                    raise ValueError(f'bad planning setting {pair!r}: {key} is 0 or 1')
                updates[key] = value.lower() in ('1', 'true')
            else:
                updates[key] = types[key](value)
        return replace(self, **updates)


def fit_events(encoder: LatentWorldModel, data: LatentDataset, latents: torch.Tensor,
               states: torch.Tensor, failed: np.ndarray, settings: 'PlanningSettings',
               train_eps, val_eps, progress: bool = True, log=print):
    """The event heads of `settings` on the outcome markers; (heads or None, report)."""
    import time

    from hlai_ros.latent.events import EventConfig, fit_event_heads
    s = settings
    labels = event_labels(data, failed, s.event_within)
    heads, report = None, {'events': int(failed.sum()), 'episodes': int(len(failed))}
    if not failed[train_eps].any():
        log('[latent] no failure in the training episodes: no event heads (collect '
            'exploration that sometimes falls or collides to learn them)')
        return None, report
    t0 = time.monotonic()
    scenes, scene_shape = event_scenes(encoder, data, latents, s.event_kind)
    heads, fit = fit_event_heads(scenes, scene_shape, states, labels, data.episode.numpy(),
                                 data.step.numpy(), train_eps, val_eps,
                                 EventConfig(within=s.event_within, steps=s.event_steps,
                                             seed=s.seed, kind=s.event_kind,
                                             batch_size=s.event_batch,
                                             scene_features=s.event_features,
                                             flips=s.event_flips,
                                             moving_keypoints=s.event_moving,
                                             mask_radius=s.event_mask_radius,
                                             scene_first=s.event_scene_first,
                                             positive_weight=s.event_positive_weight),
                                 progress=progress, keypoints=encoder.config.keypoints)
    report.update(fit, seconds=time.monotonic() - t0)
    log(f'[latent] event heads: {report}')
    return heads, report


def fit_policy(encoder: LatentWorldModel, data: LatentDataset, states: torch.Tensor,
               goal, settings: 'PlanningSettings', train_eps, val_eps,
               progress: bool = True, log=print):
    """The goal-conditioned policy of `settings` on the successful episodes; (policy, report).

    None, with a report, when the data hold no success marker or `policy_steps` is 0.
    """
    import time

    from hlai_ros.latent.policy import PolicyFitConfig, fit_goal_policy
    s = settings
    succeeded = data.succeeded
    if not s.policy_steps:
        return None, {}
    if succeeded is None or not succeeded.any():
        log('[latent] no successful episode in the data: no goal policy')
        return None, {'successful_episodes': 0}
    actions = torch.nan_to_num(data.actions)
    low, high = recorded_action_bounds(actions[data.valid])
    t0 = time.monotonic()
    goal_states = None
    if data.has_goal_image is not None and data.has_goal_image.any():
        with torch.no_grad():
            goal_states = encoder.encode(data.goal_rgb, data.goal_depth.float(),
                                         encoder.proprio_mean.expand(data.num_episodes, -1))
        goal_states = goal_states[:, planning_part(encoder)].clone()
        goal_states[torch.as_tensor(~data.has_goal_image)] = float('nan')
    else:
        log('[latent] the bags hold no goal images: the policy learns to reach each '
            "episode's last frame instead (record them: hlai collect writes /goal_image)")
    policy, report = fit_goal_policy(states, actions, data.valid.numpy(), data.episode.numpy(),
                                     succeeded, goal, low, high, train_eps, val_eps,
                                     PolicyFitConfig(steps=s.policy_steps, seed=s.seed),
                                     progress, goal_states)
    report['seconds'] = time.monotonic() - t0
    log(f'[latent] goal policy: {report}')
    return policy, report


def recorded_action_bounds(actions: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-dimension (low, high) of the recorded commands (A,): the policy's squashing range."""
    return actions.amin(0).tolist(), actions.amax(0).tolist()


def train_events(folder, data: LatentDataset, failed: np.ndarray, settings: 'PlanningSettings',
                 metadata: dict | None = None, progress: bool = True, log=print) -> dict:
    """Refit only the event heads of a latent folder (its dynamics, goal cost, value stay).

    For a new collection that holds more failures: the catastrophe term learns from them
    without retraining what already plans well. Returns the heads' report.
    """
    def fit(encoder, latents, states, goal, train_eps, val_eps):
        return fit_events(encoder, data, latents, states, failed, settings, train_eps,
                          val_eps, progress, log)
    return _refit_part(folder, data, settings, 'events', fit, metadata)


def train_policy(folder, data: LatentDataset, settings: 'PlanningSettings',
                 metadata: dict | None = None, progress: bool = True, log=print) -> dict:
    """Refit only the goal-conditioned policy of a latent folder (the rest stays).

    Returns the policy's report.
    """
    def fit(encoder, latents, states, goal, train_eps, val_eps):
        return fit_policy(encoder, data, states, goal, settings, train_eps, val_eps,
                          progress, log)
    return _refit_part(folder, data, settings, 'policy', fit, metadata)


def _refit_part(folder, data: LatentDataset, settings: 'PlanningSettings', part: str, fit,
                metadata: dict | None) -> dict:
    """Refit one part ('events' or 'policy') of a trained latent folder; the rest stays.

    fit(encoder, latents, states, goal cost, train episodes, held-out episodes) -> (the new
    part or None, its report), on `data` encoded by the folder's encoder and split by
    `settings`. Writes the folder's cost files again; returns the report.
    """
    from pathlib import Path

    from hlai_ros.latent.checkpoint import load_latent_model
    from hlai_ros.latent.data import split_by_episode
    from hlai_ros.latent.stack import load_latent_cost, load_latent_policy, save_latent_cost
    folder = Path(folder)
    encoder = load_latent_model(folder)
    goal, heads, value, header = load_latent_cost(folder, encoder.config.keypoints)
    parts = {'events': (heads, header.get('event_report')),
             'policy': (load_latent_policy(folder), header.get('policy_report'))}
    with torch.no_grad():
        latents = encode_dataset(encoder, data)
    states = latents[:, planning_part(encoder)].contiguous()
    train_eps, val_eps = split_by_episode(data.num_episodes, settings.val_fraction,
                                          settings.seed)
    parts[part] = fit(encoder, latents, states, goal, train_eps, val_eps)
    meta = dict(header.get('metadata') or {})
    if metadata:
        meta[part] = metadata
    (heads, event_report), (policy, policy_report) = parts['events'], parts['policy']
    save_latent_cost(folder, goal, heads, header['weighting'], event_report, meta, value,
                     header.get('value_report'), policy, policy_report)
    return parts[part][1]


def train_planning(folder, data: LatentDataset, failed: np.ndarray, settings: PlanningSettings,
                   metadata: dict | None = None, progress: bool = True, log=print) -> dict:
    """Train what the actor plans with, next to the encoder in `folder`; return a report.

    Encodes every frame with the folder's encoder, trains the planning dynamics on the
    planning states (``world_model.json``), fits the goal cost's keypoint weights on the codes
    (no labels) and the event heads on the outcome markers (`failed`: (episodes,) bool), and
    writes them (``latent_cost.json``). Nothing here reads ground truth.
    """
    from pathlib import Path
    import time

    from hlai_ros.latent.checkpoint import load_latent_model
    from hlai_ros.latent.data import split_by_episode
    from hlai_ros.latent.goal import fit_goal_cost
    from hlai_ros.latent.stack import planning_goal_cost, save_latent_cost
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model
    folder = Path(folder)
    s = settings
    encoder = load_latent_model(folder)
    t0 = time.monotonic()
    with torch.no_grad():
        latents = encode_dataset(encoder, data)
    states = latents[:, planning_part(encoder)].contiguous()
    log(f'[latent] encoded {len(data)} frames in {time.monotonic() - t0:.0f} s')
    episodes = planning_episodes(data, states)
    config = WorldModelConfig(state_dim=states.shape[1], action_dim=data.actions.shape[1],
                              latent_dim=s.latent_dim, ensemble_size=s.ensemble_size,
                              time_budget_s=s.dynamics_budget_s, seed=s.seed)
    t0 = time.monotonic()
    _, history = train_world_model([(e.states, e.actions) for e in episodes], config,
                                   out_dir=folder, progress=progress, metadata=metadata)
    dyn_s = time.monotonic() - t0
    log(f'[latent] planning dynamics: val error {min(history.val_error):.4f} after '
        f'{len(history.val_error)} epochs, {dyn_s:.0f} s ({history.stop_reason})')
    goal = planning_goal_cost(fit_goal_cost(encoder, latents, weighting=s.goal_weighting))
    train_eps, val_eps = split_by_episode(data.num_episodes, s.val_fraction, s.seed)
    heads, report = fit_events(encoder, data, latents, states, failed, s, train_eps, val_eps,
                               progress, log)
    value, value_report = None, {}
    if s.value_steps:
        from hlai_ros.latent.value import ValueConfig, fit_goal_value
        t0 = time.monotonic()
        value, value_report = fit_goal_value(
            states, data.episode.numpy(), goal, train_eps, val_eps,
            ValueConfig(reach=s.value_reach, steps=s.value_steps, seed=s.seed), progress)
        value_report['seconds'] = time.monotonic() - t0
        log(f'[latent] steps-to-goal value: {value_report}')
    policy, policy_report = fit_policy(encoder, data, states, goal, s, train_eps, val_eps,
                                       progress, log)
    save_latent_cost(folder, goal, heads, s.goal_weighting, report, metadata, value,
                     value_report, policy, policy_report)
    return {'dynamics_val_error': min(history.val_error), 'dynamics_seconds': dyn_s,
            'dynamics_epochs': len(history.val_error), 'events': report,
            'value': value_report, 'policy': policy_report,
            'planning_transitions': sum(len(e.actions) for e in episodes)}
