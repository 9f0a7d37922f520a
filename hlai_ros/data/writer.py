"""Writing episode bags: rosbag2 with MCAP storage, without rclpy.

`BagWriter` is a rosbag2 MCAP writer (rosbags) that bounds what a crash can lose.
`EpisodeWriter` turns world steps into the contract's messages (topics.py).

Crash safety. rosbags' MCAP writer (0.11.9) keeps the messages of the current chunk in memory
and writes the chunk only when it exceeds 1 MiB (about 36 control steps of 64 x 64 RGB-D, or
one step at 640 x 480), and writes the summary, footer and metadata.yaml only on close. So
`BagWriter` closes the pending chunk and flushes the file buffer at least every
`flush_period_s` of wall-clock time (and at every episode end): a SIGKILL then loses at most
that much (plus the chunk being written), and the loader reads the bag without its summary or
metadata.yaml. The kernel keeps flushed data when the process dies; only power loss needs
fsync, which `flush(fsync=True)` adds.
"""
from __future__ import annotations

import json
from pathlib import Path
import time
from typing import Any

import numpy as np

from hlai_ros.contract import (
    CAMERA_DEPTH,
    CAMERA_INFO,
    CAMERA_RGB,
    CLOCK,
    EPISODE,
    GOAL,
    GOAL_DEPTH,
    GOAL_IMAGE,
    GROUND_TRUTH,
    TF_STATIC,
    WORLD_FRAME,
    Topic,
    episode_topics,
)
from hlai_ros.data import messages

FORMAT_VERSION = 1
"""Version of the episode-bag layout written here; stored in every start marker."""


def _qos(transient_local: bool = False):
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )
    zero = QosTime(0, 0)
    return [Qos(QosHistory.KEEP_LAST, 1 if transient_local else 10, QosReliability.RELIABLE,
                QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
                zero, zero, QosLiveliness.AUTOMATIC, zero, False)]


