"""Bags cut short by a crash load up to their last whole message."""
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from toy_bags import write_toy_bag

from hlai_ros.data import TruncatedBagWarning, load_episodes
from hlai_ros.data.mcap_stream import scan_mcap
from hlai_ros.data.writer import BagWriter


def _message_ends(mcap: Path) -> list[int]:
    """Byte offset just past each message of a whole (uncompressed) bag, found independently.

    The messages are read with rosbags' indexed reader; each one's serialised bytes are then
    searched for in the file, in order, from where the previous one ended.
    """
    from rosbags.rosbag2 import Reader
    blob = mcap.read_bytes()
    ends, at = [], 0
    with Reader(mcap.parent) as reader:
        for _, _, raw in reader.messages():
            at = blob.index(bytes(raw), at) + len(raw)
            ends.append(at)
    return ends


@pytest.mark.parametrize('flush_period_s', [1e-9, 60.0], ids=['chunk-per-message', 'big-chunks'])
def test_cut_bag_loads_every_whole_message_before_the_cut(tmp_path, flush_period_s):
    written = write_toy_bag(tmp_path / 'bag', episodes=3, steps=4,
                            flush_period_s=flush_period_s)
    mcap = next(written.path.glob('*.mcap'))
    ends = _message_ends(mcap)
    full = [m.data for m in scan_mcap(mcap)[1]]
    assert len(full) == len(ends)
    blob = mcap.read_bytes()
    (written.path / 'metadata.yaml').unlink()
    rng = np.random.default_rng(0)
    cuts = sorted({0, 5, ends[0] - 1, ends[0], ends[len(ends) // 2] + 3, ends[-1], len(blob) - 1}
                  | set(rng.integers(ends[0], ends[-1], 6).tolist()))
    for cut in cuts:
        mcap.write_bytes(blob[:cut])
        scan, msgs = scan_mcap(mcap)
        data = [m.data for m in msgs]
        whole = sum(e <= cut for e in ends)
        assert data == full[:whole], f'cut at byte {cut} of {len(blob)}'
        if cut <= ends[-1]:
            assert not scan.complete
        if not scan.complete:  # the data section's end record was cut off
            with pytest.warns(TruncatedBagWarning, match='no metadata.yaml'):
                episodes = load_episodes(written.path, cache=False)
        else:  # only the summary or footer was cut: nothing to warn about
            episodes = load_episodes(written.path, cache=False)
        frames = sum(len(e.stamps) for e in episodes)
        assert frames <= sum(len(o) for o in written.observations)
        for e in episodes:  # what loads is exactly what was written
            seen = written.observations[e.metadata['seed']]
            np.testing.assert_array_equal(
                e.observations['depth'], np.stack([o['depth'] for o in seen[:len(e.stamps)]]))
    assert frames == sum(len(o) for o in written.observations)  # the last cut loses no frame


_CHILD = textwrap.dedent('''
    import sys
    sys.path.insert(0, {test_dir!r})
    from toy_bags import write_toy_bag
    import numpy as np
    from hlai_ros.data.writer import EpisodeWriter
    from toy_world import ToyWorld
    world = ToyWorld()
    writer = EpisodeWriter({path!r}, 'push', world.nominal_camera(), world.proprio_names, 10.0,
                           flush_period_s=0.2)
    episode = 0
    while True:
        obs, info = world.reset(seed=episode)
        writer.start_episode(episode, episode)
        writer.observation(obs, info)
        for _ in range(3):
            writer.action(np.zeros(2, np.float32))
            obs, *_, info = world.step(np.zeros(2, np.float32))
            writer.observation(obs, info)
        writer.end_episode(False, None, 0.0, 3)  # flushes
        print('flushed', episode, flush=True)
        episode += 1
''')


def test_writer_killed_with_sigkill_keeps_everything_flushed(tmp_path):
    path = tmp_path / 'killed'
    code = _CHILD.format(test_dir=str(Path(__file__).parent), path=str(path))
    child = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED='1'))
    reported = []
    try:
        while len(reported) < 3:  # pybullet prints to stdout too
            line = child.stdout.readline()
            assert line, 'the writer process ended early'
            if line.startswith('flushed '):
                reported.append(int(line.split()[1]))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert reported == [0, 1, 2]
    assert not (path / 'metadata.yaml').exists()
    with pytest.warns(TruncatedBagWarning, match='cut short'):
        episodes = load_episodes(path, cache=False)
    ended = [e for e in episodes if e.metadata['ended']]
    assert [e.metadata['episode'] for e in ended][:3] == [0, 1, 2]
    assert all(e.num_steps == 3 and e.action_valid.all() for e in ended)


