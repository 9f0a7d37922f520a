"""Checks of incoming messages, ROS-free: each returns '' or a fault ``'<kind>: <detail>'``.

The checks read messages by attribute, so they work on rclpy and on rosbags messages alike:
`non_finite` (NaN/Inf in any numeric field), `image_fault` (encoding; width, height, step and
data that disagree; empty and huge images), `depth_units_fault` (32FC1 values in the
millimetre range), `camera_info_fault` and `frame_fault`. Stamps are judged by
`hlai_ros.safety.freshness.StampCheck.fault`. The nodes run them through
`hlai_ros.nodes.guard.InputGuard`, which drops, warns and counts.
"""
from __future__ import annotations

import array
from dataclasses import fields, is_dataclass
import math

import numpy as np

BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '32FC1': 4,
                   '16UC1': 2, 'mono16': 2}
"""Encodings the graph reads, with their pixel sizes."""
COLOUR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
DEPTH_ENCODINGS = ('32FC1', '16UC1', 'mono16')
MAX_PIXELS = 4096 * 4096
"""Largest image accepted (width x height): anything bigger is a fault, not a camera."""
MAX_DEPTH_M = 20.0
"""A 32FC1 depth image whose typical value exceeds this is taken to be in millimetres."""


def _field_names(msg) -> list[str]:
    if hasattr(type(msg), 'get_fields_and_field_types'):
        return list(type(msg).get_fields_and_field_types())
    if is_dataclass(msg):
        return [f.name for f in fields(msg)]
    return []


def non_finite(msg, ignore: tuple[str, ...] = (), _prefix: str = '') -> str:
    """Return a fault naming the fields that hold NaN or Inf, or ''.

    Args:
        msg: a message (rclpy or rosbags).
        ignore: field paths (``'effort'``, ``'twist.covariance'``) allowed to be non-finite.

    Byte arrays (image data) are not read: NaN pixels of a depth image mean "no return".

    """
    bad = _non_finite_paths(msg, ignore, _prefix)
    return f'non-finite: NaN or Inf in {", ".join(bad)}' if bad else ''


def _non_finite_paths(msg, ignore, prefix) -> list[str]:
    out = []
    for name in _field_names(msg):
        path = prefix + name
        if path in ignore:
            continue
        value = getattr(msg, name)
        if isinstance(value, float):
            if not math.isfinite(value):
                out.append(path)
        elif isinstance(value, (bool, int, str, bytes, bytearray)):
            continue
        elif isinstance(value, array.array):
            if value.typecode in 'fd' and not np.all(np.isfinite(np.asarray(value))):
                out.append(path)
        elif isinstance(value, np.ndarray):
            if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
                out.append(path)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, float):
                    if not math.isfinite(item):
                        out.append(f'{path}[{i}]')
                elif _field_names(item):
                    out += _non_finite_paths(item, ignore, f'{path}[{i}].')
        elif _field_names(value):
            out += _non_finite_paths(value, ignore, path + '.')
    return out


def image_fault(msg, encodings: tuple[str, ...], max_pixels: int = MAX_PIXELS) -> str:
    """Return what is wrong with a sensor_msgs/Image's encoding and size, or ''."""
    encoding = str(msg.encoding)
    if encoding not in encodings:
        return f'encoding: {encoding!r} is not one of {list(encodings)}'
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    size = len(msg.data)
    if h == 0 or w == 0 or size == 0:
        return f'empty: {w} x {h} image with {size} bytes'
    if h * w > max_pixels:
        return f'huge: {w} x {h} image is over {max_pixels} pixels'
    row = w * BYTES_PER_PIXEL[encoding]
    if step < row:
        return f'size: step {step} is less than width {w} x {BYTES_PER_PIXEL[encoding]} bytes'
    if size != step * h:
        return f'size: {size} bytes of data for step {step} x height {h} = {step * h}'
    return ''


def depth_units_fault(msg, max_depth_m: float = MAX_DEPTH_M) -> str:
    """Return a fault if a 32FC1 depth image (metres) holds millimetre-range values, or ''.

    Call after `image_fault`. The median of the valid (finite, > 0) values of a sparse grid
    of pixels is compared with `max_depth_m`. 16UC1 is millimetres by definition (converted
    on read), so it is not judged.
    """
    if str(msg.encoding) != '32FC1':
        return ''
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    rows = data[:step * h].reshape(h, step)[::max(1, h // 32), :w * 4]
    values = np.ascontiguousarray(rows).view('>f4' if msg.is_bigendian else '<f4')
    values = values[:, ::max(1, w // 32)]
    valid = values[np.isfinite(values) & (values > 0)]
    if valid.size and float(np.median(valid)) > max_depth_m:
        return (f'depth units: median depth {float(np.median(valid)):.1f} is over '
                f'{max_depth_m} m; millimetres in a 32FC1 (metres) image?')
    return ''


def camera_info_fault(msg, max_pixels: int = MAX_PIXELS) -> str:
    """Return what is wrong with a sensor_msgs/CameraInfo's size, or ''."""
    w, h = int(msg.width), int(msg.height)
    if w == 0 or h == 0:
        return f'empty: camera_info for a {w} x {h} image'
    if w * h > max_pixels:
        return f'huge: camera_info for a {w} x {h} image is over {max_pixels} pixels'
    return ''


def frame_fault(frame_id: str, expected: tuple[str, ...]) -> str:
    """Return a fault unless `frame_id` (a leading '/' ignored) is one of `expected`."""
    frame = str(frame_id).lstrip('/')
    if frame in expected:
        return ''
    return f'frame: {frame!r} is not one of {list(expected)}'
