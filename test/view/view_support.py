"""Helpers of the view tests (a module of its own: `conftest` names clash across folders)."""
from __future__ import annotations

from pathlib import Path
import re
import subprocess

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
