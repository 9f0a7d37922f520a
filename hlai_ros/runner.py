"""Start and stop the ROS graph of `hlai_ros.graph` as processes (what ``hlai run`` does).

ROS-free: the runner only starts processes (``python -m hlai_ros.nodes.<executable>
--ros-args ...``, exactly the arguments a launch file gives the same node), reads the episode
monitor's stdout lines (`hlai_ros.nodes.episode_monitor`) and stops everything.

- Each node runs in its own process and session, so a terminal's Ctrl-C reaches the runner
  alone, which then stops the nodes one by one in data-flow order (simulator first, recorder
  last) with SIGINT (rclpy's clean shutdown: the recorder closes its bag), then SIGTERM,
  then SIGKILL for any that linger.
  On Linux each child also gets SIGTERM from the kernel if the runner itself dies
  (``PR_SET_PDEATHSIG``), so no node outlives it.
- With ``compose``, all nodes (and the monitor) run in one process on one executor
  (`hlai_ros.nodes.compose`), with the same per-node arguments.
- Every process gets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` unless the user set it.
"""
from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
import re
import select
import signal
import subprocess
import sys
import time
from typing import Callable

from hlai_ros.graph import NodeSpec

MONITOR = NodeSpec('episode_monitor', 'episode_monitor', 'runner: prints episode outcomes')
"""The runner's own node: echoes end markers to stdout."""
LINE_PREFIX = 'EPISODE '
TRACE_PREFIX = 'TRACE '


def node_environment(base: dict | None = None) -> dict:
    """Return the environment for node processes: DDS on loopback unless the user chose."""
    env = dict(os.environ if base is None else base)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['PYTHONUNBUFFERED'] = '1'
    return env


def node_command(spec: NodeSpec, params: str | Path) -> list[str]:
    """Return the command line that runs `spec` as its own process."""
    return [sys.executable, '-m', spec.module] + spec.ros_arguments(params)


def compose_command(specs, params: str | Path) -> list[str]:
    """Return the command line that runs all `specs` in one process."""
    nodes = [{'executable': s.executable, 'arguments': s.ros_arguments(params)} for s in specs]
    return [sys.executable, '-m', 'hlai_ros.nodes.compose', json.dumps(nodes)]


