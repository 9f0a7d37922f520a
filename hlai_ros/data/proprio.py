"""Labelled proprioception vectors <-> JointState and Odometry messages.

A world labels its proprioception vector with `proprio_names`; the same labels let a bag (or a
live topic) be turned back into exactly that vector.

- JointState: a label is ``<joint><suffix>``; the suffix names the field (``_pos``,
  ``_position``, ``.position``, ``_vel``, ``_velocity``, ``.velocity``, ``_effort``,
  ``.effort``); a label without a known suffix is the joint's position. Default labels of a
  recording without them: ``<joint>.position`` for every joint, then ``<joint>.velocity``.
- Odometry (planar base): labels are fields of the odometry, ``x``, ``y``, ``z`` (metres, in
  ``odom``), ``yaw`` (rad), ``v`` (forward speed, m/s, body frame), ``vy`` and ``omega`` (yaw
  rate, rad/s). Default: ``('x', 'y', 'yaw', 'v', 'omega')``.
"""
from __future__ import annotations

import numpy as np

from hlai_ros.data import messages

_SUFFIXES = (
    ('.position', 'position'), ('/position', 'position'), ('_position', 'position'),
    ('_pos', 'position'),
    ('.velocity', 'velocity'), ('/velocity', 'velocity'), ('_velocity', 'velocity'),
    ('_vel', 'velocity'),
    ('.effort', 'effort'), ('/effort', 'effort'), ('_effort', 'effort'),
)
ODOMETRY_FIELDS = ('x', 'y', 'z', 'yaw', 'v', 'vy', 'omega')
DEFAULT_ODOMETRY_NAMES = ('x', 'y', 'yaw', 'v', 'omega')


def joint_label(label: str) -> tuple[str, str]:
    """Split a proprioception label into (joint name, JointState field)."""
    for suffix, field in _SUFFIXES:
        if label.endswith(suffix) and len(label) > len(suffix):
            return label[:-len(suffix)], field
    return label, 'position'


def joint_state_from_vector(names, vector: np.ndarray, stamp_ns: int):
    """Return a JointState carrying the labelled vector (missing fields are NaN)."""
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    if len(names) != vector.size:
        raise ValueError(f'{len(names)} labels for a proprioception vector of {vector.size}')
    joints: list[str] = []
    values: dict[tuple[str, str], float] = {}
    for label, value in zip(names, vector):
        joint, field = joint_label(label)
        if joint not in joints:
            joints.append(joint)
        values[joint, field] = float(value)
    fields = {f: [values.get((j, f), np.nan) for j in joints]
              for f in ('position', 'velocity', 'effort')
              if any(k[1] == f for k in values)}
    return messages.joint_state(stamp_ns, joints, fields.get('position', [np.nan] * len(joints)),
                                fields.get('velocity', ()), fields.get('effort', ()))


def default_joint_names(msg) -> tuple[str, ...]:
    """Return default labels for a JointState: positions, then velocities when present."""
    names = [f'{j}.position' for j in msg.name]
    if len(msg.velocity) == len(msg.name):
        names += [f'{j}.velocity' for j in msg.name]
    return tuple(names)


def vector_from_joint_state(msg, names) -> np.ndarray:
    """Return the float32 vector labelled `names` from a JointState.

    Raises:
        ValueError: a labelled joint or field is not in the message.

    """
    index = {j: i for i, j in enumerate(msg.name)}
    out = np.empty(len(names), dtype=np.float32)
    for k, label in enumerate(names):
        joint, field = joint_label(label)
        values = getattr(msg, field)
        if joint not in index:
            raise ValueError(f'joint {joint!r} (label {label!r}) is not in the JointState '
                             f'(joints: {list(msg.name)})')
        if len(values) <= index[joint]:
            raise ValueError(f'the JointState has no {field} for joint {joint!r}')
        out[k] = values[index[joint]]
    return out


def odometry_from_vector(names, vector: np.ndarray, stamp_ns: int):
    """Return an Odometry carrying a planar-base vector labelled by `names`."""
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    if len(names) != vector.size:
        raise ValueError(f'{len(names)} labels for a proprioception vector of {vector.size}')
    unknown = [n for n in names if n not in ODOMETRY_FIELDS]
    if unknown:
        raise ValueError(f'odometry labels {unknown} are not odometry fields; expected some '
                         f'of {ODOMETRY_FIELDS}')
    values = dict.fromkeys(ODOMETRY_FIELDS, 0.0)
    values.update(zip(names, vector.tolist()))
    return messages.odometry_base(stamp_ns, values['x'], values['y'], values['yaw'],
                                  values['v'], values['omega'], z=values['z'], vy=values['vy'])


def vector_from_odometry(msg, names=DEFAULT_ODOMETRY_NAMES) -> np.ndarray:
    """Return the float32 vector labelled `names` from an Odometry."""
    p, tw = msg.pose.pose.position, msg.twist.twist
    values = {'x': p.x, 'y': p.y, 'z': p.z, 'yaw': messages.yaw_of(msg.pose.pose.orientation),
              'v': tw.linear.x, 'vy': tw.linear.y, 'omega': tw.angular.z}
    try:
        return np.asarray([values[n] for n in names], dtype=np.float32)
    except KeyError as exc:
        raise ValueError(f'odometry label {exc.args[0]!r} is not one of {ODOMETRY_FIELDS}') \
            from None
