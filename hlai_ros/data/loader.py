"""Loading episode bags for training: a directory of bags -> time-aligned episodes.

The same path serves `hlai collect` bags and recordings of a running ROS graph (simulated or
real): bags are found recursively (bags.py), each MCAP file is streamed record by record and
survives a cut tail (mcap_stream.py), messages are deserialised with the rosbags typestore, and
streams are aligned by stamp (alignment.py, which documents the rules). Decoded episodes are
cached per bag (cache.py).

Stamps: messages with a header use their header stamp. Messages without one (a ``Twist``
command, episode markers, ground truth) have only the bag's log time; when the header stamps
of the colour images follow the log time (within 1 s, as in `hlai collect` bags or a recorder
on the same clock) the log time is used as is; otherwise (e.g. sim-time headers in a bag logged
on wall-clock time) the log time is mapped through ``/clock`` (the latest clock value logged
at or before it), or, without ``/clock``, shifted by the median image header-minus-log offset.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import warnings

import numpy as np

from hlai_ros import embodiments
from hlai_ros.contract import TopicNames
from hlai_ros.data import messages
from hlai_ros.data.alignment import (
    AlignmentSettings,
    Recording,
    Stream,
    build_episodes,
    warn_drops,
)
from hlai_ros.data.bags import bag_files, find_bags
from hlai_ros.data.cache import EpisodeCache, cache_key
from hlai_ros.data.episode import Episode, Transitions
from hlai_ros.data.errors import BagError, TruncatedBagWarning
from hlai_ros.data.mcap_stream import scan_mcap

IMAGE = 'sensor_msgs/msg/Image'
TWIST = 'geometry_msgs/msg/Twist'
TWIST_STAMPED = 'geometry_msgs/msg/TwistStamped'
STRING = 'std_msgs/msg/String'


@dataclass
class LoadStats:
    """Counters of the work done by this process's loads (for tests and progress reports)."""

    bags_parsed: int = 0
    """Bags read from their MCAP files."""
    cache_hits: int = 0
    """Bags served from the cache."""


stats = LoadStats()


def _roles(topics: TopicNames) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {
        topics.rgb: ('rgb', (IMAGE,)),
        topics.depth: ('depth', (IMAGE,)),
        topics.camera_info: ('camera_info', ('sensor_msgs/msg/CameraInfo',)),
        topics.joint_states: ('joint_states', ('sensor_msgs/msg/JointState',)),
        topics.odom: ('odom', ('nav_msgs/msg/Odometry',)),
        topics.clock: ('clock', ('rosgraph_msgs/msg/Clock',)),
        topics.goal: ('goal', ('geometry_msgs/msg/PoseStamped',)),
        topics.goal_image: ('goal_rgb', (IMAGE,)),
        topics.goal_depth: ('goal_depth', (IMAGE,)),
        topics.tf_static: ('tf_static', ('tf2_msgs/msg/TFMessage',)),
        topics.arm_command: ('arm_command', (TWIST_STAMPED,)),
        topics.base_command: ('base_command', (TWIST, TWIST_STAMPED)),
        topics.episode: ('episode', (STRING,)),
        topics.ground_truth: ('ground_truth', (STRING,)),
    }


def _decode(role: str, msg, log_ns: int, task_hint: str | None):
    """Return (header stamp ns or None, value) of a deserialised message."""
    if role in ('rgb', 'goal_rgb'):
        return messages.stamp_to_ns(msg.header.stamp), messages.image_to_rgb(msg)
    if role in ('depth', 'goal_depth'):
        return messages.stamp_to_ns(msg.header.stamp), messages.image_to_depth(msg)
    if role == 'camera_info':
        return messages.stamp_to_ns(msg.header.stamp), (
            messages.camera_info_to_K(msg), int(msg.width), int(msg.height),
            msg.header.frame_id.lstrip('/'))
    if role in ('joint_states', 'odom'):
        return messages.stamp_to_ns(msg.header.stamp), msg
    if role == 'clock':
        return None, messages.stamp_to_ns(msg.clock)
    if role == 'goal':
        return messages.stamp_to_ns(msg.header.stamp), messages.pose_to_goal(msg)
    if role == 'tf_static':
        return None, [(tf.header.frame_id.lstrip('/'), tf.child_frame_id.lstrip('/'),
                       messages.transform_to_matrix(tf.transform)) for tf in msg.transforms]
    if role in embodiments.roles('command'):
        stamp = messages.stamp_to_ns(msg.header.stamp) if hasattr(msg, 'header') else None
        return stamp, embodiments.by_role(role).decode_command(msg)
    if role == 'episode':
        marker = json.loads(msg.data)
        if not isinstance(marker, dict):
            raise ValueError(f'episode marker is not a JSON object: {msg.data[:80]!r}')
        return None, marker
    if role == 'ground_truth':
        return None, msg.data
    raise AssertionError(role)


