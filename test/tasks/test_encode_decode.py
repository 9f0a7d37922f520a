"""Task.encode / Task.decode: one inverse pair, through the labelled /hlai/state message too."""
import numpy as np
import pytest

from hlai_ros.config import world_config
from hlai_ros.sim import make
from hlai_ros.tasks import get_task


def _estimate(name: str, seed: int = 3):
    """The task, its estimator's output on a first observation, and perceive's Percept."""
    task = get_task(name)
    env = make(name, config=world_config(name))
    try:
        obs, _ = env.reset(seed=seed)
        estimator = task.make_perception(env.unwrapped.nominal_camera(), env.unwrapped.dt)
        estimate = estimator.estimate(obs)
        estimator = task.make_perception(env.unwrapped.nominal_camera(), env.unwrapped.dt)
        return task, estimate, task.perceive(estimator, obs)
    finally:
        env.close()


def _same_percept(a, b):
    np.testing.assert_array_equal(a.model_state, b.model_state)
    np.testing.assert_array_equal(a.goal, b.goal)
    np.testing.assert_array_equal(a.estimate, b.estimate)
    assert (a.scene is None) == (b.scene is None)
    if a.scene is not None:
        np.testing.assert_allclose(a.scene.bounds, b.scene.bounds, atol=1e-6)
        np.testing.assert_allclose(a.scene.obstacle_centres, b.scene.obstacle_centres,
                                   atol=1e-6)
        np.testing.assert_allclose(a.scene.obstacle_radii, b.scene.obstacle_radii, atol=1e-6)


@pytest.mark.parametrize('name', ['push', 'cliff'])
def test_decode_of_encode_is_perceive(name):
    task, estimate, perceived = _estimate(name)
    names, values = task.encode(estimate)
    assert len(names) == values.size and values.dtype == np.float32
    _same_percept(task.decode(names, values), perceived)


@pytest.mark.parametrize('name', ['push', 'cliff'])
def test_encode_decode_round_trips_through_the_state_message(name):
    pytest.importorskip('std_msgs.msg')
    from hlai_ros.nodes.convert import state_from_message, state_message
    task, estimate, perceived = _estimate(name)
    names, values = task.encode(estimate)
    got_names, got_values = state_from_message(state_message(names, values))
    assert tuple(got_names) == tuple(names)
    np.testing.assert_array_equal(got_values, values)
    _same_percept(task.decode(got_names, got_values), perceived)


def test_cliff_decode_reads_labels_not_positions_and_the_scene_is_optional():
    task, estimate, perceived = _estimate('cliff')
    names, values = task.encode(estimate)
    order = np.random.default_rng(0).permutation(len(names))  # labels, not positions, count
    mapped = task.decode([names[i] for i in order], values[order])
    np.testing.assert_array_equal(mapped.model_state, perceived.model_state)
    np.testing.assert_array_equal(mapped.goal, perceived.goal)
    assert len(perceived.scene.obstacle_radii) > 0
    np.testing.assert_allclose(mapped.scene.obstacle_centres, perceived.scene.obstacle_centres,
                               atol=1e-6)
    # without the scene entries: no scene, so the cost has no fall or collision barrier
    n = len(names) - len(task.scene_entries(estimate.scene)[0])
    bare = task.decode(names[:n], values[:n])
    assert bare.scene is None and np.array_equal(bare.model_state, perceived.model_state)


@pytest.mark.parametrize('name', ['push', 'cliff'])
def test_missing_labels_are_named(name):
    task = get_task(name)
    with pytest.raises(ValueError, match='lacks'):
        task.decode(('x', 'goal_x'), np.zeros(2))
    with pytest.raises(ValueError, match='state names for'):
        task.decode(('x',), np.zeros(2))
