"""Parallel episode collection into rosbag2 MCAP bags (what `hlai collect` runs).

K worker processes (multiprocessing, spawn) each run one world and write one bag,
``OUT/worker_<k>``; episode i goes to worker i mod K and is seeded with ``seed + i`` (the
world) and a stream derived from (seed, i) (the policy), so the data do not depend on K. The
parent shows one progress bar over all episodes and returns a summary.

Interruption: on Ctrl-C (or SIGTERM) the parent asks the workers to stop; each ends its current
episode with an ``interrupted`` end marker and closes its bag, so everything written loads.
Workers ignore SIGINT themselves and also stop if the parent dies.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import multiprocessing as mp
import os
from pathlib import Path
import queue as queue_module
import shutil
import signal
import time
import traceback

import numpy as np

from hlai_ros.data.exploration import POLICIES, episode_policy

SUMMARY_FILE = 'collect_summary.json'


@dataclass(frozen=True)
class CollectSettings:
    """What to collect and where."""

    task: str
    """A registered task (`hlai_ros.tasks.task_names`)."""
    episodes: int
    """Number of episodes over all workers."""
    out: Path
    """Output directory; worker k writes the bag ``out/worker_<k>``."""
    workers: int = 1
    """Simulator processes run in parallel."""
    policy: str = 'mixed'
    """Exploration policy: 'random', 'scripted' (with noise), 'mixed' (per episode) or
    'learned' (the learned stack on `model`, with noise)."""
    noise: float | None = None
    """Gaussian action noise of the scripted or learned controller, action units; None: a
    quarter of the smallest action bound."""
    model: Path | None = None
    """Model folder of the 'learned' policy (None: the shipped models/<task>)."""
    seed: int = 0
    """Seed of episode 0; episode i uses seed + i."""
    width: int | None = None
    """Camera width, pixels (None: the task config's)."""
    height: int | None = None
    """Camera height, pixels (None: the task config's)."""
    max_steps: int | None = None
    """Cut episodes after this many steps (None: the world's time limit only)."""
    flush_period_s: float = 0.5
    """Longest wall-clock time between bag flushes, seconds (bounds what a kill loses)."""
    overwrite: bool = False
    """Replace an existing output directory written by `hlai collect`."""

    def __post_init__(self):
        from hlai_ros.tasks.registry import check_task
        check_task(self.task)
        if self.episodes < 1:
            raise ValueError(f'episodes must be at least 1, got {self.episodes}')
        if self.workers < 1:
            raise ValueError(f'workers must be at least 1, got {self.workers}')
        if self.policy not in POLICIES:
            raise ValueError(f'unknown policy {self.policy!r}; choose one of {list(POLICIES)}')
        if self.model is not None:
            if self.policy != 'learned':
                raise ValueError(f"model is for the policy 'learned' only, not {self.policy!r}")
            if not (Path(self.model) / 'world_model.json').is_file():
                raise ValueError(f'model {self.model} holds no world_model.json (a folder '
                                 'written by hlai train)')
        if self.noise is not None and not self.noise >= 0:
            raise ValueError(f'noise must be >= 0, got {self.noise}')
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f'max_steps must be at least 1, got {self.max_steps}')
        for name in ('width', 'height'):
            value = getattr(self, name)
            if value is not None and not 8 <= value <= 4096:
                raise ValueError(f'{name} must be 8..4096 pixels, got {value}')
        if self.flush_period_s <= 0:
            raise ValueError(f'flush_period_s must be positive, got {self.flush_period_s}')


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create `out`, or clear an old collection there when `overwrite` is set.

    Raises:
        ValueError: `out` is a file, or is not empty and `overwrite` is not set, or holds
            files that `hlai collect` did not write (never deleted).

    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f'--out {out} is a file; give a directory')
    entries = sorted(out.iterdir()) if out.exists() else []
    if entries:
        if not overwrite:
            raise ValueError(f'--out {out} exists and is not empty; choose a new directory or '
                             'pass --overwrite')
        ours = [e.name == SUMMARY_FILE or (e.is_dir() and e.name.startswith('worker_'))
                for e in entries]
        foreign = [e.name for e, mine in zip(entries, ours) if not mine]
        if foreign:
            raise ValueError(f'--out {out} holds files that hlai collect did not write '
                             f'({foreign[:5]}); not deleting them with --overwrite')
        for e in entries:
            shutil.rmtree(e) if e.is_dir() else e.unlink()
    out.mkdir(parents=True, exist_ok=True)


