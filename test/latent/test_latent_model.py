"""The latent world model on tiny synthetic data: shapes, learning, checkpoints, probes."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from hlai_ros.latent.checkpoint import load_latent_model, save_latent_model
from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.data import LatentDataset, dataset_from_episodes
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.objective import window_loss
from hlai_ros.latent.probes import collapse_stats, effective_rank, probe_positions
from hlai_ros.latent.sigreg import sigreg
from hlai_ros.latent.train import train_latent
from hlai_ros.world_model.checkpoint import CheckpointError

S = 32
TINY = dict(image_size=S, proprio_dim=3, action_dim=2, channels=8, map_channels=4, map_size=8,
            proprio_latent_dim=4, predictor_channels=8, ensemble_size=2, horizon=3,
            recon_size=8, batch_size=8, sigreg_slices=32, steps_per_epoch=5, max_epochs=3,
            val_windows=16, time_budget_s=0.0)


class FakeEpisode:
    """A square moving on a grey image under a velocity command (what an Episode offers)."""

    def __init__(self, seed: int, steps: int = 12):
        rng = np.random.default_rng(seed)
        pos = np.empty((steps + 1, 2))
        pos[0] = rng.uniform(3, S - 4, 2)
        actions = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
        for t in range(steps):
            pos[t + 1] = np.clip(pos[t] + actions[t], 2, S - 3)
        rgb = np.full((steps + 1, S, S, 3), 80, np.uint8)
        for t, (x, y) in enumerate(pos.round().astype(int)):
            rgb[t, y - 1:y + 2, x - 1:x + 2] = (220, 30, 30)
        depth = np.full((steps + 1, S, S), 1.0, np.float32)
        self.observations = {'rgb': rgb, 'depth': depth,
                             'proprio': rng.normal(size=(steps + 1, 3)).astype(np.float32),
                             'goal': np.zeros((steps + 1, 2), np.float32)}
        self.actions = actions
        self.action_valid = np.ones(steps, bool)
        self.proprio_names = ('a', 'b', 'c')
        self.ground_truth = [{'object_position': [x / 100.0, y / 100.0, 0.0]} for x, y in pos]


def tiny_data(n: int = 8) -> LatentDataset:
    return dataset_from_episodes([FakeEpisode(i) for i in range(n)])


def test_dataset_shapes_and_windows():
    data = tiny_data(3)
    assert data.rgb.shape == (39, 3, S, S) and data.rgb.dtype == torch.uint8
    assert data.num_episodes == 3 and int(data.valid.sum()) == 36
    starts = data.window_starts(3)
    assert len(starts) == 3 * 10  # 12 steps: windows of 3 start at steps 0..9
    w = data.windows(starts[:4], 3)
    assert w['rgb'].shape == (4, 4, 3, S, S) and w['actions'].shape == (4, 3, 2)
    assert torch.isfinite(w['actions']).all()
    assert data.positions['object_position'].shape == (39, 2)
    assert np.isnan(data.positions['base_position']).all()


def test_model_shapes():
    c = LatentConfig(**TINY, z_dim=2)
    model = LatentWorldModel(c).eval()
    data = tiny_data(2)
    f = data.frames(torch.arange(5))
    lat = model.encode(f['rgb'], f['depth'], f['proprio'])
    assert lat.shape == (5, c.latent_dim) == (5, 4 * 8 * 8 + 4)
    assert model.image_part(lat).shape == (5, 256)
    nxt = model.next(lat, torch.zeros(5, 2))
    assert nxt.shape == (2, 5, c.latent_dim)
    assert model.next(nxt, torch.zeros(5, 2), torch.ones(5, 2)).shape == (2, 5, c.latent_dim)
    assert model.rollout(lat, torch.zeros(5, 4, 2)).shape == (2, 5, 4, c.latent_dim)
    assert model.decode_image(lat).shape == (5, 4, 8, 8)


def test_sigreg_penalises_collapse():
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(512, 16, generator=g)
    assert sigreg(gauss, 64, g) < 0.5 * sigreg(torch.zeros(512, 16), 64, g)
    assert sigreg(gauss, 64, g) < sigreg(gauss * 0.1, 64, g)


def test_loss_decreases_on_toy_problem():
    torch.manual_seed(0)
    data = tiny_data(6)
    model = LatentWorldModel(LatentConfig(**TINY))
    model.fit_normalizers(data.rgb, data.depth.float(), data.proprio, data.actions[data.valid])
    batch = data.windows(data.window_starts(3)[:24], 3)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        terms = window_loss(model, batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        losses.append(float(terms.total.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_train_save_load_resume_and_identity(tmp_path):
    data = tiny_data(6)
    c = LatentConfig(**TINY)
    identity = {'task': 'toy', 'embodiment': 'bot', 'representation': 'latent',
                'state_names': ['x'], 'action_names': ['vx', 'vy']}
    model, hist = train_latent(data, c, tmp_path, progress=False, metadata={'identity': identity})
    assert len(hist.val_loss) == 3 and hist.stop_reason == 'max_epochs'
    loaded = load_latent_model(tmp_path, identity=identity)
    f = data.frames(torch.arange(4))
    with torch.no_grad():
        a = model.encode(f['rgb'], f['depth'], f['proprio'])
        b = loaded.encode(f['rgb'], f['depth'], f['proprio'])
    assert torch.allclose(a, b)
    with pytest.raises(CheckpointError, match='differs in task'):
        load_latent_model(tmp_path, identity=dict(identity, task='other'))
    # resume: more epochs allowed, the run continues from the saved state
    _, hist2 = train_latent(data, LatentConfig(**dict(TINY, max_epochs=4)), tmp_path,
                            progress=False, metadata={'identity': identity})
    assert len(hist2.val_loss) == 4 and hist2.val_loss[:3] == hist.val_loss
    # a bare save (no identity) is refused where an identity is expected
    save_latent_model(loaded, tmp_path / 'bare')
    with pytest.raises(CheckpointError, match='carries no identity'):
        load_latent_model(tmp_path / 'bare', identity=identity)


def test_probe_recovers_known_linear_map():
    data = tiny_data(10)
    rng = np.random.default_rng(1)
    y = data.positions['object_position']
    w = rng.normal(size=(2, 20))
    features = y @ w + 0.0001 * rng.normal(size=(len(y), 20))
    res = probe_positions(features, data, ['object_position'])['object_position']
    assert res.r2 > 0.99 and res.mean_error_mm < 1.0
    noise = probe_positions(rng.normal(size=(len(y), 20)), data, ['object_position'])
    assert noise['object_position'].r2 < 0.2


def test_collapse_stats():
    x = torch.randn(400, 8)
    assert effective_rank(x) > 7.0
    collapsed = torch.randn(400, 1) @ torch.ones(1, 8)
    assert effective_rank(collapsed) < 1.5
    s = collapse_stats(x)
    assert s['dims'] == 8 and s['dead_fraction'] == 0.0


def test_latent_package_never_imports_rclpy():
    root = Path(__file__).resolve().parents[2] / 'hlai_ros' / 'latent'
    for path in root.glob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or '']
            assert not any(n.split('.')[0] == 'rclpy' for n in names), path
