"""Helpers of the view tests (a module of its own: `conftest` names clash across folders)."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
import re
import subprocess

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
