"""`hlai view`, the topic -> entity layout, and the view in the graph (no ROS graph runs here)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from view_support import NO_RERUN, rrd_entities

from hlai_ros.graph import GraphOptions, build, checked, options_from_launch
from hlai_ros.view.session import rerun_executable

HLAI = [sys.executable, '-m', 'hlai_ros.cli']
pytest.importorskip('rerun', reason=NO_RERUN)


def test_hlai_view_replays_a_bag_into_an_rrd_file(small_bag, tmp_path):
    out = tmp_path / 'replay.rrd'
    done = subprocess.run(HLAI + ['view', str(small_bag.parent), '--save', str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'-> file {out}' in done.stdout
    rows = rrd_entities(out)
    # two episodes of six steps: 2 x 7 frames, 2 x 6 commands, a start and an end marker each
    assert rows['/camera/rgb'] == rows['/camera/depth'] == 14, rows
    assert rows['/command/linear.x'] == 12, rows
    assert rows['/episodes'] == 4 and rows['/episodes/success'] == 2, rows
    assert any(e.startswith('/state/proprio/position/') for e in rows), rows
    assert '/world/goal' in rows, rows
    listing = subprocess.run([rerun_executable(), 'rrd', 'print', '-vv', str(out)],
                             capture_output=True, text=True, timeout=60).stdout
    assert 'index_name: ros_time' in listing  # the bag's own timeline


@pytest.mark.parametrize('args, message', [
    (['--save', 'x.txt'], '--save must name an .rrd file'),
    (['--web-port', '9090', '--grpc-port', '9090', '--web'], 'in use'),
])
def test_hlai_view_refuses_bad_arguments(small_bag, tmp_path, args, message):
    if '--web' in args:  # the same port twice: the second is in use by the first
        import socket
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = str(sock.getsockname()[1])
            args = [port if a == '9090' else a for a in args]
            done = subprocess.run(HLAI + ['view', str(small_bag), *args], capture_output=True,
                                  text=True, timeout=60)
    else:
        done = subprocess.run(HLAI + ['view', str(small_bag), *args], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert 'Traceback' not in done.stderr
    missing = subprocess.run(HLAI + ['view', str(tmp_path / 'nothing'), '--save',
                                     str(tmp_path / 'x.rrd')], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and 'no such bag' in missing.stderr


def test_the_live_layout_of_the_stack_topics(tmp_path):
    """Every stack topic the live node subscribes to lands on its entity."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import Point
    import rerun as rr
    from std_msgs.msg import Bool, Float32, String
    from visualization_msgs.msg import Marker, MarkerArray

    from hlai_ros import contract
    from hlai_ros.data import messages
    from hlai_ros.nodes.convert import planar_path, state_message
    from hlai_ros.tasks import get_task
    from hlai_ros.view.log import TopicLogger, live_topics

    names = {t.name for t in live_topics(get_task('cliff'))}
    assert {'/camera/image_raw', '/camera/depth/image_raw', '/hlai/state', '/hlai/plan',
            '/hlai/imagined', '/hlai/cost', '/hlai/critic', '/hlai/surprise', '/hlai/estop',
            '/hlai/episode', '/diagnostics', '/odom', '/cmd_vel'} <= names
    stream = rr.RecordingStream('hlai_test', make_default=False)
    path = tmp_path / 'live.rrd'
    stream.set_sinks(rr.FileSink(str(path)))
    logger = TopicLogger(stream)
    imagined = MarkerArray(markers=[Marker(points=[Point(x=0.1 * k, y=m * 0.1) for k in range(5)])
                                    for m in range(3)])
    diagnostics = DiagnosticArray(status=[
        DiagnosticStatus(level=DiagnosticStatus.WARN, name='command_gate: gate', message='estop',
                         values=[KeyValue(key='estop', value='True')]),
        DiagnosticStatus(level=DiagnosticStatus.OK, name='cost_critic: cost and critic',
                         message='ok', values=[KeyValue(key='cost.goal', value='0.5'),
                                               KeyValue(key='profile', value='{}')])])
    rgb = np.zeros((8, 8, 3), np.uint8)
    for stamp in range(1, 4):
        ns = stamp * 100_000_000
        for topic, msgtype, msg in [
                (contract.CAMERA_RGB.name, 'sensor_msgs/msg/Image',
                 messages.rgb_image(rgb, ns, 'camera')),
                (contract.CAMERA_DEPTH.name, 'sensor_msgs/msg/Image',
                 messages.depth_image(np.ones((8, 8), np.float32), ns, 'camera')),
                (contract.STATE.name, contract.STATE.msgtype,
                 state_message(('x', 'y'), np.array([0.1, 0.2]))),
                (contract.PLAN.name, contract.PLAN.msgtype,
                 planar_path([(0, 0), (0.1, 0.1)], ns, 'world')),
                (contract.IMAGINED.name, contract.IMAGINED.msgtype, imagined),
                (contract.COST.name, contract.COST.msgtype, Float32(data=1.5)),
                (contract.SURPRISE.name, contract.SURPRISE.msgtype, Float32(data=0.1)),
                (contract.ESTOP.name, contract.ESTOP.msgtype, Bool(data=True)),
                (contract.DIAGNOSTICS.name, contract.DIAGNOSTICS.msgtype, diagnostics),
                (contract.GROUND_TRUTH.name, 'std_msgs/msg/String', String(data='{}')),
                (contract.EPISODE.name, 'std_msgs/msg/String',
                 String(data='{"event": "end", "episode": 0, "success": true, "steps": 3}'))]:
            logger.log(topic, msgtype, msg, ns)
    stream.flush()
    stream.disconnect()
    rows = rrd_entities(path)
    for entity in ('/camera/rgb', '/camera/depth', '/state/perceived/x', '/world/plan',
                   '/world/imagined', '/cost/cost', '/cost/surprise', '/cost/terms/goal',
                   '/safety/estop', '/safety/gate', '/safety/gate/level', '/episodes',
                   '/episodes/success', '/status/cost_critic'):
        assert rows.get(entity) == 3, (entity, rows)
    assert not any('ground_truth' in e for e in rows)  # privileged data is not shown


