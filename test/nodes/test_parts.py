"""The nodes' ROS-free parts and parameter handling: matching, episodes, state layout, params."""
from dataclasses import dataclass, field

import numpy as np
import pytest

from hlai_ros.perception.pipeline import StampMatcher


def test_stamp_matcher_matches_each_frame_once_in_order():
    m = StampMatcher('rgb', ('depth', 'proprio'), tolerance_ns=10)
    assert m.add('rgb', 100, 'c1') == []
    assert m.add('depth', 100, 'd1') == []
    assert m.add('proprio', 105, 'p1') == [(100, {'rgb': 'c1', 'depth': 'd1', 'proprio': 'p1'})]
    assert m.add('rgb', 100, 'c1 again') == []  # a republished frame is not estimated twice
    m.add('proprio', 200, 'p2')
    m.add('depth', 200, 'd2')
    assert m.add('rgb', 200, 'c2')[0][1]['proprio'] == 'p2'
    assert m.add('rgb', 300, 'c3') == [] and m.add('depth', 300, 'd3') == []
    assert m.add('proprio', 350, 'far') == []  # outside the tolerance
    m.reset()
    assert m.add('rgb', 100, 'x') == []


def test_episode_session_stamps_markers_and_seeds():
    from hlai_ros.config import world_config
    from hlai_ros.sim.session import EpisodeSession

    session = EpisodeSession('cliff', world_config('cliff', render_camera=False), seed=7,
                             episodes=2, max_steps=3)
    try:
        start = session.start()
        assert start['event'] == 'start' and start['seed'] == 7
        assert start['stamp_ns'] == session.stamp_ns > 0
        stamps = [session.stamp_ns]
        done = False
        while not done:
            done = session.step([0.5, 0.0])
            stamps.append(session.stamp_ns)
        end = session.end()
        assert end['steps'] == 3 and end['truncated'] and end['stamp_ns'] == stamps[-1]
        assert session.start()['seed'] == 8 and session.stamp_ns > stamps[-1]
        session.end(reason='stopped')
        assert session.finished
        with pytest.raises(RuntimeError, match='all 2 episodes'):
            session.start()
        assert np.all(np.diff(stamps) == session.dt_ns)
        topics = [t.name for t, _ in session.sensor_messages()]
        assert topics == ['/camera/image_raw', '/camera/depth/image_raw', '/camera/camera_info',
                          '/odom']
    finally:
        session.close()


def test_state_message_round_trip_and_refusal():
    from hlai_ros.nodes.convert import state_from_message, state_message

    msg = state_message(('x', 'y'), np.array([1.5, -2.0]))
    names, values = state_from_message(msg)
    assert names == ('x', 'y') and values.tolist() == [1.5, -2.0]
    assert [d.label for d in msg.layout.dim] == ['x', 'y']
    with pytest.raises(ValueError, match='2 state names for a state vector of 3'):
        state_message(('x', 'y'), np.zeros(3))
    msg.data = [1.0]
    with pytest.raises(ValueError, match='labels 2 entries'):
        state_from_message(msg)


@dataclass(frozen=True)
class _Example:
    """Parameters of a test node."""

    rate: float = 2.0
    """Rate, Hz (> 0)."""
    names: tuple[str, ...] = ()
    """Some names."""
    fixed: int = field(default=3, metadata={'read_only': True})
    """Cannot change."""

    def __post_init__(self):
        if not self.rate > 0:
            raise ValueError(f'rate must be > 0, got {self.rate}')


@pytest.mark.ros
def test_node_parameters_declare_descriptors_and_reject_invalid_values(rclpy_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from hlai_ros.nodes.params import NodeParameters

    node = Node('params_test', parameter_overrides=[Parameter('names', value=['a', 'b'])])
    try:
        changes = []
        params = NodeParameters(node, _Example, on_change=changes.append)
        assert params.config == _Example(rate=2.0, names=('a', 'b'), fixed=3)
        descriptor = node.describe_parameter('rate')
        assert descriptor.description == 'Rate, Hz (> 0).'
        assert node.describe_parameter('fixed').read_only
        (bad,) = node.set_parameters([Parameter('rate', value=-1.0)])
        assert not bad.successful and bad.reason == 'rate must be > 0, got -1.0'
        assert node.get_parameter('rate').value == 2.0 and params.config.rate == 2.0
        assert not node.set_parameters([Parameter('fixed', value=4)])[0].successful
        assert node.set_parameters([Parameter('rate', value=5.0)])[0].successful
        assert params.config.rate == 5.0 and changes[-1].rate == 5.0
    finally:
        node.destroy_node()
    bad_node = Node('params_bad', parameter_overrides=[Parameter('rate', value=0.0)])
    try:
        with pytest.raises(ValueError, match='params_bad: invalid parameters: rate must be > 0'):
            NodeParameters(bad_node, _Example)
    finally:
        bad_node.destroy_node()
