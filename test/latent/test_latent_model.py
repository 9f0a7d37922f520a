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
from hlai_ros.latent.goal import fit_goal_cost, goal_ranking, latent_distance
from hlai_ros.latent.model import LatentWorldModel, gaussian_maps, spatial_softmax
from hlai_ros.latent.objective import window_loss
from hlai_ros.latent.probes import collapse_stats, effective_rank, probe_positions
from hlai_ros.latent.sigreg import sigreg
from hlai_ros.latent.train import train_latent
from hlai_ros.world_model.checkpoint import CheckpointError

S = 32
TINY = dict(image_size=S, proprio_dim=3, action_dim=2, channels=8, map_channels=4, map_size=8,
            proprio_latent_dim=4, predictor_channels=8, ensemble_size=2, horizon=3,
            recon_size=8, batch_size=8, sigreg_slices=32, steps_per_epoch=5, max_epochs=3,
            val_windows=16, time_budget_s=0.0, keypoints=2)


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
    c = LatentConfig(**dict(TINY, z_dim=2, keypoints=0))
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


# -- keypoints and the goal cost (stage 2) ---------------------------------------------------
def test_spatial_softmax_is_linear_in_blob_position():
    size, found, truth = 32, [], []
    for x0 in range(4, 28, 3):
        for y0 in (6, 15, 25):
            img = torch.zeros(1, 1, size, size)
            img[0, 0, y0 - 1:y0 + 2, x0 - 1:x0 + 2] = 1.0
            found.append(spatial_softmax(20.0 * img)[0, 0])
            truth.append([x0, y0])
    found = torch.stack(found).numpy()
    truth = np.asarray(truth, float)
    # expected position = -1 + 2 * pixel / (size - 1): exactly linear
    assert np.allclose(found, -1.0 + 2.0 * truth / (size - 1), atol=1e-3)
    maps = gaussian_maps(torch.tensor([[[0.0, -0.5]]]), 17, 0.1)
    assert maps.shape == (1, 1, 17, 17) and maps[0, 0, 4, 8] == maps.max()


def test_keypoint_model_shapes_and_old_configs():
    c = LatentConfig(**dict(TINY, keypoints=3))
    model = LatentWorldModel(c).eval()
    f = tiny_data(1).frames(torch.arange(5))
    lat = model.encode(f['rgb'], f['depth'], f['proprio'])
    assert lat.shape == (5, 4 * 8 * 8 + 6 + 4) and c.image_latent_dim == 4 * 8 * 8 + 6
    kp = model.keypoint_part(lat)
    assert kp.shape == (5, 6) and kp.abs().max() <= 1.0
    assert model.next(lat, torch.zeros(5, 2)).shape == (2, 5, c.latent_dim)
    ref = model.recon_target(model.pixels(f['rgb'], f['depth']))
    out = model.decode_keypoints(ref, kp.view(5, 3, 2), kp.view(5, 3, 2).flip(0))
    assert out.shape == (5, 4, 8, 8)
    c2 = LatentConfig(**dict(TINY, keypoint_decoder_proprio=True))
    model2 = LatentWorldModel(c2)
    batch = tiny_data(2).windows(torch.arange(4), 3)
    terms = window_loss(model2, batch)
    terms.total.backward()
    assert torch.isfinite(terms.keypoint_reconstruction)
    assert model2.keypoint_encoder.net[0].weight.grad.abs().sum() > 0
    from hlai_ros.tasks import get_task
    assert LatentConfig().for_task(get_task('push')).keypoint_decoder_proprio
    assert not LatentConfig().for_task(get_task('cliff')).keypoint_decoder_proprio
    assert LatentConfig().for_task(object()) == LatentConfig()
    old = {k: v for k, v in c.to_dict().items() if not k.startswith('keypoint')}
    assert LatentConfig.from_dict(old).keypoints == 0   # stage-1 checkpoints load unchanged


