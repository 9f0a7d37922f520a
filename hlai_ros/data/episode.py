"""Time-aligned episodes and the flat transitions view that training reads.

An episode of T steps holds T + 1 observations (the one after reset, then one after every
action) and T actions; transition t is (observation t, action t, observation t + 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hlai_ros.sim.base import CameraModel

OBSERVATION_KEYS = ('rgb', 'depth', 'proprio', 'goal')


@dataclass
class Episode:
    """One episode read from a bag.

    Shapes: T steps, image H x W, P proprioception values, A action components.
    """

    source: str
    """Bag directory (or .mcap file) the episode came from."""
    index: int
    """Position of the episode in its bag (0-based)."""
    stamps: np.ndarray
    """(T + 1,) float64 observation stamps, seconds."""
    observations: dict[str, np.ndarray]
    """rgb (T+1, H, W, 3) uint8; depth (T+1, H, W) float32 metres; proprio (T+1, P) float32;
    goal (T+1, 2) float32 metres, world frame (NaN before any goal was received)."""
    actions: np.ndarray
    """(T, A) float32 commands, NaN where no command was in force."""
    action_valid: np.ndarray
    """(T,) bool: a command was in force for the step."""
    proprio_names: tuple[str, ...]
    """Labels of the proprioception vector."""
    K: np.ndarray
    """3 x 3 camera intrinsics from camera_info."""
    T_world_camera: np.ndarray | None
    """4 x 4 pose of the camera optical frame in the world, from /tf_static (None if absent)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Start and end markers merged (task, seed, success, failure, return, steps, ...);
    ``ended`` is False when the recording stopped before the episode's end marker."""
    ground_truth: list[dict] | None = None
    """Per-observation privileged state (evaluation only), or None when not recorded."""
    goal_image: dict[str, np.ndarray] | None = None
    """The episode's goal image (``/goal_image`` + ``/goal_image/depth``): rgb (H, W, 3)
    uint8 and depth (H, W) metres, as the camera would see the scene at its goal; None when
    not recorded."""

    @property
    def num_steps(self) -> int:
        """T, the number of actions."""
        return int(self.actions.shape[0])

    @property
    def task(self) -> str | None:
        """Task name from the markers, or inferred from the topics."""
        return self.metadata.get('task')

    @property
    def next_observations(self) -> dict[str, np.ndarray]:
        """Observations 1..T (views), aligned with `actions`."""
        return {k: v[1:] for k, v in self.observations.items()}

    @property
    def terminated(self) -> bool:
        """True when the episode ended in success or failure (not a time limit or a cut)."""
        return bool(self.metadata.get('success') or self.metadata.get('failure'))

    @property
    def camera(self) -> CameraModel | None:
        """The calibrated camera model, when the bag carried the extrinsics."""
        from hlai_ros.sim.base import CameraModel
        if self.T_world_camera is None:
            return None
        h, w = self.observations['depth'].shape[1:3]
        cam = self.metadata.get('camera') or {}
        return CameraModel(int(w), int(h), self.K, self.T_world_camera,
                           float(cam.get('near', 0.0)), float(cam.get('far', np.inf)),
                           cam.get('frame_id', 'camera_optical_frame'))

    def observation(self, t: int) -> dict[str, np.ndarray]:
        """Return observation t as the world's observation dict."""
        return {k: v[t] for k, v in self.observations.items()}


@dataclass
class Transitions:
    """All valid transitions of a set of episodes, without copying images twice.

    `frames` concatenates every episode's observations (M frames); transition i is
    (frames[obs_index[i]], actions[i], frames[obs_index[i] + 1]).
    """

    frames: dict[str, np.ndarray]
    """rgb (M, H, W, 3) uint8, depth (M, H, W) float32, proprio (M, P), goal (M, 2) float32."""
    obs_index: np.ndarray
    """(N,) int64 index of each transition's observation in `frames`."""
    actions: np.ndarray
    """(N, A) float32."""
    episode: np.ndarray
    """(N,) int64 index of the episode in the loaded list."""
    step: np.ndarray
    """(N,) int64 step within the episode."""
    terminated: np.ndarray
    """(N,) bool: the next observation ends the episode in success or failure."""
    stamps: np.ndarray
    """(N,) float64 stamp of the observation, seconds."""

    def __len__(self) -> int:
        return int(self.obs_index.shape[0])

    def batch(self, idx=None) -> dict[str, Any]:
        """Return {'obs': {...}, 'action': (B, A), 'next_obs': {...}, 'terminated': (B,)}."""
        idx = np.arange(len(self)) if idx is None else np.asarray(idx)
        i = self.obs_index[idx]
        return {'obs': {k: v[i] for k, v in self.frames.items()},
                'action': self.actions[idx],
                'next_obs': {k: v[i + 1] for k, v in self.frames.items()},
                'terminated': self.terminated[idx]}

    @property
    def obs(self) -> dict[str, np.ndarray]:
        """Observations of all transitions (copies), (N, ...)."""
        return self.batch()['obs']

    @property
    def next_obs(self) -> dict[str, np.ndarray]:
        """Next observations of all transitions (copies), (N, ...)."""
        return self.batch()['next_obs']

    @classmethod
    def from_episodes(cls, episodes: list[Episode]) -> 'Transitions':
        """Flatten episodes; transitions without a command in force are left out."""
        if not episodes:
            raise ValueError('no episodes to flatten')
        keys = OBSERVATION_KEYS
        shapes = {k: {e.observations[k].shape[1:] for e in episodes} for k in keys}
        shapes['actions'] = {e.actions.shape[1:] for e in episodes}
        mixed = {k: sorted(s) for k, s in shapes.items() if len(s) > 1}
        if mixed:
            raise ValueError(f'episodes differ in observation shapes {mixed}; load bags of one '
                             'task and one camera resolution together')
        frames = {k: np.concatenate([e.observations[k] for e in episodes]) for k in keys}
        index, actions, episode, step, term, stamps = [], [], [], [], [], []
        offset = 0
        for n, e in enumerate(episodes):
            valid = np.flatnonzero(e.action_valid)
            index.append(offset + valid)
            actions.append(e.actions[valid])
            episode.append(np.full(valid.size, n))
            step.append(valid)
            last = valid == e.num_steps - 1
            term.append(last & e.terminated)
            stamps.append(e.stamps[valid])
            offset += e.num_steps + 1
        return cls(frames, np.concatenate(index).astype(np.int64),
                   np.concatenate(actions).astype(np.float32),
                   np.concatenate(episode).astype(np.int64),
                   np.concatenate(step).astype(np.int64), np.concatenate(term).astype(bool),
                   np.concatenate(stamps))
