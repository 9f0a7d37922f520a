"""The loader: exact round trip, other readers, alignment of live recordings, cache, errors."""
from pathlib import Path

from mcap.reader import make_reader
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from hlai_ros import contract
from hlai_ros.contract import episode_topics
from hlai_ros.data import (
    AlignmentSettings,
    BagError,
    TopicNames,
    clear_cache,
    load_episodes,
    load_transitions,
    loader,
    messages,
)
from hlai_ros.data.writer import BagWriter
from hlai_ros.embodiments import get_embodiment
from hlai_ros.tasks import get_task


def test_round_trip_returns_exactly_what_was_written(toy_bag, cache_dir):
    episodes = load_episodes(toy_bag.path, cache_dir=cache_dir)
    assert len(episodes) == 2
    for e, seen, acts, (success, failure, steps) in zip(
            episodes, toy_bag.observations, toy_bag.actions, toy_bag.outcomes):
        assert e.num_steps == steps == len(acts)
        for key in ('rgb', 'depth', 'proprio', 'goal'):
            np.testing.assert_array_equal(e.observations[key], np.stack([o[key] for o in seen]))
        np.testing.assert_array_equal(e.actions, acts)
        assert e.action_valid.all()
        np.testing.assert_allclose(np.diff(e.stamps), 0.1)
        assert e.proprio_names == toy_bag.world.proprio_names
        assert (e.metadata['success'], e.metadata['failure']) == (success, failure)
        assert e.metadata['policy'] == 'random' and e.metadata['ended']
        camera = toy_bag.world.nominal_camera()
        np.testing.assert_allclose(e.K, camera.K)
        np.testing.assert_allclose(e.T_world_camera, camera.T_world_camera, atol=1e-9)
        assert e.camera.width == camera.width and e.camera.far == camera.far
        assert [g['step'] for g in e.ground_truth] == list(range(steps + 1))
    assert [e.metadata['seed'] for e in episodes] == [0, 1]
    assert episodes[1].stamps[0] > episodes[0].stamps[-1]


def test_transitions_pair_each_observation_with_the_next(toy_bag, cache_dir):
    tr = load_transitions(toy_bag.path, cache_dir=cache_dir)
    assert len(tr) == sum(len(a) for a in toy_bag.actions)
    batch = tr.batch(np.arange(len(tr)))
    flat_obs = [o for seen in toy_bag.observations for o in seen[:-1]]
    flat_next = [o for seen in toy_bag.observations for o in seen[1:]]
    np.testing.assert_array_equal(batch['obs']['proprio'], [o['proprio'] for o in flat_obs])
    np.testing.assert_array_equal(batch['next_obs']['rgb'], [o['rgb'] for o in flat_next])
    np.testing.assert_array_equal(batch['action'], np.concatenate(toy_bag.actions))
    assert list(tr.episode) == [0] * 4 + [1] * 4 and list(tr.step) == [0, 1, 2, 3] * 2


def test_independent_readers_see_the_contract_topics_and_types(toy_bag):
    want = {(t.name, t.msgtype) for t in episode_topics(get_task('push').embodiment)}
    with Reader(toy_bag.path) as reader:
        assert {(c.topic, c.msgtype) for c in reader.connections} == want
    store = get_typestore(Stores.ROS2_KILTED)
    markers = []
    with AnyReader([toy_bag.path], default_typestore=store) as reader:
        assert {(c.topic, c.msgtype) for c in reader.connections} == want
        conns = [c for c in reader.connections if c.topic == '/hlai/episode']
        for conn, _, raw in reader.messages(connections=conns):
            markers.append(reader.deserialize(raw, conn.msgtype).data)
    assert ['"event": "start"' in m for m in markers] == [True, False, True, False]
    assert all('"event": "end"' in m for m in markers[1::2])
    mcap_file = next(Path(toy_bag.path).glob('*.mcap'))
    with mcap_file.open('rb') as f:
        summary = make_reader(f).get_summary()
    assert {(c.topic, summary.schemas[c.schema_id].name)
            for c in summary.channels.values()} == want
    assert all(c.message_encoding == 'cdr' for c in summary.channels.values())


