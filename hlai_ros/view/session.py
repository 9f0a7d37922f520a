"""Where a view goes: an .rrd file, the local rerun web viewer, a running viewer, or a new one.

`open_view` returns a `ViewSession`: a `rerun.RecordingStream` with its sinks and, for the
web viewer, the rerun server that serves it. The server is the ``rerun`` binary of the
rerun-sdk wheel (``rerun --serve-web``), which bundles the web viewer (HTML, JS, Wasm): nothing
is fetched from outside. It listens on 127.0.0.1 only (``--bind``): the gRPC port the stream
connects to, and the HTTP port of the viewer page (`ViewSession.url`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time

HOST = '127.0.0.1'
"""The only address a view server listens on."""
GRPC_PORT = 9876
"""rerun's default gRPC port."""
WEB_PORT = 9090
"""rerun's default web viewer port."""
INSTALL_HINT = "the view needs rerun-sdk: pip install -e '.[view]' (or -r requirements.txt)"


def import_rerun():
    """Return the `rerun` module, or raise RuntimeError saying how to install it."""
    try:
        import rerun
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    return rerun


def rerun_executable() -> str:
    """Return the path of the ``rerun`` binary that ships with rerun-sdk."""
    try:
        import rerun_cli
        path = Path(rerun_cli.__file__).parent / 'rerun'
        if path.is_file():
            return str(path)
    except ImportError:
        pass
    found = shutil.which('rerun', path=str(Path(sys.executable).parent)) or shutil.which('rerun')
    if not found:
        raise RuntimeError(f'no rerun executable found; {INSTALL_HINT}')
    return found


def port_free(port: int, host: str = HOST) -> bool:
    """Return whether TCP `port` can be bound on `host`."""
    with socket.socket() as sock:
        try:
            sock.bind((host, int(port)))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float, proc=None, host: str = HOST) -> None:
    """Wait until something accepts connections on `port`; RuntimeError on timeout/exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f'the rerun server exited ({proc.returncode}) before listening '
                               f'on {host}:{port}')
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f'nothing listens on {host}:{port} after {timeout} s')


def grpc_url(grpc_port: int) -> str:
    """The address a `rerun.RecordingStream` connects to on a local server."""
    return f'rerun+http://{HOST}:{int(grpc_port)}/proxy'


def viewer_url(grpc_port: int, web_port: int) -> str:
    """The local web viewer's page, connected to the server's data."""
    from urllib.parse import quote
    return f'http://{HOST}:{int(web_port)}/?url={quote(grpc_url(grpc_port), safe="")}'


def _die_with_parent() -> None:
    """In the server's process (Linux): SIGTERM when its parent dies, however it dies.

    The server runs in its own session, so that a terminal's Ctrl-C reaches only the
    parent, which flushes the stream into it before stopping it.
    """
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass


class WebServer:
    """``rerun --serve-web`` on 127.0.0.1: a gRPC proxy and the bundled web viewer.

    Args:
        grpc_port: where logging SDKs connect.
        web_port: where the browser gets the viewer.
        log: file for the server's output (None: discarded).
        memory_limit: how much the server buffers for late viewers (rerun's syntax).

    """

    def __init__(self, grpc_port: int = GRPC_PORT, web_port: int = WEB_PORT,
                 log: str | Path | None = None, memory_limit: str = '1GiB'):
        for name, port in (('grpc_port', grpc_port), ('web_port', web_port)):
            if not port_free(port):
                raise RuntimeError(f'{name} {port} on {HOST} is in use (another view?); '
                                   'choose another port')
        self.grpc_port, self.web_port = int(grpc_port), int(web_port)
        out = open(log, 'ab') if log else subprocess.DEVNULL
        env = dict(os.environ, RUST_LOG=os.environ.get('RUST_LOG', 'warn'))
        self.proc = subprocess.Popen(
            [rerun_executable(), '--serve-web', '--bind', HOST, '--port', str(self.grpc_port),
             '--web-viewer-port', str(self.web_port), '--server-memory-limit', memory_limit],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, preexec_fn=_die_with_parent)
        if log:
            out.close()
        try:
            wait_for_port(self.grpc_port, 30, self.proc)
            wait_for_port(self.web_port, 30, self.proc)
        except RuntimeError:
            self.close()
            raise

    @property
    def grpc_url(self) -> str:
        """Where a `rerun.RecordingStream` connects (`grpc_url`)."""
        return grpc_url(self.grpc_port)

    @property
    def url(self) -> str:
        """The viewer page, connected to this server's data (`viewer_url`)."""
        return viewer_url(self.grpc_port, self.web_port)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


@dataclass
class ViewSession:
    """A recording stream and what it feeds."""

    stream: object
    """The `rerun.RecordingStream`."""
    server: WebServer | None = None
    """The local web viewer server, if one was started."""
    targets: list[str] = field(default_factory=list)
    """Where the data goes, in words (for the user)."""

    @property
    def url(self) -> str | None:
        """The web viewer's page, if served."""
        return self.server.url if self.server else None

    def flush(self) -> None:
        """Send everything logged so far."""
        self.stream.flush(timeout_sec=10.0)

    def close(self) -> None:
        """Flush, disconnect the sinks (finishing an .rrd file), stop the server."""
        try:
            self.stream.flush(timeout_sec=5.0)
            self.stream.disconnect()
        except RuntimeError:  # a viewer or server that went away first: nothing to finish
            pass
        finally:
            if self.server is not None:
                self.server.close()


def open_view(application: str, *, save: str | Path = '', web: bool = False,
              connect: str = '', spawn: bool = False, grpc_port: int = GRPC_PORT,
              web_port: int = WEB_PORT, server_log: str | Path | None = None) -> ViewSession:
    """Return a `ViewSession` of application id `application` with the sinks asked for.

    Args:
        application: rerun application id (recordings of one id share a viewer's layout).
        save: write an .rrd file there.
        web: serve the web viewer on 127.0.0.1 (`WebServer`).
        connect: the gRPC URL of a running viewer or server (``rerun+http://...``).
        spawn: start the native viewer (needs a display).
        grpc_port: the web server's gRPC port (the stream connects there).
        web_port: the web server's HTTP port (the viewer page).
        server_log: file for the web server's output.

    Raises:
        RuntimeError: rerun-sdk missing, no sink asked for, or the server failed.

    """
    rr = import_rerun()
    from hlai_ros.view.log import blueprint

    if not (save or web or connect or spawn):
        raise RuntimeError('nothing to show the view on: ask for save, web, connect or spawn')
    stream = rr.RecordingStream(application, make_default=False)
    sinks, targets, server = [], [], None
    try:
        if save:
            Path(save).parent.mkdir(parents=True, exist_ok=True)
            sinks.append(rr.FileSink(str(save)))
            targets.append(f'file {save}')
        if web:
            server = WebServer(grpc_port, web_port, server_log)
            sinks.append(rr.GrpcSink(server.grpc_url))
            targets.append(f'web viewer {server.url}')
        if connect:
            sinks.append(rr.GrpcSink(connect))
            targets.append(f'viewer at {connect}')
        if spawn:
            rr.spawn(connect=False, hide_welcome_screen=True)
            sinks.append(rr.GrpcSink(grpc_url(GRPC_PORT)))
            targets.append('native viewer')
        stream.set_sinks(*sinks, default_blueprint=blueprint())
    except BaseException:
        if server is not None:
            server.close()
        raise
    return ViewSession(stream, server, targets)