def to_jsonable(value: Any) -> Any:
    """Return `value` with numpy arrays and scalars turned into plain Python for JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class BagWriter:
    """A rosbag2 bag (MCAP storage) that flushes often enough to survive a kill.

    The flush period is checked on every write; a writer whose input may pause (a live
    recorder) should also call `flush()` from a timer, so that the last messages before a
    pause do not wait in memory.

    Args:
        path: bag directory to create (must not exist); holds ``<name>.mcap`` and, after
            `close`, ``metadata.yaml``.
        flush_period_s: longest wall-clock time between flushes to the file, seconds.

    """

    def __init__(self, path: str | Path, flush_period_s: float = 0.5):
        from rosbags.rosbag2 import StoragePlugin, Writer

        if flush_period_s <= 0:
            raise ValueError(f'flush_period_s must be positive, got {flush_period_s}')
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f'bag {self.path} exists already; choose a new path')
        self.flush_period_s = float(flush_period_s)
        self._bag = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._bag.open()
        self._connections: dict[str, Any] = {}
        self._msgtypes: dict[str, str] = {}
        self._last_flush = time.monotonic()
        self.messages_written = 0
        self.flush()  # put the MCAP magic and header on disk now

    def add_topic(self, topic: Topic, transient_local: bool = False) -> None:
        """Register a topic before writing to it."""
        self._connections[topic.name] = self._bag.add_connection(
            topic.name, topic.msgtype, typestore=messages.typestore(),
            offered_qos_profiles=_qos(transient_local))
        self._msgtypes[topic.name] = topic.msgtype

    def write(self, topic: str, stamp_ns: int, msg) -> None:
        """Serialise `msg` to CDR and write it with log time `stamp_ns` (nanoseconds)."""
        if topic not in self._connections:
            raise KeyError(f'topic {topic} was not added to bag {self.path}')
        self.write_serialized(topic, stamp_ns,
                              messages.typestore().serialize_cdr(msg, self._msgtypes[topic]))

    def write_serialized(self, topic: str, stamp_ns: int, data: bytes) -> None:
        """Write an already CDR-serialised message (e.g. from a raw rclpy subscription)."""
        if topic not in self._connections:
            raise KeyError(f'topic {topic} was not added to bag {self.path}')
        self._bag.write(self._connections[topic], int(stamp_ns), data)
        self.messages_written += 1
        if time.monotonic() - self._last_flush >= self.flush_period_s:
            self.flush()

    def flush(self, fsync: bool = False) -> None:
        """Write the pending chunk and the file buffer to the file."""
        storage = self._bag.storage
        if storage is None:
            return
        # rosbags' McapWriter has no public flush: close its pending chunk when it holds
        # messages (an empty one would carry a bogus time range), then flush the file.
        chunk = getattr(storage, 'chunk', None)
        if chunk is not None and chunk.msgs and hasattr(storage, 'close_chunk'):
            storage.close_chunk()
        bio = getattr(storage, 'bio', None)
        if bio is not None:
            bio.flush()
            if fsync:
                import os
                os.fsync(bio.fileno())
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the summary, footer and metadata.yaml."""
        if self._bag.storage is not None:
            self._bag.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EpisodeWriter:
    """Writes world steps as the contract's messages into one bag, episode after episode.

    Every message of control step t (a tick counted across the bag, so stamps increase across
    episodes) carries stamp ``t * dt``; the command of step t is written right after the
    observation of step t. ``/tf_static`` holds ``world`` -> camera optical frame (the nominal,
    calibrated pose) once at the start.

    Args:
        path: bag directory to create.
        task: a registered task; its robot (embodiment) picks the proprioception and command
            topics and codecs.
        camera: the world's nominal camera model (`HlaiWorld.nominal_camera()`).
        proprio_names: labels of the proprioception vector.
        control_hz: control rate, Hz.
        flush_period_s: see `BagWriter`.
        metadata: extra JSON-able items for every start marker (env id, policy, ...).

    """

    def __init__(self, path: str | Path, task: str, camera, proprio_names, control_hz: float,
                 flush_period_s: float = 0.5, metadata: dict | None = None):
        if control_hz <= 0:
            raise ValueError(f'control_hz must be positive, got {control_hz}')
        self.task = task
        self.camera = camera
        self.proprio_names = tuple(proprio_names)
        self.dt_ns = int(round(1e9 / control_hz))
        self.control_hz = float(control_hz)
        self.metadata = dict(metadata or {})
        from hlai_ros.tasks import get_task
        self.embodiment = get_task(task).embodiment
        self.bag = BagWriter(path, flush_period_s)
        for topic in episode_topics(self.embodiment):
            self.bag.add_topic(topic, transient_local=topic in (TF_STATIC, GOAL_IMAGE,
                                                                GOAL_DEPTH))
        tf = messages.transform_stamped(camera.T_world_camera, WORLD_FRAME, camera.frame_id, 0)
        self.bag.write(TF_STATIC.name, 0, messages.tf_message([tf]))
        self.tick = 0
        self._episode: int | None = None
        self._observed = False

    @property
    def stamp_ns(self) -> int:
        """Stamp of the current control step, nanoseconds."""
        return self.tick * self.dt_ns

    def start_episode(self, episode: int, seed: int | None, **extra) -> None:
        """Write the start marker of an episode (before its first observation)."""
        if self._episode is not None:
            raise RuntimeError(f'episode {self._episode} is still open; end it first')
        self._episode = int(episode)
        marker = {'event': 'start', 'episode': int(episode), 'task': self.task, 'seed': seed,
                  'format': FORMAT_VERSION, 'control_hz': self.control_hz,
                  'proprio_names': list(self.proprio_names),
                  'camera': {'width': self.camera.width, 'height': self.camera.height,
                             'near': self.camera.near, 'far': self.camera.far,
                             'frame_id': self.camera.frame_id}}
        marker.update(self.metadata)
        marker.update(extra)
        self.bag.write(EPISODE.name, self.stamp_ns, messages.string(
            json.dumps(to_jsonable(marker))))

    def observation(self, obs: dict, info: dict | None = None) -> None:
        """Write the observation (and ground truth, if `info` has it) of the current step."""
        if self._episode is None:
            raise RuntimeError('start an episode before writing observations')
        t, frame, bag = self.stamp_ns, self.camera.frame_id, self.bag
        bag.write(CLOCK.name, t, messages.clock(t))
        bag.write(CAMERA_RGB.name, t, messages.rgb_image(obs['rgb'], t, frame))
        bag.write(CAMERA_DEPTH.name, t, messages.depth_image(obs['depth'], t, frame))
        bag.write(CAMERA_INFO.name, t, messages.camera_info(
            self.camera.K, self.camera.width, self.camera.height, t, frame))
        bag.write(self.embodiment.proprio.name, t,
                  self.embodiment.encode_proprio(self.proprio_names, obs['proprio'], t))
        bag.write(GOAL.name, t, messages.pose_stamped(obs['goal'], t))
        if info is not None and 'ground_truth' in info:
            bag.write(GROUND_TRUTH.name, t, messages.string(
                json.dumps(to_jsonable(info['ground_truth']))))
        self._observed = True

    def goal_image(self, obs: dict) -> None:
        """Write the episode's goal image (rgb, depth as an observation has them).

        Stamped with the current step, before its observation: the goal a latent stack is
        given for this episode (`HlaiWorld.goal_observation`).
        """
        if self._episode is None:
            raise RuntimeError('start an episode before writing its goal image')
        t, frame = self.stamp_ns, self.camera.frame_id
        self.bag.write(GOAL_IMAGE.name, t, messages.rgb_image(obs['rgb'], t, frame))
        self.bag.write(GOAL_DEPTH.name, t, messages.depth_image(obs['depth'], t, frame))

    def action(self, action: np.ndarray) -> None:
        """Write the command of the current step, then advance to the next step."""
        if not self._observed:
            raise RuntimeError('write the observation of a step before its command')
        t = self.stamp_ns
        self.bag.write(self.embodiment.command.name, t,
                       self.embodiment.encode_command(action, t))
        self.tick += 1
        self._observed = False

    def end_episode(self, success: bool | None, failure: str | None, episode_return: float,
                    steps: int, **extra) -> None:
        """Write the end marker (at the last observation's stamp) and flush the bag."""
        if self._episode is None:
            raise RuntimeError('no episode is open')
        marker = {'event': 'end', 'episode': self._episode, 'task': self.task,
                  'success': success, 'failure': failure, 'return': float(episode_return),
                  'steps': int(steps)}
        marker.update(extra)
        self.bag.write(EPISODE.name, self.stamp_ns, messages.string(
            json.dumps(to_jsonable(marker))))
        self.tick += 1
        self._episode = None
        self._observed = False
        self.bag.flush()

    def close(self) -> None:
        """Close the bag (summary, footer, metadata.yaml)."""
        self.bag.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
