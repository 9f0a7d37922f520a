"""The MPC planner on a double integrator with a known optimum: reach, shift, bounds, gradients."""
from dataclasses import replace

import pytest
import torch
from toy_dynamics import DoubleIntegrator

from hlai_ros.actor import (
    Agent,
    OptimizerConfig,
    Planner,
    PlannerConfig,
    Policy,
    planner_config_from_dict,
)
from hlai_ros.cost import Cost, CostContext, EffortCost, GoalCost

torch.set_num_threads(1)
GOAL = torch.tensor([0.5, -0.3])


def _cost(terminal=5.0):
    return Cost([('goal', GoalCost(position_indices=(0, 1), terminal_weight=terminal), 1.0, 1.0),
                 ('effort', EffortCost(), 0.01, 1.0)])


def _drive(planner, steps=40):
    """Closed loop on member 0 of the true dynamics from rest at the origin; final state."""
    model = planner.model
    agent = Agent(planner)
    agent.reset()
    s = torch.zeros(4)
    ctx = CostContext(goal=GOAL)
    for _ in range(steps):
        a = torch.as_tensor(agent.act(s, ctx))
        assert bool((a >= planner.lower).all() and (a <= planner.upper).all())
        s = model.next(s.view(1, 1, 4).expand(model.ensemble_size, 1, 4),
                       a.view(1, 1, 2).expand(model.ensemble_size, 1, 2),
                       torch.zeros(model.ensemble_size, 1, 1))[0, 0]
    return s


@pytest.mark.parametrize('optimizer', ['mppi', 'cem'])
def test_planner_drives_double_integrator_to_target(optimizer):
    config = PlannerConfig(horizon=15, optimizer=optimizer, gradient_steps=2,
                           sampling=OptimizerConfig(samples=128, iterations=2))
    planner = Planner(DoubleIntegrator(), _cost(), -torch.ones(2), torch.ones(2), config)
    s = _drive(planner)
    assert float((s[:2] - GOAL).norm()) < 0.05, s
    assert float(s[2:].norm()) < 0.2, s


def test_warm_start_shifts_the_last_plan():
    planner = Planner(DoubleIntegrator(), _cost(), -torch.ones(2), torch.ones(2),
                      PlannerConfig(horizon=8, sampling=OptimizerConfig(samples=32)))
    assert torch.equal(planner.warm_start(), torch.zeros(8, 2))
    plan = planner.plan(torch.zeros(4), CostContext(goal=GOAL))
    shifted = planner.warm_start()
    assert torch.equal(shifted[:-1], plan.actions[1:])
    assert torch.equal(shifted[-1], plan.actions[-1])
    assert plan.actions.shape == (8, 2)
    assert planner.predict(torch.zeros(4), plan.actions).shape == (3, 9, 4)
    planner.reset()
    assert torch.equal(planner.warm_start(), torch.zeros(8, 2))


def test_bounds_are_respected_in_every_rollout():
    model = DoubleIntegrator()
    seen = []
    rollout = model.rollout

    def spy(s0, actions, z=None):
        seen.append(actions.detach().clone())
        return rollout(s0, actions, z)

    model.rollout = spy
    low, high = torch.tensor([-0.2, -0.1]), torch.tensor([0.3, 0.1])
    planner = Planner(model, _cost(), low, high, PlannerConfig(
        horizon=6, gradient_steps=3, gradient_lr=0.5, sampling=OptimizerConfig(samples=32)),
        policy=Policy(4, low, high))
    plan = planner.plan(torch.zeros(4), CostContext(goal=torch.tensor([5.0, 5.0])))
    allseen = torch.cat([s.reshape(-1, 2) for s in seen])
    assert bool((allseen >= low - 1e-6).all() and (allseen <= high + 1e-6).all())
    assert torch.allclose(plan.action, torch.tensor([0.3, 0.1]), atol=0.02)


def test_one_batched_rollout_covers_samples_times_latents():
    model = DoubleIntegrator(ensemble_size=2)
    shapes = []
    rollout = model.rollout
    model.rollout = lambda s0, a, z=None: (shapes.append((s0.shape, a.shape, z.shape)),
                                           rollout(s0, a, z))[1]
    planner = Planner(model, _cost(), -torch.ones(2), torch.ones(2), PlannerConfig(
        horizon=5, latents=3, gradient_steps=0, sampling=OptimizerConfig(samples=10,
                                                                          iterations=1)))
    planner.plan(torch.zeros(4), CostContext(goal=GOAL))
    assert shapes[0] == ((30, 4), (30, 5, 2), (2, 30, 1))


def test_gradient_refinement_lowers_the_cost_of_a_poor_plan():
    planner = Planner(DoubleIntegrator(), _cost(), -torch.ones(2), torch.ones(2),
                      PlannerConfig(horizon=10, gradient_steps=20, gradient_lr=0.1))
    z = planner.model.sample_z(1)
    ctx = CostContext(goal=GOAL)
    poor = torch.zeros(1, 10, 2)
    s0 = torch.zeros(4)
    before = float(planner.objective(s0, z, ctx, poor))
    refined, cost = planner.refine(s0, z, ctx, poor)
    assert float(cost) < 0.7 * before
    assert torch.allclose(cost, planner.objective(s0, z, ctx, refined))


