"""Conversions between arrays and the contract's messages, without rclpy.

Builders return message objects of the rosbags ROS 2 Kilted typestore, ready to serialise to
CDR. Decoders only read attributes (``msg.header.stamp``, ``msg.data``, ...), so they accept
rosbags messages and rclpy messages alike. Stamps are integer nanoseconds.
"""
from __future__ import annotations

from functools import lru_cache
import math

import numpy as np

from hlai_ros.contract import BASE_FRAME, ODOM_FRAME, WORLD_FRAME


@lru_cache(maxsize=None)
def typestore():
    """Return the rosbags typestore of ROS 2 Kilted (pure Python)."""
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_KILTED)


def _t(name: str):
    return typestore().types[name]


# -- time and headers ---------------------------------------------------------------------------
def time_msg(stamp_ns: int):
    """Return a builtin_interfaces/Time for `stamp_ns` (nanoseconds, >= 0)."""
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'stamps must be non-negative nanoseconds, got {stamp_ns}')
    return _t('builtin_interfaces/msg/Time')(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)


def header(stamp_ns: int, frame_id: str):
    """Return a std_msgs/Header."""
    return _t('std_msgs/msg/Header')(stamp=time_msg(stamp_ns), frame_id=frame_id)


def stamp_to_ns(stamp) -> int:
    """Return the nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * 10**9 + int(stamp.nanosec)


def clock(stamp_ns: int):
    """Return a rosgraph_msgs/Clock."""
    return _t('rosgraph_msgs/msg/Clock')(clock=time_msg(stamp_ns))


def string(text: str):
    """Return a std_msgs/String."""
    return _t('std_msgs/msg/String')(data=str(text))


# -- camera -------------------------------------------------------------------------------------
def rgb_image(rgb: np.ndarray, stamp_ns: int, frame_id: str):
    """Return an ``rgb8`` sensor_msgs/Image from an H x W x 3 uint8 array."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'rgb must be H x W x 3 uint8, got {rgb.shape} {rgb.dtype}')
    h, w = rgb.shape[:2]
    return _t('sensor_msgs/msg/Image')(
        header=header(stamp_ns, frame_id), height=h, width=w, encoding='rgb8', is_bigendian=0,
        step=3 * w, data=np.ascontiguousarray(rgb).reshape(-1))


def depth_image(depth: np.ndarray, stamp_ns: int, frame_id: str):
    """Return a ``32FC1`` sensor_msgs/Image (metres) from an H x W float array."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be H x W, got shape {depth.shape}')
    h, w = depth.shape
    data = np.ascontiguousarray(depth, dtype='<f4').view(np.uint8).reshape(-1)
    return _t('sensor_msgs/msg/Image')(
        header=header(stamp_ns, frame_id), height=h, width=w, encoding='32FC1', is_bigendian=0,
        step=4 * w, data=data)


def camera_info(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str):
    """Return a sensor_msgs/CameraInfo for an undistorted pinhole camera with intrinsics K."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f'K must be 3 x 3, got shape {K.shape}')
    P = np.zeros((3, 4))
    P[:, :3] = K
    roi = _t('sensor_msgs/msg/RegionOfInterest')(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return _t('sensor_msgs/msg/CameraInfo')(
        header=header(stamp_ns, frame_id), height=int(height), width=int(width),
        distortion_model='plumb_bob', d=np.zeros(5), k=K.reshape(-1), r=np.eye(3).reshape(-1),
        p=P.reshape(-1), binning_x=0, binning_y=0, roi=roi)


_RGB_ENCODINGS = {'rgb8': (3, [0, 1, 2]), 'bgr8': (3, [2, 1, 0]), 'rgba8': (4, [0, 1, 2]),
                  'bgra8': (4, [2, 1, 0]), 'mono8': (1, [0, 0, 0])}


def _pixels(msg, channels: int, dtype: str) -> np.ndarray:
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype).itemsize
    row = w * channels * itemsize
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data,
                         dtype=np.uint8)
    if h == 0 or w == 0 or step < row or data.size < step * (h - 1) + row:
        raise ValueError(f'image size does not add up: {h} x {w}, step {step}, '
                         f'{data.size} bytes for {channels} x {itemsize}-byte channels')
    rows = np.lib.stride_tricks.as_strided(data, shape=(h, row), strides=(step, 1))
    order = '>' if msg.is_bigendian else '<'
    out = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order))
    return out.reshape(h, w, channels)


