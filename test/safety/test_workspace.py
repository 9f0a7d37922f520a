"""Workspace limits: outward motion that would leave the box is cut to zero."""
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from hlai_ros.safety import WorkspaceBox

BOX = WorkspaceBox((0.0, -1.0), (1.0, 1.0))


def test_holonomic_cut_only_the_leaving_axis():
    out, cut = BOX.cut((0.99, 0.0), [0.2, 0.3], 0.1)
    assert cut and np.allclose(out, [0.0, 0.3])
    out, cut = BOX.cut((0.99, 0.0), [-0.2, 0.3], 0.1)  # inward: untouched
    assert not cut and np.allclose(out, [-0.2, 0.3])
    out, cut = BOX.cut((1.5, -1.5), [0.1, 0.1], 0.1)  # outside: back in allowed on y only
    assert cut and np.allclose(out, [0.0, 0.1])


def test_unicycle_stops_forward_motion_but_may_turn():
    out, cut = BOX.cut((0.98, 0.0, 0.0), [0.5, 0.7], 0.1, 'unicycle')
    assert cut and np.allclose(out, [0.0, 0.7])
    out, cut = BOX.cut((0.98, 0.0, np.pi), [0.5, 0.7], 0.1, 'unicycle')  # facing inward
    assert not cut and np.allclose(out, [0.5, 0.7])
    out, cut = BOX.cut((0.98, 0.0, 0.0), [-0.5, 0.0], 0.1, 'unicycle')  # reversing inward
    assert not cut
    with pytest.raises(ValueError, match='x, y, yaw'):
        BOX.cut((0.5, 0.0), [0.1, 0.0], 0.1, 'unicycle')
    with pytest.raises(ValueError, match='kinematics'):
        BOX.cut((0.5, 0.0), [0.1, 0.0], 0.1, 'legged')


@pytest.mark.parametrize('lower, upper', [((0, 0), (0, 1)), ((0, np.nan), (1, 1)), ((0,), (1,))])
def test_bad_boxes_are_refused(lower, upper):
    with pytest.raises(ValueError, match='workspace'):
        WorkspaceBox(lower, upper)


@settings(max_examples=50, deadline=None)
@given(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5), st.floats(0, 0.99), st.floats(-0.99, 0.99))
def test_following_the_cut_command_never_leaves_the_box(vx, vy, x, y):
    p = np.array([x, y])
    for _ in range(100):
        v, _ = BOX.cut(p, [vx, vy], 0.1)
        p = p + v * 0.1
        assert BOX.contains(p)
