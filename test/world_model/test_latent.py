"""The latent z carries what the state leaves undetermined: here, a hidden per-episode mass."""
from point_mass import point_mass_episodes
import torch

from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.dataset import as_episodes, make_windows
from hlai_ros.world_model.objective import multistep_error
from hlai_ros.world_model.train import train_world_model


def _config(latent_dim):
    return WorldModelConfig(state_dim=2, action_dim=1, latent_dim=latent_dim, ensemble_size=2,
                            hidden_sizes=(48, 48), encoder_hidden=32, train_horizon=6,
                            batch_size=32, max_epochs=8, patience=8, learning_rate=3e-3,
                            time_budget_s=0.0, seed=0)


def _errors(model, episodes, context_steps=20, horizon=6):
    """Multi-step error on each episode's second part; z inferred from its first part only."""
    targets, contexts = [], []
    for ep in as_episodes(episodes):
        later = (ep.states[context_steps:], ep.actions[context_steps:])
        w = make_windows([later], horizon)
        targets.append(w)
        ctx = make_windows([(ep.states[:context_steps + 1], ep.actions[:context_steps])],
                           context_steps)
        contexts.append(ctx.select(torch.zeros(len(w), dtype=torch.long)))
    cat = lambda ws, f: torch.cat([getattr(w, f) for w in ws])  # noqa: E731
    fields = ('states', 'actions', 'mask')
    target = type(targets[0])(*(cat(targets, f) for f in fields), None)
    context = type(targets[0])(*(cat(contexts, f) for f in fields), None)
    return (multistep_error(model, target, 'posterior', context=context),
            multistep_error(model, target, 'prior'))


def test_inferred_latent_predicts_better_than_no_latent():
    train = point_mass_episodes(40, steps=40, seed=0, masses=(0.3, 3.0))
    held_out = point_mass_episodes(12, steps=40, seed=100, masses=(0.3, 3.0))
    latent_model, _ = train_world_model(train, _config(2), progress=False, device='cpu')
    plain_model, _ = train_world_model(train, _config(0), progress=False, device='cpu')
    inferred, prior_mean = _errors(latent_model, held_out)
    plain, _ = _errors(plain_model, held_out)
    # z inferred from the first 20 steps of an unseen episode must carry the mass: clearly
    # better than the same model at z = 0 and than a model without a latent.
    assert inferred < 0.6 * prior_mean, (inferred, prior_mean)
    assert inferred < 0.6 * plain, (inferred, plain)