def test_the_view_node_in_the_graph_and_the_launch_argument():
    plain = [s.name for s in build(GraphOptions(task='cliff'))]
    specs = checked(build(GraphOptions(task='cliff', view=True)), 'cliff')
    assert [s.name for s in specs] == plain + ['view']
    sim = next(s for s in specs if s.name == 'sim')
    assert 'view' in dict(sim.parameters)['wait_for_nodes']
    assert options_from_launch({'task': 'cliff', 'view': 'true'}).view is True
    assert options_from_launch({'task': 'cliff'}).view is False
    with pytest.raises(ValueError, match="view must be true or false; got 'maybe'"):
        options_from_launch({'task': 'cliff', 'view': 'maybe'})
    robot = checked(build(GraphOptions(task='cliff', target='robot', use_sim_time=False,
                                       view=True)), 'cliff')
    assert 'view' in [s.name for s in robot] and 'command_gate' in [s.name for s in robot]
    for node_parameters, message in [
            ((('view', 'web', False),), 'the view needs somewhere to go'),
            ((('view', 'web_port', 0),), 'web_port must be a TCP port'),
            ((('view', 'save', 'x.mp4'),), 'save must name an .rrd file'),
            ((('view', 'image_period', 1.0),), r"unknown parameters \['image_period'\]")]:
        with pytest.raises(ValueError, match=message):
            checked(build(GraphOptions(task='cliff', view=True,
                                       node_parameters=node_parameters)), 'cliff')


def test_hlai_run_view_option():
    from hlai_ros.cli import build_parser
    args = build_parser().parse_args(['run', '--task', 'cliff', '--view'])
    assert args.view is True
    assert build_parser().parse_args(['run', '--task', 'cliff']).view is False
