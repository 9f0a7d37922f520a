"""Turning decoded message streams into time-aligned episodes.

The rules, in order (stamps are header stamps; see `Recording` for messages without one):

1. Every colour image is a candidate observation; images with a repeated stamp count once.
2. Depth, proprioception and ground truth are matched to an image by nearest stamp within the
   tolerance (default: half the median image period). An image with no depth or no
   proprioception match is dropped, and the drop is counted.
3. The goal of an observation is the latest goal stamped at or before it (plus the tolerance);
   NaN before the first goal.
4. Episodes: each ``start`` marker opens an episode that its ``end`` marker (same episode id)
   closes; without an end marker (recording cut) it runs until the next start or the end of the
   recording. Images outside every episode are left out. With no markers at all the whole
   recording is one episode.
5. The action of step t is the command in force just before observation t + 1: the latest
   command of the episode stamped before observation t + 1 and no older than
   `command_timeout_s` before observation t. A step with no such command, or whose gap to the
   next observation exceeds `max_gap_factor` times the median period (frames dropped or lost),
   is kept in the episode but marked invalid and left out of the transitions.
6. The intrinsics are the camera_info nearest the episode's first image; the extrinsics are the
   static transform chain from ``world`` (or the tree's root) to the camera frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json
import warnings

import numpy as np

from hlai_ros.data import proprio as proprio_codec
from hlai_ros.data.episode import Episode


@dataclass(frozen=True)
class AlignmentSettings:
    """How streams are matched; see the module docstring for the rules."""

    tolerance_s: float | None = None
    """Largest stamp difference for a match, seconds; None: half the median image period."""
    command_timeout_s: float = 0.5
    """Oldest command (before the observation) still considered in force, seconds."""
    max_gap_factor: float = 1.5
    """Steps longer than this times the median image period are marked invalid."""

    def __post_init__(self):
        if self.tolerance_s is not None and not self.tolerance_s > 0:
            raise ValueError(f'tolerance_s must be positive or None, got {self.tolerance_s}')
        if not self.command_timeout_s >= 0:
            raise ValueError(f'command_timeout_s must be >= 0, got {self.command_timeout_s}')
        if not self.max_gap_factor > 1:
            raise ValueError(f'max_gap_factor must be > 1, got {self.max_gap_factor}')


@dataclass
class Stream:
    """Stamps (ns, int64) and the values they carry, in arrival order."""

    stamps: list = field(default_factory=list)
    values: list = field(default_factory=list)

    def add(self, stamp_ns: int, value) -> None:
        """Append one stamped value."""
        self.stamps.append(int(stamp_ns))
        self.values.append(value)

    def sorted(self) -> tuple[np.ndarray, list]:
        """Return (stamps, values) in stamp order (stable)."""
        stamps = np.asarray(self.stamps, dtype=np.int64)
        order = np.argsort(stamps, kind='stable')
        return stamps[order], [self.values[i] for i in order]

    def __len__(self) -> int:
        return len(self.stamps)


@dataclass
class Recording:
    """Decoded streams of one bag, every stamp already on the header (sensor) time base."""

    source: str
    task: str | None
    action_dim: int = 2
    rgb: Stream = field(default_factory=Stream)
    depth: Stream = field(default_factory=Stream)
    camera_info: Stream = field(default_factory=Stream)
    """Values: (K 3 x 3, width, height, frame_id)."""
    proprio: Stream = field(default_factory=Stream)
    """Values: JointState or Odometry messages."""
    goal: Stream = field(default_factory=Stream)
    goal_rgb: Stream = field(default_factory=Stream)
    """Values: goal images, colour (H, W, 3) uint8."""
    goal_depth: Stream = field(default_factory=Stream)
    """Values: goal images, depth (H, W) metres."""
    commands: Stream = field(default_factory=Stream)
    """Values: float32 action vectors."""
    markers: Stream = field(default_factory=Stream)
    """Values: marker dicts."""
    ground_truth: Stream = field(default_factory=Stream)
    """Values: JSON strings."""
    transforms: dict = field(default_factory=dict)
    """child frame -> (parent frame, 4 x 4 pose of child in parent), from /tf_static."""


def nearest(ref: np.ndarray, stamps: np.ndarray, tol_ns: int) -> np.ndarray:
    """Index into sorted `stamps` of the nearest to each `ref` within `tol_ns`, else -1."""
    if stamps.size == 0:
        return np.full(ref.shape, -1, dtype=np.int64)
    right = np.clip(np.searchsorted(stamps, ref), 0, stamps.size - 1)
    left = np.clip(right - 1, 0, stamps.size - 1)
    pick = np.where(np.abs(stamps[left] - ref) <= np.abs(stamps[right] - ref), left, right)
    return np.where(np.abs(stamps[pick] - ref) <= tol_ns, pick, -1)


def latest_at_or_before(ref: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Index into sorted `stamps` of the latest stamp <= each `ref`, else -1."""
    return np.searchsorted(stamps, ref, side='right') - 1


