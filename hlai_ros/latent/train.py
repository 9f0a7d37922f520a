"""Train the latent world model from recorded bags: `train_latent` and the `main` CLI.

Reads top to bottom: split the episodes, fit the normalisers on the training frames, then
epochs of `steps_per_epoch` AdamW steps on random H-step windows, each followed by a validation
pass on a fixed set of held-out windows; the best model is saved (atomic safetensors + JSON with
its identity) when validation improves, and a resumable training state after every epoch.
Training stops on patience, `max_epochs` or the wall-clock budget.

    python -m hlai_ros.latent.train --task push --data /work/data/push_lat \
        --out /work/data/push_latent --time-budget 1500 --seed 0 --threads 1
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
import sys
import time
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from hlai_ros.latent.checkpoint import (
    load_latent_model,
    load_training_state,
    save_latent_model,
    save_training_state,
)
from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.data import LatentDataset, split_by_episode
from hlai_ros.latent.keypoint_check import WARN_BELOW, keypoint_check
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.objective import window_loss
from hlai_ros.latent.planning import (
    PlanningSettings,
    train_events,
    train_planning,
    train_policy,
)
from hlai_ros.world_model.train import stopping

BUDGET_FIELDS = ('max_epochs', 'time_budget_s', 'patience')
"""Config fields that only bound the run; a resume may change them."""


@dataclass
class LatentHistory:
    """Per-epoch figures of a training run."""

    train_loss: list[float] = field(default_factory=list)
    """Mean training objective per epoch."""
    train_prediction: list[float] = field(default_factory=list)
    """Mean multi-step prediction term per epoch."""
    train_reconstruction: list[float] = field(default_factory=list)
    """Mean reconstruction term per epoch."""
    val_loss: list[float] = field(default_factory=list)
    """Validation objective (fixed windows and SIGReg directions): the early-stop signal."""
    val_prediction: list[float] = field(default_factory=list)
    """Validation prediction term."""
    epoch_seconds: list[float] = field(default_factory=list)
    """Wall time of each epoch, seconds."""
    best_epoch: int = -1
    """Epoch whose weights were kept."""
    stop_reason: str = ''
    """patience, max_epochs or time_budget."""
    train_windows: int = 0
    """Training windows available."""
    train_transitions: int = 0
    """Valid transitions in the training episodes."""
    val_episodes: int = 0
    """Episodes held out for validation."""
    keypoint_check: list[float] = field(default_factory=list)
    """Per epoch, the largest keypoint spread that the joints do not explain, on the held-out
    episodes (`latent.keypoint_check`; only where the goal is about an object)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return asdict(self)


def _batch(data: LatentDataset, starts: torch.Tensor, horizon: int,
           generator: torch.Generator | None = None, reference: bool = False
           ) -> dict[str, torch.Tensor]:
    batch = data.windows(starts, horizon)
    if reference:  # another frame of the same episode, for the keypoint reconstruction
        ref = data.frames(data.same_episode_frames(starts, generator))
        batch['ref_rgb'], batch['ref_depth'] = ref['rgb'], ref['depth']
        batch['ref_proprio'] = ref['proprio']
    return batch


@torch.no_grad()
def _validate(model: LatentWorldModel, data: LatentDataset, starts: torch.Tensor,
              c: LatentConfig) -> tuple[float, float]:
    model.eval()
    total, pred, n = 0.0, 0.0, 0
    g = torch.Generator().manual_seed(12345)
    for i in range(0, len(starts), c.batch_size * 2):
        s = starts[i:i + c.batch_size * 2]
        terms = window_loss(model, _batch(data, s, c.horizon, g, c.keypoints > 0), g)
        total += float(terms.total) * len(s)
        pred += float(terms.prediction) * len(s)
        n += len(s)
    return total / max(n, 1), pred / max(n, 1)


