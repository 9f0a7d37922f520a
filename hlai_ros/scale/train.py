"""`hlai train --ray --workers N`: data-parallel world-model training with Ray Train.

`train_world_model_ray` runs the loop of `hlai_ros.world_model.train.train_world_model` in N
Ray Train workers (`ray.train.torch.TorchTrainer`): torch DistributedDataParallel over gloo on
CPU, NCCL on GPU. Every worker holds the whole (small) data set and the same model; all draw
the same bootstrap and the same window order from the shared seed, and each takes its
``rank``-th share of every batch, so one step of N workers sees the windows of one local step
and DDP averages their gradients. What differs from a local run is only the noise of the
latent posterior samples (drawn per worker from ``seed + rank``), so the validation error
matches the local one within a tolerance (docs/ray.md states the measured gap), not bit for bit.

Checkpoints. After every epoch rank 0 writes the best model so far and the training state into
a fresh folder (the files a local run writes into ``--out``: ``world_model.json`` +
``world_model-<sha>.safetensors``, ``train_state.json`` + ``train_state-<sha>.safetensors``) and
reports it to Ray Train. When a worker dies, Ray Train restarts the worker group
(`FailureConfig`) and the loop resumes from the last reported checkpoint; at the end the driver
copies the last checkpoint's files into ``out_dir``. A later local or Ray run resumes from
``out_dir`` as from a local run's. On a multi-machine cluster, ``storage_path`` must be shared
by all nodes (NFS or a bucket URI), as Ray Train requires.

The TorchTrainer run itself (connect, Ray Train's storage, `FailureConfig`, installing the last
checkpoint), rank 0's checkpoint reports, the checkpoint to continue from and the DDP wrapper
are `fit_on_ray`, `report`, `restored` and `ddp`, which `hlai_ros.scale.actor` (the critic and
the policy) uses as well.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
import functools
import json
from pathlib import Path
import shutil
import tempfile
import time
from typing import Any, Sequence

import torch

from hlai_ros.scale import connect, require_ray
from hlai_ros.world_model.checkpoint import (
    MODEL_STEM,
    TRAIN_STATE_STEM,
    load_training_state,
    load_world_model,
    save_training_state,
    save_world_model,
)
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.dataset import (
    as_episodes,
    episodes_fingerprint,
)
from hlai_ros.world_model.model import WorldModel
from hlai_ros.world_model.objective import multistep_error, window_loss
from hlai_ros.world_model.train import (
    BUDGET_FIELDS,
    TrainingHistory,
    prepare_training,
    stopping,
    training_batch,
)

RAY_TRAIN_FOLDER = '.ray_train'
"""Ray Train's storage inside ``out_dir`` (by default), removed after a finished run."""

BUDGET_CHECK_BATCHES = 16
"""Batches between two checks of the time budget inside an epoch (one all-reduce each)."""

MAX_FAILURES = 3
"""Times Ray Train restarts the worker group after a worker died."""


class _Forward(torch.nn.Module):
    """`forward` as the forward pass of a module that holds `net`, for DDP to wrap."""

    def __init__(self, net: torch.nn.Module, forward):
        super().__init__()
        self.net, self._forward = net, forward

    def forward(self, *args, **kwargs):
        return self._forward(*args, **kwargs)


def ddp(net: torch.nn.Module, forward, device: torch.device, find_unused: bool = False,
        comm_hook=None, state=None) -> torch.nn.parallel.DistributedDataParallel:
    """DistributedDataParallel over `net`'s parameters, whose forward pass runs `forward`.

    A backward pass through its output combines the gradients of `net`'s parameters over
    the ranks (DDP's mean all-reduce, or `comm_hook` with `state`) before the optimiser step.
    """
    kwargs = {'device_ids': [device]} if device.type == 'cuda' else {}
    wrapped = torch.nn.parallel.DistributedDataParallel(
        _Forward(net, forward), find_unused_parameters=find_unused, **kwargs)
    if comm_hook is not None:
        wrapped.register_comm_hook(state, comm_hook)
    return wrapped


def _checkpoint_files(directory: Path, stems: Sequence[str] = (MODEL_STEM, TRAIN_STATE_STEM)
                      ) -> list[Path]:
    return [p for stem in stems for p in sorted(directory.glob(f'{stem}*')) if p.is_file()]


