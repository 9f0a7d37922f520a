"""The input guard: each bad-input check, and the wrapper that drops, warns and counts."""
import numpy as np
import pytest

from hlai_ros.data import messages
from hlai_ros.nodes.guard import InputGuard
from hlai_ros.safety import FreshnessLimits
from hlai_ros.safety.inputs import (
    COLOUR_ENCODINGS,
    DEPTH_ENCODINGS,
    camera_info_fault,
    depth_units_fault,
    frame_fault,
    image_fault,
    non_finite,
)


def test_non_finite_names_the_fields_in_rclpy_and_rosbags_messages():
    from nav_msgs.msg import Odometry
    odom = Odometry()
    odom.pose.pose.position.y = float('nan')
    odom.pose.covariance[3] = float('inf')
    fault = non_finite(odom)
    assert fault.startswith('non-finite') and 'pose.pose.position.y' in fault
    assert 'pose.covariance' in fault
    assert non_finite(Odometry()) == ''
    stored = messages.odometry_base(1, 0.0, float('inf'), 0.0, 0.0, 0.0)
    assert 'pose.pose.position.y' in non_finite(stored)
    joint = messages.joint_state(1, ['a'], [0.0], [0.0], [float('nan')])
    assert 'effort' in non_finite(joint) and non_finite(joint, ignore=('effort',)) == ''
    depth = messages.depth_image(np.full((4, 4), np.nan, np.float32), 1, 'cam')
    assert non_finite(depth) == '', 'NaN pixels of a depth image mean no return'


def test_image_faults():
    rgb = messages.rgb_image(np.zeros((4, 6, 3), np.uint8), 1, 'cam')
    assert image_fault(rgb, COLOUR_ENCODINGS) == ''
    assert image_fault(rgb, DEPTH_ENCODINGS).startswith('encoding')
    rgb.step = 10
    assert image_fault(rgb, COLOUR_ENCODINGS).startswith('size')
    rgb.step, rgb.height = 18, 5
    assert 'bytes of data' in image_fault(rgb, COLOUR_ENCODINGS)
    rgb.height, rgb.width, rgb.data = 0, 0, np.zeros(0, np.uint8)
    assert image_fault(rgb, COLOUR_ENCODINGS).startswith('empty')
    rgb.height, rgb.width, rgb.step = 100_000, 100_000, 300_000
    rgb.data = np.zeros(1024, np.uint8)
    assert image_fault(rgb, COLOUR_ENCODINGS).startswith('huge')


def test_depth_in_millimetres_is_caught_and_metres_pass():
    metres = messages.depth_image(np.full((8, 8), 1.5, np.float32), 1, 'cam')
    assert depth_units_fault(metres) == ''
    mm = messages.depth_image(np.full((8, 8), 1500.0, np.float32), 1, 'cam')
    assert depth_units_fault(mm).startswith('depth units')
    sixteen = messages.depth_image(np.full((8, 8), 1.5, np.float32), 1, 'cam')
    sixteen.encoding = '16UC1'
    assert depth_units_fault(sixteen) == '', '16UC1 is millimetres by definition'


def test_frame_and_camera_info_faults():
    assert frame_fault('/world', ('world',)) == ''
    assert frame_fault('map', ('world', '')).startswith('frame')
    info = messages.camera_info(np.eye(3), 64, 48, 1, 'cam')
    assert camera_info_fault(info) == ''
    info.width = 0
    assert camera_info_fault(info).startswith('empty')


def test_guard_drops_warns_counts_and_survives_callbacks_that_raise(rclpy_context):
    from rclpy.node import Node
    from std_msgs.msg import Header

    node = Node('guard_test')
    try:
        clock = {'now': 100 * 10**9}
        guard = InputGuard(node)
        got = []

        def callback(msg):
            if msg.frame_id == 'boom':
                raise RuntimeError('estimator failed')
            got.append(msg)

        class Stamped:
            def __init__(self, sec, frame=''):
                self.header = Header(frame_id=frame)
                self.header.stamp.sec = sec
                self.frame_id = frame

        wrapped = guard.wrap('/t', callback, lambda m: frame_fault(m.frame_id, ('', 'boom')),
                             guard.stamp('/t', FreshnessLimits(1.0, 0.5),
                                         clock=lambda: clock['now']))
        for sec, frame in ((100, ''), (99, ''), (200, ''), (100, 'map'), (100, 'boom'),
                           (100, '')):
            wrapped(Stamped(sec, frame))
        assert len(got) == 2
        assert guard.faults == {('/t', 'out of order'): 1, ('/t', 'future'): 1,
                                ('/t', 'frame'): 1, ('/t', 'callback'): 1}
        assert guard.accepted['/t'] == 2
        clock['now'] = 10 * 10**9  # the clock jumped back (a looped bag): order restarts
        wrapped(Stamped(10))
        assert len(got) == 3
        assert guard.last_fault.startswith('/t: callback: RuntimeError')
    finally:
        node.destroy_node()


@pytest.mark.parametrize('bad', [None, 'text', 3])
def test_malformed_messages_are_faults_not_crashes(rclpy_context, bad):
    from rclpy.node import Node
    node = Node('guard_malformed')
    try:
        guard = InputGuard(node)
        wrapped = guard.wrap('/m', lambda m: None, non_finite,
                             lambda m: image_fault(m, COLOUR_ENCODINGS))
        wrapped(bad)
        assert sum(guard.faults.values()) == 1
    finally:
        node.destroy_node()
