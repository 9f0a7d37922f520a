"""Contract messages -> rerun entities, one layout for a live graph and for a recorded bag.

`TopicLogger.log` takes a message as the rosbags typestore decodes it (a bag, or the CDR bytes
of a raw rclpy subscription: `hlai_ros.nodes.convert.from_cdr`) with its topic, type and stamp,
and logs it on the ``ros_time`` timeline: a timestamp for wall-clock stamps (a robot), a
duration since 0 for simulation time. Where each topic goes (`ENTITIES`):

- ``camera/rgb``, ``camera/depth``: the images (depth in metres);
- ``world/plan``, ``world/imagined`` (one line strip per ensemble member), ``world/goal``,
  ``world/robot``, ``world/object``: the planar scene in the ``world`` frame (sizes in
  screen points, so that a table top and a room look alike);
- ``state/perceived/<label>``: the perceived state (``/hlai/state``);
  ``state/proprio/...``: joint states or odometry (in its own ``odom`` frame: not drawn);
- ``command/<field>``: the velocity command;
- ``cost/cost``, ``cost/critic``, ``cost/surprise``, and ``cost/terms/<term>`` (the
  configurator's per-term costs on ``/diagnostics``);
- ``safety/estop`` (0/1) and ``safety/gate`` (the command_gate's status and level);
- ``episodes``: a text log of the episode markers, ``episodes/success`` and
  ``episodes/return`` at each end;
- ``status/<node>``: every other node's diagnostics, as text.

No rclpy here; the `rerun` module is imported by the caller (`hlai_ros.view.session`).
"""
from __future__ import annotations

import json

import numpy as np

from hlai_ros import contract
from hlai_ros.data import messages

TIMELINE = 'ros_time'
"""The one timeline: message stamps (header stamp, else log or receipt time)."""
WALL_CLOCK_NS = 10**18
"""Stamps from here on (2001-09-09) are wall-clock times; earlier ones simulation time."""
ENTITIES = {
    contract.CAMERA_RGB.name: 'camera/rgb',
    contract.CAMERA_DEPTH.name: 'camera/depth',
    contract.STATE.name: 'state/perceived',
    contract.PLAN.name: 'world/plan',
    contract.IMAGINED.name: 'world/imagined',
    contract.GOAL.name: 'world/goal',
    contract.ROBOT_POSE.name: 'world/robot',
    contract.OBJECT_POSE.name: 'world/object',
    contract.COST.name: 'cost/cost',
    contract.CRITIC.name: 'cost/critic',
    contract.SURPRISE.name: 'cost/surprise',
    contract.ESTOP.name: 'safety/estop',
    contract.EPISODE.name: 'episodes',
    contract.DIAGNOSTICS.name: 'status',
    contract.JOINT_STATES.name: 'state/proprio',
    contract.ODOM.name: 'state/proprio',
    contract.ARM_COMMAND.name: 'command',
    contract.BASE_COMMAND.name: 'command',
}
"""Contract topic -> entity path (a remapped topic keeps its contract role's entity)."""
GATE = 'command_gate'
"""The node whose diagnostics are the gate status (``safety/gate``)."""
COST_NODE = 'cost_critic'
"""The node whose diagnostics carry the cost terms (``cost.<term>`` values)."""


def live_topics(task) -> tuple[contract.Topic, ...]:
    """Return the contract topics a live view of `task`'s graph subscribes to."""
    robot = task.embodiment
    return (contract.CAMERA_RGB, contract.CAMERA_DEPTH, robot.proprio, robot.command,
            contract.STATE, contract.PLAN, contract.IMAGINED, contract.GOAL,
            contract.ROBOT_POSE, contract.OBJECT_POSE, contract.COST, contract.CRITIC,
            contract.SURPRISE, contract.ESTOP, contract.EPISODE, contract.DIAGNOSTICS)