def read_recording(bag: Path, topics: TopicNames = TopicNames()) -> tuple[Recording, list[str]]:
    """Read and decode one bag; return (recording, notes about cut files).

    Raises:
        BagError: not MCAP, foreign message types or encodings, undecodable messages, or (for
            a bag that was closed properly) missing required topics.

    """
    files, expected = bag_files(bag)
    roles = _roles(topics)
    ts = messages.typestore()
    streams: dict[str, Stream] = {}
    headerless: list[tuple[str, int, object]] = []
    found_topics: dict[str, str] = {}
    notes: list[str] = []
    read, complete = 0, True
    for path in files:
        scan, msgs = scan_mcap(path)
        for raw in msgs:
            found_topics.setdefault(raw.topic, raw.msgtype)
            if raw.topic not in roles:
                continue
            role, accepted = roles[raw.topic]
            if raw.msgtype not in accepted:
                raise BagError(f'{path}: topic {raw.topic} carries {raw.msgtype}, expected '
                               f'{" or ".join(accepted)}')
            if raw.encoding != 'cdr':
                raise BagError(f'{path}: topic {raw.topic} is encoded as {raw.encoding!r}; '
                               'only ROS 2 CDR is supported')
            try:
                msg = ts.deserialize_cdr(raw.data, raw.msgtype)
                stamp, value = _decode(role, msg, raw.log_time_ns, None)
            except Exception as exc:  # noqa: BLE001 - any decoding failure names the file
                raise BagError(f'{path}: cannot decode a {raw.msgtype} on {raw.topic} at log '
                               f'time {raw.log_time_ns * 1e-9:.3f} s: {exc}') from None
            stream = streams.setdefault(role, Stream())
            if role == 'clock':
                stream.add(raw.log_time_ns, value)
            elif role == 'tf_static':
                stream.add(raw.log_time_ns, value)
            elif stamp is None:
                headerless.append((role, raw.log_time_ns, value))
            else:
                stream.add(stamp, value)
            if role == 'rgb':
                streams.setdefault('rgb_log', Stream()).add(raw.log_time_ns, stamp)
        read += scan.messages
        for topic, msgtype, _ in scan.channels.values():
            found_topics.setdefault(topic, msgtype)
            if topic in roles and msgtype not in roles[topic][1]:
                raise BagError(f'{path}: topic {topic} carries {msgtype}, expected '
                               f'{" or ".join(roles[topic][1])}')
        if not scan.complete:
            complete = False
            no_meta = not bag.is_file() and not (bag / 'metadata.yaml').exists()
            salvaged = f' ({scan.salvaged} from the cut chunk)' if scan.salvaged else ''
            notes.append(f'{path}: cut short (no end of data section'
                         f'{", no metadata.yaml" if no_meta else ""}); loaded {scan.messages} '
                         f'whole messages{salvaged}, {scan.lost_bytes} bytes at the tail '
                         'unreadable')
    if expected is not None and read < expected:
        notes.append(f'{bag}: metadata.yaml lists {expected} messages, {read} could be read')

    source = str(bag)
    markers = [v for r, _, v in headerless if r == 'episode']
    task = next((m.get('task') for m in markers if m.get('task')), None)
    present = {roles[t][0] for t in found_topics if t in roles}
    missing = _missing(present, topics, task)
    if missing:
        if complete:
            listing = ', '.join(f'{t} ({m})' for t, m in sorted(found_topics.items())) or 'none'
            raise BagError(f'{bag}: missing required topics {missing}; the bag has: {listing}')
        notes.append(f'{bag}: no usable data before the cut (missing {missing})')
        return Recording(source, task), notes

    robot = _embodiment(task, present)
    if task is None:
        task = _only_task_of(robot)
    rec = Recording(source, task)
    for role in ('rgb', 'depth', 'camera_info', 'goal', 'goal_rgb', 'goal_depth'):
        setattr(rec, role, streams.get(role, Stream()))
    proprio_role, command_role = robot.proprio_role, robot.command_role
    rec.proprio = streams.get(proprio_role, Stream())
    rec.commands = streams.get(command_role, Stream())
    to_sensor_time = _headerless_time(streams)
    for role, log_ns, value in headerless:
        stamp = to_sensor_time(log_ns)
        if role == 'episode':
            rec.markers.add(stamp, value)
        elif role == 'ground_truth':
            rec.ground_truth.add(stamp, value)
        elif role == command_role:
            rec.commands.add(stamp, value)
    for _, batch in zip(*streams.get('tf_static', Stream()).sorted()):
        for parent, child, T in batch:
            rec.transforms[child] = (parent, T)
    return rec, notes


