"""Deployment: the robot graph (perception + command_gate) against a stand-in driver process.

The driver (test/nodes/standin_driver.py) publishes only what real drivers do (odometry,
RGB-D, camera_info, with latency and noise; no ground truth) and records every command it
receives. The test plays the controller on the gate's input and checks, from the driver's
record, that the limits held, that the watchdog zeroed the commands after the controller fell
silent, and that the e-stop latched until released; and that the gate's limits cannot be
changed while it runs.
"""
import importlib.util
import json
from pathlib import Path
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from ros_processes import stop_processes

from hlai_ros.graph import GATE_INPUT, GraphOptions, build, params_file
from hlai_ros.runner import node_command

pytestmark = pytest.mark.ros
HERE = Path(__file__).resolve().parent
MAX_V, MAX_W, ACC_V, ACC_W, TIMEOUT_S, HZ = 0.3, 0.8, 1.0, 2.0, 0.3, 10.0
BOX = 0.4  # workspace half size around the start, m


def _start(cmd, log_path, env):
    log = open(log_path, 'wb')
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _events(path, kind):
    lines = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    return [e for e in lines if e['kind'] == kind]


def robot_specs():
    """Perception and command_gate of the robot graph (cliff), as robot.launch.py builds it."""
    specs = build(GraphOptions(task='cliff', target='robot', controller='none',
                               use_sim_time=False))
    return [s for s in specs if s.name in ('perception', 'command_gate')]


