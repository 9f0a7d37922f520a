"""Issue 14 part 2: the faster plan computes what the plan computed before.

The world model's rollout without autograd (preallocated input buffer, cached folded weights)
gives bit for bit the states of the former loop (concatenate, stack); with autograd it is that
loop. The folded-weight cache follows every change of the weights. A member subset
(`PlannerConfig.members`) rolls out exactly those members. The geodesic term's one-gather
lookup gives the former four lookups' values. Plans on fixed seeds are the same as with a model
that steps `next` one step at a time (within float tolerance).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from hlai_ros.actor import OptimizerConfig, Planner, PlannerConfig
from hlai_ros.cost import Cost, CostContext, EffortCost, GoalCost, UncertaintyCost
from hlai_ros.cost.navigation import GeodesicGoalCost
from hlai_ros.cost.profile import CostProfile
from hlai_ros.world_model import time_loop
from hlai_ros.world_model.config import ACTIVATIONS, WorldModelConfig
from hlai_ros.world_model.model import WorldModel, _activate

torch.set_num_threads(1)


def _model(predict_delta=True, seed=0, activation='silu'):
    torch.manual_seed(seed)
    model = WorldModel(WorldModelConfig(state_dim=4, action_dim=2, latent_dim=2,
                                        ensemble_size=5, hidden_sizes=(32, 32),
                                        predict_delta=predict_delta, activation=activation))
    s, a = torch.randn(200, 4), torch.randn(200, 2)
    model.fit_normalizers(s, a, s + 0.1 * torch.randn(200, 4))
    return model


def _former_rollout(model, s, actions, z):
    """The rollout loop as it was before issue 14 part 2 (concatenate per step, stack)."""
    (w_s, w_a, w_z, *hidden_w), biases, acts = model._folded()
    w_sa = torch.cat([w_s, w_a], dim=1)
    zb = torch.baddbmm(biases[0], z, w_z)
    inplace = not torch.is_grad_enabled()
    states = [s]
    for a_t in actions.unbind(2):
        h = torch.baddbmm(zb, torch.cat([s, a_t], dim=-1), w_sa)
        for act, w, b in zip(acts, hidden_w, biases[1:]):
            h = torch.baddbmm(b, _activate(act, h, inplace), w)
        s = s + h if model.config.predict_delta else h
        states.append(s)
    return torch.stack(states, dim=2)


def _inputs(model, n=7, t=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    s0 = torch.randn(n, model.state_dim, generator=g)
    actions = torch.randn(n, t, model.action_dim, generator=g)
    z = model.sample_z(n, generator=g)
    return s0, actions, z


def _members(model, x):
    return x.unsqueeze(0).expand(model.ensemble_size, *x.shape)


@pytest.mark.parametrize('predict_delta', [True, False])
@pytest.mark.parametrize('mode', ['no_grad', 'inference_mode'])
def test_rollout_without_autograd_is_bit_for_bit_the_former_loop(predict_delta, mode):
    model = _model(predict_delta)
    s0, actions, z = _inputs(model)
    with torch.no_grad():
        expected = _former_rollout(model, _members(model, s0), _members(model, actions), z)
    context = torch.no_grad() if mode == 'no_grad' else torch.inference_mode()
    with context:
        got = model.rollout(s0, actions, z)
        again = model.rollout(s0, actions, z)  # from the folded-weight cache
    assert got.shape == (5, 7, 7, 4) and got.is_contiguous()
    assert torch.equal(got, expected) and torch.equal(again, expected)


@pytest.mark.parametrize('activation', ACTIVATIONS)
def test_time_loop_runs_in_torchscript_bit_for_bit_for_every_activation(activation):
    assert time_loop.SCRIPTED  # the horizon's steps run in TorchScript, not in Python
    model = _model(predict_delta=activation != 'tanh', activation=activation)
    s0, actions, z = _inputs(model)
    with torch.no_grad():
        expected = _former_rollout(model, _members(model, s0), _members(model, actions), z)
        got = model.rollout(s0, actions, z)
    assert torch.equal(got, expected)


def test_time_loop_falls_back_to_python_when_torchscript_is_switched_off():
    code = ('import torch; from hlai_ros.world_model import time_loop as m; '
            'x = torch.zeros(3, 1, 2, 3); x[0, :, :, :2] = 1.0; '
            'w = [torch.ones(1, 4, 2)]; b = [torch.zeros(1, 1, 2)]; '
            'm.time_loop(x, torch.zeros(1, 2, 4), torch.ones(1, 3, 4), w, b, 1, 2, 2, True); '
            'print(m.SCRIPTED, x[2, 0, 0, 0].item())')
    for flag, scripted in (('0', 'False'), ('1', 'True')):
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                             env={**os.environ, 'HLAI_TORCHSCRIPT': flag}, check=True)
        assert out.stdout.split() == [scripted, '81.0']  # 1 -> 1 + 4 * 2 = 9 -> 9 + 4 * 18 = 81


def test_rollout_with_autograd_is_the_former_loop_and_reaches_the_parameters():
    model = _model()
    s0, actions, z = _inputs(model)
    actions.requires_grad_(True)
    got = model.rollout(s0, actions, z)
    expected = _former_rollout(model, _members(model, s0), _members(model, actions), z)
    assert torch.equal(got, expected)
    got.square().sum().backward()
    assert actions.grad is not None and model.dynamics.layers[0].weight.grad is not None


def test_rollout_matches_stepping_next():
    model = _model()
    s0, actions, z = _inputs(model)
    with torch.no_grad():
        states = model.rollout(s0, actions, z)
        s = _members(model, s0)
        for k in range(actions.shape[1]):
            s = model.next(s, _members(model, actions[:, k]), z)
            torch.testing.assert_close(states[:, :, k + 1], s, rtol=1e-4, atol=1e-5)


def test_folded_cache_follows_every_change_of_the_weights():
    model = _model()
    s0, actions, z = _inputs(model)

    def fresh():
        with torch.no_grad():
            return _former_rollout(model, _members(model, s0), _members(model, actions), z)

    def cached():
        with torch.inference_mode():
            return model.rollout(s0, actions, z)

    assert torch.equal(cached(), fresh())
    with torch.no_grad():  # an optimizer step changes a parameter in place
        model.dynamics.layers[0].weight.add_(0.01)
    assert torch.equal(cached(), fresh())
    model.fit_normalizers(*(torch.randn(100, d) for d in (4, 2)),
                          torch.randn(100, 4))  # refitted normalisers (buffers in place)
    assert torch.equal(cached(), fresh())
    other = _model(seed=5)
    model.load_state_dict(other.state_dict())
    assert torch.equal(cached(), fresh())
    model.double()  # .data swapped: a new storage
    s0, actions, z = s0.double(), actions.double(), z.double()
    assert cached().dtype == torch.float64 and torch.equal(cached(), fresh())


def test_a_member_subset_rolls_out_exactly_those_members():
    model = _model()
    s0, actions, z = _inputs(model)
    members = (1, 3, 4)
    with torch.no_grad():
        full = model.rollout(s0, actions, z)
        sub = model._rollout_members(s0, actions, z[list(members)], members)
    assert torch.equal(sub, full[list(members)])
    actions.requires_grad_(True)
    with torch.inference_mode():  # cache the subset's weights in inference mode ...
        model._rollout_members(s0, actions.detach(), z[list(members)], members)
    sub = model._rollout_members(s0, actions, z[list(members)], members)  # ... and backprop
    sub.sum().backward()
    assert actions.grad is not None
    with pytest.raises(ValueError, match='members'):
        model._rollout_members(s0, actions, z[:2], (0, 5))


def test_geodesic_lookup_is_the_former_bilinear_interpolation():
    term = GeodesicGoalCost((0, 1), bounds=(-1.0, 1.0, -0.8, 0.8), centres=((0.2, 0.1),),
                            radii=(0.2,), heading_indices=(2, 3), heading_weight=0.5)
    goal = torch.tensor([0.6, -0.3])
    positions = torch.rand(5, 9, 4, 2) * 2.4 - 1.2
    field, (ox, oy) = term.field(goal)
    h, w = field.shape[1:]
    u = ((positions[..., 0] - ox) / term.resolution).clamp(0, h - 1.001)
    v = ((positions[..., 1] - oy) / term.resolution).clamp(0, w - 1.001)
    i, j = u.floor().long(), v.floor().long()
    fu, fv = u - i, v - j
    flat = field.reshape(3, -1)

    def at(di, dj):
        return flat[:, (i + di) * w + (j + dj)]
    expected = ((1 - fu) * (1 - fv) * at(0, 0) + fu * (1 - fv) * at(1, 0)
                + (1 - fu) * fv * at(0, 1) + fu * fv * at(1, 1))
    assert torch.equal(term._lookup(positions, goal), expected)
    assert torch.equal(term.distance(positions, goal), expected[0])
    straight = GeodesicGoalCost((0, 1))
    assert torch.equal(straight.distance(positions, goal), straight._lookup(positions, goal)[0])


class _SteppedModel:
    """The same world model behind `next` alone, stepped in a Python loop: the reference."""

    def __init__(self, model):
        self.model = model
        self.state_dim, self.action_dim = model.state_dim, model.action_dim
        self.latent_dim, self.ensemble_size = model.latent_dim, model.ensemble_size

    def sample_z(self, n, generator=None):
        return self.model.sample_z(n, generator=generator)

    def parameters(self):
        return self.model.parameters()

    def rollout(self, s0, actions, z):
        s = self.model._members(s0, self.state_dim, 's0')
        states = [s]
        for k in range(actions.shape[1]):
            s = self.model.next(s, actions[:, k], z)
            states.append(s)
        return torch.stack(states, dim=2)


def _cost():
    return Cost([('goal', GoalCost(position_indices=(0, 1)), 1.0, 1.0),
                 ('effort', EffortCost(), 0.01, 1.0),
                 ('uncertainty', UncertaintyCost(), 1.0, 1.0)])


@pytest.mark.parametrize('gradient_steps', [0, 1])
def test_plans_on_fixed_seeds_are_those_of_the_stepped_model(gradient_steps):
    model = _model()
    config = PlannerConfig(horizon=6, sampling=OptimizerConfig(samples=24, iterations=2),
                           gradient_steps=gradient_steps, policy_fraction=0.0, seed=3)
    fast = Planner(model, _cost(), [-1.0, -1.0], [1.0, 1.0], config)
    slow = Planner(_SteppedModel(model), _cost(), [-1.0, -1.0], [1.0, 1.0], config)
    context = CostContext(goal=torch.tensor([0.4, -0.2]))
    s = torch.tensor([0.1, 0.0, 0.0, 0.0])
    for _ in range(4):  # successive plans: the warm start carries over
        a, b = fast.plan(s, context), slow.plan(s, context)
        torch.testing.assert_close(a.actions, b.actions, rtol=1e-4, atol=1e-4)
        assert a.cost == pytest.approx(b.cost, rel=1e-4, abs=1e-5)
        s = s + 0.05 * torch.cat([a.action, a.action])


def test_members_setting_plans_with_a_subset_of_the_ensemble():
    model = _model()
    calls = []
    original = model._rollout_members

    def spy(s0, actions, z, members):
        calls.append(members)
        return original(s0, actions, z, members)
    model._rollout_members = spy
    config = PlannerConfig(horizon=5, sampling=OptimizerConfig(samples=16, iterations=2),
                           gradient_steps=1, policy_fraction=0.0, members=3)
    planner = Planner(model, _cost(), [-1.0, -1.0], [1.0, 1.0], config)
    context = CostContext(goal=torch.tensor([0.4, -0.2]))
    result = planner.plan(torch.zeros(4), context)
    assert calls and all(len(m) == 3 and len(set(m)) == 3 for m in calls)
    assert len(set(calls)) == 1  # one subset an episode (fixed latents)
    assert torch.isfinite(result.actions).all() and result.actions.shape == (5, 2)
    # 0 and the ensemble's size mean all members: the full rollout, no subset
    for members in (0, 5):
        calls.clear()
        Planner(model, _cost(), [-1.0, -1.0], [1.0, 1.0],
                PlannerConfig(horizon=5, sampling=OptimizerConfig(samples=16),
                              members=members)).plan(torch.zeros(4), context)
        assert not calls
    # latent planning dynamics keep all their members (not evaluated with a subset)
    calls.clear()
    model.checkpoint_metadata = {'identity': {'representation': 'latent'}}
    Planner(model, _cost(), [-1.0, -1.0], [1.0, 1.0], config).plan(torch.zeros(4), context)
    assert not calls
    model.checkpoint_metadata = {'identity': {'representation': 'state'}}
    Planner(model, _cost(), [-1.0, -1.0], [1.0, 1.0], config).plan(torch.zeros(4), context)
    assert calls
    with pytest.raises(ValueError, match='members'):
        PlannerConfig(members=-1)


def test_members_is_a_profile_setting():
    profile = CostProfile()
    changed = profile.with_params({'planner.members': 3})
    assert changed.planner.members == 3 and changed.to_params()['planner.members'] == 3
    assert changed.with_params(changed.to_params()) == changed
    with pytest.raises(ValueError, match='members'):
        profile.with_params({'planner.members': 2.5})
