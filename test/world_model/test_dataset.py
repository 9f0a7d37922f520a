"""Episodes and windows: boundaries, padding, split by episode, input checks."""
import numpy as np
import pytest
import torch

from hlai_ros.world_model.dataset import as_episodes, make_windows, split_episodes


def _tagged_episodes(lengths):
    """Episodes whose states carry (episode id, step) so a window's origin can be read off."""
    episodes = []
    for i, t_len in enumerate(lengths):
        steps = np.arange(t_len + 1, dtype=np.float32)
        states = np.stack([np.full(t_len + 1, i, np.float32), steps], axis=1)
        episodes.append((states, np.ones((t_len, 1), np.float32), steps[:-1]))
    return episodes


def test_windows_never_cross_episode_boundaries():
    w = make_windows(_tagged_episodes([10, 3, 7]), horizon=4)
    real = torch.cat([torch.ones(len(w), 1), w.mask], dim=1).bool()
    for k in range(len(w)):
        states = w.states[k][real[k]]
        assert torch.all(states[:, 0] == states[0, 0]), 'window mixes episodes'
        assert torch.all(states[1:, 1] - states[:-1, 1] == 1), 'window skips steps'
        assert int(w.episode[k]) == int(states[0, 0])
    # 10-step episode: starts 0..6 (7 windows); 3-step: one padded window; 7-step: 4 windows.
    assert len(w) == 7 + 1 + 4
    short = w.episode == 1
    assert torch.equal(w.mask[short][0], torch.tensor([1.0, 1, 1, 0]))
    assert torch.equal(w.actions[short][0, 3], torch.zeros(1))


def test_same_episode_partners_stay_in_the_episode():
    w = make_windows(_tagged_episodes([10, 3, 7]), horizon=4)
    gen = torch.Generator().manual_seed(0)
    for partner in (w.same_episode(), w.same_episode(torch.arange(len(w)), gen)):
        assert torch.equal(w.episode[partner], w.episode)
    fixed = w.same_episode()
    assert torch.all(fixed[w.episode == 0] != torch.arange(7))


def test_split_is_by_episode_and_disjoint():
    episodes = as_episodes(_tagged_episodes([5] * 10))
    train, val = split_episodes(episodes, 0.3, seed=1)
    ids = lambda eps: {int(ep.states[0, 0]) for ep in eps}  # noqa: E731
    assert len(val) == 3 and len(train) == 7
    assert not ids(train) & ids(val) and ids(train) | ids(val) == set(range(10))


def test_bad_episodes_raise_clear_errors():
    with pytest.raises(ValueError, match=r'states \(T\+1, S\) and actions'):
        as_episodes([(np.zeros((5, 2)), np.zeros((5, 1)))])
    with pytest.raises(ValueError, match='NaN'):
        as_episodes([(np.full((3, 2), np.nan), np.zeros((2, 1)))])
    with pytest.raises(ValueError, match='state size'):
        as_episodes([(np.zeros((3, 2)), np.zeros((2, 1))), (np.zeros((3, 4)), np.zeros((2, 1)))])
    with pytest.raises(ValueError, match='keys'):
        as_episodes([{'obs': np.zeros((3, 2))}])