def _install_checkpoint(folder: Path, out_dir: Path,
                        stems: Sequence[str] = (MODEL_STEM, TRAIN_STATE_STEM)) -> None:
    """Copy a checkpoint's files of `stems` into `out_dir`, weights first, each JSON atomically.

    Older weights of those stems in `out_dir` are removed.
    """
    files = _checkpoint_files(folder, stems)
    for p in sorted(files, key=lambda p: p.suffix == '.json'):
        tmp = out_dir / f'.{p.name}.tmp'
        shutil.copy2(p, tmp)
        tmp.replace(out_dir / p.name)
    named = {p.name for p in files}
    for stem in stems:
        for old in out_dir.glob(f'{stem}-*.safetensors'):
            if old.name not in named:
                old.unlink(missing_ok=True)


def report(metrics: dict[str, Any], write=None) -> None:
    """Report `metrics` to Ray Train from every rank; with `write`, rank 0 adds a checkpoint.

    ``write(folder)`` fills a fresh folder with the checkpoint's files (on rank 0 only).
    Every rank must call this at the same point of its loop.
    """
    import ray.train

    if write is not None and ray.train.get_context().get_world_rank() == 0:
        with tempfile.TemporaryDirectory(prefix='hlai-ray-ckpt-') as folder:
            write(folder)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
    else:
        ray.train.report(metrics)


@contextlib.contextmanager
def restored(resume_files):
    """The folder of the checkpoint to continue from, or None.

    That is the last checkpoint Ray Train registered (after a worker-group restart), else the
    driver's files (`resume_files`, as `fit_on_ray` hands them to the loop).
    """
    import ray
    import ray.train

    checkpoint, unpacked = ray.train.get_checkpoint(), None
    try:
        if checkpoint is None and resume_files is not None:
            unpacked = Path(tempfile.mkdtemp(prefix='hlai-ray-resume-'))
            for name, data in ray.get(resume_files[0]).items():
                (unpacked / name).write_bytes(data)
            checkpoint = ray.train.Checkpoint.from_directory(str(unpacked))
        if checkpoint is None:
            yield None
        else:
            with checkpoint.as_directory() as folder:
                yield Path(folder)
    finally:
        if unpacked is not None:
            shutil.rmtree(unpacked, ignore_errors=True)


def fit_on_ray(loop, loop_config: dict[str, Any], out_dir: Path, stems: Sequence[str],
               name: str, workers: int, address: str | None, use_gpu: bool,
               storage_path: str | Path | None, max_failures: int,
               resume_files: dict[str, bytes] | None = None) -> tuple[dict[str, Any], bool]:
    """Run `loop` on `workers` Ray Train workers and install its last checkpoint in `out_dir`.

    The loop gets `loop_config` plus ``resume_files``: None, or a one-element list holding the
    object-store reference of `resume_files` ({file name: bytes}; see `restored`). Ray Train
    keeps the run's checkpoints under `storage_path` (default ``out_dir/.ray_train``, removed
    after the run) and restarts the worker group from the last one up to `max_failures` times
    after a worker died (`FailureConfig`). Only the files of `stems` are installed. Returns
    the run's last reported metrics (plus ``run``: its name) and whether a checkpoint was
    installed.
    """
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if workers < 1:
        raise ValueError(f'workers must be at least 1, got {workers}')
    ray = connect(address)
    start = None if resume_files is None else [ray.put(resume_files)]
    storage = Path(storage_path) if storage_path else out_dir / RAY_TRAIN_FOLDER
    name = f'{name}_{time.strftime("%Y%m%d_%H%M%S")}'
    trainer = TorchTrainer(
        loop, train_loop_config=dict(loop_config, resume_files=start),
        torch_config=TorchConfig(backend='nccl' if use_gpu else 'gloo'),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(name=name, storage_path=str(storage.absolute()),
                             failure_config=FailureConfig(max_failures=max_failures)))
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    installed = result.checkpoint is not None
    if installed:
        with result.checkpoint.as_directory() as folder:
            _install_checkpoint(Path(folder), out_dir, stems)
    if storage_path is None:
        shutil.rmtree(storage / name, ignore_errors=True)
        if storage.is_dir() and not any(storage.iterdir()):
            storage.rmdir()
    return dict(result.metrics or {}, run=name), installed


def _window_loss(model: WorldModel, batch, generator, context):
    terms = window_loss(model, batch, generator, context=context)
    return terms.total, terms.kl