def _die_with_parent():
    """Child-side: get SIGTERM when the runner dies (Linux); harmless elsewhere."""
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class GraphProcesses:
    """The running graph: node processes plus the episode monitor's output.

    Args:
        specs: the graph's nodes (`hlai_ros.graph.build`).
        params: the task's parameter file.
        compose: run every node in one process.
        log_dir: where each process's stderr (ROS logs) goes, one file per process.

    """

    def __init__(self, specs, params: str | Path, compose: bool, log_dir: str | Path):
        self.specs = tuple(specs) + (MONITOR,)
        self.params = Path(params)
        self.compose = compose
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        self.monitor: subprocess.Popen | None = None
        self.trace: list[dict] = []
        """The monitor's trace of the first episode (true positions, plans)."""
        self._buffer = b''
        self.stop_s: dict[str, float] = {}
        """Seconds each process took to exit once `stop` signalled it."""

    def start(self) -> None:
        """Start the processes (the monitor first, so no end marker is missed)."""
        env = node_environment()
        if self.compose:
            self._spawn('composed', compose_command(self.specs, self.params), env, True)
            return
        self._spawn(MONITOR.name, node_command(MONITOR, self.params), env, True)
        for spec in self.specs[:-1]:
            self._spawn(spec.name, node_command(spec, self.params), env, False)

    def _spawn(self, name: str, cmd: list[str], env: dict, monitor: bool) -> None:
        log = open(self.log_dir / f'{name}.log', 'wb')
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if monitor else log, stderr=log,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                preexec_fn=_die_with_parent)
        log.close()
        self.processes[name] = proc
        if monitor:
            self.monitor = proc

    def pids(self) -> dict[str, int]:
        """Return {process name: pid}."""
        return {k: p.pid for k, p in self.processes.items()}

    def dead(self) -> dict[str, int]:
        """Return {process name: exit code} of processes that have exited."""
        return {k: p.returncode for k, p in self.processes.items() if p.poll() is not None}

    def log_tail(self, name: str, lines: int = 20) -> str:
        """Return the last lines of a process's log."""
        path = self.log_dir / f'{name}.log'
        text = path.read_text(errors='replace') if path.exists() else ''
        return '\n'.join(text.splitlines()[-lines:])

    def read_outcomes(self, timeout_s: float) -> list[dict]:
        """Return the end markers the monitor printed within `timeout_s` seconds.

        Trace lines of the first episode go to `trace`.
        """
        out = []
        fd = self.monitor.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(timeout_s, 0.0))
        if ready:
            chunk = os.read(fd, 65536)
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b'\n')
            for line in lines:
                text = line.decode(errors='replace')
                if text.startswith(LINE_PREFIX):
                    out.append(json.loads(text[len(LINE_PREFIX):]))
                elif text.startswith(TRACE_PREFIX):
                    self.trace.append(json.loads(text[len(TRACE_PREFIX):]))
            if not chunk:
                time.sleep(min(timeout_s, 0.1))
        return out

    def stop(self, timeout_s: float = 10.0) -> dict[str, int]:
        """Stop every process; return exit codes (the seconds each took: `stop_s`).

        One after the other in data-flow order (the simulator first, the recorder and the
        monitor last), so nothing is still being produced when a consumer stops and the
        recorder takes in what is in flight: SIGINT, then SIGTERM, then SIGKILL for a
        process that has not exited within its time.
        """
        names = [s.name for s in self.specs] + ['composed']
        order = sorted(self.processes.items(), key=lambda kv: names.index(kv[0]))
        for name, proc in order:
            start = time.monotonic()
            for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGTERM, 3.0),
                              (signal.SIGKILL, 3.0)):
                if proc.poll() is not None:
                    break
                try:
                    proc.send_signal(sig)
                    proc.wait(wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            self.stop_s[name] = round(time.monotonic() - start, 3)
        if self.monitor is not None and self.monitor.stdout is not None:
            self.monitor.stdout.close()
        return {k: p.returncode for k, p in self.processes.items()}

    def death(self, name: str) -> str:
        """Say which process died, with what code, and why (its log's last error)."""
        code = self.processes[name].returncode
        how = f'killed by signal {-code}' if code < 0 else f'exit code {code}'
        return (f'node {name} died ({how}): {death_reason(self.log_tail(name, 60))}\n'
                f'its log: {self.log_dir / (name + ".log")}')


def death_reason(log: str) -> str:
    """The reason in a dead node's log: its last error line, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):  # a ROS error log line, or a traceback's exception line
        if line.startswith('[ERROR]') or re.match(r'[\w.]*(Error|Exception|Interrupt)\b', line):
            return line
    return lines[-1] if lines else '(its log is empty)'


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_graph(specs, params, episodes: int, compose: bool, log_dir: str | Path,
              timeout_s: float = 0.0, on_episode: Callable[[dict], None] | None = None,
              settle_s: float = 1.0) -> dict:
    """Run the graph until `episodes` end markers arrive; return a summary.

    After the last episode the graph runs `settle_s` seconds more before it is stopped, so
    that the other subscribers (the recorder) take in the last end marker too.

    Ctrl-C or SIGTERM stops the graph and returns what ran, marked interrupted; from then
    on this process ignores both.
    A node that exits early, or `timeout_s` (> 0) passing, stops the run with an error.
    """
    graph = GraphProcesses(specs, params, compose, log_dir)
    outcomes, error, interrupted = [], None, False
    start = time.monotonic()
    # Ctrl-C and SIGTERM both stop the graph cleanly, even where the shell started the
    # runner with SIGINT ignored (a background job).
    handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    graph.start()
    try:
        while episodes <= 0 or len(outcomes) < episodes:
            for marker in graph.read_outcomes(0.2):
                outcomes.append(marker)
                if on_episode is not None:
                    on_episode(marker)
            dead = graph.dead()
            if dead:
                error = graph.death(next(iter(dead)))
                break
            if timeout_s > 0 and time.monotonic() - start > timeout_s:
                error = f'timed out after {timeout_s:.0f} s with {len(outcomes)} episodes'
                break
        if error is None:
            time.sleep(settle_s)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for sig in handlers:  # a second Ctrl-C waits for the nodes too
            signal.signal(sig, signal.SIG_IGN)
        try:
            codes = graph.stop()
        finally:
            # After an interruption they stay ignored: an impatient second Ctrl-C must not cut
            # off the caller's summary of what ran (it is ending anyway).
            for sig, handler in handlers.items():
                signal.signal(sig, signal.SIG_IGN if interrupted else handler)
    return {'outcomes': outcomes[:episodes] if episodes > 0 else outcomes,
            'error': error, 'interrupted': interrupted, 'exit_codes': codes,
            'stop_s': graph.stop_s,
            'pids': graph.pids(), 'wall_s': time.monotonic() - start,
            'log_dir': str(graph.log_dir), 'trace': graph.trace}


def summarize(outcomes: list[dict]) -> dict:
    """Return success and failure rates and means over episode end markers."""
    n = len(outcomes)
    failures: dict[str, int] = {}
    for o in outcomes:
        if o.get('failure'):
            failures[o['failure']] = failures.get(o['failure'], 0) + 1
    return {
        'episodes': n,
        'success_rate': sum(bool(o.get('success')) for o in outcomes) / n if n else 0.0,
        'failure_rate': sum(bool(o.get('failure')) for o in outcomes) / n if n else 0.0,
        'failures': failures,
        'mean_return': sum(float(o.get('return', 0.0)) for o in outcomes) / n if n else 0.0,
        'mean_steps': sum(int(o.get('steps', 0)) for o in outcomes) / n if n else 0.0,
    }