def test_policy_proposals_roll_the_policy_through_the_model():
    low, high = -torch.ones(2), torch.ones(2)
    policy = Policy(4, low, high)
    with torch.no_grad():
        policy.net[-1].bias.copy_(torch.tensor([0.5, -0.5]))
    planner = Planner(DoubleIntegrator(), _cost(), low, high,
                      PlannerConfig(horizon=7, policy_fraction=0.25,
                                    sampling=OptimizerConfig(samples=40)), policy=policy)
    with torch.no_grad():
        props = planner.proposals(torch.zeros(4), planner.model.sample_z(1))
    assert props.shape == (10, 7, 2)
    assert torch.allclose(props[0], torch.tanh(torch.tensor([0.5, -0.5])).expand(7, 2))
    assert not torch.allclose(props[1], props[0])


def test_planner_input_errors():
    with pytest.raises(ValueError, match='bounds must have 2'):
        Planner(DoubleIntegrator(), _cost(), -torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match='optimizer must be'):
        PlannerConfig(optimizer='random')
    planner = Planner(DoubleIntegrator(), _cost(), -torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match='state must have 4'):
        planner.plan(torch.zeros(5), CostContext(goal=GOAL))
    assert replace(planner.config, horizon=3).horizon == 3


def test_planner_config_from_dict():
    config = planner_config_from_dict({'horizon': 10, 'optimizer': 'cem',
                                       'sampling': {'samples': 64, 'iterations': 3}})
    assert config.horizon == 10 and config.sampling.samples == 64
    with pytest.raises(ValueError, match='unknown planner settings'):
        planner_config_from_dict({'horizn': 10})
    with pytest.raises(ValueError, match='unknown sampling settings'):
        planner_config_from_dict({'sampling': {'sample': 10}})


def test_critic_is_the_terminal_cost_at_the_horizon():
    """A critic that charges for ending beyond x = 0.1 holds back a plan pulled to x = 0.5."""
    def critic(states):  # (E, N, S) -> (E, N)
        return 100.0 * (states[..., 0] - 0.1).clamp_min(0.0)

    config = PlannerConfig(horizon=10, sampling=OptimizerConfig(samples=128, iterations=3))
    ctx = CostContext(goal=torch.tensor([0.5, 0.0]))
    ends = {}
    for name, c in (('without', None), ('with', critic)):
        planner = Planner(DoubleIntegrator(), _cost(terminal=0.0), -torch.ones(2),
                          torch.ones(2), config, critic=c)
        plan = planner.plan(torch.zeros(4), ctx)
        ends[name] = float(planner.predict(torch.zeros(4), plan.actions)[0, -1, 0])
    assert ends['without'] > 0.3
    assert ends['with'] < 0.15


@pytest.mark.parametrize('members', [0, 2])
def test_latents_are_inferred_from_the_episodes_recent_transitions(members):
    """With infer_latents, plans use each member's posterior mean of z.

    Each plan after infer_min transitions uses each member's posterior mean of z given the
    episode's last infer_latents transitions (the previous plan's state, the action applied
    since, this plan's state); reset forgets them.
    """
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.model import WorldModel
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig(state_dim=4, action_dim=2, latent_dim=2,
                                        ensemble_size=3, hidden_sizes=(16,)))
    config = PlannerConfig(horizon=4, sampling=OptimizerConfig(samples=8, iterations=1),
                           gradient_steps=0, infer_latents=3, infer_min=2, members=members)
    planner = Planner(model, _cost(), [-1.0, -1.0], [1.0, 1.0], config)
    agent = Agent(planner)
    agent.reset()
    prior = None
    states, actions = [torch.randn(4) for _ in range(6)], []
    for k, s in enumerate(states):
        actions.append(torch.as_tensor(agent.act(s, CostContext(goal=GOAL))))
        if k == 0:
            prior = planner._z.clone()
        if k < 2:  # fewer than infer_min transitions: the prior draw
            assert torch.equal(planner._z, prior)
    recent = range(len(states) - 4, len(states) - 1)  # the last three transitions
    s = torch.stack([states[i] for i in recent])[None]
    a = torch.stack([actions[i] for i in recent])[None]
    s_next = torch.stack([states[i + 1] for i in recent])[None]
    expected = model.posterior_from_transitions(s, a, s_next)[0].detach()
    assert torch.allclose(planner._z, expected, atol=1e-6)
    if members:  # the member subset plans with its members' inferred latents
        chosen, z = planner._members
        assert len(chosen) == members and torch.allclose(z, expected[list(chosen)], atol=1e-6)
    agent.reset()
    agent.act(states[0], CostContext(goal=GOAL))
    assert torch.equal(planner._z, prior)  # a new episode starts from the prior again


def test_latent_inference_is_off_by_default_and_checked():
    assert PlannerConfig().infer_latents == 0
    with pytest.raises(ValueError, match='infer_latents'):
        PlannerConfig(infer_latents=-1)
