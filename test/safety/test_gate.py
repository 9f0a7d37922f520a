"""The safety gate: e-stop, watchdog, velocity, acceleration and workspace in order."""
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from hlai_ros.safety import SafetyGate, SafetyLimits
from hlai_ros.safety.gate import ACCELERATION, ESTOP, NO_POSITION, OK, TIMEOUT, VELOCITY, WORKSPACE

LIMITS = SafetyLimits(max_velocity=(0.5, 1.0), max_acceleration=(1.0, 10.0),
                      command_timeout_s=0.3, workspace_lower=(-1.0, -1.0),
                      workspace_upper=(1.0, 1.0), kinematics='unicycle', period_s=0.1)


def test_gate_passes_a_safe_command_and_limits_the_rest():
    gate = SafetyGate(LIMITS)
    gate.update_position((0.0, 0.0, 0.0), 0.0)
    assert gate.accept([0.05, 0.2], 0.0) == ''
    out, reason = gate.output(0.0, 0.1)
    assert reason == OK and np.allclose(out, [0.05, 0.2])
    gate.accept([3.0, 0.0], 0.1)
    out, reason = gate.output(0.1, 0.1)
    assert reason == VELOCITY and np.allclose(out, [0.15, 0.0])  # clipped, then rate-limited
    gate.accept([0.5, 0.0], 0.2)
    out, reason = gate.output(0.2, 0.1)
    assert reason == ACCELERATION and np.allclose(out, [0.25, 0.0])


def test_gate_zeroes_on_timeout_estop_workspace_and_missing_position():
    gate = SafetyGate(LIMITS)
    gate.accept([0.1, 0.0], 0.0)
    assert gate.output(0.0, 0.1)[1] == NO_POSITION
    gate.update_position((0.0, 0.0, 0.0), 0.0)
    assert gate.output(0.1, 0.1)[1] == OK
    out, reason = gate.output(0.31, 0.1)
    assert reason == TIMEOUT and not out.any()
    gate.accept([0.1, 0.0], 1.0)
    assert gate.output(1.0, 0.1)[1] == NO_POSITION, 'position older than its timeout'
    gate.update_position((0.995, 0.0, 0.0), 1.0)
    out, reason = gate.output(1.0, 0.1)
    assert reason == WORKSPACE and out[0] == 0.0
    gate.estop.engage('test', 1.0)
    gate.update_position((0.0, 0.0, 0.0), 1.1)
    gate.accept([0.1, 0.0], 1.1)
    out, reason = gate.output(1.1, 0.1)
    assert reason == ESTOP and not out.any()
    assert gate.estop.release(2.0)[0]
    gate.accept([0.1, 0.0], 2.0)
    gate.update_position((0.0, 0.0, 0.0), 2.0)
    assert gate.output(2.0, 0.1)[1] == OK


def test_gate_refuses_bad_commands_without_feeding_the_watchdog():
    gate = SafetyGate(SafetyLimits(max_velocity=(0.2, 0.2), max_acceleration=(1.0, 1.0)))
    assert 'non-finite' in gate.accept([np.nan, 0.0], 0.0)
    assert '2 command components' in gate.accept([0.1], 0.0)
    assert gate.refused == 2 and gate.output(0.0, 0.1)[1] == TIMEOUT
    assert 'finite' in gate.update_position((np.inf, 0.0), 0.0)


@pytest.mark.parametrize('change, match', [
    ({'max_velocity': (0.5,)}, 'one value per'), ({'max_velocity': (0.5, np.inf)}, 'finite'),
    ({'command_timeout_s': 0.0}, 'command_timeout_s'), ({'workspace_upper': ()}, 'both'),
    ({'kinematics': 'legged'}, 'kinematics'), ({'workspace_upper': (-2.0, 1.0)}, 'workspace')])
def test_bad_limits_are_refused(change, match):
    values = dict(max_velocity=(0.5, 1.0), max_acceleration=(1.0, 1.0),
                  workspace_lower=(-1.0, -1.0), workspace_upper=(1.0, 1.0))
    values.update(change)
    with pytest.raises(ValueError, match=match):
        SafetyLimits(**values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True),
                          st.floats(allow_nan=True, allow_infinity=True),
                          st.floats(0.0, 0.1)), min_size=1, max_size=40))
def test_gate_output_always_within_limits(commands):
    gate = SafetyGate(LIMITS)
    now, previous, pose = 0.0, np.zeros(2), np.zeros(3)
    for v, w, dt in commands:
        now += dt
        gate.update_position(pose, now)
        gate.accept([v, w], now)
        out, reason = gate.output(now, dt)
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= [0.5, 1.0])
        stop = reason in (ESTOP, TIMEOUT, NO_POSITION, WORKSPACE) or not out.any()
        assert stop or np.all(np.abs(out - previous) <= np.array([1.0, 10.0]) * dt + 1e-9)
        pose = pose + [out[0] * np.cos(pose[2]) * dt, out[0] * np.sin(pose[2]) * dt, out[1] * dt]
        assert np.all(np.abs(pose[:2]) <= 1.0 + 1e-9)
        previous = out
