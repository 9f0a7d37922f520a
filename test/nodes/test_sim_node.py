"""The sim node in a real process: contract types, frames, encodings, stamps; reset; params."""
import json

import numpy as np
import pytest

from hlai_ros.data import messages

pytestmark = pytest.mark.ros


def _collect(probe):
    from geometry_msgs.msg import PoseStamped, TransformStamped
    from nav_msgs.msg import Odometry
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    got = {k: [] for k in ('rgb', 'depth', 'info', 'odom', 'clock', 'episode', 'gt', 'goal',
                           'extrinsics')}
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    for key, cls, topic, qos in (
            ('rgb', Image, '/camera/image_raw', 10),
            ('depth', Image, '/camera/depth/image_raw', 10),
            ('info', CameraInfo, '/camera/camera_info', 10), ('odom', Odometry, '/odom', 10),
            ('clock', Clock, '/clock', 10), ('episode', String, '/hlai/episode', 100),
            ('gt', String, '/ground_truth/state', 10),
            ('goal', PoseStamped, '/goal_pose', latched),
            _extrinsics(TransformStamped, latched)):
        probe.create_subscription(cls, topic, lambda m, k=key: got[k].append(m), qos)
    return got


def _extrinsics(transform_stamped, qos):
    """Subscribe where the sim puts the extrinsics: /tf_static if tf2_msgs is installed."""
    from hlai_ros.nodes.convert import has_message, message_class
    if has_message('tf2_msgs/msg/TFMessage'):
        return 'extrinsics', message_class('tf2_msgs/msg/TFMessage'), '/tf_static', qos
    return 'extrinsics', transform_stamped, '/hlai/camera_extrinsics', qos


def test_sim_lockstep_contract_reset_and_parameters(probe, start_node):
    from geometry_msgs.msg import Twist
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    got = _collect(probe)
    command = probe.create_publisher(Twist, '/cmd_vel', 10)
    sim = start_node('sim', 'cliff', 'seed:=3', f'wait_for_nodes:=[{probe.get_name()}]')
    probe.spin_until(lambda: got['gt'], 40, 'the first observation')

    # lockstep: exactly one new observation per command
    steps = 5
    for k in range(steps):
        n = len(got['gt'])
        msg = Twist()
        msg.linear.x = 0.3
        command.publish(msg)
        probe.spin_until(lambda: len(got['gt']) > n and len(got['odom']) > n
                         and len(got['rgb']) > n, 10, f'observation {k + 1}')
    probe.spin_until(lambda: len(got['depth']) >= steps + 1 and len(got['info']) >= steps + 1,
                     5, 'depth and camera_info')
    assert len(got['rgb']) == steps + 1, 'lockstep published without a command'

    stamps = [messages.stamp_to_ns(m.header.stamp) for m in got['rgb']]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), stamps
    assert stamps[0] > 0
    assert [messages.stamp_to_ns(m.clock) for m in got['clock']][:steps + 1] == stamps
    for rgb, depth, info, odom in zip(got['rgb'], got['depth'], got['info'], got['odom']):
        t = messages.stamp_to_ns(rgb.header.stamp)
        assert messages.stamp_to_ns(depth.header.stamp) == t
        assert messages.stamp_to_ns(info.header.stamp) == t
        assert messages.stamp_to_ns(odom.header.stamp) == t
        assert rgb.header.frame_id == depth.header.frame_id == info.header.frame_id \
            == 'camera_optical_frame'
        assert (rgb.encoding, depth.encoding) == ('rgb8', '32FC1')
        assert (info.width, info.height) == (rgb.width, rgb.height) == (depth.width, depth.height)
        assert rgb.step == 3 * rgb.width and depth.step == 4 * depth.width
        d = messages.image_to_depth(depth)
        assert d.dtype == np.float32 and np.all((d >= 0) & (d < 10)), 'depth not in metres'
        assert odom.header.frame_id == 'odom' and odom.child_frame_id == 'base_link'
    start = json.loads(got['episode'][0].data)
    assert start['event'] == 'start' and start['seed'] == 3 and start['task'] == 'cliff'
    assert got['goal'][0].header.frame_id == 'world'
    tf = getattr(got['extrinsics'][0], 'transforms', got['extrinsics'])[0]
    assert tf.header.frame_id == 'world' and tf.child_frame_id == 'camera_optical_frame'
    # the robot was commanded forward: odometry x grows
    xs = [m.pose.pose.position.x for m in got['odom']]
    yaw = messages.yaw_of(got['odom'][0].pose.pose.orientation)
    assert (xs[-1] - xs[0]) * np.cos(yaw) > 0.01

    # a goal on /goal_pose (world frame) moves the episode's goal
    from geometry_msgs.msg import PoseStamped
    goal_pub = probe.create_publisher(PoseStamped, '/goal_pose', 10)
    new_goal = np.asarray(json.loads(got['gt'][-1].data)['goal']) + [0.2, -0.1]
    goal = PoseStamped()
    goal.header.frame_id = 'world'
    goal.pose.position.x, goal.pose.position.y = (float(v) for v in new_goal)
    probe.spin_until(lambda: goal_pub.get_subscription_count() > 0, 10, 'the sim on /goal_pose')
    goal_pub.publish(goal)
    probe.spin_for(0.5)
    n = len(got['gt'])
    command.publish(Twist())
    probe.spin_until(lambda: len(got['gt']) > n, 10, 'the step after the goal')
    assert np.allclose(json.loads(got['gt'][-1].data)['goal'], new_goal, atol=1e-5)
    steps += 1

    # bad input is refused: a goal off the platform, one in another frame, a NaN command
    for frame, x in (('world', 100.0), ('map', float(new_goal[0]) - 0.1)):
        goal.header.frame_id, goal.pose.position.x = frame, x
        goal_pub.publish(goal)
    nan = Twist()
    nan.linear.x = float('nan')
    n = len(got['gt'])
    command.publish(nan)
    probe.spin_for(0.5)
    assert len(got['gt']) == n, 'a NaN command stepped the world'
    command.publish(Twist())
    probe.spin_until(lambda: len(got['gt']) > n, 10, 'the step after the bad input')
    assert np.allclose(json.loads(got['gt'][-1].data)['goal'], new_goal, atol=1e-5)
    steps += 1

    # reset: ends the episode, starts the next seeded one
    client = probe.create_client(Trigger, '/sim/reset')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    probe.spin_until(future.done, 10, 'the reset service')
    assert future.result().success, future.result().message
    probe.spin_until(lambda: len(got['episode']) >= 3, 10, 'end and start markers')
    end, restart = (json.loads(m.data) for m in got['episode'][1:3])
    assert end['event'] == 'end' and end['interrupted'] == 'reset' and end['steps'] == steps
    assert restart['event'] == 'start' and restart['episode'] == 1 and restart['seed'] == 4

    # parameters: invalid values are refused with the reason; valid ones switch the mode
    params = probe.create_client(SetParameters, '/sim/set_parameters')
    assert params.wait_for_service(timeout_sec=10)

    def set_param(name, value):
        parameter = Parameter(name, value=value).to_parameter_msg()
        request = SetParameters.Request(parameters=[parameter])
        future = params.call_async(request)
        probe.spin_until(future.done, 10, f'setting {name}')
        return future.result().results[0]

    bad = set_param('mode', 'fast')
    assert not bad.successful and "'lockstep' or 'realtime'" in bad.reason
    bad = set_param('real_time_factor', -1.0)
    assert not bad.successful and 'real_time_factor must be > 0' in bad.reason
    assert not set_param('seed', 7).successful  # read-only
    assert set_param('real_time_factor', 5.0).successful
    assert set_param('mode', 'realtime').successful
    n = len(got['rgb'])
    probe.spin_until(lambda: len(got['rgb']) >= n + 5, 20, 'realtime steps without commands')
    assert sim.poll() is None


