"""The life of a node process: init, spin until a signal or shutdown, destroy, shut down.

A terminal's Ctrl-C sends SIGINT to the whole process group, so under ``ros2 launch`` each node
gets it twice (from the terminal and forwarded by launch), and launch may follow with SIGTERM.
The first SIGINT or SIGTERM asks the spin loop to stop (within `POLL_S`); later ones are
ignored, so that the node's own shutdown (the recorder closing its bag) always completes and
the process exits 0 without a traceback. rclpy's signal handlers are off: they raise
KeyboardInterrupt at the second signal, wherever the process then is.

Once the node is destroyed and rclpy shut down, the process exits at once (`exit_now`):
Python's own finalisation of torch and the other modules took about a second more per node,
several seconds for a whole graph stopping together on two cores.

A node that cannot start (a bad parameter, an existing bag directory, a refused model) prints
one line naming the node and the reason, and exits 2.
"""
from __future__ import annotations

import os
from pathlib import Path
import signal
import sys

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_S = 0.1
"""Longest time between a stop signal and the end of spinning, s."""
START_ERRORS = (ValueError, OSError, ParameterException)
"""What a node raises for bad settings or files; reported in one line, without traceback."""


class StopRequest:
    """A signal handler that records the first stop signal and ignores the rest."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        """Record `signum` if it is the first."""
        if self.signum is None:
            self.signum = signum

    def install(self) -> 'StopRequest':
        """Handle `STOP_SIGNALS` from now on; return self."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self)
        return self

    @staticmethod
    def ignore_from_now_on() -> None:
        """Ignore `STOP_SIGNALS` once the node is shut down, until the process has exited.

        Python's finalisation resets a Python handler to the default action (a later signal
        would kill the process during its last second, exit code -2), but leaves SIG_IGN.
        """
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def spin_until_stopped(executor, stop: StopRequest) -> None:
    """Spin `executor` until a stop signal arrives or its context shuts down."""
    try:
        while stop.signum is None and executor.context.ok():
            executor.spin_once(timeout_sec=POLL_S)
    except ExternalShutdownException:
        pass


def node_name(args: list[str] | None, default: str) -> str:
    """The node name given by ``-r __node:=NAME`` in `args` (or the command line)."""
    argv = sys.argv if args is None else args
    names = [a.split(':=', 1)[1] for a in argv if a.startswith('__node:=')]
    return names[-1] if names else default


def refuse_start(name: str, exc: BaseException) -> SystemExit:
    """Print why node `name` cannot start, in one line; return the exit (status 2)."""
    text = str(exc)
    if not text.startswith(f'node {name}'):
        text = f'node {name}: {text}'
    print(f'[ERROR] {text}', file=sys.stderr, flush=True)
    return SystemExit(2)


def exit_now(status: int = 0) -> None:
    """Flush the output and the ROS log, then end the process without Python's finalisation."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        from rclpy.impl.implementation_singleton import rclpy_implementation
        rclpy_implementation.rclpy_logging_fini()
    except Exception:  # noqa: BLE001 - the log is flushed already where this is missing
        pass
    os._exit(status)


def spin_node(node_class, args=None) -> None:
    """Create `node_class()` and spin it until a stop signal; always destroy it, shut down.

    Then the process ends without Python's finalisation (`exit_now`): status 0, or 2 when the
    node cannot start (`START_ERRORS`), its reason printed in one line (`refuse_start`). The
    refusal skips finalisation too: the interpreter's teardown of rclpy and torch state after
    a refused start crashed once in a CI run (SIGSEGV after the reason was printed).
    """
    stop = StopRequest().install()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop.install()  # again: rclpy's init may replace them
    executor = SingleThreadedExecutor()
    node, status = None, 0
    try:
        try:
            node = node_class()
        except START_ERRORS as exc:
            status = refuse_start(node_name(args, Path(sys.argv[0]).stem), exc).code
        else:
            executor.add_node(node)
            spin_until_stopped(executor, stop)
    finally:
        if node is not None:
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(uninstall_handlers=False)
        stop.ignore_from_now_on()
    exit_now(status)
