"""Probes that measure the latent and never steer it: decoding, collapse and prediction figures.

Everything here reads ground truth (`LatentDataset.positions`) or a held-out dataset, and runs
after training; nothing in training or planning imports it.

- `probe_positions`: ridge probes from the *image* part of the latent to true xy positions,
  fitted and scored by grouped K-fold over held-out episodes (a probe never sees the episodes
  it is scored on); R² and the planar error, mm. The ridge penalty is chosen inside each fold.
- `collapse_stats`: per-dimension std and the effective rank (exp of the entropy of the
  normalised singular values, RankMe) of held-out latents.
- `prediction_errors`: k-step latent prediction error against the copy-last baseline.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

from hlai_ros.latent.data import LatentDataset
from hlai_ros.latent.model import LatentWorldModel

ALPHAS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
"""Ridge penalties tried (on standardised features, times the number of samples / 1000)."""


@torch.no_grad()
def encode_dataset(model: LatentWorldModel, data: LatentDataset, batch: int = 256
                   ) -> torch.Tensor:
    """Latents (M, D) of every frame of `data` (eval mode, no gradients)."""
    model.eval()
    out = []
    for i in range(0, len(data), batch):
        f = data.frames(torch.arange(i, min(i + batch, len(data))))
        out.append(model.encode(f['rgb'], f['depth'], f['proprio']))
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


class Ridge:
    """Ridge regression on standardised features, solved through one eigendecomposition."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        self.y_mu = y.mean(0)
        xs = (x - self.mu) / self.sd
        self.evals, self.evecs = np.linalg.eigh(xs.T @ xs)
        self.xty = self.evecs.T @ (xs.T @ (y - self.y_mu))
        self.n = len(x)

    def weights(self, alpha: float) -> np.ndarray:
        """(F, Y) weights for penalty alpha."""
        lam = alpha * self.n / 1000.0
        return self.evecs @ (self.xty / (self.evals + lam)[:, None])

    def predict(self, x: np.ndarray, alpha: float) -> np.ndarray:
        """(N, Y) predictions."""
        return ((x - self.mu) / self.sd) @ self.weights(alpha) + self.y_mu


