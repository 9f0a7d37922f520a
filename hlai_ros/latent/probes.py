r"""Probes that measure the latent and never steer it: decoding, collapse and prediction figures.

Everything here reads ground truth (`LatentDataset.positions`) or a held-out dataset, and runs
after training; nothing in training or planning imports it.

- `probe_positions`: ridge probes from the *image* part of the latent to true xy positions,
  fitted and scored by grouped K-fold over held-out episodes (a probe never sees the episodes
  it is scored on); R² and the planar error, mm. The ridge penalty is chosen inside each fold.
- `collapse_stats`: per-dimension std and the effective rank (exp of the entropy of the
  normalised singular values, RankMe) of held-out latents.
- `prediction_errors`: k-step latent prediction error against the copy-last baseline.
- `PlanProbe`, `fit_plan_probe`, `save_plan_probe`, `load_plan_probe`: a ridge probe from the
  *planning state* (keypoints + proprioception latent) to true positions (m), fitted on
  held-out bags and stored in the model folder (``latent_probe.json`` + safetensors, atomic),
  so that the ``mpc_actor`` can draw a latent plan on ``/hlai/plan`` in metres. It only
  draws: the stack's cost never sees it. Command line::

      python -m hlai_ros.latent.probes --fit --task cliff --model models/cliff_latent \
          --data /work/data/cliff_probe
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
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


# -- the stored plan probe (draws /hlai/plan; never enters the cost) --------------------------
PROBE_STEM = 'latent_probe'
PROBE_FORMAT = 'hlai_latent_probe'
PROBE_VERSION = 1
PROBE_FRAME = 'world'
"""The frame of the positions the probes decode (the simulator's ground truth: world)."""


@dataclass
class PlanProbe:
    """Linear maps from planning states (S,) to positions (2,) in metres, one per target."""

    weights: dict[str, tuple[np.ndarray, np.ndarray]]
    """target -> (W (S, 2), b (2,)): position = state @ W + b."""
    plan_target: str
    """The target `decode` draws by default (the task's `latent_plan_target`)."""
    report: dict[str, Any] = field(default_factory=dict)
    """Held-out scores per target (`ProbeResult.to_dict`) and how it was fitted."""
    frame: str = PROBE_FRAME
    """Frame of the decoded positions."""

    @property
    def state_dim(self) -> int:
        """Size of the planning state it reads."""
        return int(self.weights[self.plan_target][0].shape[0])

    def decode(self, states, target: str | None = None) -> np.ndarray:
        """Planning states (..., S) -> positions (..., 2), m."""
        w, b = self.weights[target or self.plan_target]
        states = np.asarray(states, dtype=np.float64)
        if states.shape[-1] != w.shape[0]:
            raise ValueError(f'the probe reads {w.shape[0]}-entry planning states, got '
                             f'{states.shape[-1]}')
        return states @ w + b

    def describe(self) -> str:
        """One line: target, held-out R^2 and mean error."""
        r = self.report.get('scores', {}).get(self.plan_target, {})
        if not r:
            return f'{self.plan_target} (no held-out score)'
        return (f'{self.plan_target}: held-out R^2 {r["r2"]:.3f}, mean error '
                f'{r["mean_error_mm"] / 1000:.3f} m')


def _encoder_sha(folder: Path) -> str | None:
    try:
        return json.loads((Path(folder) / 'latent_model.json').read_text()).get('sha256')
    except (OSError, ValueError):
        return None


@torch.no_grad()
def fit_plan_probe(encoder: LatentWorldModel, data: LatentDataset, task: str,
                   plan_target: str | None = None, folds: int = 5, seed: int = 0) -> PlanProbe:
    """Fit ridge probes from `encoder`'s planning states of `data` to every recorded position.

    Each is scored by grouped K-fold over `data`'s episodes (`probe_positions`: R^2 and error
    on episodes its fold never saw), then refitted on all of them with the penalty chosen by a
    grouped split. `data` should be held out from the encoder's training.

    Raises:
        ValueError: `data` records no position (or not `plan_target`).

    """
    states = encode_dataset(encoder, data)[:, encoder.map_dim:].numpy().astype(np.float64)
    scores = probe_positions(states, data, folds=folds, seed=seed)
    from hlai_ros.tasks import get_task
    target = plan_target or get_task(task).latent_plan_target
    if target not in scores:
        raise ValueError(f'the data records no {target!r} positions to fit a probe on (has '
                         f'{sorted(scores)})')
    groups = data.episode.numpy()
    weights = {}
    for key in scores:
        y = data.positions[key]
        ok = np.isfinite(y).all(1)
        alpha = _pick_alpha(states[ok], y[ok], groups[ok], seed)
        fit = Ridge(states[ok], y[ok])
        w = fit.weights(alpha)
        weights[key] = (w / fit.sd[:, None], fit.y_mu - (fit.mu / fit.sd) @ w)
    report = {'scores': {k: v.to_dict() for k, v in scores.items()}, 'folds': folds,
              'seed': seed, 'frames': len(data), 'episodes': data.num_episodes}
    return PlanProbe(weights, target, report)


def save_plan_probe(folder: str | Path, probe: PlanProbe, metadata: dict | None = None) -> Path:
    """Write ``latent_probe.json`` + weights into the model folder (atomic); return the JSON.

    The header names the encoder it decodes (the SHA-256 of the folder's ``latent_model.json``
    weights): `load_plan_probe` refuses it for another encoder.
    """
    from hlai_ros.world_model.checkpoint import write_checkpoint
    tensors = {}
    for key, (w, b) in probe.weights.items():
        tensors[f'{key}.weight'] = torch.as_tensor(w, dtype=torch.float64)
        tensors[f'{key}.bias'] = torch.as_tensor(b, dtype=torch.float64)
    header = {'format': PROBE_FORMAT, 'version': PROBE_VERSION, 'targets': sorted(probe.weights),
              'plan_target': probe.plan_target, 'frame': probe.frame, 'report': probe.report,
              'state_dim': probe.state_dim, 'encoder_sha256': _encoder_sha(Path(folder)),
              'metadata': metadata or {}}
    return write_checkpoint(Path(folder), PROBE_STEM, tensors, header)


def load_plan_probe(folder: str | Path) -> PlanProbe | None:
    """The folder's plan probe; None when it has none (``latent_probe.json`` absent).

    Raises:
        CheckpointError: broken, of another format, or fitted on another encoder than the
            folder's (the message names both).

    """
    from hlai_ros.world_model.checkpoint import CheckpointError, read_checkpoint
    folder = Path(folder).expanduser()
    if not (folder / f'{PROBE_STEM}.json').is_file():
        return None
    tensors, header = read_checkpoint(folder, PROBE_STEM)
    if header.get('format') != PROBE_FORMAT or header.get('version') != PROBE_VERSION:
        raise CheckpointError(f'{folder} holds no version-{PROBE_VERSION} {PROBE_FORMAT}')
    if header.get('encoder_sha256') != (found := _encoder_sha(folder)):
        raise CheckpointError(f'{folder}/{PROBE_STEM}.json was fitted on encoder '
                              f'{str(header.get("encoder_sha256"))[:16]}, the folder holds '
                              f'encoder {str(found)[:16]}: refit it (python -m '
                              f'hlai_ros.latent.probes --fit ...)')
    weights = {k: (tensors[f'{k}.weight'].numpy(), tensors[f'{k}.bias'].numpy())
               for k in header['targets']}
    return PlanProbe(weights, header['plan_target'], header.get('report') or {},
                     header.get('frame', PROBE_FRAME))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hlai_ros.latent.probes --fit``: fit and store a model folder's plan probe."""
    p = argparse.ArgumentParser(prog='python -m hlai_ros.latent.probes',
                                description='fit a linear probe from a latent folder\'s planning '
                                'state to true positions on held-out bags, and store it in the '
                                'folder (latent_probe.json) for /hlai/plan')
    p.add_argument('--fit', action='store_true', required=True, help='fit and store the probe')
    p.add_argument('--task', required=True, help='registered task (cliff, push, ...)')
    p.add_argument('--model', required=True, help='latent model folder (written into)')
    p.add_argument('--data', required=True, help='held-out bags with ground truth')
    p.add_argument('--target', default=None, help='position drawn on /hlai/plan (default: '
                   'the task\'s latent_plan_target, e.g. object_position or base_position)')
    p.add_argument('--folds', type=int, default=5, help='grouped folds of the held-out score')
    p.add_argument('--seed', type=int, default=0, help='seed of the folds')
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from hlai_ros.latent.checkpoint import load_latent_model
    from hlai_ros.latent.data import load_dataset
    from hlai_ros.tasks import get_task
    task = get_task(args.task)
    encoder = load_latent_model(args.model, identity=task.identity('latent'))
    data = load_dataset(args.data)
    probe = fit_plan_probe(encoder, data, task.name, args.target, args.folds, args.seed)
    command = ' '.join(['python -m hlai_ros.latent.probes'] + list(
        argv if argv is not None else __import__('sys').argv[1:]))
    path = save_plan_probe(args.model, probe, {'identity': task.identity('latent'),
                                               'data': str(args.data), 'command': command})
    for key, r in probe.report['scores'].items():
        print(f'{key}: R^2 {r["r2"]:.3f}, error mean {r["mean_error_mm"] / 1000:.4f} m, median '
              f'{r["median_error_mm"] / 1000:.4f} m, p90 {r["p90_error_mm"] / 1000:.4f} m '
              f'(spread {r["spread_mm"] / 1000:.3f} m, {r["samples"]} frames, held-out folds)')
    print(f'plan probe ({probe.plan_target}) -> {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
