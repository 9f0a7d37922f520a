"""WorldModel: the Dynamics protocol, batched ensemble, shapes and gradients."""
import pytest
import torch

from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.ensemble import EnsembleLinear
from hlai_ros.world_model.model import WorldModel
from hlai_ros.world_model.protocol import Dynamics


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(state_dim=3, action_dim=2, latent_dim=2, ensemble_size=4, hidden_sizes=(16, 16),
               encoder_hidden=8)
    cfg.update(kw)
    model = WorldModel(WorldModelConfig(**cfg))
    # Non-trivial normalisers so that the test covers them.
    s, a = torch.randn(50, 3) * 2 + 1, torch.randn(50, 2) * 0.5
    model.fit_normalizers(s, a, s + 0.1 * torch.randn(50, 3), torch.randn(50))
    return model


def test_implements_the_dynamics_protocol():
    model = _model()
    assert isinstance(model, Dynamics)
    assert (model.state_dim, model.action_dim, model.latent_dim, model.ensemble_size) == (
        3, 2, 2, 4)


def test_batched_ensemble_equals_per_member_evaluation():
    model = _model(predict_reward=True)
    s, a, z = torch.randn(4, 7, 3), torch.randn(4, 7, 2), torch.randn(4, 7, 2)
    batched = model.next(s, a, z)
    layers = [m for m in model.dynamics.layers if isinstance(m, EnsembleLinear)]
    for e in range(4):
        x = torch.cat([model.input_norm.normalize(torch.cat([s[e], a[e]], -1)), z[e]], -1)
        for i, layer in enumerate(layers):
            x = x @ layer.weight[e] + layer.bias[e]
            if i < len(layers) - 1:
                x = torch.nn.functional.silu(x)
        member = s[e] + model.delta_norm.denormalize(x)
        torch.testing.assert_close(batched[e], member)


def test_shared_inputs_broadcast_over_members():
    model = _model()
    s, a, z = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5, 2)
    expected = model.next(s.expand(4, 5, 3), a.expand(4, 5, 2), z.expand(4, 5, 2))
    torch.testing.assert_close(model.next(s, a, z), expected)


def test_rollout_shapes_and_first_state():
    model = _model()
    s0, actions = torch.randn(6, 3), torch.randn(6, 5, 2)
    states = model.rollout(s0, actions)
    assert states.shape == (4, 6, 6, 3)
    torch.testing.assert_close(states[:, :, 0], s0.expand(4, 6, 3))
    z = model.sample_z(6, torch.Generator().manual_seed(1))
    assert z.shape == (4, 6, 2)
    torch.testing.assert_close(model.rollout(s0, actions, z), model.rollout(s0, actions, z))


def test_gradients_flow_from_predicted_states_to_every_action():
    model = _model()
    actions = torch.randn(3, 6, 2, requires_grad=True)
    final = model.rollout(torch.randn(3, 3), actions, torch.zeros(4, 3, 2))[:, :, -1]
    final.square().sum().backward()
    assert actions.grad is not None
    per_step = actions.grad.abs().sum(dim=(0, 2))
    assert torch.all(per_step > 0), per_step


def test_rollout_gradient_matches_finite_differences():
    model = _model(latent_dim=1).double()
    s0 = torch.randn(2, 3, dtype=torch.float64)
    z = torch.randn(4, 2, 1, dtype=torch.float64)
    actions = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u: model.rollout(s0, u, z), (actions,))


def test_reward_head_and_its_absence():
    model = _model(predict_reward=True)
    assert model.reward(torch.randn(9, 3), torch.randn(9, 2)).shape == (4, 9)
    with pytest.raises(ValueError, match='no reward head'):
        _model().reward(torch.randn(9, 3), torch.randn(9, 2))


def test_latent_free_model_and_posterior_shapes():
    model = _model(latent_dim=0)
    assert model.sample_z(5).shape == (4, 5, 0)
    assert model.rollout(torch.randn(5, 3), torch.randn(5, 2, 2)).shape == (4, 5, 3, 3)
    assert model.infer_z(torch.randn(5, 3, 3), torch.randn(5, 2, 2)).shape == (4, 5, 0)
    mu, log_std = _model().posterior(torch.randn(5, 4, 3), torch.randn(5, 3, 2))
    assert mu.shape == log_std.shape == (4, 5, 2)