def train_latent(data: LatentDataset, config: LatentConfig, out_dir: str | Path | None = None,
                 progress: bool = True, resume: bool = True,
                 metadata: dict[str, Any] | None = None, check_keypoints: bool = False
                 ) -> tuple[LatentWorldModel, LatentHistory]:
    """Train a latent world model on `data`; return (best model in eval mode, history).

    Validation is a split by episode (`config.val_fraction`). With `out_dir`, the best model is
    saved there whenever validation improves and the training state after every epoch; a later
    call with the same data and config resumes from it (the budget fields may differ).
    `check_keypoints` (for a goal about an object) runs `latent.keypoint_check` on the
    held-out episodes after every epoch: `history.keypoint_check`, and the saved metadata's
    `keypoint_check` for the kept epoch.
    """
    c = config
    if data.proprio.shape[1] != c.proprio_dim or data.actions.shape[1] != c.action_dim:
        raise ValueError(f'data has proprioception size {data.proprio.shape[1]} and action size '
                         f'{data.actions.shape[1]}; the config expects {c.proprio_dim} and '
                         f'{c.action_dim}')
    train_ids, val_ids = split_by_episode(data.num_episodes, c.val_fraction, c.seed)
    train = data.subset(train_ids)
    val = data.subset(val_ids) if val_ids else train
    train_starts = train.window_starts(c.horizon)
    if len(train_starts) == 0:
        raise ValueError(f'no window of {c.horizon} valid commands in the training episodes')
    g_val = torch.Generator().manual_seed(c.seed + 1)
    val_starts = val.window_starts(c.horizon)
    val_starts = val_starts[torch.randperm(len(val_starts), generator=g_val)[:c.val_windows]]

    torch.manual_seed(c.seed)
    model = LatentWorldModel(c)
    stat_idx = torch.randperm(len(train), generator=g_val)[:4000]
    model.fit_normalizers(train.rgb[stat_idx], train.depth[stat_idx].float(),
                          train.proprio[stat_idx], train.actions[train.valid])
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.learning_rate,
                                  weight_decay=c.weight_decay)
    generator = torch.Generator().manual_seed(c.seed)
    history = LatentHistory(train_windows=len(train_starts),
                            train_transitions=int(train.valid.sum()),
                            val_episodes=len(val_ids))
    fingerprint = data.fingerprint()
    best_val, bad_epochs, start_epoch = float('inf'), 0, 0
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None and resume:
        saved = load_training_state(out_dir, model, optimizer, generator, ignore=BUDGET_FIELDS)
        if saved is not None:
            if saved['fingerprint'] != fingerprint:
                raise ValueError(f'{out_dir} holds a training state for other data; use '
                                 'another output directory or resume=False')
            history = LatentHistory(**saved['history'])
            best_val, bad_epochs = saved['best_val'], saved['bad_epochs']
            start_epoch = len(history.val_loss)
            if history.best_epoch >= 0:
                best_state = load_latent_model(out_dir).state_dict()

    def stop_reason() -> str:
        return stopping(c, bad_epochs, history.epoch_seconds, len(history.val_loss))

    finished = start_epoch > 0 and bool(stop_reason())
    bar = tqdm(total=c.max_epochs, initial=start_epoch, desc='latent model', unit='epoch',
               disable=not progress or finished)
    try:
        for epoch in ([] if finished else range(start_epoch, c.max_epochs)):
            t0 = time.monotonic()
            spent = sum(history.epoch_seconds)
            model.train()
            sums = torch.zeros(3)
            n = 0
            for _ in range(c.steps_per_epoch):
                if c.time_budget_s and spent + time.monotonic() - t0 >= c.time_budget_s:
                    break
                pick = torch.randint(0, len(train_starts), (c.batch_size,), generator=generator)
                batch = _batch(train, train_starts[pick], c.horizon, generator,
                                c.keypoints > 0)
                terms = window_loss(model, batch, generator)
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                if c.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
                optimizer.step()
                sums += torch.stack([terms.total.detach(), terms.prediction.detach(),
                                     terms.reconstruction.detach()])
                n += 1
            val_loss, val_pred = _validate(model, val, val_starts, c)
            means = (sums / max(n, 1)).tolist()
            history.train_loss.append(means[0])
            history.train_prediction.append(means[1])
            history.train_reconstruction.append(means[2])
            history.val_loss.append(val_loss)
            history.val_prediction.append(val_pred)
            history.epoch_seconds.append(time.monotonic() - t0)
            check = keypoint_check(model, val) if check_keypoints else {}
            if check:
                history.keypoint_check.append(check['max'])
            if val_loss < best_val:
                best_val, bad_epochs, history.best_epoch = val_loss, 0, epoch
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
                if out_dir is not None:
                    extra = {'keypoint_check': check} if check else {}
                    save_latent_model(model, out_dir, dict(metadata or {}, best_epoch=epoch,
                                                           val_loss=val_loss, **extra))
            else:
                bad_epochs += 1
            history.stop_reason = stop_reason()
            if out_dir is not None:
                save_training_state(out_dir, model, optimizer, generator,
                                    {'fingerprint': fingerprint, 'history': history.to_dict(),
                                     'best_val': best_val, 'bad_epochs': bad_epochs})
            bar.update(1)
            bar.set_postfix(loss=f'{means[0]:.3f}', pred=f'{means[1]:.3f}',
                            rec=f'{means[2]:.3f}', val=f'{val_loss:.3f}',
                            **({'kp': f"{check['max']:.3f}"} if check else {}))
            if history.stop_reason:
                break
    finally:
        bar.close()
    model.load_state_dict(best_state)
    return model.eval(), history