def test_reference_frames_stay_in_their_episode():
    data = tiny_data(4)
    index = torch.arange(len(data))
    ref = data.same_episode_frames(index, torch.Generator().manual_seed(0))
    assert torch.equal(data.episode[ref], data.episode[index])
    assert len(set(ref.tolist())) > 10


def test_keypoints_learn_to_track_the_moving_square():
    torch.manual_seed(0)
    data = tiny_data(12)
    c = LatentConfig(**dict(TINY, keypoints=2, recon_weight=0.0, sigreg_weight=0.0,
                            keypoint_pred_weight=0.0, keypoint_sigma=0.1, map_channels=1,
                            recon_size=16))
    model = LatentWorldModel(c)
    model.fit_normalizers(data.rgb, data.depth.float(), data.proprio, data.actions[data.valid])
    starts = data.window_starts(3)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(90):
        pick = starts[torch.randint(0, len(starts), (16,), generator=g)]
        batch = data.windows(pick, 3)
        ref = data.frames(data.same_episode_frames(pick, g))
        batch['ref_rgb'], batch['ref_depth'] = ref['rgb'], ref['depth']
        terms = window_loss(model, batch, g)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
    with torch.no_grad():
        lat = model.encode(data.rgb, data.depth.float(), data.proprio)
    res = probe_positions(model.keypoint_part(lat).numpy(), data, ['object_position'])
    assert res['object_position'].r2 > 0.9


def test_goal_cost_ignores_the_hand_and_ranks_the_box():
    from types import SimpleNamespace

    c = LatentConfig(**dict(TINY, keypoints=2))
    model = LatentWorldModel(c)
    rng = np.random.default_rng(0)
    n_ep, steps = 6, 30
    lat = torch.zeros(n_ep * steps, c.latent_dim)
    box = np.zeros((n_ep * steps, 2))
    for e in range(n_ep):
        sl = slice(e * steps, (e + 1) * steps)
        prop = torch.randn(steps, c.proprio_latent_dim)        # the robot's own state
        hand = 0.5 * torch.tanh(prop[:, :2])                     # keypoint 0: follows proprio
        start, goal = rng.uniform(-0.5, 0.5, 2), rng.uniform(-0.5, 0.5, 2)
        frac = np.linspace(0, 1, steps) ** 2                     # keypoint 1: the box's approach
        b = start + frac[:, None] * (goal - start) + 0.003 * rng.normal(size=(steps, 2))
        box[sl] = b
        km = model.map_dim
        lat[sl, km:km + 2] = hand
        lat[sl, km + 2:km + 4] = torch.as_tensor(b, dtype=torch.float32)
        lat[sl, model.image_dim:] = prop
        lat[sl, :km] = torch.randn(steps, km)                    # a noisy map
    data = SimpleNamespace(episode=torch.arange(n_ep).repeat_interleave(steps),
                           num_episodes=n_ep, positions={'object_position': box})
    cost = fit_goal_cost(model, lat)
    assert cost.keypoint_weights[0] < 0.3 and cost.keypoint_weights[1] > 0.9
    ranked = goal_ranking(cost, lat, data, 'object_position')
    assert ranked['episodes'] == n_ep and ranked['spearman_mean'] > 0.95
    selfish = fit_goal_cost(model, lat, weighting='self')
    assert selfish.keypoint_weights[0] > 0.7 and selfish.keypoint_weights[1] < 0.1
    resid = goal_ranking(fit_goal_cost(model, lat, weighting='residual'), lat, data,
                         'object_position')
    assert resid['spearman_mean'] > 0.9   # the toy hand is nonlinear in proprio: some is left
    plain = goal_ranking(latent_distance(slice(None)), lat, data, 'object_position')
    assert plain['spearman_mean'] < 0.5
    with_map = cost.with_goal_energy(model, lat[0])
    assert with_map.map_location_weights.shape == (8, 8)
    assert with_map(lat[:3], lat[0]).shape == (3,)
