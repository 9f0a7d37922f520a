"""The configurator's task layer: perception -> model state, scene -> cost, controllers."""
import dataclasses

import numpy as np
import pytest
import torch

from hlai_ros.actor.optimizer import OptimizerConfig
from hlai_ros.actor.stack import Stack
from hlai_ros.config import world_config
from hlai_ros.cost.base import CostContext
from hlai_ros.evaluation.rollouts import RandomController, run_episode
from hlai_ros.sim import make
from hlai_ros.tasks import get_task, task_names
from hlai_ros.tasks.controllers import LearnedController, OracleConfig, OracleController
from hlai_ros.tasks.pipeline import perceive_episode
from hlai_ros.tasks.push import approach_cost
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel

torch.set_num_threads(1)


@pytest.fixture(params=['push', 'cliff'])
def task_env(request):
    env = make(request.param, config=world_config(request.param))
    yield get_task(request.param), env
    env.close()


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match='unknown task'):
        get_task('juggle')


def test_perceived_model_state_matches_ground_truth(task_env):
    task, env = task_env
    obs, info = env.reset(seed=3)
    est = task.make_perception(env.unwrapped.nominal_camera())
    percept = task.perceive(est, obs)
    gt = info['ground_truth']
    assert percept.model_state.shape == (task.state_dim,)
    assert percept.model_state.dtype == np.float32
    np.testing.assert_allclose(percept.goal, env.unwrapped.goal, atol=1e-6)
    i, j = task.position_indices
    true_xy = (np.asarray(gt['object_position'])[:2] if task.name == 'push'
               else np.asarray(gt['base_position'])[:2])
    assert np.linalg.norm(percept.model_state[[i, j]] - true_xy) < 0.03


def test_cost_penalises_leaving_the_table_or_platform(task_env):
    task, env = task_env
    obs, _ = env.reset(seed=1)
    percept = task.perceive(task.make_perception(env.unwrapped.nominal_camera()), obs)
    cost = task.cost(percept.scene)
    ctx = task.context(percept)
    inside = torch.as_tensor(percept.model_state).clone()
    outside = inside.clone()
    i, _ = task.position_indices
    outside[i] = inside[i] + 10.0
    states = torch.stack([inside, outside]).view(1, 2, 1, -1).expand(1, 2, 4, -1)
    actions = torch.zeros(2, 3, task.action_dim)
    c = cost(states, actions, ctx)
    assert c[1] > c[0] + 10.0
    failed = cost.failed(states)[0]  # (N, T+1) of the only member
    assert bool(failed[1].any()) and not bool(failed[0].any())


def test_cliff_cost_takes_obstacles_from_perception():
    task = get_task('cliff')
    env = make('cliff', config=world_config('cliff'))
    obs, info = env.reset(seed=0)
    percept = task.perceive(task.make_perception(env.unwrapped.nominal_camera()), obs)
    env.close()
    names = [name for name, *_ in task.cost(percept.scene).terms]
    assert 'collision' in names and 'fall' in names
    centre = percept.scene.obstacle_centres[0]
    state = torch.as_tensor(percept.model_state).clone()
    state[0], state[1] = float(centre[0]), float(centre[1])
    states = state.view(1, 1, 1, -1).expand(1, 1, 3, -1)
    assert bool(task.cost(percept.scene).failed(states).any())


def test_cliff_goal_term_goes_around_perceived_obstacles():
    """The cliff goal term is a path length on the perceived scene, never shorter than straight."""
    task = get_task('cliff')
    env = make('cliff', config=world_config('cliff'))
    obs, _ = env.reset(seed=0)
    percept = task.perceive(task.make_perception(env.unwrapped.nominal_camera()), obs)
    env.close()
    goal_term = dict((name, term) for name, term, *_ in task.cost(percept.scene).terms)['goal']
    assert goal_term.bounds == tuple(float(b) for b in percept.scene.bounds)
    assert len(goal_term.centres) == len(percept.scene.obstacle_radii) > 0
    # just beyond the far side of an obstacle, seen from the goal: the path must go around it
    goal = torch.as_tensor(percept.goal)
    centre = torch.as_tensor(percept.scene.obstacle_centres[0], dtype=torch.float32)
    away = (centre - goal) / (centre - goal).norm()
    behind = centre + away * (float(percept.scene.obstacle_radii[0]) + 0.7)
    straight = float((behind - goal).norm())
    assert float(goal_term.distance(behind.view(1, 2), goal)) > straight + 0.1
    assert float(task.cost(None).terms[0][1].distance(behind.view(1, 2), goal)) == \
        pytest.approx(straight, abs=1e-4)