def _embodiment(task: str | None, present: set[str]):
    """The robot of a recording: its task's, or (no task marker) the one whose topics it has."""
    if task is not None:
        from hlai_ros.tasks import get_task
        return get_task(task).embodiment
    for role in embodiments.roles('command'):
        robot = embodiments.by_role(role)
        if role in present and robot.proprio_role in present:
            return robot
    for role in embodiments.roles('proprio'):
        if role in present:
            return embodiments.by_role(role)
    return embodiments.by_role(embodiments.roles('command')[0])


def _only_task_of(robot) -> str | None:
    """The task of a recording without markers: the robot's one registered task, else None."""
    from hlai_ros.tasks import get_task, task_names
    tasks = [t for t in task_names() if get_task(t).embodiment_name == robot.name]
    return tasks[0] if len(tasks) == 1 else None


def _missing(has: set[str], topics: TopicNames, task: str | None) -> list[str]:
    """Return the required topics of which the bag has no channel (`has`: roles present)."""
    missing = [name for role, name in (('rgb', topics.rgb), ('depth', topics.depth),
                                       ('camera_info', topics.camera_info))
               if role not in has]
    proprio, command = embodiments.roles('proprio'), embodiments.roles('command')
    if task is not None:
        robot = _embodiment(task, has)
        proprio, command = (robot.proprio_role,), (robot.command_role,)
    for wanted in (proprio, command):
        if not has & set(wanted):
            missing.append(' or '.join(getattr(topics, role) for role in wanted))
    return missing


def _headerless_time(streams: dict[str, Stream]):
    """Return a function mapping a log time (ns) onto the image header time base."""
    log = streams.get('rgb_log')
    offsets = (np.asarray(log.values, dtype=np.int64) - np.asarray(log.stamps, dtype=np.int64)
               if log else np.zeros(1, dtype=np.int64))
    offset = int(np.median(offsets))
    if abs(offset) <= 10**9:
        return lambda log_ns: int(log_ns)
    clock = streams.get('clock')
    if clock:
        clock_log, clock_value = clock.sorted()
        clock_value = np.asarray(clock_value, dtype=np.int64)

        def via_clock(log_ns: int) -> int:
            i = int(np.searchsorted(clock_log, log_ns, side='right')) - 1
            return int(clock_value[max(i, 0)])
        return via_clock
    return lambda log_ns: int(log_ns) + offset


def load_bag(bag: Path, settings: AlignmentSettings = AlignmentSettings(),
             topics: TopicNames = TopicNames(),
             cache: EpisodeCache | None = None) -> list[Episode]:
    """Return the episodes of one bag, from the cache when it has them."""
    key = None
    if cache is not None:
        files, _ = bag_files(bag)
        key = cache_key(files, (settings, topics))
        hit = cache.load(key)
        if hit is not None:
            stats.cache_hits += 1
            for note in hit[1].get('notes', []):
                warnings.warn(note + ' [cached]', TruncatedBagWarning, stacklevel=3)
            return hit[0]
    rec, notes = read_recording(bag, topics)
    stats.bags_parsed += 1
    for note in notes:
        warnings.warn(note, TruncatedBagWarning, stacklevel=3)
    try:
        episodes, drops = build_episodes(rec, settings)
    except ValueError as exc:
        raise BagError(f'{bag}: {exc}') from None
    warn_drops(str(bag), drops)
    if not episodes and not notes:
        warnings.warn(f'{bag}: the bag holds no complete observation (stopped before the '
                      'first step?)', stacklevel=3)
    if cache is not None:
        cache.store(key, episodes, {'notes': notes, 'drops': drops})
    return episodes


def load_episodes(path: str | Path, *, settings: AlignmentSettings = AlignmentSettings(),
                  topics: TopicNames = TopicNames(), cache: bool = True,
                  cache_dir: str | Path | None = None, progress: bool = False) -> list[Episode]:
    """Return the episodes of every bag under `path` (recursively).

    Episodes come in bag order (natural sort of the bag paths), then in time order within a
    bag. Ground truth, when recorded, is in `Episode.ground_truth`: for evaluation only.

    Args:
        path: a bag directory, a .mcap file, or a directory holding bags at any depth.
        settings: alignment tolerances (alignment.py).
        topics: topic names by role, for recordings that remap the contract's topics.
        cache: read and write the decoded-episode cache (cache.py).
        cache_dir: cache directory (default: `cache.default_cache_dir()`).
        progress: show a progress bar over bags.

    """
    bags = find_bags(path)
    store = EpisodeCache(cache_dir) if cache else None
    if progress and len(bags) > 1:
        from tqdm import tqdm
        bags = tqdm(bags, desc='loading bags', unit='bag')
    episodes = []
    for bag in bags:
        episodes.extend(load_bag(bag, settings, topics, store))
    return episodes


def load_transitions(path: str | Path, **kwargs) -> Transitions:
    """Return the flat transitions of every bag under `path` (see `load_episodes`)."""
    episodes = load_episodes(path, **kwargs)
    if not episodes:
        raise BagError(f'{path}: the bags hold no complete observation')
    return Transitions.from_episodes(episodes)