def test_flush_makes_written_messages_readable_while_the_bag_is_open(tmp_path):
    from hlai_ros import contract as topics
    from hlai_ros.data import messages
    bag = BagWriter(tmp_path / 'open', flush_period_s=3600.0)
    bag.add_topic(topics.CLOCK)
    for k in range(5):
        bag.write('/clock', k, messages.clock(k))
    mcap = next((tmp_path / 'open').glob('*.mcap'))
    scan, msgs = scan_mcap(mcap)
    assert len(list(msgs)) == 0 and not scan.complete  # still in rosbags' in-memory chunk
    bag.flush()
    assert len(list(scan_mcap(mcap)[1])) == 5
    bag.close()
    scan, msgs = scan_mcap(mcap)
    assert len(list(msgs)) == 5 and scan.complete


def _rewrite_with_mcap_writer(src: Path, dst: Path, chunk_size: int) -> None:
    """Copy a bag's messages into a zstd-chunked MCAP written by the `mcap` package.

    Like ``ros2 bag record -s mcap``: schemas and channels outside the chunks, compressed
    chunks, no metadata.yaml.
    """
    from mcap.writer import CompressionType, Writer
    from rosbags.rosbag2 import Reader
    dst.mkdir(parents=True)
    with Reader(src) as reader, (dst / 'recorded_0.mcap').open('wb') as f:
        writer = Writer(f, chunk_size=chunk_size, compression=CompressionType.ZSTD)
        writer.start(profile='ros2', library='test')
        channels = {}
        for conn in reader.connections:
            schema = writer.register_schema(conn.msgtype, 'ros2msg', conn.msgdef.data.encode())
            channels[conn.id] = writer.register_channel(conn.topic, 'cdr', schema)
        for conn, log_time, raw in reader.messages():
            writer.add_message(channels[conn.id], log_time, bytes(raw), log_time)
        writer.finish()


def test_zstd_bag_from_another_writer_loads_and_survives_a_cut(tmp_path):
    written = write_toy_bag(tmp_path / 'ours', episodes=2, steps=4)
    _rewrite_with_mcap_writer(written.path, tmp_path / 'recorded', chunk_size=4_000)
    ours = load_episodes(written.path, cache=False)
    theirs = load_episodes(tmp_path / 'recorded', cache=False)
    assert len(theirs) == len(ours) == 2
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.observations['rgb'], b.observations['rgb'])
        np.testing.assert_array_equal(a.actions, b.actions)
    mcap = tmp_path / 'recorded' / 'recorded_0.mcap'
    from mcap.reader import make_reader
    with mcap.open('rb') as f:
        chunks = make_reader(f).get_summary().chunk_indexes
    assert len(chunks) >= 3
    middle = chunks[len(chunks) // 2]
    blob = mcap.read_bytes()
    mcap.write_bytes(blob[:middle.chunk_start_offset + middle.chunk_length // 2])
    with pytest.warns(TruncatedBagWarning, match='cut short'):
        cut = load_episodes(tmp_path / 'recorded', cache=False)
    assert 0 < sum(len(e.stamps) for e in cut) < sum(len(e.stamps) for e in ours)
    np.testing.assert_array_equal(cut[0].observations['rgb'],
                                  ours[0].observations['rgb'][:len(cut[0].stamps)])