def camera_extrinsics(transforms: dict, frame: str, world: str = 'world'):
    """Return (4 x 4 pose of `frame` in `world` or in the tree's root, that frame) or None."""
    if frame not in transforms:
        return None
    T, current, seen = np.eye(4), frame, set()
    while current in transforms and current != world and current not in seen:
        seen.add(current)
        parent, T_parent_child = transforms[current]
        T = T_parent_child @ T
        current = parent
    return T, current


def _episode_windows(markers_t: np.ndarray, markers: list, end_ns: int, tol: int):
    """Return [(start_ns, end_ns, start marker, end marker or None)] from sorted markers."""
    starts = [(t, m) for t, m in zip(markers_t, markers) if m.get('event') == 'start']
    ends = [(t, m) for t, m in zip(markers_t, markers) if m.get('event') == 'end']
    windows = []
    for k, (t0, m0) in enumerate(starts):
        t_next = starts[k + 1][0] if k + 1 < len(starts) else None
        end = next(((t, m) for t, m in ends
                    if t >= t0 and m.get('episode') == m0.get('episode')
                    and (t_next is None or t <= t_next)), None)
        if end is not None:
            t1 = end[0] + tol
        else:
            t1 = (t_next - tol - 1) if t_next is not None else end_ns
        if t_next is not None:
            t1 = min(t1, t_next - tol - 1)
        windows.append((int(t0) - tol, int(t1), m0, end[1] if end else None))
    return windows


