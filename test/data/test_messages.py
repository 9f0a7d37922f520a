"""Array <-> message conversions survive a CDR round trip through the Kilted typestore."""
import math

import numpy as np
import pytest

from hlai_ros.data import messages, proprio
from hlai_ros.sim.base import look_at


def _cdr(msg, msgtype):
    ts = messages.typestore()
    return ts.deserialize_cdr(ts.serialize_cdr(msg, msgtype), msgtype)


def test_rgb_and_depth_images_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    depth = rng.uniform(0.1, 4.0, (5, 7)).astype(np.float32)
    m = _cdr(messages.rgb_image(rgb, 1_500_000_000, 'cam'), 'sensor_msgs/msg/Image')
    assert (m.encoding, m.height, m.width, m.step) == ('rgb8', 5, 7, 21)
    assert messages.stamp_to_ns(m.header.stamp) == 1_500_000_000
    np.testing.assert_array_equal(messages.image_to_rgb(m), rgb)
    d = _cdr(messages.depth_image(depth, 7, 'cam'), 'sensor_msgs/msg/Image')
    assert d.encoding == '32FC1'
    np.testing.assert_array_equal(messages.image_to_depth(d), depth)


def test_images_from_a_driver_with_padding_bgr_and_millimetres():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    bgr_padded = np.zeros((2, 12), np.uint8)
    bgr_padded[:, :9] = rgb[..., ::-1].reshape(2, 9)
    msg = messages.rgb_image(rgb, 0, 'cam')
    msg.encoding, msg.step, msg.data = 'bgr8', 12, bgr_padded.reshape(-1)
    np.testing.assert_array_equal(messages.image_to_rgb(msg), rgb)
    mm = np.array([[1000, 2500]], dtype='<u2')
    msg = messages.depth_image(np.zeros((1, 2), np.float32), 0, 'cam')
    msg.encoding, msg.step, msg.data = '16UC1', 4, mm.view(np.uint8).reshape(-1)
    np.testing.assert_allclose(messages.image_to_depth(msg), [[1.0, 2.5]])


def test_bad_images_are_refused_with_the_reason():
    msg = messages.rgb_image(np.zeros((2, 2, 3), np.uint8), 0, 'cam')
    msg.encoding = 'yuv422'
    with pytest.raises(ValueError, match='yuv422'):
        messages.image_to_rgb(msg)
    msg = messages.rgb_image(np.zeros((2, 2, 3), np.uint8), 0, 'cam')
    msg.height = 50
    with pytest.raises(ValueError, match='does not add up'):
        messages.image_to_rgb(msg)
    with pytest.raises(ValueError, match='H x W x 3 uint8'):
        messages.rgb_image(np.zeros((2, 2), np.float32), 0, 'cam')


def test_camera_info_and_static_transform_round_trip():
    K = np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
    info = _cdr(messages.camera_info(K, 64, 48, 0, 'cam'), 'sensor_msgs/msg/CameraInfo')
    np.testing.assert_allclose(messages.camera_info_to_K(info), K)
    assert (info.width, info.height, info.header.frame_id) == (64, 48, 'cam')
    for eye in ([0.3, -1.0, 1.2], [0.0, 0.0, 2.0], [-1.0, 0.5, 0.2]):
        T = look_at(eye, [0.1, 0.0, 0.0], [0, 0, 1])
        tf = messages.tf_message([messages.transform_stamped(T, 'world', 'cam', 0)])
        back = _cdr(tf, 'tf2_msgs/msg/TFMessage').transforms[0]
        assert (back.header.frame_id, back.child_frame_id) == ('world', 'cam')
        np.testing.assert_allclose(messages.transform_to_matrix(back.transform), T, atol=1e-9)


def test_commands_carry_the_action_in_the_named_twist_fields():
    arm = ('linear.x', 'linear.y')
    push = _cdr(messages.twist_command([0.1, -0.2], arm, 5, True, 'world'),
                'geometry_msgs/msg/TwistStamped')
    assert (push.twist.linear.x, push.twist.linear.y) == pytest.approx((0.1, -0.2))
    np.testing.assert_allclose(messages.twist_to_action(push, arm), [0.1, -0.2], rtol=1e-6)
    base = ('linear.x', 'angular.z')
    cliff = _cdr(messages.twist_command([0.5, 0.3], base, 5, False), 'geometry_msgs/msg/Twist')
    assert (cliff.linear.x, cliff.angular.z) == pytest.approx((0.5, 0.3))
    with pytest.raises(ValueError, match='2 components'):
        messages.twist_command([1.0, 2.0, 3.0], base, 0, False)


def test_joint_state_codec_keeps_the_labelled_order():
    names = ('a.position', 'b.position', 'a.velocity', 'b.velocity')
    vec = np.array([0.1, 0.2, -1.0, -2.0], np.float32)
    msg = _cdr(proprio.joint_state_from_vector(names, vec, 3), 'sensor_msgs/msg/JointState')
    assert list(msg.name) == ['a', 'b']
    np.testing.assert_array_equal(proprio.vector_from_joint_state(msg, names), vec)
    assert proprio.default_joint_names(msg) == names
    assert proprio.joint_label('j1_vel') == ('j1', 'velocity')
    with pytest.raises(ValueError, match="joint 'c'"):
        proprio.vector_from_joint_state(msg, ('c.position',))


def test_odometry_codec_round_trips_cliff_proprioception():
    names = ('x', 'y', 'yaw', 'v', 'omega')
    vec = np.array([1.0, -2.0, 2.5, 0.4, -0.3], np.float32)
    msg = _cdr(proprio.odometry_from_vector(names, vec, 0), 'nav_msgs/msg/Odometry')
    assert (msg.header.frame_id, msg.child_frame_id) == ('odom', 'base_link')
    np.testing.assert_allclose(proprio.vector_from_odometry(msg, names), vec, atol=1e-6)
    assert math.isclose(messages.yaw_of(msg.pose.pose.orientation), 2.5, abs_tol=1e-9)
    with pytest.raises(ValueError, match='not odometry fields'):
        proprio.odometry_from_vector(('x', 'pitch_rate'), [0.0, 0.0], 0)