class _Recorded:
    """A recorded episode as the data loader returns it, built from a live rollout."""

    def __init__(self, env, steps, invalid_step):
        obs, _ = env.reset(seed=5)
        frames, actions = [obs], []
        for t in range(steps):
            a = env.action_space.sample()
            obs, *_ = env.step(a)
            frames.append(obs)
            actions.append(a)
        self.observations = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
        self.actions = np.asarray(actions, dtype=np.float32)
        self.action_valid = np.ones(steps, bool)
        if invalid_step is not None:
            self.action_valid[invalid_step] = False
        self.camera = env.unwrapped.nominal_camera()
        self.num_steps, self.source, self.index = steps, 'live', 0

    def observation(self, t):
        return {k: v[t] for k, v in self.observations.items()}


def test_perceive_episode_splits_at_a_missing_command(task_env):
    task, env = task_env
    env.action_space.seed(0)
    runs = perceive_episode(task, _Recorded(env, 6, invalid_step=2))
    assert [len(r) for r in runs] == [2, 3]
    assert all(r.states.shape[1] == task.state_dim for r in runs)


@pytest.mark.parametrize('measured_only, lengths', [(False, [6]), (True, [2, 1])])
def test_perceive_episode_splits_at_frames_not_measured_when_the_task_asks(
        task_env, measured_only, lengths):
    task, env = task_env
    seen = iter([True, True, True, False, True, True, True])  # frame 3 hidden, 4 just back

    class Measured(type(task)):
        train_measured_only = measured_only

        def perceive(self, estimator, observation):
            percept = super().perceive(estimator, observation)
            return dataclasses.replace(percept, measured=next(seen))

    env.action_space.seed(0)
    runs = perceive_episode(Measured(), _Recorded(env, 6, invalid_step=None))
    assert [len(r) for r in runs] == lengths


@pytest.mark.parametrize('name', task_names())
def test_task_model_defaults_make_a_valid_world_model_config(name):
    task = get_task(name)
    config = WorldModelConfig.from_dict({**task.model_defaults, 'state_dim': task.state_dim,
                                         'action_dim': task.action_dim})
    assert all(getattr(config, k) == tuple(v) if isinstance(v, (list, tuple))
               else getattr(config, k) == v for k, v in task.model_defaults.items())


def test_learned_controller_plans_within_bounds_from_observations_only(task_env):
    task, env = task_env
    model = WorldModel(WorldModelConfig(state_dim=task.state_dim, action_dim=task.action_dim,
                                        ensemble_size=2, hidden_sizes=(16,)))
    profile = task.default_profile().with_params(
        {'planner.horizon': 4, 'planner.samples': 16, 'planner.iterations': 1,
         'planner.gradient_steps': 1})
    controller = LearnedController(Stack(task, model, profile=profile))
    obs, _ = env.reset(seed=0)
    controller.reset(env.unwrapped)
    for _ in range(3):
        action = controller.act(obs, info=None)
        assert action.shape == (task.action_dim,)
        assert np.all(action >= np.array(task.action_low) - 1e-6)
        assert np.all(action <= np.array(task.action_high) + 1e-6)
        obs, *_ = env.step(action)
    assert controller.last_plan.actions.shape == (4, task.action_dim)


def test_oracle_leaves_the_world_where_it_was_and_moves_towards_the_goal():
    task = get_task('cliff')
    env = make('cliff', config=world_config('cliff', render_camera=False))
    obs, info = env.reset(seed=2, options={'start': (0.0, 0.0, 0.0), 'goal': (1.5, 0.0),
                                           'obstacles': []})
    oracle = OracleController(task, OracleConfig(horizon=4, sampling=OptimizerConfig(
        samples=8, iterations=1, elite_fraction=0.25)))
    oracle.reset(env.unwrapped, seed=2)
    start = np.linalg.norm(np.asarray(info['ground_truth']['base_position'])[:2]
                           - env.unwrapped.goal)
    for _ in range(8):
        before = env.unwrapped.bullet.getBasePositionAndOrientation(env.unwrapped._robot)
        action = oracle.act(obs)
        after = env.unwrapped.bullet.getBasePositionAndOrientation(env.unwrapped._robot)
        assert np.allclose(before[0], after[0]) and np.allclose(before[1], after[1])
        obs, _, term, _, info = env.step(action)
        if term:
            break
    end = np.linalg.norm(np.asarray(info['ground_truth']['base_position'])[:2]
                         - env.unwrapped.goal)
    env.close()
    assert end < start - 0.15