def build_episodes(rec: Recording, settings: AlignmentSettings) -> tuple[list[Episode], dict]:
    """Align the streams of a recording into episodes; return (episodes, drop statistics)."""
    rgb_t, rgb_v = rec.rgb.sorted()
    keep = np.ones(rgb_t.size, dtype=bool)
    keep[1:] = np.diff(rgb_t) > 0
    rgb_t, rgb_v = rgb_t[keep], [v for v, k in zip(rgb_v, keep) if k]
    stats = {'images': int(rgb_t.size), 'dropped_no_depth': 0, 'dropped_no_proprio': 0,
             'outside_episodes': 0}
    if rgb_t.size == 0:
        return [], stats
    period = int(np.median(np.diff(rgb_t))) if rgb_t.size > 1 else int(1e8)
    tol = int(settings.tolerance_s * 1e9) if settings.tolerance_s else max(period // 2, 10**6)
    depth_t, depth_v = rec.depth.sorted()
    prop_t, prop_v = rec.proprio.sorted()
    goal_t, goal_v = rec.goal.sorted()
    gt_t, gt_v = rec.ground_truth.sorted()
    info_t, info_v = rec.camera_info.sorted()
    cmd_t, cmd_v = rec.commands.sorted()
    mark_t, mark_v = rec.markers.sorted()

    di = nearest(rgb_t, depth_t, tol)
    pi = nearest(rgb_t, prop_t, tol)
    stats['dropped_no_depth'] = int(np.sum(di < 0))
    stats['dropped_no_proprio'] = int(np.sum((pi < 0) & (di >= 0)))
    usable = (di >= 0) & (pi >= 0)

    end_ns = int(max(rgb_t[-1], cmd_t[-1] if cmd_t.size else 0)) + tol
    if any(m.get('event') == 'start' for m in mark_v):
        windows = _episode_windows(mark_t, mark_v, end_ns, tol)
    else:
        windows = [(int(rgb_t[0]) - tol, end_ns, {}, None)]

    in_any = np.zeros(rgb_t.size, dtype=bool)
    episodes = []
    for w0, w1, start, end in windows:
        sel = np.flatnonzero(usable & (rgb_t >= w0) & (rgb_t <= w1))
        in_any[(rgb_t >= w0) & (rgb_t <= w1)] = True
        if sel.size == 0:
            continue
        episodes.append(_episode(rec, len(episodes), sel, rgb_t, rgb_v, depth_v, di, prop_v, pi,
                                 goal_t, goal_v, gt_t, gt_v, info_t, info_v, cmd_t, cmd_v,
                                 (w0, w1), start, end, period, tol, settings))
    stats['outside_episodes'] = int(np.sum(~in_any))
    return episodes, stats


def _episode(rec, index, sel, rgb_t, rgb_v, depth_v, di, prop_v, pi, goal_t, goal_v, gt_t,
             gt_v, info_t, info_v, cmd_t, cmd_v, window, start, end, period, tol, settings):
    stamps = rgb_t[sel]
    rgb = np.stack([rgb_v[i] for i in sel])
    depth = np.stack([depth_v[di[i]] for i in sel])
    if depth.shape[1:] != rgb.shape[1:3]:
        raise ValueError(f'depth images are {depth.shape[1:]} but colour images are '
                         f'{rgb.shape[1:3]}; the loader needs registered RGB-D of one size')
    first_prop = prop_v[pi[sel[0]]]
    if hasattr(first_prop, 'pose'):
        names = tuple(start.get('proprio_names') or proprio_codec.DEFAULT_ODOMETRY_NAMES)
        proprio = np.stack([proprio_codec.vector_from_odometry(prop_v[pi[i]], names)
                            for i in sel])
    else:
        names = tuple(start.get('proprio_names') or proprio_codec.default_joint_names(first_prop))
        proprio = np.stack([proprio_codec.vector_from_joint_state(prop_v[pi[i]], names)
                            for i in sel])
    gi = latest_at_or_before(stamps + tol, goal_t)
    goal = np.full((stamps.size, 2), np.nan, dtype=np.float32)
    for k, g in enumerate(gi):
        if g >= 0:
            goal[k] = goal_v[g]

    # actions: the latest command before the next observation, not older than the timeout
    in_window = (cmd_t >= window[0]) & (cmd_t <= window[1])
    ct, cv = cmd_t[in_window], [v for v, w in zip(cmd_v, in_window) if w]
    T = stamps.size - 1
    adim = int(np.asarray(cv[0]).size) if cv else rec.action_dim
    actions = np.full((T, adim), np.nan, dtype=np.float32)
    valid = np.zeros(T, dtype=bool)
    if T > 0 and ct.size:
        ci = np.searchsorted(ct, stamps[1:], side='left') - 1
        timeout = int(settings.command_timeout_s * 1e9)
        for t in range(T):
            c = ci[t]
            if c >= 0 and ct[c] >= stamps[t] - timeout:
                actions[t] = cv[c]
                valid[t] = True
    if T > 0:
        valid &= np.diff(stamps) <= settings.max_gap_factor * period

    ki = nearest(stamps[:1], info_t, np.iinfo(np.int64).max)[0]
    K, width, height, frame = info_v[ki]
    if (width, height) != (rgb.shape[2], rgb.shape[1]) and width and height:
        raise ValueError(f'camera_info is for {width} x {height} images but the images are '
                         f'{rgb.shape[2]} x {rgb.shape[1]}')
    extr = camera_extrinsics(rec.transforms, frame)
    metadata = {k: v for k, v in start.items() if k != 'event'}
    if end is not None:
        metadata.update({k: v for k, v in end.items() if k != 'event'})
    metadata['ended'] = end is not None or not start
    if not metadata.get('task') and rec.task:
        metadata['task'] = rec.task
    if extr is not None:
        metadata['camera_parent_frame'] = extr[1]
    ground_truth = None
    if gt_t.size:
        gti = nearest(stamps, gt_t, tol)
        ground_truth = [json.loads(gt_v[g]) if g >= 0 else None for g in gti]
    return Episode(source=rec.source, index=index, stamps=stamps.astype(np.float64) * 1e-9,
                   observations={'rgb': rgb, 'depth': depth, 'proprio': proprio, 'goal': goal},
                   actions=actions, action_valid=valid, proprio_names=names, K=K,
                   T_world_camera=None if extr is None else extr[0], metadata=metadata,
                   ground_truth=ground_truth,
                   goal_image=_goal_image(rec, window, stamps[0], tol))


def _goal_image(rec: Recording, window: tuple[int, int], first_ns: int, tol: int
                ) -> dict[str, np.ndarray] | None:
    """The episode's goal image, or None when the recording has none.

    The latest colour frame on the goal-image topic from the episode's start up to its first
    observation, with the depth frame of the same stamp.
    """
    rgb_t, rgb_v = rec.goal_rgb.sorted()
    if not rgb_t.size:
        return None
    i = int(latest_at_or_before(np.array([first_ns + tol]), rgb_t)[0])
    if i < 0 or rgb_t[i] < window[0]:
        return None
    depth_t, depth_v = rec.goal_depth.sorted()
    j = int(nearest(rgb_t[i:i + 1], depth_t, tol)[0])
    if j < 0:
        return None
    return {'rgb': np.asarray(rgb_v[i]), 'depth': np.asarray(depth_v[j], dtype=np.float32)}


def warn_drops(source: str, stats: dict) -> None:
    """Warn when images were dropped for lack of a match."""
    lost = stats.get('dropped_no_depth', 0) + stats.get('dropped_no_proprio', 0)
    if lost:
        warnings.warn(f'{source}: {lost} of {stats["images"]} images had no depth or '
                      f'proprioception within the tolerance and were dropped', stacklevel=3)
