"""`hlai train --ray --workers N`: data-parallel critic and policy training with Ray Train.

`train_actor_ray` runs `hlai_ros.actor.training.train_critic_and_policy` in N Ray Train
workers (`ray.train.torch.TorchTrainer`, the wrapper the world model trains under:
`hlai_ros.scale.train.fit_on_ray`), DistributedDataParallel over gloo on CPU (NCCL with
``use_gpu``). Every worker holds the recorded trajectories, the frozen world model and the same
`ActorTraining` state: all draw the same minibatches and the same imagined latents from the
one seeded stream a local run draws them from, and rank r trains on positions r, r + N, ... of
each minibatch. DDP combines the ranks' gradients, each weighted by its share of the minibatch
(`_weighted_mean`), into the whole minibatch's mean gradient before any optimiser step (and
before the policy's gradient clipping), as one local step computes it. So a Ray run takes the
local run's steps up to floating-point rounding; docs/ray.md states the measured gap.

Checkpoints. Every `CHECKPOINT_STEPS` updates and at the end of each stage, rank 0 writes the
files a local run writes (``critic.json`` + ``critic-<sha>.safetensors``, ``policy.json`` +
``policy-<sha>.safetensors``, with the same metadata) plus the training state
(``actor_state.json`` + weights: the critic's target, both optimisers, the random stream and the
losses so far) and reports them to Ray Train. When a worker dies, Ray Train restarts the worker
group and the training continues from the last registered checkpoint, on the same stream. At
the end the driver installs the critic and the policy into ``out_dir``; the training state is
not installed (a local run writes none).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import time
from typing import Any, Sequence

import torch

from hlai_ros.actor.checkpoint import (
    CRITIC_STEM,
    POLICY_STEM,
    load_critic,
    load_policy,
    save_critic,
    save_policy,
)
from hlai_ros.actor.training import (
    ActorTraining,
    ActorTrainingConfig,
    ActorTrainingResult,
    ValueTrajectory,
)
from hlai_ros.scale import connect, require_ray
from hlai_ros.scale.train import (
    BUDGET_CHECK_BATCHES,
    MAX_FAILURES,
    ddp,
    fit_on_ray,
    report,
    restored,
)

CHECKPOINT_STEPS = 100
"""Updates (critic and policy together) between two checkpoints of a Ray run."""


def _weighted_mean(training: ActorTraining, bucket):
    """DDP communication hook: the whole minibatch's mean gradient from the ranks' shares.

    Each rank's gradient is the mean over its share of the minibatch; weighted by the share's
    fraction of the minibatch and summed over the ranks, it is the mean over the whole one
    (DDP's own hook divides by the number of ranks, which is the same only for equal shares).
    """
    tensor = bucket.buffer()
    tensor.mul_(training.fraction)
    future = torch.distributed.all_reduce(tensor, async_op=True).get_future()
    return future.then(lambda f: f.value()[0])


def _actor_loop(cfg: dict[str, Any]) -> None:
    """One Ray Train worker: `ActorTraining` on this rank's share of every minibatch."""
    import ray
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, size = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(cfg['threads'])
    device = ray.train.torch.get_device() if cfg['use_gpu'] else torch.device('cpu')
    model, policy_cost, trajectories = ray.get(cfg['inputs'][0])
    model = model.to(device).eval()
    config: ActorTrainingConfig = cfg['config']
    training = ActorTraining(model, policy_cost, trajectories, cfg['action_low'],
                             cfg['action_high'], config, rank, size, device)
    with restored(cfg['resume_files']) as folder:
        if folder is not None:
            training.load_state(folder)
    losses = {'critic': training.critic_losses, 'policy': training.policy_losses}
    synced = {name: len(values) for name, values in losses.items()}  # averaged over ranks
    start_step = sum(synced.values())
    training.synchronise(lambda net, forward: ddp(net, forward, device,
                                                  comm_hook=_weighted_mean, state=training))
    budget_checks = [0]

    def over_budget(limit_s: float) -> bool:
        # every rank stops at the same step (the DDP collectives pair up): the verdict is one
        # all-reduce over the ranks, every few steps
        budget_checks[0] += 1
        if budget_checks[0] % BUDGET_CHECK_BATCHES:
            return False
        over = torch.tensor(float(training.seconds() > limit_s), device=device)
        torch.distributed.all_reduce(over, op=torch.distributed.ReduceOp.MAX)
        return bool(over.item())

    last_report = [(start_step, training.critic_done, False)]

    def after_step(stage: str, ended: bool) -> None:
        if not ended:  # this rank's loss, weighted by its share: their sum is the minibatch's
            losses[stage][-1] *= training.fraction
        steps = sum(len(values) for values in losses.values())
        finished = ended and stage == 'policy'
        if not ended and steps % cfg['checkpoint_steps']:
            return
        if (steps, training.critic_done, finished) == last_report[0]:
            return
        last_report[0] = (steps, training.critic_done, finished)
        for name, values in losses.items():  # the minibatch's loss of every step since
            tail = torch.tensor(values[synced[name]:], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(tail)
            values[synced[name]:] = tail.tolist()
            synced[name] = len(values)
        counts = {'critic_steps': len(training.critic_losses),
                  'policy_steps': len(training.policy_losses)}
        metrics = {**counts, 'started_at_step': start_step, 'workers': size,
                   'seconds': training.seconds(), 'finished': finished}
        if finished:
            metrics.update(critic_losses=training.critic_losses,
                           policy_losses=training.policy_losses)

        def write(folder: str) -> None:
            meta = dict(cfg['metadata'] or {}, **counts)
            save_critic(training.critic, folder, meta)
            save_policy(training.policy, folder, meta)
            training.save_state(folder)

        report(metrics, write)

    training.run(over_budget=over_budget, after_step=after_step)


def train_actor_ray(model, policy_cost, trajectories: Sequence[ValueTrajectory],
                    action_low, action_high, config: ActorTrainingConfig,
                    out_dir: str | Path, workers: int = 2, address: str | None = None,
                    progress: bool = True, use_gpu: bool = False,
                    metadata: dict[str, Any] | None = None,
                    storage_path: str | Path | None = None, max_failures: int = MAX_FAILURES,
                    threads: int = 1, checkpoint_steps: int = CHECKPOINT_STEPS,
                    details: dict[str, Any] | None = None) -> ActorTrainingResult:
    """`train_critic_and_policy` on `workers` Ray Train workers; saves into `out_dir`.

    Args:
        model: the world model (frozen; it travels to the workers).
        policy_cost: the Cost the policy minimises in imagination (travels to the workers).
        trajectories: the recorded trajectories the critic learns from.
        action_low: the policy's lower action bounds.
        action_high: its upper action bounds.
        config: as `train_critic_and_policy` takes it; its batch sizes are the global
            minibatches, shared out over the workers.
        out_dir: where ``critic.json`` and ``policy.json`` (+ weights) go, as
            `save_critic` / `save_policy` write them with `metadata` plus ``critic_steps``
            and ``policy_steps`` (what `hlai train` writes after a local run).
        metadata: the metadata of both checkpoints.
        workers: Ray Train workers (processes; one CPU, or one GPU with `use_gpu`, each).
        address: the cluster (`hlai_ros.scale.connect`).
        progress: print the stages' step counts and final losses.
        use_gpu: one GPU per worker, NCCL; else CPU and gloo.
        storage_path: Ray Train's storage of the run's checkpoints (default: a folder
            ``.ray_train`` inside `out_dir`); shared by all nodes on a multi-machine cluster.
        max_failures: worker-group restarts after a worker died.
        threads: torch CPU threads per worker.
        checkpoint_steps: updates between two checkpoints.
        details: a dict that receives the run's last reported metrics (``started_at_step``:
            the step the last worker group started at, > 0 after a resume) and its name.

    Returns the critic and the policy loaded from `out_dir` (eval mode) and the loss curves
    (each step's loss over the whole minibatch).

    """
    ray = require_ray()
    if checkpoint_steps < 1:
        raise ValueError(f'checkpoint_steps must be at least 1, got {checkpoint_steps}')
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    connect(address)
    t0 = time.perf_counter()
    inputs = [ray.put((model.to('cpu').eval(), policy_cost, list(trajectories)))]
    metrics, installed = fit_on_ray(
        _actor_loop, {'inputs': inputs, 'config': replace(config),
                      'action_low': list(map(float, action_low)),
                      'action_high': list(map(float, action_high)),
                      'metadata': metadata, 'threads': threads, 'use_gpu': use_gpu,
                      'checkpoint_steps': checkpoint_steps},
        out_dir, (CRITIC_STEM, POLICY_STEM), 'actor', workers, address, use_gpu, storage_path,
        max_failures)
    if not installed or not metrics.get('finished'):
        raise RuntimeError('Ray Train finished the critic and policy training without its '
                           'last checkpoint')
    if details is not None:
        details.update({k: v for k, v in metrics.items() if not k.endswith('_losses')})
    result = ActorTrainingResult(load_critic(out_dir), load_policy(out_dir),
                                 metrics['critic_losses'], metrics['policy_losses'],
                                 time.perf_counter() - t0)
    if progress:
        for name, values in (('critic TD(lambda)', result.critic_losses),
                             ('policy through the model', result.policy_losses)):
            tail = f', last loss {values[-1]:.4g}' if values else ''
            print(f'{name}: {len(values)} steps on {metrics["workers"]} Ray Train workers'
                  f'{tail}', flush=True)
    return result


def train_task_actor_ray(task, model, runs, config: ActorTrainingConfig | None = None,
                         **kwargs) -> ActorTrainingResult:
    """`hlai_ros.tasks.pipeline.train_task_actor` on Ray Train (`train_actor_ray`'s kwargs)."""
    from hlai_ros.tasks.pipeline import goal_relative_indices, value_trajectories
    config = config or ActorTrainingConfig()
    rel = goal_relative_indices(task)
    config = replace(config, critic=replace(config.critic, goal_relative_indices=rel),
                     policy=replace(config.policy, goal_relative_indices=rel))
    return train_actor_ray(model, task.cost(None), value_trajectories(task, runs),
                           task.action_low, task.action_high, config, **kwargs)
