"""Ray scale-out on one machine: collection transitions/s and training epoch time.

    python benchmarks/bench_ray.py [--task push] [--episodes 24] [--max-steps 60] [--epochs 5]
                                   [--stages all|actor] [--critic-steps 1500] [--policy-steps 300]

Measures, in one run and on one single-machine Ray instance (2 CPUs, no dashboard):

- `hlai collect` transitions/s with local processes and with Ray tasks (`collect_ray`), with 1
  and 2 workers each, and Ray's overhead as the ratio of the two steady states (target
  <= 10 %); also each whole call, with process start (`bench_collect` says which is which).
- The driver's bag writing alone: transitions/s of replaying recorded episodes into a bag,
  and the bytes per transition that cross from the workers (what saturates first at scale).
- World-model training with `train_world_model` (local) and `train_world_model_ray` with 1 and
  2 Ray Train workers on the 2-worker local collection: mean epoch time and final validation
  error of each.
- Critic and policy training through the local world model with `train_task_actor` (local) and
  `train_task_actor_ray` with 1 and 2 Ray Train workers, the default settings of `hlai train`
  (1500 TD(lambda) and 300 policy steps): wall time, the figures `hlai train` reports (critic TD
  loss, mean of the last tenth of the steps; last imagined policy cost), their relative gap to
  the local run's, and the largest relative gap of any single step's loss.
  ``--stages actor`` runs only this (on a fresh local collection and world model).

Ray must run in a network namespace holding only loopback on the project's machines: the
script re-runs itself under ``unshare -n`` (as root) unless it already is in one, with
``RAY_USAGE_STATS_ENABLED=0``. Prints a table, then one JSON object on the last line.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time


def _only_loopback() -> bool:
    """Whether this network namespace holds loopback only (/proc/net/dev is per namespace)."""
    lines = Path('/proc/net/dev').read_text().splitlines()[2:]
    return sorted(line.split(':')[0].strip() for line in lines) == ['lo']


def _reexec_in_namespace() -> int:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0', HLAI_BENCH_RAY_NETNS='1',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    command = 'ip link set lo up; exec "$0" "$@"'
    return subprocess.call(['unshare', '-n', 'sh', '-c', command, sys.executable,
                            os.path.abspath(__file__), *sys.argv[1:]], env=env)


def bench_collect(task: str, episodes: int, max_steps: int, work: Path) -> dict:
    """Transitions/s of local and Ray collection with 1 and 2 workers.

    ``*_wall``: the whole call (local: process start, imports, world build; Ray, cold: the
    first collection on fresh Ray workers, which import hlai_ros and build their world).
    Steady state: local, the sum over workers of each one's transitions over its own time from
    its first episode's start to its last one's end (the workers start staggered, so the
    summary's overall ``collect_s`` would count one worker's start-up against both); Ray,
    warm: a second, identical collection on the same Ray workers, whole call. ``ray_overhead``
    compares the steady states: local_tps / ray_tps - 1 (the extra time Ray takes).
    """
    from hlai_ros.data import collection
    from hlai_ros.data.collection import CollectSettings, collect
    from hlai_ros.scale.collect import collect_ray
    per_worker: list[dict] = []
    summary = collection._summary

    def keep_workers(settings, workers, outcomes, errors, done, *args):
        per_worker[:] = [dict(d) for d in done.values()]
        return summary(settings, workers, outcomes, errors, done, *args)

    collection._summary = keep_workers  # the local run's per-worker timing, for this bench
    rows = {}
    for workers in (1, 2):
        common = dict(task=task, episodes=episodes, workers=workers, policy='mixed', seed=0,
                      max_steps=max_steps)
        t0 = time.perf_counter()
        local = collect(CollectSettings(out=work / f'local_{workers}', **common),
                        progress=False)
        local_s = time.perf_counter() - t0
        steady = sum(d['steps'] / (d['end'] - d['start']) for d in per_worker if d['episodes'])
        figures = {}
        for name in ('cold', 'warm'):
            t0 = time.perf_counter()
            ours = collect_ray(CollectSettings(out=work / f'ray_{name}_{workers}', **common),
                               progress=False)
            figures[name] = time.perf_counter() - t0
            assert local['transitions'] == ours['transitions'] and not ours['errors']
        n = local['transitions']
        rows[workers] = {'transitions': n,
                         'local_wall_tps': n / local_s, 'ray_cold_wall_tps': n / figures['cold'],
                         'local_tps': steady, 'ray_tps': n / figures['warm'],
                         'ray_overhead': steady / (n / figures['warm']) - 1.0}
    collection._summary = summary
    return rows


def bench_driver_write(task: str, max_steps: int, work: Path, repeats: int = 20) -> dict:
    """How fast the driver replays recorded episodes into a bag (what a cluster feeds it)."""
    import pickle

    from hlai_ros.data.collection import CollectSettings
    from hlai_ros.data.writer import EpisodeWriter
    from hlai_ros.scale.collect import collect_episode
    settings = CollectSettings(task=task, episodes=1, out=work / 'unused', max_steps=max_steps)
    recs = [collect_episode(settings, i) for i in range(2)]
    size = sum(len(pickle.dumps(r, protocol=5)) for r in recs)
    steps = sum(r.outcome['steps'] for r in recs)
    w = recs[0].world
    t0 = time.perf_counter()
    with EpisodeWriter(work / 'driver_write', task, w['camera'], w['proprio_names'],
                       w['control_hz']) as writer:
        for _ in range(repeats):
            for rec in recs:
                rec.writer.replay(writer)
    seconds = time.perf_counter() - t0
    bag = sum(f.stat().st_size for f in (work / 'driver_write').rglob('*') if f.is_file())
    return {'write_tps': repeats * steps / seconds,
            'pickled_bytes_per_transition': size / steps,
            'bag_bytes_per_transition': bag / (repeats * steps)}


def bench_train(task_name: str, data: Path, work: Path, epochs: int) -> dict:
    """Mean epoch time and final validation error: local, Ray Train with 1 and 2 workers."""
    import torch

    from hlai_ros.data import load_episodes
    from hlai_ros.scale.train import train_world_model_ray
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_task_runs
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model
    torch.set_num_threads(1)
    task = get_task(task_name)
    runs = perceive_task_runs(task, load_episodes(data, cache=False), progress=False)
    episodes = [run.model_episode() for run in runs]
    config = WorldModelConfig(state_dim=task.state_dim, action_dim=task.action_dim, seed=0,
                              max_epochs=epochs, patience=epochs, batch_size=64)
    rows = {}
    _, history = train_world_model(episodes, config, out_dir=work / 'local', progress=False)
    rows['local'] = history
    for workers in (1, 2):
        _, history = train_world_model_ray(episodes, config, work / f'ray_{workers}',
                                           workers=workers, progress=False)
        rows[f'ray_{workers}'] = history
    return {name: {'epoch_s': sum(h.epoch_seconds) / len(h.epoch_seconds),
                   'val_error': h.val_error[-1], 'epochs': len(h.val_error),
                   'transitions': h.train_transitions}
            for name, h in rows.items()}


def bench_actor(task_name: str, data: Path, model_dir: Path, work: Path, critic_steps: int,
                policy_steps: int) -> dict:
    """Critic and policy: local against Ray Train with 1 and 2 workers, same data and steps."""
    import torch

    from hlai_ros.actor.training import ActorTrainingConfig
    from hlai_ros.data import load_episodes
    from hlai_ros.scale.actor import train_task_actor_ray
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_task_runs, train_task_actor
    from hlai_ros.world_model.checkpoint import load_world_model
    torch.set_num_threads(1)
    task = get_task(task_name)
    runs = perceive_task_runs(task, load_episodes(data, cache=False), progress=False)
    model = load_world_model(model_dir)
    config = ActorTrainingConfig(seed=0, critic_steps=critic_steps, policy_steps=policy_steps,
                                 time_budget_s=3600.0)

    def figures(result, seconds: float) -> dict:
        tail = max(1, len(result.critic_losses) // 10)
        return {'seconds': seconds, 'steps': [len(result.critic_losses),
                                              len(result.policy_losses)],
                'critic_td_loss': sum(result.critic_losses[-tail:]) / tail,
                'policy_imagined_cost': result.policy_losses[-1],
                'losses': (result.critic_losses, result.policy_losses)}

    t0 = time.perf_counter()
    rows = {'local': figures(train_task_actor(task, model, runs, config, progress=False),
                             time.perf_counter() - t0)}
    for workers in (1, 2):
        t0 = time.perf_counter()
        result = train_task_actor_ray(task, model, runs, config, out_dir=work / f'ray_{workers}',
                                      workers=workers, progress=False)
        rows[f'ray_{workers}'] = figures(result, time.perf_counter() - t0)
    local = rows['local']
    local_losses = local['losses']
    for row in rows.values():
        row['gap'] = {k: abs(row[k] - local[k]) / abs(local[k])
                      for k in ('critic_td_loss', 'policy_imagined_cost')}
        row['max_step_gap'] = max(abs(a - b) / max(abs(a), 1e-12)
                                  for ours, theirs in zip(row.pop('losses'), local_losses)
                                  for a, b in zip(theirs, ours))
    return rows


def print_actor(task: str, rows: dict) -> None:
    steps = rows['local']['steps']
    print(f'train {task} critic + policy, {steps[0]} TD(lambda) + {steps[1]} policy steps')
    print(f'{"run":>8} {"wall s":>7} {"critic TD loss":>15} {"policy cost":>12} '
          f'{"gaps (rel.)":>20} {"max step gap":>13}')
    for name, r in rows.items():
        gaps = f"{r['gap']['critic_td_loss']:.1e} / {r['gap']['policy_imagined_cost']:.1e}"
        print(f'{name:>8} {r["seconds"]:7.1f} {r["critic_td_loss"]:15.6f} '
              f'{r["policy_imagined_cost"]:12.5f} {gaps:>20} {r["max_step_gap"]:13.1e}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', default='push')
    parser.add_argument('--episodes', type=int, default=24)
    parser.add_argument('--max-steps', type=int, default=60)
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--stages', choices=('all', 'actor'), default='all')
    parser.add_argument('--critic-steps', type=int, default=1500)
    parser.add_argument('--policy-steps', type=int, default=300)
    args = parser.parse_args()
    if not _only_loopback():
        if os.environ.get('HLAI_BENCH_RAY_NETNS'):
            raise SystemExit('bench_ray: the network namespace holds more than loopback')
        return _reexec_in_namespace()
    os.environ['RAY_USAGE_STATS_ENABLED'] = '0'
    from hlai_ros.scale import connect
    connect(None, num_cpus=2)
    if args.stages == 'actor':
        return main_actor(args)
    with tempfile.TemporaryDirectory(prefix='hlai-bench-ray-') as tmp:
        work = Path(tmp)
        collect_rows = bench_collect(args.task, args.episodes, args.max_steps, work)
        train_rows = bench_train(args.task, work / 'local_2', work / 'train', args.epochs)
        driver = bench_driver_write(args.task, args.max_steps, work)
        actor_rows = bench_actor(args.task, work / 'local_2', work / 'train' / 'local',
                                 work / 'actor', args.critic_steps, args.policy_steps)
    print(f'collect {args.task}: {args.episodes} episodes x {args.max_steps} steps')
    print(f'{"workers":>7} {"local tr/s":>11} {"ray tr/s":>9} {"ray/local time":>15} '
          f'{"local wall tr/s":>16} {"ray cold wall tr/s":>19}')
    for workers, r in collect_rows.items():
        print(f'{workers:>7} {r["local_tps"]:11.1f} {r["ray_tps"]:9.1f} '
              f'{1 + r["ray_overhead"]:15.3f} {r["local_wall_tps"]:16.1f} '
              f'{r["ray_cold_wall_tps"]:19.1f}')
    print(f"driver bag writing: {driver['write_tps']:.0f} transitions/s, "
          f"{driver['pickled_bytes_per_transition'] / 1e3:.1f} kB/transition from the workers, "
          f"{driver['bag_bytes_per_transition'] / 1e3:.1f} kB/transition in the bag")
    print(f'train {args.task} world model, {args.epochs} epochs')
    print(f'{"run":>8} {"epoch s":>8} {"val error":>10}')
    for name, r in train_rows.items():
        print(f'{name:>8} {r["epoch_s"]:8.3f} {r["val_error"]:10.4f}')
    print_actor(args.task, actor_rows)
    print(json.dumps({'task': args.task, 'episodes': args.episodes,
                      'max_steps': args.max_steps, 'epochs': args.epochs,
                      'collect': collect_rows, 'driver': driver, 'train': train_rows,
                      'actor': actor_rows}))
    return 0


def main_actor(args: argparse.Namespace) -> int:
    """``--stages actor``: a local collection and world model, then `bench_actor` alone."""
    from hlai_ros.data import load_episodes
    from hlai_ros.data.collection import CollectSettings, collect
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_task_runs
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model
    with tempfile.TemporaryDirectory(prefix='hlai-bench-ray-') as tmp:
        work = Path(tmp)
        collect(CollectSettings(out=work / 'data', task=args.task, episodes=args.episodes,
                                workers=2, policy='mixed', seed=0, max_steps=args.max_steps),
                progress=False)
        task = get_task(args.task)
        runs = perceive_task_runs(task, load_episodes(work / 'data', cache=False),
                                  progress=False)
        config = WorldModelConfig(state_dim=task.state_dim, action_dim=task.action_dim, seed=0,
                                  max_epochs=args.epochs, patience=args.epochs, batch_size=64)
        train_world_model([run.model_episode() for run in runs], config,
                          out_dir=work / 'model', progress=False)
        rows = bench_actor(args.task, work / 'data', work / 'model', work / 'actor',
                           args.critic_steps, args.policy_steps)
    print_actor(args.task, rows)
    print(json.dumps({'task': args.task, 'episodes': args.episodes,
                      'max_steps': args.max_steps, 'epochs': args.epochs, 'actor': rows}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
