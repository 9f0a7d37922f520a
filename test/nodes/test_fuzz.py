"""Property-based fuzzing of the running nodes' subscribers (bad input).

Starts sim (cliff, lockstep), perception, command_gate, recorder, world_model, cost_critic,
mpc_actor and the scripted controller as real processes, then publishes hypothesis-generated
messages of every type they subscribe to, on every topic they subscribe to (``EXAMPLES`` each,
within ``FUZZ_S``): NaN/Inf in any float, wrong and odd encodings, width/height/step/data that
disagree, empty and huge images, depth in millimetres, stamps from 0 to far in the future,
foreign frames, goals anywhere. Afterwards every node must still be alive; sim, perception and
the gate must still do their job on valid input, the recorder's bag must open, the learned
nodes must still report on /diagnostics, and the guarded nodes (sim, perception, command_gate,
recorder) must have reported the faults there (their ``inputs`` status).
"""
import signal
import subprocess
import sys
import time

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

pytestmark = pytest.mark.ros
FUZZ_S = 20.0
"""Bound on the whole fuzzing, s (a loaded machine may publish fewer than EXAMPLES)."""
EXAMPLES = 40
"""Generated messages per topic."""
GATED = '/fuzz/gated_cmd_vel'

finite = st.floats(-10.0, 10.0, allow_nan=False)
specials = st.sampled_from([float('nan'), float('inf'), -float('inf'), 1e30, -1e30, 0.0])
anyfloat = st.one_of(*[finite] * 6, specials)
"""One float in seven special: about half of the multi-field messages reach the later checks
(stamps, frames, sizes) instead of all stopping at NaN."""
frames = st.sampled_from(['world', '', 'odom', 'map', 'camera_optical_frame', 'base_link',
                          '/world', 'ünïcode frame'])
encodings = st.one_of(  # half of them valid, so that the size checks get their turn
    st.sampled_from(['rgb8', 'bgr8', 'rgba8', 'mono8', '32FC1', '16UC1', 'mono16']),
    st.sampled_from(['yuv422', 'bayer_rggb8', '', '64FC1', 'RGB8']))


def _stamp(draw, now_s: float):
    choice = draw(st.sampled_from(['now', 'zero', 'stale', 'future', 'far', 'jitter']))
    t = {'now': now_s, 'zero': 0.0, 'stale': now_s - 2.0, 'future': now_s + 30.0,
         'far': 2.0e9, 'jitter': now_s + draw(st.floats(-1.0, 1.0))}[choice]
    t = max(t, 0.0)
    return int(t), int((t % 1.0) * 1e9) % 1_000_000_000


@st.composite
def header(draw, now_s=0.0):
    """A std_msgs/Header with a fuzzed stamp and frame."""
    from std_msgs.msg import Header
    h = Header()
    h.stamp.sec, h.stamp.nanosec = _stamp(draw, now_s)
    h.frame_id = draw(frames)
    return h


@st.composite
def image(draw, now_s=0.0):
    """A sensor_msgs/Image whose parts may disagree."""
    from sensor_msgs.msg import Image
    m = Image(header=draw(header(now_s)), encoding=draw(encodings))
    kind = draw(st.sampled_from(['consistent', 'random', 'empty', 'huge', 'millimetres']))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    bpp = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, '32FC1': 4, '16UC1': 2, 'mono16': 2}.get(
        m.encoding, 1)
    if kind == 'consistent':
        m.width, m.height, m.step = w, h, w * bpp
        m.data = draw(st.binary(min_size=w * h * bpp, max_size=w * h * bpp))
    elif kind == 'random':
        m.width, m.height = draw(st.integers(0, 5000)), draw(st.integers(0, 5000))
        m.step = draw(st.integers(0, 2**20))
        m.data = draw(st.binary(max_size=4096))
    elif kind == 'empty':
        m.width, m.height, m.step, m.data = 0, 0, 0, b''
    elif kind == 'huge':
        m.width, m.height, m.step = 100_000, 100_000, 100_000 * bpp
        m.data = bytes(1024)
    else:  # a 32FC1 image holding millimetres
        m.encoding, m.width, m.height, m.step = '32FC1', w, h, 4 * w
        m.data = np.full((h, w), draw(st.floats(500.0, 9000.0)), '<f4').tobytes()
    m.is_bigendian = draw(st.integers(0, 1))
    return m