def _train_loop(cfg: dict[str, Any]) -> None:
    """One Ray Train worker: the loop of `train_world_model` on this rank's share of batches."""
    import ray
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, size = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(cfg['threads'])
    c: WorldModelConfig = cfg['config']
    episodes = as_episodes(ray.get(cfg['episodes'])[0])
    device = ray.train.torch.get_device()
    # the same split, model, windows and bootstrap on every rank (the run's stream is seeded
    # alike), as a local run draws them
    run = prepare_training(episodes, c, device, f'{device} x {size} (ray)')
    model, train_w, val_w, val_ctx = run.model, run.train_windows, run.val_windows, run.val_context
    history, optimizer, generator, bootstrap = (run.history, run.optimizer, run.generator,
                                                run.bootstrap)
    by_episode, n_windows = run.by_episode, len(train_w)
    noise = torch.Generator(device=device).manual_seed(c.seed + 1000003 * (rank + 1))
    fingerprint = episodes_fingerprint(episodes)
    best_val, bad_epochs, start_epoch = float('inf'), 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    with restored(cfg['resume_files']) as folder:
        loaded = None if folder is None else load_training_state(
            folder, model, optimizer, generator, ignore=BUDGET_FIELDS)
        if loaded is not None:
            extra, saved = loaded
            if saved['fingerprint'] != fingerprint:
                raise ValueError('the checkpoint to resume from holds a training state for '
                                 'other episodes; train into another folder or --fresh')
            bootstrap = extra['bootstrap'].to(device)
            history = TrainingHistory(**{**saved['history'], 'device': history.device})
            best_val, bad_epochs = saved['best_val'], saved['bad_epochs']
            start_epoch = len(history.val_error)
            if (folder / f'{MODEL_STEM}.json').exists():
                best_state = load_world_model(folder, device=device).state_dict()
    if folder is not None:
        # every rank continues from the checkpoint's noise stream position as well
        noise.manual_seed(c.seed + 1000003 * (rank + 1) + start_epoch)

    objective = ddp(model, functools.partial(_window_loss, model), device, find_unused=True)

    def stop_reason() -> str:
        return stopping(c, bad_epochs, history.epoch_seconds, len(history.val_error))

    if start_epoch > 0 and stop_reason():
        return
    per_epoch = min(n_windows, c.max_windows_per_epoch)
    for epoch in range(start_epoch, c.max_epochs):
        t0 = time.monotonic()
        model.train()
        order = torch.rand(c.ensemble_size, n_windows, device=device,
                           generator=generator).argsort(dim=1)[:, :per_epoch]
        sums = torch.zeros(2, device=device)
        n_batches = 0
        spent = sum(history.epoch_seconds)
        for b, i in enumerate(range(0, per_epoch, c.batch_size)):
            if c.time_budget_s and b % BUDGET_CHECK_BATCHES == 0 and b > 0:
                # every rank must stop at the same batch (DDP's collectives pair up): the
                # budget's verdict is one all-reduce over the ranks, every few batches
                over = torch.tensor(float(spent + time.monotonic() - t0 >= c.time_budget_s),
                                    device=device)
                torch.distributed.all_reduce(over, op=torch.distributed.ReduceOp.MAX)
                if over.item():
                    break
            index = bootstrap.gather(1, order[:, i:i + c.batch_size])[:, rank::size]
            if index.shape[1] == 0:  # a last batch smaller than the workers: reuse the first
                index = bootstrap.gather(1, order[:, i:i + 1])
            batch, context = training_batch(train_w, index, c, by_episode, noise)
            total, kl = objective(batch, noise, context)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if c.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
            optimizer.step()
            sums += torch.stack([total.detach(), kl.detach()])
            n_batches += 1
        model.eval()  # every rank validates the same weights on the same windows
        val = multistep_error(model, val_w, 'posterior', context=val_ctx)
        val_prior = multistep_error(model, val_w, 'prior') if c.latent_dim > 0 else val
        figures = torch.tensor([*(sums / max(n_batches, 1)).tolist(), time.monotonic() - t0],
                               device=device)
        torch.distributed.all_reduce(figures)
        mean_loss, mean_kl, seconds = (figures / size).tolist()
        history.train_loss.append(mean_loss)
        history.train_kl.append(mean_kl)
        history.val_error.append(val)
        history.val_error_prior.append(val_prior)
        history.epoch_seconds.append(seconds)
        if val < best_val:
            best_val, bad_epochs, history.best_epoch = val, 0, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        history.stop_reason = stop_reason()
        metrics = {'epoch': epoch, 'val_error': val, 'best_val': best_val, 'loss': mean_loss,
                   'epoch_seconds': seconds, 'stop_reason': history.stop_reason,
                   'started_at_epoch': start_epoch, 'workers': size}

        def write(folder: str) -> None:
            if history.best_epoch >= 0:
                best = WorldModel(c)
                best.load_state_dict(best_state)
                save_world_model(best, folder, dict(cfg['metadata'] or {},
                                                    best_epoch=history.best_epoch,
                                                    val_error=best_val))
            save_training_state(folder, model, optimizer, generator, {'bootstrap': bootstrap},
                                {'fingerprint': fingerprint, 'history': history.to_dict(),
                                 'best_val': best_val, 'bad_epochs': bad_epochs})

        report(metrics, write)
        if history.stop_reason:
            break


