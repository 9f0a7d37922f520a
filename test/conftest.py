"""Test-wide settings: DDS stays on this machine, torch stays small, signals as from a shell."""
import os
import signal

import pytest

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('MPLBACKEND', 'Agg')


@pytest.fixture(autouse=True)
def _signals_as_from_a_shell():
    """Give every test the SIGINT and SIGTERM handling the run started with.

    `hlai_ros.runner.run_graph` leaves both ignored after an interrupted run (a second Ctrl-C
    must not cut off its summary); in-process, that would leak into later tests and into the
    processes they start, which inherit an ignored SIGINT and never see Ctrl-C.
    """
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