def test_robot_graph_always_has_the_gate_and_routes_the_actor_through_it():
    launch = HERE.parents[1] / 'launch' / 'robot.launch.py'
    stubs = {n: types.ModuleType(n) for n in ('launch', 'launch.actions', 'launch_ros',
                                              'launch_ros.actions')}
    stubs['launch'].LaunchDescription = list
    stubs['launch.actions'].DeclareLaunchArgument = lambda name, **kw: ('arg', name, kw)
    stubs['launch.actions'].OpaqueFunction = lambda function: ('fn', function)
    stubs['launch_ros.actions'].Node = lambda **kw: kw
    saved = {n: sys.modules.get(n) for n in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location('robot_launch', launch)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        actions = module.generate_launch_description()
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    args = {a[1]: a[2]['default_value'] for a in actions if a[0] == 'arg'}
    for controller in ('none', 'mpc'):
        ctx = types.SimpleNamespace(launch_configurations=dict(
            args, task='cliff', controller=controller, command='/base/cmd_vel'))
        nodes = {n['name']: n for a in actions if a[0] == 'fn' for n in a[1](ctx)}
        assert 'sim' not in nodes and 'scripted_controller' not in nodes
        gate = nodes['command_gate']
        assert ('/cmd_vel', '/base/cmd_vel') in gate['remappings']
        assert gate['parameters'][1]['use_sim_time'] is False
        if 'mpc_actor' in nodes:  # the actor's command goes to the gate, never to the robot
            assert nodes['mpc_actor']['remappings'][0] == ('/cmd_vel', GATE_INPUT)


def test_gate_on_a_standin_robot(tmp_path, probe, ros_env):
    from geometry_msgs.msg import Twist
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from std_msgs.msg import Bool, Float32MultiArray
    from std_srvs.srv import Trigger

    record = tmp_path / 'driver.jsonl'
    procs = [_start([sys.executable, str(HERE / 'standin_driver.py'), '--record', str(record)],
                    tmp_path / 'driver.log', ros_env)]
    try:
        deadline = time.monotonic() + 60
        while not (record.exists() and _events(record, 'start')):
            assert time.monotonic() < deadline and procs[0].poll() is None, 'driver did not start'
            time.sleep(0.2)
        x0, y0, yaw0 = _events(record, 'start')[0]['pose']
        box = ([x0 - BOX, y0 - BOX], [x0 + BOX, y0 + BOX])
        for spec in robot_specs():
            cmd = node_command(spec, params_file('cliff'))
            if spec.name == 'command_gate':
                cmd += ['-p', f'max_velocity:=[{MAX_V}, {MAX_W}]',
                        '-p', f'max_acceleration:=[{ACC_V}, {ACC_W}]',
                        '-p', f'command_timeout_s:={TIMEOUT_S}', '-p', f'control_hz:={HZ}',
                        '-p', f'workspace_lower:={box[0]}', '-p', f'workspace_upper:={box[1]}']
            procs.append(_start(cmd, tmp_path / f'{spec.name}.log', ros_env))

        states = []
        probe.create_subscription(Float32MultiArray, '/hlai/state', states.append, 10)
        goal_pub = probe.publish_goal(x0 + 1.0, y0)  # noqa: F841 - kept alive
        actor = probe.create_publisher(Twist, GATE_INPUT, 10)
        estop = probe.create_publisher(Bool, '/hlai/estop', 10)
        probe.spin_until(lambda: states and actor.get_subscription_count() > 0, 60,
                         'perception state and the gate')

        def drive(v, w, seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                msg = Twist()
                msg.linear.x, msg.angular.z = v, w
                actor.publish(msg)
                probe.spin_for(1.0 / HZ)
            return time.time()

        # 1. too fast, straight out of the box; one NaN command among them
        t_start = time.time()
        drive(2.0, 0.0, 1.0)
        drive(float('nan'), 0.0, 0.1)
        drive(2.0, 0.0, 2.0)
        # 2. turning while the forward motion is cut at the edge
        t_silent = drive(2.0, 3.0, 1.0)
        # 3. silence: the watchdog
        probe.spin_for(1.5)
        # 4. e-stop latches; False does not release; release refused while held, then works
        t_estop = time.time()
        estop.publish(Bool(data=True))
        client = probe.create_client(Trigger, '/command_gate/release_estop')
        assert client.wait_for_service(timeout_sec=10)

        def release():
            future = client.call_async(Trigger.Request())
            probe.spin_until(future.done, 10, 'the release service')
            return future.result()
        probe.spin_for(0.1)
        held = release()
        drive(0.0, 0.5, 0.5)
        estop.publish(Bool(data=False))
        t_released_attempt = drive(0.0, 0.5, 0.8)
        released = release()
        t_released = time.time()
        drive(0.0, 0.5, 0.8)

        # 5. the limits cannot be changed while the gate runs
        params = probe.create_client(SetParameters, '/command_gate/set_parameters')
        assert params.wait_for_service(timeout_sec=10)
        refusals = []
        for name, value in (('max_velocity', [5.0, 5.0]), ('command_timeout_s', 100.0),
                            ('workspace_lower', [-100.0, -100.0])):
            future = params.call_async(SetParameters.Request(
                parameters=[Parameter(name, value=value).to_parameter_msg()]))
            probe.spin_until(future.done, 10, f'setting {name}')
            refusals.append(future.result().results[0])
        alive = [p.poll() is None for p in procs]
    finally:
        stop_processes(procs)

    assert all(alive), 'a process died: ' + ', '.join(
        (tmp_path / f).read_text()[-2000:] for f in ('driver.log',))
    cmds = _events(record, 'cmd')
    poses = _events(record, 'pose')
    assert cmds, 'the driver received no command'
    v = np.array([c['v'] for c in cmds])
    w = np.array([c['w'] for c in cmds])
    t = np.array([c['t'] for c in cmds])
    # limits: velocity, acceleration (the gate's dt is at most two periods), finite
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(w))
    assert np.max(np.abs(v)) <= MAX_V + 1e-6 and np.max(np.abs(w)) <= MAX_W + 1e-6
    assert np.max(v) > 0.9 * MAX_V, 'the command never reached the velocity limit'
    for k, (values, acc) in enumerate(((v, ACC_V), (w, ACC_W))):
        step = np.abs(np.diff(values))[values[1:] != 0]  # stops may be immediate
        assert np.all(step <= acc * 2 / HZ + 1e-6), f'component {k} jumped by {step.max()}'
    # workspace: forward motion was cut at the edge; the robot stayed (nearly) inside
    phase1 = (t > t_start) & (t < t_silent)
    assert np.any(phase1 & (v == 0) & (t > t_start + 1.5)), 'forward motion never cut'
    xy = np.array([p['pose'][:2] for p in poses])
    overshoot = np.max(np.maximum(box[0] - xy, xy - box[1]))
    assert overshoot < 0.1, f'left the workspace by {overshoot:.3f} m'
    # turning was still allowed while the forward motion was cut
    assert np.any((t > t_silent - 1.0) & (t < t_silent) & (w > 0.5))
    # watchdog: zero within the timeout (plus scheduling slack), zero from then on
    after = (t > t_silent) & (t < t_estop)
    zeros = after & (v == 0) & (w == 0)
    assert zeros.any(), 'no zero command after the controller fell silent'
    assert t[zeros][0] - t_silent < TIMEOUT_S + 0.5
    late = after & (t > t_silent + TIMEOUT_S + 0.5)
    assert late.sum() >= 5 and np.all(v[late] == 0) and np.all(w[late] == 0)
    # e-stop: latched through False, released only by the service (after the hold time)
    assert not held.success and 'held' in held.message
    latched_span = (t > t_estop + 0.3) & (t < t_released_attempt)
    assert latched_span.sum() >= 5 and np.all(w[latched_span] == 0)
    assert released.success, released.message
    assert np.any((t > t_released) & (w > 0)), 'commands did not resume after the release'
    # parameters
    for result in refusals:
        assert not result.successful and 'read-only' in result.reason


def test_gate_in_lockstep_invents_no_command_until_the_controller_is_gone(probe):
    """In lockstep every command steps the simulator: silence alone must not produce one."""
    from geometry_msgs.msg import Twist
    import rclpy
    from rclpy.parameter import Parameter

    from hlai_ros.nodes.command_gate import CommandGateNode

    gate = CommandGateNode(parameter_overrides=[
        Parameter('task', value='cliff'), Parameter('lockstep', value=True),
        Parameter('command_timeout_s', value=0.2)])
    out = []
    probe.create_subscription(Twist, '/cmd_vel', out.append, 10)
    controller = rclpy.create_node('lockstep_controller')
    actor = controller.create_publisher(Twist, GATE_INPUT, 10)

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for node in (probe, gate, controller):
                rclpy.spin_once(node, timeout_sec=0.01)
    try:
        deadline = time.monotonic() + 10
        while actor.get_subscription_count() == 0 or gate.count_publishers(GATE_INPUT) == 0:
            assert time.monotonic() < deadline, 'gate and controller did not meet'
            spin(0.05)
        spin(0.5)
        assert out == [], 'the gate published before any command'
        msg = Twist()
        msg.angular.z = 0.5
        for _ in range(3):
            actor.publish(msg)
            spin(0.15)
        answered = len(out)
        spin(0.8)  # silent for four timeouts, the controller still there
        silent = len(out) - answered
        controller.destroy_node()
        spin(0.8)
        after_exit = out[answered:]
    finally:
        gate.destroy_node()
    assert answered == 3 and all(m.angular.z > 0 for m in out[:3]), 'one answer per command'
    assert silent == 0, 'the gate invented commands while the controller was alive'
    assert len(after_exit) == 1 and after_exit[0].angular.z == 0 and after_exit[0].linear.x == 0


def test_gate_for_the_arm_checks_frames_and_stamps_and_clips_the_twist(probe):
    """Push: MoveIt Servo style TwistStamped in, stamped and clipped out, workspace on ee."""
    from geometry_msgs.msg import TwistStamped
    import rclpy
    from rclpy.parameter import Parameter
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension

    from hlai_ros.nodes.command_gate import CommandGateNode

    gate = CommandGateNode(parameter_overrides=[
        Parameter('task', value='push'), Parameter('max_acceleration', value=[10.0, 10.0]),
        Parameter('workspace_lower', value=[0.26, -0.31]),
        Parameter('workspace_upper', value=[0.74, 0.31])])
    out = []
    probe.create_subscription(TwistStamped, '/servo_node/delta_twist_cmds', out.append, 10)
    actor = probe.create_publisher(TwistStamped, GATE_INPUT, 10)
    state = probe.create_publisher(Float32MultiArray, '/hlai/state', 10)

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for node in (probe, gate):
                rclpy.spin_once(node, timeout_sec=0.01)

    def send(vx, vy, frame='world', age_s=0.0, ee=(0.5, 0.0)):
        position = Float32MultiArray(data=[float(ee[0]), float(ee[1]), 0.4])
        position.layout.dim = [MultiArrayDimension(label=n, size=1, stride=1)
                               for n in ('ee_x', 'ee_y', 'obj_x')]
        msg = TwistStamped()
        msg.header.frame_id = frame
        msg.twist.linear.x, msg.twist.linear.y = vx, vy
        n = len(out)
        for _ in range(3):  # the acceleration limit ramps up from the stop before
            state.publish(position)
            spin(0.1)
            msg.header.stamp = (gate.get_clock().now()
                                - rclpy.duration.Duration(seconds=age_s)).to_msg()
            actor.publish(msg)
            spin(0.15)
        return [m for m in out[n:] if m.twist.linear.x or m.twist.linear.y]
    try:
        deadline = time.monotonic() + 10
        while actor.get_subscription_count() == 0:
            assert time.monotonic() < deadline, 'the gate did not appear'
            spin(0.05)
        ok = send(0.5, -0.05)[-1]
        foreign = send(0.1, 0.0, frame='map')
        stale = send(0.1, 0.0, age_s=5.0)
        at_edge = send(0.1, 0.1, ee=(0.735, 0.0))
        faults = dict(gate.guard.faults)
    finally:
        gate.destroy_node()
    assert ok.header.frame_id == 'world' and ok.twist.linear.x == pytest.approx(0.2)
    assert ok.twist.linear.y == pytest.approx(-0.05)
    assert foreign == [] and stale == [] and faults == {
        ('/hlai/actor_command', 'frame'): 3, ('/hlai/actor_command', 'stale'): 3}
    assert at_edge and at_edge[-1].twist.linear.x == 0.0
    assert at_edge[-1].twist.linear.y == pytest.approx(0.1)


@pytest.mark.parametrize('change, match', [
    ({'max_velocity': (0.5, 0.5)}, 'action range'), ({'max_velocity': (0.1,)}, 'action range'),
    ({'max_acceleration': (1.0, float('inf'))}, 'finite'),
    ({'command_timeout_s': 100.0}, 'command_timeout_s'), ({'position_timeout_s': 0.0}, '0, 2'),
    ({'workspace_lower': (0.0, 0.0)}, 'both'), ({'rate_hz': 0.0}, 'rate_hz'),
    ({'position_labels': ('x',)}, 'labels')])
def test_gate_limits_are_bounded_even_in_a_parameter_file(change, match):
    """A parameter file can tighten the limits, never remove or loosen them."""
    from hlai_ros.safety.command_gate import CommandGateConfig
    assert CommandGateConfig(task='push', max_velocity=(0.1, 0.2)).limits.max_velocity == (
        0.1, 0.2)
    with pytest.raises(ValueError, match=match):
        CommandGateConfig(task='push', **change)
