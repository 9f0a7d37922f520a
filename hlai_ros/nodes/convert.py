"""Conversions between rclpy messages, CDR bytes and numpy arrays.

The contract's messages are built once, without rclpy, by `hlai_ros.data.messages` (the same
builders that write `hlai collect` bags). A node publishes them as serialised CDR bytes
(``Publisher.publish(bytes)``), so a live topic carries byte for byte what a bag stores, and the
recorder writes what it receives (``raw=True`` subscriptions) through the same typestore.
Decoders of `hlai_ros.data.messages` read rclpy messages as they are (attribute access).

The state vector travels as ``std_msgs/Float32MultiArray`` whose layout labels every entry: one
``MultiArrayDimension`` per state variable, ``label`` = its name, ``size`` = ``stride`` = 1, in
data order. `state_message` and `state_from_message` are the only writer and reader of it.
"""
from __future__ import annotations

import importlib
import json

import numpy as np

from hlai_ros.data import messages


def message_class(msgtype: str):
    """Return the rclpy message class of a type string such as ``sensor_msgs/msg/Image``."""
    parts = msgtype.split('/')
    if len(parts) != 3 or parts[1] != 'msg':
        raise ValueError(f'message type {msgtype!r} is not of the form package/msg/Name')
    try:
        return getattr(importlib.import_module(f'{parts[0]}.msg'), parts[2])
    except (ImportError, AttributeError):
        raise ValueError(f'message type {msgtype} is not installed for rclpy') from None


def has_message(msgtype: str) -> bool:
    """Return whether rclpy can use `msgtype` here (tf2_msgs, for one, has no wheel)."""
    try:
        message_class(msgtype)
    except ValueError:
        return False
    return True


def qos_profile(qos):
    """Return the rclpy QoSProfile of a contract `hlai_ros.contract.QoS`.

    Reliable, keep last `depth`; transient local when latched.
    """
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    durability = DurabilityPolicy.TRANSIENT_LOCAL if qos.latched else DurabilityPolicy.VOLATILE
    return QoSProfile(depth=qos.depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE, durability=durability)


def to_cdr(msg, msgtype: str) -> bytes:
    """Serialise a typestore message (`hlai_ros.data.messages`) to CDR bytes to publish."""
    return bytes(messages.typestore().serialize_cdr(msg, msgtype))


def from_cdr(data: bytes, msgtype: str):
    """Deserialise CDR bytes (a raw subscription) into a typestore message."""
    return messages.typestore().deserialize_cdr(bytes(data), msgtype)


def stamp_ns(stamp) -> int:
    """Return integer nanoseconds of a builtin_interfaces/Time (rclpy or typestore)."""
    return messages.stamp_to_ns(stamp)


def state_message(names, values: np.ndarray):
    """Return a labelled std_msgs/Float32MultiArray of a state vector (n,)."""
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension, MultiArrayLayout

    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if len(names) != values.size:
        raise ValueError(f'{len(names)} state names for a state vector of {values.size}')
    layout = MultiArrayLayout(
        dim=[MultiArrayDimension(label=str(n), size=1, stride=1) for n in names], data_offset=0)
    return Float32MultiArray(layout=layout, data=values.tolist())


def state_from_message(msg) -> tuple[tuple[str, ...], np.ndarray]:
    """Return (names, float32 values (n,)) of a labelled state message.

    Raises:
        ValueError: the layout does not label every entry.

    """
    names = tuple(d.label for d in msg.layout.dim)
    values = np.asarray(msg.data, dtype=np.float32)
    if len(names) != values.size or msg.layout.data_offset != 0:
        raise ValueError(f'state layout labels {len(names)} entries (offset '
                         f'{msg.layout.data_offset}) but the message carries {values.size}')
    return names, values


def episode_marker(msg) -> dict | None:
    """Return the JSON object of an ``/hlai/episode`` message, or None when it is not one."""
    try:
        marker = json.loads(msg.data)
    except (TypeError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def planar_pose(x: float, y: float, yaw: float, stamp: int, frame_id: str, z: float = 0.0):
    """Return an rclpy geometry_msgs/PoseStamped of a planar pose (m, rad)."""
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp), 10**9)
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = float(x), float(y), float(z)
    msg.pose.orientation.z, msg.pose.orientation.w = float(np.sin(yaw / 2)), float(np.cos(yaw / 2))
    return msg


def planar_path(points, stamp: int, frame_id: str):
    """Return an rclpy nav_msgs/Path through planar points [(x, y)] (m), every pose unrotated."""
    from nav_msgs.msg import Path

    msg = Path()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp), 10**9)
    msg.header.frame_id = frame_id
    msg.poses = [planar_pose(x, y, 0.0, stamp, frame_id) for x, y in points]
    return msg
