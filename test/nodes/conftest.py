"""Fixtures for tests that start real ROS 2 nodes in real processes over DDS.

Isolation: each test session claims its own ROS_DOMAIN_ID in 1..100 with an exclusive lock
file (``/tmp/hlai_ros_domain_<id>.lock``), starting from one derived from the process id, so
concurrent test runs (pytest-xdist workers, other checkouts) never share a domain; discovery
stays on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless the user set it). Every wait
has a timeout, and every process started here is killed at teardown.
"""
from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
import time
import types

import pytest
from ros_processes import claim_domain, stop_processes

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
CONFIG = Path(__file__).resolve().parents[2] / 'config'
DOMAIN_ID = claim_domain()
os.environ['ROS_DOMAIN_ID'] = str(DOMAIN_ID)


@pytest.fixture(scope='session')
def rclpy_context():
    """Rclpy initialised once in the test process (on this session's domain)."""
    import rclpy
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def probe(rclpy_context):
    """Yield a node in the test process that can spin and publish a goal.

    It has `spin_until(condition, timeout)`, `spin_for(s)` and `publish_goal(x, y)` (a latched
    /goal_pose).
    """
    from rclpy.node import Node

    node = Node(f'probe_{os.getpid()}')

    def spin_until(condition, timeout: float, what: str = 'condition'):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rclpy_context.spin_once(node, timeout_sec=0.05)
            if condition():
                return
        raise AssertionError(f'timed out after {timeout} s waiting for {what}')

    def spin_for(seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rclpy_context.spin_once(node, timeout_sec=min(0.02, seconds))

    def publish_goal(x: float = 0.0, y: float = 0.0, frame: str = 'world'):
        """Publish a latched /goal_pose at (x, y) m; return the publisher (keep it alive)."""
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import DurabilityPolicy, QoSProfile
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        publisher = node.create_publisher(PoseStamped, '/goal_pose', latched)
        goal = PoseStamped()
        goal.header.frame_id = frame
        goal.pose.position.x, goal.pose.position.y = float(x), float(y)
        publisher.publish(goal)
        return publisher

    node.spin_until = spin_until
    node.spin_for = spin_for
    node.publish_goal = publish_goal
    yield node
    node.destroy_node()


@pytest.fixture
def set_parameter(probe):
    """Return ``set(node, name, value)``: one parameter through the node's service.

    It calls set_parameters and returns its rcl_interfaces/SetParametersResult (successful,
    reason).
    """
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    clients = {}

    def set_(node: str, name: str, value):
        if node not in clients:
            clients[node] = probe.create_client(SetParameters, f'/{node}/set_parameters')
            assert clients[node].wait_for_service(timeout_sec=10), f'{node}/set_parameters'
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        future = clients[node].call_async(request)
        probe.spin_until(future.done, 10, f'setting {node}.{name}')
        return future.result().results[0]

    return set_


def node_env() -> dict:
    """Environment for node processes: this session's domain, loopback discovery."""
    env = dict(os.environ)
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture
def ros_env() -> dict:
    """Return the environment for processes that run nodes (see `node_env`)."""
    return node_env()


@pytest.fixture
def start_node(tmp_path):
    """Start ``hlai_ros.nodes.<executable>`` with ROS arguments; killed at teardown."""
    procs = []

    def start(executable: str, task: str, *params: str):
        args = ['--ros-args', '--params-file', str(CONFIG / f'{task}.yaml'), '-p', f'task:={task}']
        for p in params:
            args += ['-p', p]
        log = open(tmp_path / f'{executable}.log', 'wb')
        proc = subprocess.Popen([sys.executable, '-m', f'hlai_ros.nodes.{executable}'] + args,
                                stdout=log, stderr=subprocess.STDOUT, env=node_env(),
                                start_new_session=True)
        proc.log_path = tmp_path / f'{executable}.log'
        procs.append(proc)
        return proc

    yield start
    stop_processes(procs)


REPO = Path(__file__).resolve().parents[2]
SHARED_LAUNCH = REPO.parent / 'shared' / 'ros2-launch'
PACKAGE_FILES = ('package.xml', 'setup.py', 'setup.cfg', 'resource', 'hlai_ros', 'launch',
                 'config', 'sim', 'models')
"""What a colcon workspace needs of this checkout (the working tree, edits included)."""


@pytest.fixture(scope='session')
def ros2_install(tmp_path_factory):
    """This package built by colcon into a workspace: the ROS-install path.

    Returns `env`, the environment of a shell that sourced the workspace's
    ``install/setup.bash`` (on this session's domain, logs in the workspace), and `ros2`, the
    ``ros2`` command. Skips, saying why, where the real ``launch``/``ros2cli`` (installed by
    ``../shared/ros2-launch/install.sh``, which ``.ci/run`` runs) or colcon is missing.
    """
    import importlib.util
    import shutil
    missing = [m for m in ('launch', 'launch_ros', 'ros2launch', 'ros2cli')
               if importlib.util.find_spec(m) is None]
    bin_dir = Path(sys.executable).parent
    if missing or not (bin_dir / 'ros2').exists():
        pytest.skip(f'the real ros2 launch is not installed (missing {missing or ["ros2"]}): '
                    f'bash {SHARED_LAUNCH}/install.sh {Path(sys.prefix)}')
    if not (bin_dir / 'colcon').exists():
        pytest.skip('colcon is not installed: pip install colcon-common-extensions')
    ws = tmp_path_factory.mktemp('colcon_ws')
    src = ws / 'src' / 'hlai_ros'
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns('__pycache__', '*.egg-info', '*.pyc')
    for name in PACKAGE_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, src / name)
    env = node_env()
    env['PATH'] = f'{bin_dir}{os.pathsep}{env.get("PATH", "")}'
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(  # the wheels' packages, like /opt/ros/<distro>
        p for p in (sys.prefix, env.get('AMENT_PREFIX_PATH')) if p)
    build = subprocess.run([str(bin_dir / 'colcon'), 'build', '--packages-select', 'hlai_ros'],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    dump = subprocess.run(['bash', '-c', 'source install/setup.bash && env -0'], cwd=ws,
                          env=env, capture_output=True, timeout=60, check=True)
    env = dict(item.split('=', 1) for item in dump.stdout.decode().split('\0') if '=' in item)
    env['ROS_LOG_DIR'] = str(ws / 'ros_log')
    return types.SimpleNamespace(env=env, ws=ws, ros2=str(bin_dir / 'ros2'))