def test_posterior_ignores_masked_padding():
    model = _model()
    states, actions = torch.randn(2, 5, 3), torch.randn(2, 4, 2)
    mask = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1]])
    padded = states.clone()
    padded[0, 3:] = 100.0
    torch.testing.assert_close(model.infer_z(states, actions, mask)[:, 0],
                               model.infer_z(padded, actions, mask)[:, 0])


@pytest.mark.parametrize('s, a', [((5, 4), (5, 2)), ((5, 3), (5, 1)), ((2, 5, 3), (2, 5, 2))])
def test_bad_shapes_raise_clear_errors(s, a):
    model = _model()
    with pytest.raises(ValueError, match='must have shape'):
        model.next(torch.randn(*s), torch.randn(*a), torch.zeros(5, 2))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match='ensemble_size'):
        WorldModelConfig(state_dim=3, action_dim=1, ensemble_size=0)
    with pytest.raises(ValueError, match='activation'):
        WorldModelConfig(state_dim=3, action_dim=1, activation='swish2')
    with pytest.raises(ValueError, match='unknown world model config keys'):
        WorldModelConfig.from_dict({'state_dim': 3, 'action_dim': 1, 'hiden_sizes': [4]})
    cfg = WorldModelConfig(state_dim=3, action_dim=1, hidden_sizes=[8, 8])
    assert WorldModelConfig.from_dict(cfg.to_dict()) == cfg


def test_posterior_from_transitions_matches_the_window_posterior():
    model = _model()
    states, actions = torch.randn(5, 4, 3), torch.randn(5, 3, 2)
    mu, log_std = model.posterior(states, actions)
    mu2, log_std2 = model.posterior_from_transitions(states[:, :-1], actions, states[:, 1:])
    torch.testing.assert_close(mu, mu2)
    torch.testing.assert_close(log_std, log_std2)


def _framed(keep_origin: bool):
    """A 5-state model whose dims 2, 3 are a point seen from the origin at dims 0, 1."""
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig(
        state_dim=5, action_dim=2, latent_dim=1, ensemble_size=3, hidden_sizes=(16, 16),
        encoder_hidden=8, frame_origin=(0, 1), frame_points=(2, 3),
        frame_keep_origin=keep_origin))
    s, a = torch.randn(60, 5), torch.randn(60, 2)
    model.fit_normalizers(s, a, s + 0.1 * torch.randn(60, 5))
    return model


@pytest.mark.parametrize('keep_origin', [True, False])
def test_frame_relative_inputs_in_step_and_in_the_fused_rollout(keep_origin):
    model = _framed(keep_origin)
    s0, actions = torch.randn(6, 5), torch.randn(6, 4, 2)
    z = model.sample_z(6, torch.Generator().manual_seed(1))
    stepped = [s0.expand(3, 6, 5)]
    for t in range(4):
        stepped.append(model.next(stepped[-1], actions[:, t], z))
    with torch.no_grad():
        torch.testing.assert_close(model.rollout(s0, actions, z), torch.stack(stepped, 2))
    sa = torch.cat([s0, actions[:, 0]], -1)
    inputs = model._inputs(sa)  # the point relative to the origin, the rest as given
    torch.testing.assert_close(inputs[:, 2:4], s0[:, 2:4] - s0[:, :2])
    torch.testing.assert_close(inputs[:, 4:], sa[:, 4:])
    torch.testing.assert_close(inputs[:, :2], s0[:, :2] if keep_origin else 0 * s0[:, :2])


def test_without_the_origin_the_dynamics_are_invariant_to_translating_the_scene():
    model, shifted = _framed(False), _framed(True)
    s, a, z = torch.randn(8, 5), torch.randn(8, 2), torch.randn(3, 8, 1)
    move = torch.tensor([0.3, -0.2, 0.3, -0.2, 0.0])  # origin and point move together
    torch.testing.assert_close(model.next(s + move, a, z) - move, model.next(s, a, z))
    assert not torch.allclose(shifted.next(s + move, a, z) - move, shifted.next(s, a, z))


def test_frame_settings_are_checked():
    with pytest.raises(ValueError, match='frame_points'):
        WorldModelConfig(state_dim=5, action_dim=1, frame_origin=(0, 1), frame_points=(2,))
    with pytest.raises(ValueError, match='distinct state indices'):
        WorldModelConfig(state_dim=5, action_dim=1, frame_origin=(0, 1), frame_points=(1, 7))
    cfg = WorldModelConfig(state_dim=5, action_dim=1, frame_origin=[0, 1], frame_points=[2, 3],
                           frame_keep_origin=False)
    assert WorldModelConfig.from_dict(cfg.to_dict()) == cfg
