"""Node processes end cleanly (`hlai_ros.nodes.spin`): SIGTERM, and a start that is refused.

The whole graphs' Ctrl-C and SIGTERM are in test_launch.py (under ``ros2 launch``) and
test_run.py (under ``hlai run``); here the two nodes those leave out of SIGTERM.
"""
import signal
import time

import pytest

pytestmark = pytest.mark.ros


def test_sigterm_twice_stops_the_sim_and_the_scripted_controller(start_node):
    sim = start_node('sim', 'cliff', 'wait_for_nodes:=["scripted_controller"]')
    controller = start_node('scripted_controller', 'cliff')
    deadline = time.monotonic() + 90
    while '"event": "start"' not in sim.log_path.read_text(errors='replace'):
        assert time.monotonic() < deadline and sim.poll() is None, sim.log_path.read_text()
        time.sleep(0.2)
    time.sleep(1.0)  # episodes running: the controller answers the simulator
    start = time.monotonic()
    for proc in (sim, controller):
        proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    for proc in (sim, controller):
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in (sim, controller):
        assert proc.wait(30) == 0, proc.log_path.read_text()[-3000:]
        assert 'Traceback' not in proc.log_path.read_text(errors='replace')
    assert time.monotonic() - start < 10


def test_recorder_refuses_an_existing_directory_in_one_line(start_node, tmp_path):
    existing = tmp_path / 'bag'
    existing.mkdir()
    recorder = start_node('recorder', 'cliff', f'output:={existing}')
    assert recorder.wait(60) == 2
    log = recorder.log_path.read_text(errors='replace')
    errors = [line for line in log.splitlines() if 'error' in line.lower()]
    assert errors == [f'[ERROR] node recorder: bag {existing} exists already; choose a new '
                      'path'], log
    assert not any(existing.iterdir())