def image_to_rgb(msg) -> np.ndarray:
    """Return H x W x 3 uint8 from an rgb8, bgr8, rgba8, bgra8 or mono8 Image."""
    if msg.encoding not in _RGB_ENCODINGS:
        raise ValueError(f'colour image encoding {msg.encoding!r} not supported; expected one '
                         f'of {sorted(_RGB_ENCODINGS)}')
    channels, order = _RGB_ENCODINGS[msg.encoding]
    return np.ascontiguousarray(_pixels(msg, channels, 'u1')[..., order])


def image_to_depth(msg) -> np.ndarray:
    """Return H x W float32 metres from a 32FC1 (metres) or 16UC1 (millimetres) Image."""
    if msg.encoding == '32FC1':
        return _pixels(msg, 1, 'f4')[..., 0].astype(np.float32)
    if msg.encoding in ('16UC1', 'mono16'):
        return (_pixels(msg, 1, 'u2')[..., 0].astype(np.float32) / 1000.0)
    raise ValueError(f'depth image encoding {msg.encoding!r} not supported; expected 32FC1 '
                     '(metres) or 16UC1 (millimetres)')


def camera_info_to_K(msg) -> np.ndarray:
    """Return the 3 x 3 intrinsics of a CameraInfo."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f'camera_info has invalid intrinsics K = {K.tolist()}')
    return K


# -- transforms and poses -----------------------------------------------------------------------
def _quaternion_from_matrix(R: np.ndarray) -> tuple[float, float, float, float]:
    """Return (x, y, z, w) of a rotation matrix (Shepperd's method)."""
    tr = np.trace(R)
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        w, x, y, z = 0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, \
            (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        w, x, y, z = (R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, \
            (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        w, x, y, z = (R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, \
            (R[1, 2] + R[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        w, x, y, z = (R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, \
            (R[1, 2] + R[2, 1]) / s, 0.25 * s
    return x, y, z, w


def quaternion_to_matrix(q) -> np.ndarray:
    """Return the 3 x 3 rotation of a quaternion with fields x, y, z, w (normalised here)."""
    x, y, z, w = float(q.x), float(q.y), float(q.z), float(q.w)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f'invalid quaternion ({x}, {y}, {z}, {w})')
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def yaw_of(q) -> float:
    """Return the yaw (rad) of a quaternion with fields x, y, z, w."""
    x, y, z, w = float(q.x), float(q.y), float(q.z), float(q.w)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _quaternion_msg(x, y, z, w):
    return _t('geometry_msgs/msg/Quaternion')(x=float(x), y=float(y), z=float(z), w=float(w))


def _vector3(x, y, z):
    return _t('geometry_msgs/msg/Vector3')(x=float(x), y=float(y), z=float(z))


def transform_stamped(T: np.ndarray, parent: str, child: str, stamp_ns: int):
    """Return a geometry_msgs/TransformStamped for the 4 x 4 pose of `child` in `parent`."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f'transform must be a finite 4 x 4 matrix, got shape {T.shape}')
    transform = _t('geometry_msgs/msg/Transform')(
        translation=_vector3(*T[:3, 3]), rotation=_quaternion_msg(*_quaternion_from_matrix(
            T[:3, :3])))
    return _t('geometry_msgs/msg/TransformStamped')(
        header=header(stamp_ns, parent), child_frame_id=child, transform=transform)


def tf_message(transforms: list):
    """Return a tf2_msgs/TFMessage holding TransformStamped messages."""
    return _t('tf2_msgs/msg/TFMessage')(transforms=list(transforms))


def transform_to_matrix(transform) -> np.ndarray:
    """Return the 4 x 4 matrix of a geometry_msgs/Transform."""
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(transform.rotation)
    t = transform.translation
    T[:3, 3] = [float(t.x), float(t.y), float(t.z)]
    return T


def pose_stamped(goal_xy: np.ndarray, stamp_ns: int, frame_id: str = WORLD_FRAME):
    """Return a geometry_msgs/PoseStamped at the (x, y) goal, metres, identity orientation."""
    x, y = (float(v) for v in np.asarray(goal_xy, dtype=np.float64).reshape(-1)[:2])
    pose = _t('geometry_msgs/msg/Pose')(
        position=_t('geometry_msgs/msg/Point')(x=x, y=y, z=0.0),
        orientation=_quaternion_msg(0, 0, 0, 1))
    return _t('geometry_msgs/msg/PoseStamped')(header=header(stamp_ns, frame_id), pose=pose)


def pose_to_goal(msg) -> np.ndarray:
    """Return the (2,) float32 goal (x, y) of a PoseStamped, metres."""
    p = msg.pose.position
    return np.array([p.x, p.y], dtype=np.float32)


# -- commands -----------------------------------------------------------------------------------
def _twist(action: np.ndarray, fields: tuple[str, ...]):
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    if action.shape != (len(fields),):
        raise ValueError(f'this command carries {len(fields)} components {fields}, got an '
                         f'action of shape {action.shape}')
    values = {'linear': [0.0, 0.0, 0.0], 'angular': [0.0, 0.0, 0.0]}
    for value, field in zip(action, fields):
        part, axis = field.split('.')
        values[part]['xyz'.index(axis)] = float(value)
    return _t('geometry_msgs/msg/Twist')(linear=_vector3(*values['linear']),
                                          angular=_vector3(*values['angular']))


def twist_command(action: np.ndarray, fields: tuple[str, ...], stamp_ns: int, stamped: bool,
                  frame_id: str = WORLD_FRAME):
    """Return a Twist (or TwistStamped) whose `fields` (e.g. ``linear.x``) carry `action`."""
    twist = _twist(action, fields)
    if stamped:
        return _t('geometry_msgs/msg/TwistStamped')(header=header(stamp_ns, frame_id),
                                                     twist=twist)
    return twist


def twist_to_action(msg, fields: tuple[str, ...]) -> np.ndarray:
    """Return the float32 action vector carried by `fields` of a Twist or TwistStamped."""
    twist = msg.twist if hasattr(msg, 'twist') else msg
    out = []
    for field in fields:
        part, axis = field.split('.')
        out.append(getattr(getattr(twist, part), axis))
    return np.asarray(out, dtype=np.float32)


def odometry_base(stamp_ns: int, x: float, y: float, yaw: float, v: float, omega: float,
                  z: float = 0.0, vy: float = 0.0):
    """Return a nav_msgs/Odometry of a planar base: pose in ``odom``, twist in ``base_link``."""
    point = _t('geometry_msgs/msg/Point')(x=float(x), y=float(y), z=float(z))
    q = _quaternion_msg(0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))
    pose = _t('geometry_msgs/msg/PoseWithCovariance')(
        pose=_t('geometry_msgs/msg/Pose')(position=point, orientation=q),
        covariance=np.zeros(36))
    twist = _t('geometry_msgs/msg/TwistWithCovariance')(
        twist=_t('geometry_msgs/msg/Twist')(linear=_vector3(v, vy, 0.0),
                                            angular=_vector3(0.0, 0.0, omega)),
        covariance=np.zeros(36))
    return _t('nav_msgs/msg/Odometry')(header=header(stamp_ns, ODOM_FRAME),
                                       child_frame_id=BASE_FRAME, pose=pose, twist=twist)


def joint_state(stamp_ns: int, names, position, velocity=(), effort=()):
    """Return a sensor_msgs/JointState (positions rad or m, velocities per second)."""
    return _t('sensor_msgs/msg/JointState')(
        header=header(stamp_ns, ''), name=list(names),
        position=np.asarray(position, dtype=np.float64),
        velocity=np.asarray(velocity, dtype=np.float64),
        effort=np.asarray(effort, dtype=np.float64))