@st.composite
def camera_info(draw, now_s=0.0):
    """A sensor_msgs/CameraInfo with fuzzed sizes and intrinsics."""
    from sensor_msgs.msg import CameraInfo
    m = CameraInfo(header=draw(header(now_s)))
    m.width, m.height = draw(st.integers(0, 5000)), draw(st.integers(0, 5000))
    m.k = [draw(anyfloat) for _ in range(9)]
    m.d = draw(st.lists(anyfloat, max_size=8))
    m.distortion_model = draw(st.sampled_from(['plumb_bob', '', 'equidistant']))
    return m


@st.composite
def odometry(draw, now_s=0.0):
    """A nav_msgs/Odometry with fuzzed pose, twist and covariances."""
    from nav_msgs.msg import Odometry
    m = Odometry(header=draw(header(now_s)), child_frame_id=draw(frames))
    p = m.pose.pose
    p.position.x, p.position.y, p.position.z = (draw(anyfloat) for _ in range(3))
    o = p.orientation
    o.x, o.y, o.z, o.w = (draw(anyfloat) for _ in range(4))
    m.twist.twist.linear.x, m.twist.twist.angular.z = draw(anyfloat), draw(anyfloat)
    m.pose.covariance = [draw(anyfloat)] * 36
    return m


@st.composite
def pose(draw, now_s=0.0):
    """A geometry_msgs/PoseStamped anywhere (a goal)."""
    from geometry_msgs.msg import PoseStamped
    m = PoseStamped(header=draw(header(now_s)))
    m.pose.position.x, m.pose.position.y = draw(anyfloat), draw(anyfloat)
    m.pose.orientation.w = draw(anyfloat)
    return m


@st.composite
def transform(draw, now_s=0.0):
    """A geometry_msgs/TransformStamped (camera extrinsics)."""
    from geometry_msgs.msg import TransformStamped
    m = TransformStamped(header=draw(header(now_s)), child_frame_id=draw(frames))
    t, r = m.transform.translation, m.transform.rotation
    t.x, t.y, t.z = (draw(anyfloat) for _ in range(3))
    r.x, r.y, r.z, r.w = (draw(anyfloat) for _ in range(4))
    return m


@st.composite
def twist(draw):
    """A geometry_msgs/Twist with any values."""
    from geometry_msgs.msg import Twist
    m = Twist()
    m.linear.x, m.linear.y, m.angular.z = draw(anyfloat), draw(anyfloat), draw(anyfloat)
    return m


@st.composite
def state(draw):
    """A std_msgs/Float32MultiArray whose layout may not match its data."""
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension
    m = Float32MultiArray()
    labels = draw(st.lists(st.sampled_from(['x', 'y', 'yaw', 'v', 'ee_x', 'q', '']),
                           max_size=8))
    m.layout.dim = [MultiArrayDimension(label=n, size=1, stride=1) for n in labels]
    m.layout.data_offset = draw(st.sampled_from([0, 0, 3]))
    m.data = draw(st.lists(st.one_of(st.floats(-5, 5, width=32),
                                     st.sampled_from([float('nan'), float('inf')])),
                           max_size=10))
    return m


@st.composite
def text(draw):
    """A std_msgs/String: JSON-like episode markers or anything."""
    from std_msgs.msg import String
    return String(data=draw(st.one_of(
        st.text(max_size=64), st.sampled_from(['{"event": "start"}', '{"event": "end"}',
                                               '[]', '{"stamp_ns": "x"}', 'null']))))