def blueprint():
    """Return the default layout: camera and depth, the world, the time series, the log."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(rrb.Horizontal(
        rrb.Vertical(rrb.Spatial2DView(origin='camera/rgb', name='camera'),
                     rrb.Spatial2DView(origin='camera/depth', name='depth')),
        rrb.Vertical(rrb.Spatial3DView(origin='world', name='world: plan, imagined, goal'),
                     rrb.TextLogView(origin='episodes', name='episodes'), row_shares=[3, 1]),
        rrb.Vertical(rrb.TimeSeriesView(origin='state', name='state: perceived, proprio'),
                     rrb.TimeSeriesView(origin='cost', name='cost, critic, surprise'),
                     rrb.TimeSeriesView(origin='command', name='command'),
                     rrb.TimeSeriesView(origin='safety', name='e-stop, gate level')),
        column_shares=[1, 2, 2]), collapse_panels=True)


def _label(text: str) -> str:
    """An entity path part of `text` (rerun paths split at '/')."""
    return str(text).strip('/').replace('/', '_').replace(' ', '_') or '_'


class TopicLogger:
    """Logs contract messages to one `rerun.RecordingStream`; see the module docstring.

    Args:
        stream: the recording stream.
        image_period_s: shortest time between two logged images of one topic, in message
            time (0: every image).

    """

    def __init__(self, stream, image_period_s: float = 0.0):
        import rerun as rr

        self.rr = rr
        self.stream = stream
        self.image_period_ns = int(float(image_period_s) * 1e9)
        self.wall_clock: bool | None = None
        self.counts: dict[str, int] = {}
        self._last_image: dict[str, int] = {}

    def set_time(self, stamp_ns: int) -> None:
        """Put the stream at `stamp_ns` on the ``ros_time`` timeline."""
        if self.wall_clock is None:
            self.wall_clock = stamp_ns >= WALL_CLOCK_NS
        if self.wall_clock:
            self.stream.set_time(TIMELINE, timestamp=np.datetime64(int(stamp_ns), 'ns'))
        else:
            self.stream.set_time(TIMELINE, duration=np.timedelta64(int(stamp_ns), 'ns'))

    def log(self, topic: str, msgtype: str, msg, stamp_ns: int) -> bool:
        """Log one message of `topic`; return whether anything was logged.

        Raises:
            ValueError: a message that cannot be shown (e.g. an image of a foreign encoding).

        """
        handler = HANDLERS.get(msgtype)
        if handler is None:
            return False
        entity = ENTITIES.get(topic, _label(topic))
        if msgtype == 'sensor_msgs/msg/Image':
            last = self._last_image.get(topic)
            if last is not None and 0 <= stamp_ns - last < self.image_period_ns:
                return False
            self._last_image[topic] = stamp_ns
        self.set_time(stamp_ns)
        done = handler(self, entity, msg) is not False
        if done:
            self.counts[entity] = self.counts.get(entity, 0) + 1
        return done

    # -- one method per message type ----------------------------------------------------------
    def _scalar(self, entity: str, value: float) -> None:
        self.stream.log(entity, self.rr.Scalars([float(value)]))

    def _image(self, entity: str, msg) -> None:
        if msg.encoding in ('32FC1', '16UC1', 'mono16') or entity.endswith('depth'):
            self.stream.log(entity, self.rr.DepthImage(messages.image_to_depth(msg), meter=1.0))
        else:
            self.stream.log(entity, self.rr.Image(messages.image_to_rgb(msg)))

    def _state(self, entity: str, msg) -> None:
        names = [d.label for d in msg.layout.dim]
        values = np.asarray(msg.data, dtype=np.float64).reshape(-1)
        if len(names) != values.size:
            raise ValueError(f'state layout labels {len(names)} of {values.size} entries')
        for name, value in zip(names, values):
            self._scalar(f'{entity}/{_label(name)}', value)

    def _float32(self, entity: str, msg) -> None:
        self._scalar(entity, msg.data)

    def _flag(self, entity: str, msg) -> None:
        self._scalar(entity, 1.0 if msg.data else 0.0)

    def _path(self, entity: str, msg) -> None:
        points = [(p.pose.position.x, p.pose.position.y, p.pose.position.z) for p in msg.poses]
        self.stream.log(entity, self.rr.LineStrips3D([points] if points else [],
                                                     colors=[(255, 140, 0)], radii=-2.5))

    def _markers(self, entity: str, msg) -> None:
        strips, colors = [], []
        for marker in msg.markers:
            strips.append([(p.x, p.y, p.z) for p in marker.points])
            c = marker.color
            colors.append([int(255 * min(max(v, 0.0), 1.0)) for v in (c.r, c.g, c.b, c.a)])
        self.stream.log(entity, self.rr.LineStrips3D(strips, colors=colors or None,
                                                     radii=-1.5))

    def _pose(self, entity: str, msg) -> None:
        p = msg.pose.position
        colour = {'world/goal': (40, 200, 60), 'world/robot': (30, 110, 255)}.get(
            entity, (220, 50, 50))
        self.stream.log(entity, self.rr.Points3D([(p.x, p.y, p.z)], colors=[colour],
                                                 radii=-6.0))

    def _odometry(self, entity: str, msg) -> None:
        p, twist = msg.pose.pose.position, msg.twist.twist
        values = {'x': p.x, 'y': p.y, 'yaw': messages.yaw_of(msg.pose.pose.orientation),
                  'v': twist.linear.x, 'omega': twist.angular.z}
        for name, value in values.items():
            self._scalar(f'{entity}/{name}', value)

    def _joints(self, entity: str, msg) -> None:
        for k, name in enumerate(msg.name):
            if k < len(msg.position):
                self._scalar(f'{entity}/position/{_label(name)}', msg.position[k])
            if k < len(msg.velocity):
                self._scalar(f'{entity}/velocity/{_label(name)}', msg.velocity[k])

    def _twist(self, entity: str, msg) -> None:
        twist = getattr(msg, 'twist', msg)
        for name, vector in (('linear', twist.linear), ('angular', twist.angular)):
            for axis in 'xyz':
                value = getattr(vector, axis)
                if value or (name, axis) in (('linear', 'x'), ('angular', 'z')):
                    self._scalar(f'{entity}/{name}.{axis}', value)

    def _episode(self, entity: str, msg):
        if entity != 'episodes':  # other strings (ground truth, profiles) are not shown
            return False
        try:
            marker = json.loads(msg.data)
        except (TypeError, ValueError):
            return False
        if not isinstance(marker, dict):
            return False
        event = marker.get('event')
        head = f'episode {marker.get("episode")} {event}'
        if event == 'end':
            outcome = 'success' if marker.get('success') else (
                marker.get('failure') or 'time limit')
            text = (f'{head}: {outcome}, {marker.get("steps")} steps, return '
                    f'{float(marker.get("return", 0.0)):.2f}')
            self._scalar(f'{entity}/success', 1.0 if marker.get('success') else 0.0)
            self._scalar(f'{entity}/return', float(marker.get('return', 0.0)))
            level = 'INFO' if marker.get('success') else 'WARN'
        else:
            text = f'{head} (task {marker.get("task")}, seed {marker.get("seed")})'
            level = 'INFO'
        self.stream.log(entity, self.rr.TextLog(text, level=level))
        return None

    def _diagnostics(self, entity: str, msg) -> None:
        levels = {0: 'INFO', 1: 'WARN', 2: 'ERROR', 3: 'WARN'}
        for status in msg.status:
            node = status.name.split(':', 1)[0].strip()
            level = int(status.level[0] if isinstance(status.level, bytes) else status.level)
            values = {kv.key: kv.value for kv in status.values}
            if node == GATE:
                target = 'safety/gate'
                self._scalar(f'{target}/level', level)
            else:
                target = f'{entity}/{_label(node)}'
            self.stream.log(target, self.rr.TextLog(f'{status.name}: {status.message}',
                                                    level=levels.get(level, 'INFO')))
            if node == COST_NODE:
                for key, value in values.items():
                    if key.startswith('cost.'):
                        try:
                            self._scalar(f'cost/terms/{_label(key[5:])}', float(value))
                        except ValueError:
                            pass


HANDLERS = {
    'sensor_msgs/msg/Image': TopicLogger._image,
    'std_msgs/msg/Float32MultiArray': TopicLogger._state,
    'std_msgs/msg/Float32': TopicLogger._float32,
    'std_msgs/msg/Bool': TopicLogger._flag,
    'nav_msgs/msg/Path': TopicLogger._path,
    'visualization_msgs/msg/MarkerArray': TopicLogger._markers,
    'geometry_msgs/msg/PoseStamped': TopicLogger._pose,
    'nav_msgs/msg/Odometry': TopicLogger._odometry,
    'sensor_msgs/msg/JointState': TopicLogger._joints,
    'geometry_msgs/msg/Twist': TopicLogger._twist,
    'geometry_msgs/msg/TwistStamped': TopicLogger._twist,
    'std_msgs/msg/String': TopicLogger._episode,
    'diagnostic_msgs/msg/DiagnosticArray': TopicLogger._diagnostics,
}


def message_stamp(msg, fallback_ns: int) -> int:
    """The header stamp of `msg` in ns, else `fallback_ns` (receipt or log time).

    Also `fallback_ns` where the header is on another clock (wall clock against simulation
    time: a simulator's own diagnostics in a graph on ``/clock``), so that one timeline holds.
    """
    header = getattr(msg, 'header', None)
    if header is None and hasattr(msg, 'markers') and msg.markers:
        header = msg.markers[0].header
    if header is not None:
        stamp = messages.stamp_to_ns(header.stamp)
        if stamp > 0 and (stamp >= WALL_CLOCK_NS) == (fallback_ns >= WALL_CLOCK_NS):
            return stamp
    return int(fallback_ns)