def test_run_episode_reports_the_outcome():
    task = get_task('cliff')
    env = make('cliff', config=world_config('cliff', render_camera=False),
               max_episode_steps=5)
    out = run_episode(env, RandomController.for_task(task, seed=0), seed=0)
    env.close()
    assert out.steps == 5 and out.success is False and out.seed == 0


def test_push_true_state_is_the_model_state_of_the_ground_truth():
    task = get_task('push')
    before = {'ee_position': np.array([0.40, 0.00, 0.45]),
              'object_position': np.array([0.5, 0.1, 0.42])}
    now = {'ee_position': np.array([0.41, -0.02, 0.45]),
           'object_position': np.array([0.5, 0.1, 0.42])}
    state = task.true_state(now, before, dt=0.1)
    assert state.shape == (task.state_dim,) and state.dtype == np.float32
    assert np.allclose(state, [0.41, -0.02, 0.5, 0.1, 0.1, -0.2], atol=1e-6)
    assert np.allclose(task.true_state(now, None, dt=0.1)[4:], 0.0)


def test_oracle_objective_is_checked():
    with pytest.raises(ValueError, match='objective'):
        OracleController(get_task('push'), OracleConfig(objective='return'))
    with pytest.raises(ValueError, match='true_state'):
        OracleController(get_task('cliff'), OracleConfig(objective='cost'))


def test_push_oracle_plans_the_task_cost_in_the_simulator_and_reaches_the_box():
    task = get_task('push')
    env = make('push', config=world_config('push', render_camera=False))
    obs, info = env.reset(seed=0)
    oracle = OracleController(task, OracleConfig(horizon=4, sampling=OptimizerConfig(
        samples=8, iterations=1, elite_fraction=0.25)))
    assert oracle.objective == 'cost'
    oracle.reset(env.unwrapped, seed=0)

    def to_push(gt):  # how far the hand has to go round the box to push it to the goal
        state = torch.from_numpy(task.true_state(gt, None, 0.1)).expand(1, 1, 2, -1)
        return float(approach_cost(state, torch.as_tensor(gt['goal'][:2]).float(),
                                   task.approach_standoff))

    start = to_push(info['ground_truth'])
    for _ in range(12):
        before = env.unwrapped.ground_truth()
        action = oracle.act(obs)
        after = env.unwrapped.ground_truth()
        assert np.allclose(before['ee_position'], after['ee_position'])
        assert np.allclose(before['object_position'], after['object_position'])
        obs, _, term, _, info = env.step(action)
        assert not term
    env.close()
    assert to_push(info['ground_truth']) < start - 0.08


def test_default_profile_reads_the_planner_settings_of_the_task_config():
    from hlai_ros.config import load_params
    for name in ('push', 'cliff'):
        section = load_params(name)['cost_critic']
        profile = get_task(name).default_profile()
        planner = profile.planner
        assert planner.horizon == section['planner.horizon']
        assert planner.sampling.samples == section['planner.samples']
        assert planner.sampling.iterations == section['planner.iterations']
        assert planner.gradient_steps == section['planner.gradient_steps']
        assert profile.with_params(profile.to_params()) == profile
    with pytest.raises(ValueError, match='planner.horizont'):
        get_task('push').default_profile().with_params({'planner.horizont': 5})


@pytest.mark.parametrize('name', task_names())
def test_every_cost_term_of_the_default_profile_evaluates(name):
    """Each term of a task's shipped cost runs on a batch of plans.

    A term that reads an attribute its task lacks fails here, not in the first closed-loop step.
    """
    task = get_task(name)
    env = make(name, config=world_config(name))
    try:
        obs, _ = env.reset(seed=0)
        estimator = task.make_perception(env.unwrapped.nominal_camera(), env.unwrapped.dt)
        percept = task.perceive(estimator, obs)  # the perceived scene (cliff: platform, rocks)
    finally:
        env.close()
    cost = task.cost(percept.scene)
    generator = torch.Generator().manual_seed(0)
    states = 0.1 * torch.randn(2, 3, 5, task.state_dim, generator=generator) + 0.5
    actions = 0.1 * torch.randn(3, 4, task.action_dim, generator=generator)
    context = CostContext(goal=torch.tensor([0.5, 0.0]))
    parts = cost.per_term(states, actions, context)
    assert set(parts) == {n for n, s in task.default_profile().terms.items() if s.enabled}
    for term, value in parts.items():
        assert torch.isfinite(value).all(), term