def worker_controllers(settings, env):
    """What a collection worker acts with besides random: (learned controller or None, noise).

    The learned stack on `settings.model` when the policy is 'learned' (one torch thread: one
    worker per core), and the scripted or learned action noise, by default a quarter of the
    action bound.
    """
    learned = None
    if settings.policy == 'learned':
        import torch

        from hlai_ros.tasks.compare import CompareConfig, learned_stack
        from hlai_ros.tasks.controllers import LearnedController
        torch.set_num_threads(1)
        learned = LearnedController(learned_stack(CompareConfig(
            task=settings.task, model_dir=str(settings.model) if settings.model else None)))
    noise = settings.noise
    if noise is None:
        noise = 0.25 * float(np.min(env.action_space.high))
    return learned, noise


def _make_world(settings: CollectSettings):
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    overrides = {}
    if settings.width is not None:
        overrides['image_width'] = settings.width
    if settings.height is not None:
        overrides['image_height'] = settings.height
    return make(settings.task, config=world_config(settings.task, **overrides))


def run_episode(env, policy, writer, episode: int, seed: int, max_steps: int | None,
                should_stop, marker: dict | None = None) -> dict:
    """Run one episode, writing every step; return its outcome.

    The loop is `hlai_ros.evaluation.rollouts.run_episode` (actions clipped to the action
    space); this writes the start marker and every observation and command to the bag, and
    the end marker with the outcome.

    Args:
        env: the world (with its time limit).
        policy: a `hlai_ros.evaluation.rollouts.Controller` (`episode_policy`).
        writer: an `EpisodeWriter`.
        episode: the episode's index.
        seed: the world's seed for this episode.
        max_steps: cut the episode after this many steps (None: no cut).
        should_stop: called before every step; True ends the episode as interrupted.
        marker: extra items for the start marker.

    """
    from hlai_ros.evaluation.rollouts import run_episode as run_rollout

    def on_reset(obs, info):
        writer.start_episode(episode, seed, **(marker or {}))
        goal_observation = getattr(env.unwrapped, 'goal_observation', None)
        if goal_observation is not None:   # the latent stack's goal, as a user captures one
            writer.goal_image(goal_observation())
        writer.observation(obs, info)

    def on_step(action, obs, reward, info):
        writer.action(action)
        writer.observation(obs, info)

    record = run_rollout(env, policy, seed, max_steps, clip=True, on_reset=on_reset,
                         on_step=on_step, should_stop=should_stop)
    success, failure = bool(record.success), record.failure_reason
    outcome = {'episode': episode, 'seed': seed, 'success': success, 'failure': failure,
               'return': record.episode_return, 'steps': record.steps,
               'truncated': bool(record.truncated and not success and not failure)}
    if record.interrupted:
        outcome['interrupted'] = True
    writer.end_episode(success, failure, record.episode_return, record.steps,
                       **{k: outcome[k] for k in ('truncated', 'interrupted') if k in outcome})
    return outcome