def test_second_load_hits_the_cache_and_a_changed_bag_is_parsed_again(toy_bag, cache_dir):
    before = (loader.stats.bags_parsed, loader.stats.cache_hits)
    first = load_episodes(toy_bag.path, cache_dir=cache_dir)
    second = load_episodes(toy_bag.path, cache_dir=cache_dir)
    assert (loader.stats.bags_parsed - before[0], loader.stats.cache_hits - before[1]) == (1, 1)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.observations['rgb'], b.observations['rgb'])
        np.testing.assert_array_equal(a.actions, b.actions)
        assert a.metadata == b.metadata and a.ground_truth == b.ground_truth
    mcap_file = next(Path(toy_bag.path).glob('*.mcap'))
    mcap_file.touch()
    load_episodes(toy_bag.path, cache_dir=cache_dir)
    assert loader.stats.bags_parsed - before[0] == 2
    assert clear_cache(cache_dir) == 2
    load_episodes(toy_bag.path, cache=False)
    assert loader.stats.bags_parsed - before[0] == 3


def _image(stamp_ns, value, shape=(4, 5)):
    return messages.rgb_image(np.full(shape + (3,), value, np.uint8), stamp_ns,
                              contract.CAMERA_FRAME)


def _write_live_recording(path: Path, log_offset_ns: int, with_clock: bool) -> dict:
    """Write a cliff recording as a running graph would: jittered, unsynchronised streams.

    Sim time runs from 1 s at 10 Hz; log times are sim time + `log_offset_ns` + latency.
    Command k (value k) answers image k and arrives 30 ms after it; image 5 has no depth.
    """
    rng = np.random.default_rng(1)
    period = 100_000_000
    bag = BagWriter(path, flush_period_s=10.0)
    for topic in (contract.CAMERA_RGB, contract.CAMERA_DEPTH, contract.CAMERA_INFO,
                  contract.ODOM, contract.BASE_COMMAND, contract.CLOCK):
        bag.add_topic(topic)
    K = np.array([[5.0, 0, 2.5], [0, 5.0, 2], [0, 0, 1]])
    stamps = [10**9 + k * period + int(rng.integers(-5, 5)) * 10**6 for k in range(10)]
    records = []
    for k, t in enumerate(stamps):
        records.append((t + 4_000_000, contract.CAMERA_RGB.name, _image(t, k)))
        if k != 5:
            records.append((t + 5_000_000, contract.CAMERA_DEPTH.name, messages.depth_image(
                np.full((4, 5), k, np.float32), t + 2_000_000, contract.CAMERA_FRAME)))
        records.append((t + 5_000_000, contract.CAMERA_INFO.name,
                        messages.camera_info(K, 5, 4, t, contract.CAMERA_FRAME)))
        records.append((t + 30_000_000, contract.BASE_COMMAND.name,
                        get_embodiment('husky').encode_command([k, -k], 0)))
    for j in range(50):  # odometry at 50 Hz, x = its stamp in seconds
        t = 10**9 - 50_000_000 + j * 20_000_000
        records.append((t + 1_000_000, contract.ODOM.name, messages.odometry_base(
            t, t * 1e-9, 0.0, 0.0, 0.0, 0.0)))
    if with_clock:
        for j in range(120):
            t = 10**9 - 100_000_000 + j * 10_000_000
            records.append((t, contract.CLOCK.name, messages.clock(t)))
    for log, topic, msg in sorted(records, key=lambda r: r[0]):
        bag.write(topic, log + log_offset_ns, msg)
    bag.close()
    return {'stamps': stamps}


@pytest.mark.parametrize('log_offset_ns, with_clock', [
    (0, False),                         # recorder on the sensors' clock
    (1_700_000_000 * 10**9, True),      # sim-time stamps, wall-clock log times, /clock recorded
    (1_700_000_000 * 10**9, False),     # the same without /clock: shifted by the image offset
])
def test_unsynchronised_recording_is_aligned_by_nearest_stamp(tmp_path, log_offset_ns,
                                                              with_clock):
    written = _write_live_recording(tmp_path / 'live', log_offset_ns, with_clock)
    with pytest.warns(UserWarning, match='1 of 10 images had no depth'):
        (episode,) = load_episodes(tmp_path / 'live', cache=False)
    kept = [k for k in range(10) if k != 5]
    assert episode.task == 'cliff' and episode.metadata['ended']
    np.testing.assert_array_equal(episode.observations['rgb'][:, 0, 0, 0], kept)
    np.testing.assert_array_equal(episode.observations['depth'][:, 0, 0], kept)
    np.testing.assert_allclose(episode.stamps, np.array(written['stamps'])[kept] * 1e-9)
    # odometry is matched to the nearest sample (x carries its own stamp)
    odom_x = episode.observations['proprio'][:, 0]
    assert np.all(np.abs(odom_x - episode.stamps) <= 0.0101)
    # the command in force before the next image is the one answering this image
    valid = episode.action_valid
    assert list(valid) == [True] * 4 + [False] + [True] * 3  # 4 -> 6 spans a lost frame
    np.testing.assert_array_equal(episode.actions[valid][:, 0], [0, 1, 2, 3, 6, 7, 8])
    assert np.isnan(episode.observations['goal']).all() and episode.T_world_camera is None