def test_realtime_holds_the_command_then_stops_after_the_timeout(probe, start_node):
    import time

    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from std_msgs.msg import String

    odom, markers, diagnostics = [], [], []
    probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    probe.create_subscription(Odometry, '/odom', odom.append, 10)
    probe.create_subscription(String, '/hlai/episode', markers.append, 10)
    command = probe.create_publisher(Twist, '/cmd_vel', 10)
    start_node('sim', 'cliff', 'mode:=realtime', 'real_time_factor:=2.0',
               'command_timeout_s:=0.5', 'max_steps:=1000', 'seed:=2',
               f'wait_for_nodes:=[{probe.get_name()}]')
    probe.spin_until(lambda: len(odom) >= 3, 40, 'realtime odometry without commands')
    assert all(abs(m.twist.twist.linear.x) < 0.02 for m in odom), 'moved with no command'

    msg = Twist()
    msg.linear.x = 0.3
    first = len(odom)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # a command every 0.05 s wall (0.1 s simulated < timeout)
        command.publish(msg)
        probe.spin_for(0.05)
    driving = max(m.twist.twist.linear.x for m in odom[first:])
    n = len(odom)
    probe.spin_until(lambda: len(odom) >= n + 15, 15, 'steps after the last command')
    stopped = odom[-1].twist.twist.linear.x
    assert [json.loads(m.data)['event'] for m in markers] == ['start'], 'episode ended early'
    assert driving > 0.15, f'held command did not drive the base (v = {driving})'
    assert abs(stopped) < 0.03, f'still moving {stopped} m/s after the command timeout'
    statuses = [s for d in diagnostics for s in d.status if s.name == 'sim: simulation']
    assert statuses and {kv.key: kv.value for kv in statuses[-1].values}['mode'] == 'realtime'