def _folds(groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    ids = np.unique(groups)
    ids = np.random.default_rng(seed).permutation(ids)
    return [np.isin(groups, part) for part in np.array_split(ids, min(k, len(ids)))]


def _pick_alpha(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> float:
    errs = np.zeros(len(ALPHAS))
    for test in _folds(groups, 4, seed):
        fit = Ridge(x[~test], y[~test])
        for i, a in enumerate(ALPHAS):
            errs[i] += ((fit.predict(x[test], a) - y[test]) ** 2).sum()
    return ALPHAS[int(np.argmin(errs))]


@dataclass
class ProbeResult:
    """How well a linear probe decodes one position from the latent (held-out episodes)."""

    target: str
    """Ground-truth key, e.g. 'object_position'."""
    r2: float
    """Coefficient of determination, averaged over x and y."""
    mean_error_mm: float
    """Mean planar (xy) error, mm."""
    median_error_mm: float
    """Median planar error, mm."""
    p90_error_mm: float
    """90th percentile planar error, mm."""
    spread_mm: float
    """RMS distance of the truth to its mean, mm (the error of a constant guess)."""
    samples: int
    """Frames scored."""
    alpha: float
    """Most often chosen ridge penalty."""

    def to_dict(self) -> dict:
        """Plain JSON-able values."""
        return asdict(self)


def probe_positions(features: np.ndarray, data: LatentDataset, keys: Sequence[str] | None = None,
                    folds: int = 5, seed: int = 0) -> dict[str, ProbeResult]:
    """Ridge probes from `features` (M, F) to every recorded position of `data`.

    Grouped K-fold over episodes: each fold's probe is fitted on the other episodes (its ridge
    penalty chosen by an inner grouped split) and scored on this fold's.
    """
    groups = data.episode.numpy()
    out = {}
    for key in keys or list(data.positions):
        y = data.positions[key]
        ok = np.isfinite(y).all(1)
        if ok.sum() < 10 or len(np.unique(groups[ok])) < 2:
            continue
        x_k, y_k, g_k = features[ok].astype(np.float64), y[ok], groups[ok]
        pred = np.zeros_like(y_k)
        alphas = []
        for test in _folds(g_k, folds, seed):
            a = _pick_alpha(x_k[~test], y_k[~test], g_k[~test], seed)
            alphas.append(a)
            pred[test] = Ridge(x_k[~test], y_k[~test]).predict(x_k[test], a)
        err = np.linalg.norm(pred - y_k, axis=1) * 1000.0
        ss_res = ((pred - y_k) ** 2).sum(0)
        ss_tot = ((y_k - y_k.mean(0)) ** 2).sum(0)
        spread = float(np.sqrt(((y_k - y_k.mean(0)) ** 2).sum(1).mean()) * 1000.0)
        out[key] = ProbeResult(key, float(np.mean(1 - ss_res / ss_tot)), float(err.mean()),
                               float(np.median(err)), float(np.percentile(err, 90)), spread,
                               int(ok.sum()), float(max(set(alphas), key=alphas.count)))
    return out


def effective_rank(x: torch.Tensor) -> float:
    """RankMe: exp(entropy of the normalised singular values) of centred x (N, D)."""
    s = torch.linalg.svdvals(x - x.mean(0))
    p = s / s.sum().clamp_min(1e-12)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def collapse_stats(latents: torch.Tensor) -> dict[str, float]:
    """Per-dimension std (min, median, share under 0.01 of the median) and effective rank."""
    std = latents.std(0)
    med = std.median()
    return {'dims': int(latents.shape[1]), 'std_min': float(std.min()),
            'std_median': float(med), 'std_max': float(std.max()),
            'dead_fraction': float((std < 0.01 * med).float().mean()),
            'effective_rank': effective_rank(latents)}


@torch.no_grad()
def prediction_errors(model: LatentWorldModel, data: LatentDataset, horizon: int,
                      max_windows: int = 512, seed: int = 0) -> dict[str, Any]:
    """k-step errors (k = 1..horizon) on held-out windows, ensemble mean, relative units.

    Each error is the mean squared latent error divided by the mean per-dimension variance of
    the held-out latents (so 1.0 is what guessing the mean frame's latent costs), for the image
    part, the whole latent and the keypoints (when the model has them); the copy-last baseline
    predicts frame k's latent as frame 0's. Also returns the members' disagreement (variance
    across members, same units), the ensemble-mean predicted latents (B, H, D) and the windows'
    start frames (B,).
    """
    model.eval()
    starts = data.window_starts(horizon)
    if len(starts) == 0:
        return {}
    g = torch.Generator().manual_seed(seed)
    starts = starts[torch.randperm(len(starts), generator=g)[:max_windows]]
    w = data.windows(starts, horizon)
    b, h1 = w['rgb'].shape[:2]
    lat = model.encode(w['rgb'].flatten(0, 1), w['depth'].flatten(0, 1),
                       w['proprio'].flatten(0, 1)).view(b, h1, -1)
    pred = model.rollout(lat[:, 0], w['actions'])                  # (E, B, H, D)
    mean = pred.mean(0)
    k = model.image_dim
    var_img = lat[..., :k].flatten(0, 1).var(0).mean()
    var_all = lat.flatten(0, 1).var(0).mean()
    target = lat[:, 1:]
    copy = lat[:, :1].expand_as(target)
    parts = [('image', slice(0, k), var_img), ('all', slice(None), var_all)]
    if k > model.map_dim:
        kp = slice(model.map_dim, k)
        parts.append(('keypoints', kp, lat[..., kp].flatten(0, 1).var(0).mean()))
    out = {}
    for name, sl, var in parts:
        out[f'model_{name}'] = (((mean - target)[..., sl] ** 2).mean((0, 2)) / var).tolist()
        out[f'copy_{name}'] = (((copy - target)[..., sl] ** 2).mean((0, 2)) / var).tolist()
    out['disagreement_all'] = (pred.var(0).mean((0, 2)) / var_all).tolist()
    out['predicted_latents'] = mean                                  # for predicted-frame probes
    out['starts'] = starts
    return out
