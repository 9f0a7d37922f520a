"""Fixtures of the view tests: a small bag, the entities of an .rrd file, an own ROS domain.

The ROS test (`test_view_node.py`) claims its own ROS_DOMAIN_ID with the lock-file scheme of
test/nodes/conftest.py (``/tmp/hlai_ros_domain_<id>.lock``), discovery on loopback.
"""
from __future__ import annotations

import os
from pathlib import Path
import sys

import pytest

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
HERE = Path(__file__).resolve().parent


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
