"""Headless Chromium driven over the DevTools protocol on a pipe (no websocket library).

``chromium --remote-debugging-pipe`` reads JSON commands, each ended by a NUL byte, on fd 3
and writes answers and events on fd 4. Enough of it for a screenshot of a page after it has
drawn: open a page, wait, capture.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time

FLAGS = ('--headless', '--no-sandbox', '--disable-gpu-sandbox', '--use-angle=swiftshader',
         '--enable-unsafe-swiftshader', '--no-first-run', '--no-default-browser-check',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--mute-audio', '--remote-debugging-pipe',
         # nothing but this machine: any other host name fails to resolve
         '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1')


def chromium_path() -> str | None:
    """Debian's ``chromium`` (or another Chromium/Chrome on PATH), or None."""
    for name in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium; `screenshot(url)` returns the PNG bytes of a page."""

    def __init__(self, executable: str, width: int = 1400, height: int = 800,
                 profile: str | None = None):
        to_browser_r, self._write = os.pipe()
        self._read, from_browser_w = os.pipe()

        def fds():  # the browser's fd 3 reads commands, fd 4 writes answers
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)
        args = [executable, *FLAGS, f'--window-size={width},{height}']
        if profile:
            args.append(f'--user-data-dir={profile}')
        self.proc = subprocess.Popen(args + ['about:blank'], preexec_fn=fds, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b''
        self._id = 0
        self.size = (width, height)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        """Send one command; return its result (RuntimeError on an error answer)."""
        self._id += 1
        message = {'id': self._id, 'method': method, 'params': params or {}}
        if session:
            message['sessionId'] = session
        os.write(self._write, json.dumps(message).encode() + b'\0')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b'\0' not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError('chromium closed the pipe')
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b'\0', 1)
            answer = json.loads(line)
            if answer.get('id') == self._id:
                if 'error' in answer:
                    raise RuntimeError(f'{method}: {answer["error"]}')
                return answer.get('result', {})
        raise TimeoutError(method)

    def open(self, url: str) -> str:
        """Open `url` in a new page; return its session id."""
        target = self.send('Target.createTarget', {'url': 'about:blank'})['targetId']
        session = self.send('Target.attachToTarget', {'targetId': target, 'flatten': True})[
            'sessionId']
        width, height = self.size
        self.send('Emulation.setDeviceMetricsOverride', {'width': width, 'height': height,
                                                         'deviceScaleFactor': 1,
                                                         'mobile': False}, session)
        self.send('Page.enable', {}, session)
        self.send('Page.navigate', {'url': url}, session)
        return session

    def capture(self, session: str) -> bytes:
        """The page of `session` as PNG bytes."""
        data = self.send('Page.captureScreenshot', {'format': 'png'}, session)['data']
        return base64.b64decode(data)

    def close(self) -> None:
        """Quit the browser."""
        try:
            self.send('Browser.close', timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
