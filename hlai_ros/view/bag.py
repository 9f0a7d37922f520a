"""Replay recorded bags into rerun on their own timeline (``hlai view BAG_DIR``).

Every bag under a directory (`hlai_ros.data.bags.find_bags`: `hlai collect` output, or a
recorder's bag of a running graph) is streamed message by message in file order
(`hlai_ros.data.mcap_stream`, which also reads a bag cut short) and logged through
`hlai_ros.view.log.TopicLogger`, the same layout as the live view. A message's time is its
header stamp, else (commands, episode markers) the bag's log time, so images, state, commands
and episode outcomes line up as they were recorded.
"""
from __future__ import annotations

from pathlib import Path

from hlai_ros.data import messages
from hlai_ros.data.bags import bag_files, find_bags
from hlai_ros.data.mcap_stream import scan_mcap
from hlai_ros.view.log import HANDLERS, TopicLogger, message_stamp


def replay(path: str | Path, logger: TopicLogger, warn=print) -> dict:
    """Log every bag under `path` to `logger`; return counts per entity and the bags read.

    Messages that cannot be shown are skipped, and counted (``skipped``); the first reason of
    each topic goes to `warn`.

    Raises:
        FileNotFoundError, hlai_ros.data.errors.BagError: no bag at `path`.

    """
    store = messages.typestore()
    bags = find_bags(path)
    skipped: dict[str, int] = {}
    total = 0
    for bag in bags:
        files, _ = bag_files(bag)
        for file in files:
            _, records = scan_mcap(file)
            for raw in records:
                if raw.encoding != 'cdr' or raw.msgtype not in HANDLERS:
                    continue
                try:
                    msg = store.deserialize_cdr(raw.data, raw.msgtype)
                    stamp = message_stamp(msg, raw.log_time_ns)
                    if raw.msgtype == 'std_msgs/msg/String':
                        stamp = raw.log_time_ns  # markers: the recorder's time of the event
                    total += bool(logger.log(raw.topic, raw.msgtype, msg, stamp))
                except Exception as exc:  # noqa: BLE001 - one bad message must not end a replay
                    skipped[raw.topic] = skipped.get(raw.topic, 0) + 1
                    if skipped[raw.topic] == 1:
                        warn(f'{file}: {raw.topic} at {raw.log_time_ns * 1e-9:.3f} s not shown: '
                             f'{type(exc).__name__}: {exc}')
    return {'bags': [str(b) for b in bags], 'messages': total, 'entities': dict(logger.counts),
            'skipped': skipped}
