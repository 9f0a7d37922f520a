"""The rerun web viewer, served on 127.0.0.1 by ``hlai view --web``, drawn in headless Chromium.

Debian's ``chromium`` (``apt-get install -y chromium``; skipped, saying so, where it is
missing) opens the page with every host name but 127.0.0.1 unresolvable, so the viewer can
only draw from what the rerun-sdk wheel bundles. The screenshot must show the recording: the
camera view holds a picture (not a blank or uniform area) and the time-series plots hold
coloured curves. ``HLAI_VIEW_SCREENSHOT=FILE`` keeps the screenshot.
"""
from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from cdp import Browser, chromium_path
import numpy as np
import pytest
from view_support import NO_RERUN

CHROMIUM = chromium_path()
pytest.importorskip('rerun', reason=NO_RERUN)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install -y "
                             "chromium); the web viewer's screenshot test needs it")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def drawn(png: bytes) -> dict:
    """What the screenshot shows, from its pixels (the default layout, `view.log.blueprint`).

    ``camera``, ``depth``: the share of the camera and depth views (left column, upper and
    lower half) that differs from the view's background (its commonest colour): a blank or
    still-loading page is uniform there; ``curves``: saturated pixels in the time-series
    column (right two fifths), the plotted curves (the grid and labels are grey).
    """
    import cv2
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    h, w = image.shape[:2]

    def drawn_share(area: np.ndarray) -> float:
        pixels = area.reshape(-1, 3).astype(int)
        colours, counts = np.unique(pixels, axis=0, return_counts=True)
        background = colours[counts.argmax()]
        return float((np.abs(pixels - background).max(1) > 30).mean())
    plots = image[int(0.06 * h):int(0.95 * h), int(0.61 * w):]
    saturated = (plots.max(2).astype(int) - plots.min(2)) > 80
    return {'camera': drawn_share(image[int(0.07 * h):int(0.48 * h), :int(0.2 * w)]),
            'depth': drawn_share(image[int(0.53 * h):int(0.95 * h), :int(0.2 * w)]),
            'curve_pixels': int(saturated.sum())}


def _default_sigint():
    """In the child: Ctrl-C as from a terminal, whatever this process ignores."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_web_viewer_draws_a_replayed_bag(small_bag, tmp_path):
    from hlai_ros.view.session import rerun_executable

    env = dict(os.environ, HOME=str(tmp_path / 'home'), XDG_CONFIG_HOME=str(tmp_path / 'cfg'),
               XDG_DATA_HOME=str(tmp_path / 'data'))
    # no usage data leaves this machine from the rerun server: opted out in a private HOME
    subprocess.run([rerun_executable(), 'analytics', 'disable'], env=env, capture_output=True,
                   timeout=30)
    grpc_port, web_port = _free_port(), _free_port()
    log_path = tmp_path / 'view.log'
    with open(log_path, 'wb') as log:
        view = subprocess.Popen(
            [sys.executable, '-m', 'hlai_ros.cli', 'view', str(small_bag), '--web',
             '--grpc-port', str(grpc_port), '--web-port', str(web_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=_default_sigint)
    browser = None
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r'serving; open (\S+)', log_path.read_text())):
            assert view.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        url = found[1]
        assert url.startswith(f'http://127.0.0.1:{web_port}/')
        listening = subprocess.run(['ss', '-ltnH'], capture_output=True, text=True).stdout \
            if shutil.which('ss') else ''
        for port in (grpc_port, web_port):  # on loopback only
            assert not re.search(rf'(0\.0\.0\.0|\*|\[::\]):{port}\b', listening), listening
        browser = Browser(CHROMIUM, profile=str(tmp_path / 'chromium'))
        page = browser.open(url)
        deadline, seen = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            time.sleep(2.0)
            png = browser.capture(page)
            seen = drawn(png)
            if min(seen['camera'], seen['depth']) > 0.01 and seen['curve_pixels'] > 100:
                break
        (tmp_path / 'web_viewer.png').write_bytes(png)
        keep = os.environ.get('HLAI_VIEW_SCREENSHOT')
        if keep:
            Path(keep).write_bytes(png)
        assert min(seen['camera'], seen['depth']) > 0.01, (
            f'the camera or depth view is blank: {seen}; see {tmp_path / "web_viewer.png"}')
        assert seen['curve_pixels'] > 100, f'no curves drawn: {seen}'
    finally:
        if browser is not None:
            browser.close()
        if view.poll() is None:
            os.killpg(view.pid, signal.SIGINT)
            try:
                view.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(view.pid, signal.SIGKILL)
                view.wait(5)
    assert view.returncode == 0, log_path.read_text()
    assert 'Traceback' not in log_path.read_text()
