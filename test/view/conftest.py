"""Fixtures of the view tests: a small bag, the entities of an .rrd file, an own ROS domain.

The ROS test (`test_view_node.py`) claims its own ROS_DOMAIN_ID with the lock-file scheme of
test/nodes/conftest.py (``/tmp/hlai_ros_domain_<id>.lock``), discovery on loopback.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
import re
import subprocess
import sys

import pytest

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
HERE = Path(__file__).resolve().parent
_LOCKS = []


def claim_domain() -> int:
    """Claim a free ROS_DOMAIN_ID in 1..100 for this process (exclusive lock file)."""
    start = (os.getpid() + 37) % 100
    for k in range(100):
        domain = 1 + (start + k) % 100
        handle = open(f'/tmp/hlai_ros_domain_{domain}.lock', 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _LOCKS.append(handle)
        return domain
    raise RuntimeError('no free ROS_DOMAIN_ID in 1..100')


NO_RERUN = "rerun-sdk is not installed: pip install -e '.[view]' (or -r requirements.txt)"


def rrd_entities(path: Path) -> dict[str, int]:
    """{entity path: rows} of the data chunks in an .rrd file (``rerun rrd print``)."""
    from hlai_ros.view.session import rerun_executable
    out = subprocess.run([rerun_executable(), 'rrd', 'print', str(path)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    rows: dict[str, int] = {}
    for count, entity in re.findall(r'with (\d+) rows .*? - (/\S*) - data columns', out):
        if not entity.startswith(('/view', '/container', '/viewport', '/time_panel',
                                  '/blueprint_panel', '/selection_panel', '/top_panel',
                                  '/__properties')):
            rows[entity] = rows.get(entity, 0) + int(count)
    return rows


@pytest.fixture(scope='module')
def small_bag(tmp_path_factory) -> Path:
    """A closed bag of two toy push episodes (camera, depth, joint states, commands)."""
    sys.path.insert(0, str(HERE.parent / 'data'))
    try:
        from toy_bags import write_toy_bag
    finally:
        sys.path.remove(str(HERE.parent / 'data'))
    path = tmp_path_factory.mktemp('bags') / 'toy'
    write_toy_bag(path, episodes=2, steps=6)
    return path