def worker_main(worker: int, episodes: list[int], settings: CollectSettings, events,
                stop) -> None:
    """Collect `episodes` into the bag of `worker`; report on the `events` queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def should_stop() -> bool:
        return stop.is_set() or os.getppid() != parent

    env = writer = None
    done = {'worker': worker, 'episodes': 0, 'steps': 0, 'start': time.time()}
    try:
        from hlai_ros.data.writer import EpisodeWriter
        env = _make_world(settings)
        world = env.unwrapped
        learned, noise = worker_controllers(settings, env)
        writer = EpisodeWriter(
            Path(settings.out) / f'worker_{worker:02d}', settings.task, world.nominal_camera(),
            world.proprio_names, world.config.control_hz, settings.flush_period_s,
            metadata={'env_id': env.spec.id if env.spec else None, 'worker': worker})
        done['start'] = time.time()
        for i in episodes:
            if should_stop():
                break
            policy, name = episode_policy(settings.policy, settings.task, env.action_space,
                                          noise, settings.seed, i, learned, world)
            outcome = run_episode(env, policy, writer, i, settings.seed + i, settings.max_steps,
                                  should_stop, {'policy': name,
                                                'noise': 0.0 if name == 'random' else noise})
            outcome['policy'] = name
            done['episodes'] += 1
            done['steps'] += outcome['steps']
            events.put(('episode', worker, outcome))
    except BaseException:  # noqa: BLE001 - reported to the parent, bag still closed below
        events.put(('error', worker, traceback.format_exc()))
    finally:
        done['end'] = time.time()
        try:
            if writer is not None:
                writer.close()
        finally:
            if env is not None:
                env.close()
            events.put(('done', worker, done))


def collect(settings: CollectSettings, progress: bool = True) -> dict:
    """Run the collection; return the summary (also written to ``out/collect_summary.json``).

    KeyboardInterrupt (Ctrl-C) stops the workers cleanly; the summary then has
    ``interrupted: true``.
    """
    prepare_output(settings.out, settings.overwrite)
    workers = min(settings.workers, settings.episodes)
    ctx = mp.get_context('spawn')
    events, stop = ctx.Queue(), ctx.Event()
    start = time.time()
    procs = []
    # Children inherit an ignored SIGINT through exec, so a Ctrl-C during their start-up
    # cannot kill them before they have set up their own handling.
    try:
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous_int = None
    try:
        for k in range(workers):
            ids = list(range(k, settings.episodes, workers))
            p = ctx.Process(target=worker_main, args=(k, ids, settings, events, stop),
                            name=f'hlai-collect-{k}', daemon=False)
            p.start()
            procs.append(p)
    finally:
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=settings.episodes, desc=f'collect {settings.task}', unit='ep')
    outcomes, errors, workers_done = [], [], {}
    interrupted = False
    previous_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        previous_term = None
    try:
        while len(workers_done) < workers:
            try:
                kind, worker, payload = events.get(timeout=0.5)
            except queue_module.Empty:
                dead = [p for k, p in enumerate(procs)
                        if not p.is_alive() and k not in workers_done]
                for p in dead:
                    p.join(1.0)
                    errors.append(f'worker {procs.index(p)} exited with code {p.exitcode}')
                    workers_done[procs.index(p)] = {'worker': procs.index(p), 'episodes': 0,
                                                    'steps': 0}
                continue
            except KeyboardInterrupt:
                raise
            if kind == 'episode':
                outcomes.append(payload)
                if bar is not None:
                    rate = np.mean([o['success'] for o in outcomes])
                    bar.set_postfix(success=f'{rate:.0%}', steps=sum(o['steps'] for o in outcomes))
                    bar.update(1)
            elif kind == 'error':
                errors.append(f'worker {worker}:\n{payload}')
                stop.set()
            elif kind == 'done':
                workers_done[worker] = payload
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        _drain(events, procs, outcomes, errors, workers_done, bar)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if bar is not None:
            bar.close()
        for p in procs:
            p.join(30.0)
            if p.is_alive():
                p.terminate()
                p.join(5.0)
    return _summary(settings, workers, outcomes, errors, workers_done, start, interrupted)


def _drain(events, procs, outcomes, errors, workers_done, bar) -> None:
    """After a stop request, collect the workers' last reports until they have all closed."""
    deadline = time.time() + 60.0
    while len(workers_done) < len(procs) and time.time() < deadline:
        try:
            kind, worker, payload = events.get(timeout=0.5)
        except queue_module.Empty:
            if not any(p.is_alive() for p in procs):
                break
            continue
        except KeyboardInterrupt:
            continue  # a second Ctrl-C: keep waiting for the bags to close
        if kind == 'episode':
            outcomes.append(payload)
            if bar is not None:
                bar.update(1)
        elif kind == 'error':
            errors.append(f'worker {worker}:\n{payload}')
        elif kind == 'done':
            workers_done[worker] = payload


def _summary(settings, workers, outcomes, errors, workers_done, start, interrupted) -> dict:
    wall = time.time() - start
    steps = int(sum(o['steps'] for o in outcomes))
    n = len(outcomes)
    active = [d for d in workers_done.values() if 'end' in d and d['episodes']]
    busy = (max(d['end'] for d in active) - min(d['start'] for d in active)) if active else 0.0
    by_policy = {}
    for name in sorted({o.get('policy', '?') for o in outcomes}):
        group = [o for o in outcomes if o.get('policy') == name]
        by_policy[name] = {'episodes': len(group),
                           'success_rate': float(np.mean([o['success'] for o in group])),
                           'failure_rate': float(np.mean([bool(o['failure']) for o in group]))}
    size = sum(f.stat().st_size for f in Path(settings.out).rglob('*') if f.is_file())
    summary = {
        'task': settings.task, 'episodes': n, 'episodes_requested': settings.episodes,
        'transitions': steps, 'workers': workers, 'policy': settings.policy,
        'seed': settings.seed,
        'success': int(sum(o['success'] for o in outcomes)),
        'failure': int(sum(bool(o['failure']) for o in outcomes)),
        'truncated': int(sum(o.get('truncated', False) for o in outcomes)),
        'interrupted_episodes': int(sum(o.get('interrupted', False) for o in outcomes)),
        'by_policy': by_policy,
        'wall_s': wall, 'collect_s': busy,
        'transitions_per_s': steps / wall if wall > 0 else 0.0,
        'episodes_per_s': n / wall if wall > 0 else 0.0,
        'bags': [str(Path(settings.out) / f'worker_{k:02d}') for k in range(workers)],
        'bytes': size, 'interrupted': interrupted, 'errors': errors,
        'settings': {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in asdict(settings).items()},
    }
    (Path(settings.out) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary
