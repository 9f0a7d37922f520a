"""Task.percept_from_state: the labelled /hlai/state gives the Percept that perceive gives."""
import numpy as np
import pytest

from hlai_ros.tasks import get_task


def test_cliff_state_with_scene_entries_gives_the_perceived_percept():
    from hlai_ros.config import world_config
    from hlai_ros.sim import make

    task = get_task('cliff')
    env = make('cliff', config=world_config('cliff'))
    try:
        obs, _ = env.reset(seed=3)
        estimator = task.make_perception(env.unwrapped.nominal_camera())
        direct = task.perceive(estimator, obs)
    finally:
        env.close()
    scene_names, scene_values = task.scene_entries(direct.scene)
    names = tuple(estimator.state_names) + scene_names
    values = np.concatenate([direct.estimate.state, scene_values])
    order = np.random.default_rng(0).permutation(len(names))  # labels, not positions, count
    mapped = task.percept_from_state([names[i] for i in order], values[order])
    assert np.array_equal(mapped.model_state, direct.model_state)
    assert np.array_equal(mapped.goal, direct.goal)
    assert len(direct.scene.obstacle_radii) > 0
    np.testing.assert_allclose(mapped.scene.bounds, direct.scene.bounds, atol=1e-6)
    np.testing.assert_allclose(mapped.scene.obstacle_centres, direct.scene.obstacle_centres,
                               atol=1e-6)
    np.testing.assert_allclose(mapped.scene.obstacle_radii, direct.scene.obstacle_radii,
                               atol=1e-6)
    # without the scene entries: no scene, so the cost has no fall or collision barrier
    bare = task.percept_from_state(estimator.state_names, direct.estimate.state)
    assert bare.scene is None and np.array_equal(bare.model_state, direct.model_state)


@pytest.mark.parametrize('name', ['push', 'cliff'])
def test_missing_labels_are_named(name):
    task = get_task(name)
    with pytest.raises(ValueError, match='lacks'):
        task.percept_from_state(('x', 'goal_x'), np.zeros(2))
    with pytest.raises(ValueError, match='state names for'):
        task.percept_from_state(('x',), np.zeros(2))
