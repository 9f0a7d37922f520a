"""Helpers shared by the tests that run real node processes (imported as ``ros_processes``).

A module of its own rather than a conftest: ``from conftest import ...`` picks whichever
folder's conftest loaded first in a whole-suite run.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess

_LOCKS = []


def claim_domain(offset: int = 0) -> int:
    """Claim a free ROS_DOMAIN_ID in 1..100 for this process (an exclusive lock file).

    The search starts at (pid + offset) % 100; a domain another process (or another claim of
    this one) holds is skipped. The lock lasts as long as the process.
    """
    start = (os.getpid() + offset) % 100
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


def stop_processes(procs) -> None:
    """Ctrl-C every process still running, then wait 10 s each before killing its group."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