def _start(cmd, log_path, env):
    return subprocess.Popen(cmd, stdout=open(log_path, 'wb'), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def test_fuzzed_messages_do_not_stop_any_node(tmp_path, probe, ros_env):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from geometry_msgs.msg import PoseStamped, TransformStamped, Twist
    from nav_msgs.msg import Odometry
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Bool, Float32MultiArray, String
    from std_srvs.srv import Trigger

    from hlai_ros.graph import params_file

    base = ['--ros-args', '--params-file', str(params_file('cliff')), '-p', 'task:=cliff']
    # a small planner for the actor (its start profile) and the configurator that publishes it
    small = ('planner.horizon', 8), ('planner.samples', 32), ('planner.iterations', 1)
    profile = tmp_path / 'small_profile.yaml'
    profile.write_text('cost_critic:\n  ros__parameters:\n'
                       + ''.join(f'    {k}: {v}\n' for k, v in small))
    nodes = {
        'sim': base + ['-p', 'republish_period_s:=0.5', '-p', 'seed:=4'],
        'perception': base + ['-p', 'use_sim_time:=true'],
        'command_gate': base + ['-r', f'/cmd_vel:={GATED}'],
        'recorder': base + ['-p', f'output:={tmp_path / "bag"}', '-p', 'use_sim_time:=true'],
        # the learned nodes: fuzzed on /hlai/state, /goal_pose, /hlai/episode, /hlai/estop and
        # the command topic; the actor's own commands kept away from the lockstep sim
        'world_model': base + ['-p', f'output_dir:={tmp_path / "online"}'],
        'cost_critic': base + [a for k, v in small for a in ('-p', f'{k}:={v}')],
        'mpc_actor': base + ['-r', '/cmd_vel:=/fuzz/actor_cmd_vel',
                             '-p', f'profile_file:={profile}'],
        # the privileged baseline: fuzzed on /hlai/episode and /ground_truth/state
        'scripted_controller': base + ['-r', '/cmd_vel:=/fuzz/scripted_cmd_vel'],
    }
    procs = {name: _start([sys.executable, '-m', f'hlai_ros.nodes.{name}'] + args,
                          tmp_path / f'{name}.log', ros_env) for name, args in nodes.items()}
    try:
        from rosgraph_msgs.msg import Clock
        got = {k: [] for k in ('state', 'odom', 'gated', 'diag', 'clock')}
        # the probe also hears its own fuzzing: keep only the nodes' messages
        probe.create_subscription(Float32MultiArray, '/hlai/state', lambda m: got['state'].append(
            m) if 'goal_x' in [d.label for d in m.layout.dim] else None, 10)
        probe.create_subscription(Odometry, '/odom', lambda m: got['odom'].append(m) if (
            m.header.frame_id, m.child_frame_id) == ('odom', 'base_link') else None, 10)
        probe.create_subscription(Clock, '/clock', got['clock'].append, 10)
        probe.create_subscription(Twist, GATED, got['gated'].append, 10)
        probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 100)
        probe.spin_until(lambda: got['state'] and got['odom'] and got['clock'], 60,
                         'the graph running')

        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        pubs = {topic: probe.create_publisher(cls, topic, qos) for topic, cls, qos in (
            ('/camera/image_raw', Image, 10), ('/camera/depth/image_raw', Image, 10),
            ('/camera/camera_info', CameraInfo, 10), ('/odom', Odometry, 10),
            ('/goal_pose', PoseStamped, latched), ('/hlai/camera_extrinsics',
                                                     TransformStamped, latched),
            ('/hlai/episode', String, 10), ('/cmd_vel', Twist, 10),
            ('/hlai/actor_command', Twist, 10), ('/hlai/state', Float32MultiArray, 10),
            ('/hlai/estop', Bool, 10), ('/ground_truth/state', String, 10))}
        # every fuzzed topic matched first (on a loaded machine the gate's subscriptions could
        # be discovered after its topics were fuzzed, and it would have nothing to report)
        probe.spin_until(lambda: all(p.get_subscription_count() for p in pubs.values()), 30,
                         'the subscribers of every fuzzed topic')

        def sim_now():
            clock = got['clock'][-1].clock
            return clock.sec + 1e-9 * clock.nanosec

        streams = [  # commands first: they step the lockstep sim, so stamps can be stale
            ('/cmd_vel', twist), ('/camera/image_raw', lambda: image(sim_now())),
            ('/camera/depth/image_raw', lambda: image(sim_now())),
            ('/camera/camera_info', lambda: camera_info(sim_now())),
            ('/odom', lambda: odometry(sim_now())), ('/goal_pose', lambda: pose(sim_now())),
            ('/hlai/camera_extrinsics', lambda: transform(sim_now())),
            ('/hlai/episode', text), ('/ground_truth/state', text),
            ('/hlai/actor_command', twist),
            ('/hlai/state', state),
            ('/hlai/estop', lambda: st.builds(Bool, data=st.booleans()))]
        counts = {}

        def fuzzer(topic, strategy, stop):
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(strategy)
            def publish(msg):
                if time.monotonic() > stop:
                    return
                pubs[topic].publish(msg)
                counts[topic] = counts.get(topic, 0) + 1
                probe.spin_for(0.004)
            return publish

        end = time.monotonic() + FUZZ_S
        for topic, strategy in streams:
            fuzzer(topic, strategy(), end)()
        fuzz_s = FUZZ_S - (end - time.monotonic())
        alive_after_fuzz = {name: p.poll() is None for name, p in procs.items()}
        n_diag = len(got['diag'])

        # still working on valid input ---------------------------------------------------
        client = probe.create_client(Trigger, '/command_gate/release_estop')
        assert client.wait_for_service(timeout_sec=10)
        probe.spin_for(0.6)  # the e-stop hold time after the last fuzzed True
        future = client.call_async(Trigger.Request())
        probe.spin_until(future.done, 10, 'the e-stop release')
        n_state, n_odom = len(got['state']), len(got['odom'])
        command = Twist()
        command.linear.x = 0.1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                len(got['odom']) > n_odom + 2 and len(got['state']) > n_state + 2
                and any(m.linear.x > 0 for m in got['gated'][-5:])):
            from std_msgs.msg import MultiArrayDimension
            position = Float32MultiArray(data=[0.0, 0.0, 0.0])
            position.layout.dim = [MultiArrayDimension(label=n, size=1, stride=1)
                                   for n in ('x', 'y', 'yaw')]
            pubs['/hlai/state'].publish(position)
            pubs['/cmd_vel'].publish(command)
            pubs['/hlai/actor_command'].publish(command)
            probe.spin_for(0.1)
        learned = {'world_model', 'cost_critic', 'mpc_actor'}
        probe.spin_until(lambda: learned <= {s.name.split(':')[0] for d in got['diag'][n_diag:]
                                             for s in d.status}, 10, 'the learned nodes')
        alive_at_end = {name: p.poll() is None for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    logs = {name: (tmp_path / f'{name}.log').read_text(errors='replace')[-3000:]
            for name in procs}
    assert all(alive_after_fuzz.values()), {n: logs[n] for n, a in alive_after_fuzz.items()
                                            if not a}
    assert all(alive_at_end.values()), alive_at_end
    assert counts.pop('/hlai/estop') == 2, 'both e-stop values'  # all there is to generate
    assert len(counts) == len(streams) - 1 and min(counts.values()) >= EXAMPLES // 2, counts
    assert len(got['odom']) > n_odom + 2, 'the sim no longer steps on valid commands'
    assert len(got['state']) > n_state + 2, 'perception no longer estimates valid frames'
    assert any(m.linear.x > 0 for m in got['gated']), 'the gate no longer passes commands'
    assert procs['recorder'].returncode == 0, logs['recorder']
    last = {}
    for d in got['diag']:
        for status in d.status:
            if status.name.endswith(': inputs'):
                last[status.name] = {kv.key: kv.value for kv in status.values}
    print(f'fuzz: messages published per topic in {fuzz_s:.1f} s', counts)
    for name, values in sorted(last.items()):
        print(f'fuzz: {name}', {k: v for k, v in values.items() if k.startswith('faults')})
    # every guarded node reported the bad input it refused on /diagnostics
    reported = {s.name.split(':')[0] for d in got['diag'] for s in d.status
                if s.name.endswith(': inputs') and s.level != DiagnosticStatus.OK}
    assert {'sim', 'perception', 'command_gate', 'recorder'} <= reported, reported
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / 'bag']) as reader:
        assert sum(c.msgcount for c in reader.connections) > 100