def train_world_model_ray(episodes: Sequence[Any], config: WorldModelConfig,
                          out_dir: str | Path, workers: int = 2, address: str | None = None,
                          progress: bool = True, resume: bool = True, use_gpu: bool = False,
                          metadata: dict[str, Any] | None = None,
                          storage_path: str | Path | None = None,
                          max_failures: int = MAX_FAILURES, threads: int = 1,
                          details: dict[str, Any] | None = None
                          ) -> tuple[WorldModel, TrainingHistory]:
    """`train_world_model` on `workers` Ray Train workers; returns (best model, history).

    Args:
        episodes: as `train_world_model` takes them.
        config: the model and training settings; ``batch_size`` is the global batch, split
            over the workers.
        out_dir: where the checkpoint files go (the files of a local run).
        workers: Ray Train workers (processes; one CPU, or one GPU with `use_gpu`, each).
        address: the cluster (`hlai_ros.scale.connect`).
        progress: print one line per epoch.
        resume: continue from a training state in `out_dir` (of a local or a Ray run).
        use_gpu: one GPU per worker, NCCL; else CPU and gloo.
        metadata: extra items for the model's JSON (as `train_world_model`).
        storage_path: Ray Train's storage of the run's checkpoints (default: a folder
            ``.ray_train`` inside `out_dir`); shared by all nodes on a multi-machine cluster.
        max_failures: worker-group restarts after a worker died.
        threads: torch CPU threads per worker.
        details: a dict that receives the run's last reported metrics (``started_at_epoch``:
            the epoch the last worker group started at, > 0 after a resume) and its name.

    """
    ray = require_ray()
    if workers < 1:
        raise ValueError(f'workers must be at least 1, got {workers}')
    episodes = as_episodes(episodes)
    s_dim, a_dim = episodes[0].states.shape[1], episodes[0].actions.shape[1]
    if (s_dim, a_dim) != (config.state_dim, config.action_dim):
        raise ValueError(f'episodes have state size {s_dim} and action size {a_dim}; the config '
                         f'expects {config.state_dim} and {config.action_dim}')
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    connect(address)
    start = None  # a training state in out_dir travels to the workers as bytes
    if resume and (out_dir / f'{TRAIN_STATE_STEM}.json').exists():
        start = {p.name: p.read_bytes() for p in _checkpoint_files(out_dir)}
    metrics, installed = fit_on_ray(
        _train_loop, {'config': replace(config), 'episodes': [ray.put(episodes)],
                      'metadata': metadata, 'threads': threads},
        out_dir, (MODEL_STEM, TRAIN_STATE_STEM), 'world_model', workers, address, use_gpu,
        storage_path, max_failures, start)
    if not installed and start is None:
        raise RuntimeError('Ray Train finished without a checkpoint')
    # else: the training state in out_dir had finished already; its files are the result
    if details is not None:
        details.update(metrics)
    saved = json.loads((out_dir / f'{TRAIN_STATE_STEM}.json').read_text())
    history = TrainingHistory(**saved['progress']['history'])
    if progress:
        for i, (v, s) in enumerate(zip(history.val_error, history.epoch_seconds)):
            print(f'epoch {i}: val {v:.4f} ({s:.1f} s)', flush=True)
    model = load_world_model(out_dir)
    return model.eval(), history
