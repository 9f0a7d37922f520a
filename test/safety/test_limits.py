"""Velocity and acceleration limits: bounds hold for any input, NaN never passes."""
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from hlai_ros.safety import AccelerationLimiter, limit_velocity

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(st.lists(floats, min_size=2, max_size=2))
def test_velocity_limit_holds_for_any_command(values):
    out = limit_velocity(np.array(values), (0.2, 1.0))
    assert np.all(np.isfinite(out))
    assert abs(out[0]) <= 0.2 and abs(out[1]) <= 1.0
    for v, o in zip(values, out):
        if np.isfinite(v):
            assert np.sign(o) == np.sign(v) or o == 0.0


def test_velocity_limit_keeps_commands_within_bounds_unchanged():
    assert np.array_equal(limit_velocity([0.1, -0.5], [0.2, 1.0]), [0.1, -0.5])
    assert np.array_equal(limit_velocity([np.nan, -np.inf], [0.2, 1.0]), [0.0, 0.0])


@pytest.mark.parametrize('bound', [(0.2,), (0.2, 0.0), (0.2, np.inf), (0.2, -1.0)])
def test_velocity_limit_refuses_bad_bounds(bound):
    with pytest.raises(ValueError, match='max_velocity'):
        limit_velocity([0.1, 0.1], bound)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(-10, 10), min_size=2, max_size=2), min_size=1, max_size=30),
       st.floats(0.0, 0.5))
def test_acceleration_limit_bounds_every_change(commands, dt):
    limiter = AccelerationLimiter((1.0, 4.0))
    previous = np.zeros(2)
    for command in commands:
        out = limiter.limit(np.array(command), dt)
        assert np.all(np.abs(out - previous) <= np.array([1.0, 4.0]) * dt + 1e-12)
        previous = out


def test_acceleration_limit_reaches_the_command_and_reset_stops_at_once():
    limiter = AccelerationLimiter((1.0,))
    outs = [limiter.limit([0.5], 0.1)[0] for _ in range(8)]
    assert np.allclose(outs[:5], [0.1, 0.2, 0.3, 0.4, 0.5]) and outs[-1] == 0.5
    limiter.reset()
    assert limiter.limit([0.0], 0.1)[0] == 0.0
    with pytest.raises(ValueError, match='dt_s'):
        limiter.limit([0.0], float('nan'))
    with pytest.raises(ValueError, match='max_acceleration'):
        AccelerationLimiter((0.0,))
