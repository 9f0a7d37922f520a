"""The live `view` node on its own ROS domain: the graph's topics in, an .rrd file out.

A probe publishes one of each topic the node subscribes to (camera, depth, state, plan,
imagined rollouts, costs, e-stop, gate and cost-critic diagnostics, episode markers, the
command) a few times; the node, stopped with SIGINT, must exit 0 without a traceback and its
recording must hold every stream. The domain is claimed like test/nodes/conftest.py does.
"""
from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ros_processes import claim_domain
from view_support import NO_RERUN, rrd_entities

pytestmark = pytest.mark.ros
pytest.importorskip('rerun', reason=NO_RERUN)


def _messages(stamp_ns: int) -> dict:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import Point, Twist
    from std_msgs.msg import Bool, Float32, String
    from visualization_msgs.msg import Marker, MarkerArray

    from hlai_ros import contract as c
    from hlai_ros.data import messages
    from hlai_ros.nodes.convert import planar_path, state_message, to_cdr

    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[4:12, 4:12] = (250, 40, 40)
    status = [DiagnosticStatus(level=DiagnosticStatus.OK, name='command_gate: gate',
                               message='passing', values=[]),
              DiagnosticStatus(level=DiagnosticStatus.OK, name='cost_critic: cost and critic',
                               message='ok', values=[KeyValue(key='cost.cliff', value='2.0')])]
    return {
        c.CAMERA_RGB: to_cdr(messages.rgb_image(rgb, stamp_ns, c.CAMERA_FRAME),
                             c.CAMERA_RGB.msgtype),
        c.CAMERA_DEPTH: to_cdr(messages.depth_image(np.full((16, 16), 1.5, np.float32),
                                                    stamp_ns, c.CAMERA_FRAME),
                               c.CAMERA_DEPTH.msgtype),
        c.STATE: state_message(('x', 'y', 'yaw'), np.array([0.1, 0.2, 0.3])),
        c.PLAN: planar_path([(0.0, 0.0), (0.2, 0.1)], stamp_ns, c.WORLD_FRAME),
        c.IMAGINED: MarkerArray(markers=[
            Marker(id=m, points=[Point(x=0.1 * k, y=0.05 * m) for k in range(4)])
            for m in range(4)]),
        c.COST: Float32(data=1.0), c.CRITIC: Float32(data=2.0), c.SURPRISE: Float32(data=0.3),
        c.ESTOP: Bool(data=False),
        c.DIAGNOSTICS: DiagnosticArray(status=status),
        c.EPISODE: String(data='{"event": "start", "episode": 0, "task": "cliff", "seed": 0}'),
        c.BASE_COMMAND: Twist(),
    }


def test_view_node_streams_the_graph_topics_and_stops_cleanly(tmp_path):
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from hlai_ros.nodes.convert import message_class, qos_profile

    domain = claim_domain(offset=37)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1',
               ROS_AUTOMATIC_DISCOVERY_RANGE=os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE',
                                                            'LOCALHOST'))
    out, log_path = tmp_path / 'live.rrd', tmp_path / 'view.log'
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'hlai_ros.nodes.view', '--ros-args', '-r', '__node:=view',
             '-p', 'task:=cliff', '-p', 'web:=false', '-p', f'save:={out}'],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node('view_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        first = _messages(0)
        pubs = {t: node.create_publisher(message_class(t.msgtype), t.name, qos_profile(t.qos))
                for t in first}
        deadline = time.monotonic() + 40
        while not all(p.get_subscription_count() for p in pubs.values()):
            assert proc.poll() is None, Path(log_path).read_text()
            assert time.monotonic() < deadline, 'the view node did not subscribe to ' + str(
                [t.name for t, p in pubs.items() if not p.get_subscription_count()])
            executor.spin_once(timeout_sec=0.1)
        for step in range(1, 4):
            for topic, msg in _messages(step * 100_000_000).items():
                pubs[topic].publish(msg)
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0, Path(log_path).read_text()
    finally:
        node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    text = Path(log_path).read_text()
    assert 'Traceback' not in text and f'streaming the graph to file {out}' in text, text
    rows = rrd_entities(out)
    for entity in ('/world/plan', '/world/imagined', '/cost/cost', '/cost/critic',
                   '/cost/surprise', '/cost/terms/cliff', '/safety/estop', '/safety/gate',
                   '/episodes', '/command/linear.x'):  # reliable, depth 10: all three
        assert rows.get(entity) == 3, (entity, rows)
    for entity in ('/camera/rgb', '/camera/depth', '/state/perceived/x'):  # depth 1 or 2
        assert rows.get(entity, 0) >= 1, (entity, rows)