def first_transitions(data: LatentDataset, max_transitions: int) -> LatentDataset:
    """The first whole episodes of `data`, in load order, until they hold `max_transitions`.

    The state path's rule (`hlai train --max-transitions`): episodes are taken while the total
    of valid transitions is below the cap, so the last one may take it past; all of `data` when
    it holds fewer.
    """
    counts = torch.bincount(data.episode[data.valid], minlength=data.num_episodes).tolist()
    kept, total = 0, 0
    for n in counts:
        if total >= max_transitions:
            break
        kept, total = kept + 1, total + n
    return data if kept == data.num_episodes else data.subset(range(kept))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: train a latent world model on bags (``hlai train --representation latent``)."""
    p = argparse.ArgumentParser(prog='hlai train --representation latent',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('--task', required=True, help='registered task whose bags these are')
    p.add_argument('--data', required=True, help='directory of episode bags')
    p.add_argument('--out', required=True, help='model directory (checkpoint and state)')
    p.add_argument('--time-budget', type=float, default=LatentConfig.time_budget_s,
                   help='wall-clock budget of the training loop, seconds')
    p.add_argument('--seed', type=int, default=0, help='seed of split, init and batches')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                   help='override LatentConfig fields, e.g. map_size=16 recon_weight=0')
    p.add_argument('--stage', choices=('all', 'encoder', 'planning', 'events', 'policy'),
                   default='all',
                   help="'encoder': the pixel model only; 'planning': only what the actor "
                        "plans with (dynamics, goal cost, event heads) on the folder's encoder; "
                        "'events': only the event heads of a trained folder (its dynamics, goal "
                        "cost and value stay), e.g. on a new collection with more failures; "
                        "'policy': only the goal-conditioned policy of a trained folder; "
                        "'all' (default): encoder and planning, in that order")
    p.add_argument('--plan-set', nargs='*', default=[], metavar='KEY=VALUE',
                   help='override PlanningSettings fields (hlai_ros/latent/planning.py), e.g. '
                        'dynamics_budget_s=600 event_within=15')
    p.add_argument('--max-transitions', type=int, default=None,
                   help='train every stage on the first whole episodes (load order) that hold '
                        'at least this many transitions')
    p.add_argument('--no-resume', action='store_true', help='start afresh even if a state exists')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = p.parse_args(argv)
    if args.max_transitions is not None and args.max_transitions < 1:
        p.error('--max-transitions must be at least 1')
    torch.set_num_threads(max(1, args.threads))

    from hlai_ros.latent.data import load_dataset
    from hlai_ros.tasks import get_task
    task = get_task(args.task)
    t0 = time.monotonic()
    data = load_dataset(args.data, progress=not args.no_progress)
    loaded_episodes = data.num_episodes
    if args.max_transitions is not None:
        data = first_transitions(data, args.max_transitions)
    load_s = time.monotonic() - t0
    config = LatentConfig(proprio_dim=int(data.proprio.shape[1]),
                          action_dim=int(data.actions.shape[1]),
                          image_size=int(data.rgb.shape[-1]), seed=args.seed,
                          time_budget_s=args.time_budget)
    config = config.for_task(task).with_overrides(args.set)
    metadata = {'identity': task.identity('latent'), 'task': task.name,
                'proprio_names': list(data.proprio_names), 'data': str(args.data),
                'episodes': data.num_episodes, 'transitions': int(data.valid.sum()),
                'max_transitions': args.max_transitions, 'loaded_episodes': loaded_episodes,
                'command': 'python -m hlai_ros.latent.train ' + ' '.join(
                    argv if argv is not None else sys.argv[1:])}
    summary = {'out': str(args.out), 'episodes': data.num_episodes,
               'transitions': metadata['transitions'], 'max_transitions': args.max_transitions,
               'load_s': round(load_s, 1)}
    if args.stage in ('all', 'encoder'):
        t1 = time.monotonic()
        _, history = train_latent(data, config, args.out, progress=not args.no_progress,
                                  resume=not args.no_resume, metadata=metadata,
                                  check_keypoints=task.latent_plan_target == 'object_position')
        summary.update(train_s=round(time.monotonic() - t1, 1), epochs=len(history.val_loss),
                       best_epoch=history.best_epoch, stop_reason=history.stop_reason,
                       best_val_loss=min(history.val_loss) if history.val_loss else None)
        if history.keypoint_check:
            aligned = len(history.keypoint_check) == len(history.val_loss)
            kept = history.keypoint_check[history.best_epoch if aligned else -1]
            summary['keypoint_check'] = kept
            if kept < WARN_BELOW:
                print(f'hlai train: warning: no keypoint tracks what the joints do not explain '
                      f'(largest spread {kept:.3f} < {WARN_BELOW} on held-out episodes): the '
                      'keypoints may all be on the robot and miss the object the goal is about, '
                      'and a stack built on them plans blind to it. Check the closed loop '
                      'before use (hlai_ros/latent/keypoint_check.py).',
                      file=sys.stderr)
    if args.stage in ('all', 'planning', 'events', 'policy'):
        t1 = time.monotonic()
        settings = PlanningSettings(seed=args.seed, goal_weighting=task.latent_goal_weighting
                                    ).with_overrides(args.plan_set)
        if args.stage == 'policy':
            name = 'policy'
            report = train_policy(args.out, data, settings, metadata=metadata,
                                  progress=not args.no_progress)
        else:
            name, stage = (('events', train_events) if args.stage == 'events'
                           else ('planning', train_planning))
            report = stage(args.out, data, data.failed, settings, metadata=metadata,
                           progress=not args.no_progress)
        summary.update({f'{name}_s': round(time.monotonic() - t1, 1), name: report})
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