def test_remapped_topics_load_with_a_topic_map(tmp_path):
    path = tmp_path / 'remapped'
    bag = BagWriter(path)
    names = TopicNames(rgb='/cam/color', depth='/cam/depth', camera_info='/cam/info',
                       odom='/base/odom', base_command='/base/cmd')
    for name, t in ((names.rgb, contract.CAMERA_RGB), (names.depth, contract.CAMERA_DEPTH),
                    (names.camera_info, contract.CAMERA_INFO), (names.odom, contract.ODOM),
                    (names.base_command, contract.BASE_COMMAND)):
        bag.add_topic(contract.Topic(name, t.msgtype))
    K = np.eye(3)
    for k in range(3):
        t = k * 100_000_000
        bag.write(names.rgb, t, _image(t, k))
        bag.write(names.depth, t, messages.depth_image(np.ones((4, 5)), t, 'c'))
        bag.write(names.camera_info, t, messages.camera_info(K, 5, 4, t, 'c'))
        bag.write(names.odom, t, messages.odometry_base(t, k, 0, 0, 0, 0))
        bag.write(names.base_command, t, get_embodiment('husky').encode_command([k, 0], t))
    bag.close()
    with pytest.raises(BagError, match='missing required topics'):
        load_episodes(path, cache=False)
    (episode,) = load_episodes(path, topics=names, cache=False,
                               settings=AlignmentSettings(tolerance_s=0.01))
    np.testing.assert_array_equal(episode.actions[:, 0], [0, 1])


def test_foreign_and_corrupt_bags_get_a_clear_error_naming_the_file(tmp_path, toy_bag):
    junk = tmp_path / 'junk' / 'junk.mcap'
    junk.parent.mkdir()
    junk.write_bytes(b'this is not a bag at all' * 10)
    with pytest.raises(BagError, match=r'junk\.mcap: not an MCAP file'):
        load_episodes(junk.parent, cache=False)

    sqlite = tmp_path / 'old' / 'old_0.db3'
    sqlite.parent.mkdir()
    sqlite.write_bytes(b'SQLite format 3\x00' + bytes(100))
    with pytest.raises(BagError, match=r'old.*sqlite3'):
        load_episodes(sqlite.parent, cache=False)

    wrong = tmp_path / 'wrong'
    bag = BagWriter(wrong)
    bag.add_topic(contract.Topic('/camera/image_raw', 'std_msgs/msg/String'))
    bag.write('/camera/image_raw', 0, messages.string('hello'))
    bag.close()
    with pytest.raises(BagError, match=r'wrong\.mcap: topic /camera/image_raw carries '
                                       r'std_msgs/msg/String, expected sensor_msgs/msg/Image'):
        load_episodes(wrong, cache=False)

    partial = tmp_path / 'partial'
    bag = BagWriter(partial)
    bag.add_topic(contract.CLOCK)
    bag.write('/clock', 0, messages.clock(0))
    bag.close()
    with pytest.raises(BagError, match=r'partial: missing required topics .*/camera/image_raw'):
        load_episodes(partial, cache=False)

    with pytest.raises(BagError, match='no rosbag2 bags found'):
        (tmp_path / 'empty').mkdir()
        load_episodes(tmp_path / 'empty', cache=False)
    with pytest.raises(FileNotFoundError, match='nowhere'):
        load_episodes(tmp_path / 'nowhere', cache=False)


def test_bag_closed_before_the_first_step_loads_as_no_episodes(tmp_path):
    from toy_world import ToyWorld

    from hlai_ros.data.writer import EpisodeWriter
    world = ToyWorld()
    EpisodeWriter(tmp_path / 'early', 'push', world.nominal_camera(), world.proprio_names,
                  10.0).close()
    world.close()
    with pytest.warns(UserWarning, match='holds no complete observation'):
        assert load_episodes(tmp_path / 'early', cache=False) == []
