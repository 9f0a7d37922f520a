"""`hlai collect --ray`: episodes as Ray tasks across a cluster, bags written by the driver.

Every episode is one Ray task (`collect_episode`): the worker runs episode i exactly as a local
`hlai collect` worker does (world seed ``seed + i``, exploration stream from (seed, i)) but
records the writer's calls in memory (`RecordingWriter`) instead of writing a bag, and returns
them. The driver replays each recording into ``OUT/worker_<k>`` with k = i mod ``--workers``, in
episode order, which is the layout, order and stamps of a local run with the same
``--workers``: the bags hold the same messages, transition for transition.

Why the driver writes the bags, and not the workers to a shared ``--out``:

- exactly once, never partial: an episode reaches a bag only as a whole, after its task
  finished; a worker killed mid-episode leaves nothing behind, Ray re-runs its task
  (``max_retries``) and the re-run, seeded the same, gives the same episode;
- no shared file system (NFS, bucket mount) is needed, and no merge of per-node bags;
- the cost: every frame crosses the network to the driver, and one process serialises the
  bags. At about 100 KB per 64 x 64 RGB-D step that is ~1 GB/s at 10k transitions/s, beyond
  which the driver's bag writing saturates first (docs/ray.md has the projection).

Memory: at most ``--workers`` episodes run at once, and at most ``4 * --workers`` finished
episodes wait in Ray's object store for an earlier one to be written.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import time
from typing import Any

import numpy as np

from hlai_ros.data.collection import (
    SUMMARY_FILE,
    CollectSettings,
    _make_world,
    _summary,
    prepare_output,
    run_episode,
    worker_controllers,
)
from hlai_ros.data.exploration import episode_policy
from hlai_ros.scale import connect, require_ray

MAX_RETRIES = 3
"""Times Ray re-runs an episode whose worker died (a node lost, a process killed)."""


class RecordingWriter:
    """An `EpisodeWriter` stand-in that keeps the calls of one episode in memory.

    `replay` makes the same calls on a real `hlai_ros.data.writer.EpisodeWriter`; arrays are
    copied when recorded, so a world that reuses its buffers cannot change what was recorded.
    """

    def __init__(self):
        self.calls: list[tuple[str, tuple, dict]] = []

    def start_episode(self, episode: int, seed: int | None, **extra) -> None:
        """Record the start marker."""
        self.calls.append(('start_episode', (episode, seed), copy.deepcopy(extra)))

    def observation(self, obs: dict, info: dict | None = None) -> None:
        """Record an observation (and the ground truth of `info`, the only item written)."""
        kept = None
        if info is not None and 'ground_truth' in info:
            kept = {'ground_truth': copy.deepcopy(info['ground_truth'])}
        obs = {k: np.array(v, copy=True) for k, v in obs.items()}
        self.calls.append(('observation', (obs, kept), {}))

    def goal_image(self, obs: dict) -> None:
        """Record the episode's goal image (rgb, depth)."""
        self.calls.append(('goal_image', ({k: np.array(obs[k], copy=True)
                                            for k in ('rgb', 'depth')},), {}))

    def action(self, action: np.ndarray) -> None:
        """Record a command."""
        self.calls.append(('action', (np.array(action, copy=True),), {}))

    def end_episode(self, success, failure, episode_return: float, steps: int, **extra) -> None:
        """Record the end marker."""
        self.calls.append(('end_episode', (success, failure, episode_return, steps),
                           copy.deepcopy(extra)))

    def replay(self, writer) -> None:
        """Make the recorded calls, in order, on `writer`."""
        for name, args, kwargs in self.calls:
            getattr(writer, name)(*args, **kwargs)


@dataclass
class EpisodeRecording:
    """What a Ray task returns for one episode: the writer's calls and the outcome."""

    episode: int
    """The episode's index."""
    outcome: dict
    """The outcome (`hlai_ros.data.collection.run_episode`'s, plus 'policy')."""
    writer: RecordingWriter
    """The calls to replay into the episode's bag."""
    world: dict
    """What the driver needs to open a bag: camera, proprio_names, control_hz, env_id."""
    start: float = 0.0
    """Wall-clock start of the episode on the worker (time.time())."""
    end: float = 0.0
    """Wall-clock end of the episode on the worker."""
    node: dict = field(default_factory=dict)
    """Where it ran: the Ray node id and the worker's pid."""


_WORLDS: dict[tuple, tuple] = {}
"""This worker process's world (and learned controller) per settings, reused across tasks."""


def _worker_world(settings: CollectSettings) -> tuple:
    key = (settings.task, settings.width, settings.height, settings.policy,
           str(settings.model), settings.noise)
    if key not in _WORLDS:
        for env, *_ in _WORLDS.values():
            env.close()
        _WORLDS.clear()
        env = _make_world(settings)
        learned, noise = worker_controllers(settings, env)
        world = env.unwrapped
        about = {'camera': world.nominal_camera(), 'proprio_names': tuple(world.proprio_names),
                 'control_hz': float(world.config.control_hz),
                 'env_id': env.spec.id if env.spec else None}
        _WORLDS[key] = (env, learned, noise, about)
    return _WORLDS[key]


def collect_episode(settings: CollectSettings, episode: int) -> EpisodeRecording:
    """Run episode `episode` of a collection (what one Ray task does); return its recording.

    The same episode as worker ``episode % workers`` of a local `hlai collect` records: world
    seed ``settings.seed + episode`` and the exploration policy of (seed, episode).
    """
    import ray
    env, learned, noise, about = _worker_world(settings)
    start = time.time()
    policy, name = episode_policy(settings.policy, settings.task, env.action_space, noise,
                                  settings.seed, episode, learned, env.unwrapped)
    recorder = RecordingWriter()
    outcome = run_episode(env, policy, recorder, episode, settings.seed + episode,
                          settings.max_steps, lambda: False,
                          {'policy': name, 'noise': 0.0 if name == 'random' else noise})
    outcome['policy'] = name
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    return EpisodeRecording(episode, outcome, recorder, about, start, time.time(),
                            {'node_id': node, 'pid': os.getpid()})


class _Bags:
    """The driver's bags, ``out/worker_<k>``, opened at their first episode."""

    def __init__(self, settings: CollectSettings, count: int):
        self.settings, self.count = settings, count
        self.writers: dict[int, Any] = {}
        self.done: dict[int, dict] = {}

    def write(self, rec: EpisodeRecording) -> None:
        from hlai_ros.data.writer import EpisodeWriter
        k = rec.episode % self.count
        if k not in self.writers:
            w = rec.world
            self.writers[k] = EpisodeWriter(
                Path(self.settings.out) / f'worker_{k:02d}', self.settings.task, w['camera'],
                w['proprio_names'], w['control_hz'], self.settings.flush_period_s,
                metadata={'env_id': w['env_id'], 'worker': k})
            self.done[k] = {'worker': k, 'episodes': 0, 'steps': 0, 'start': rec.start,
                            'end': rec.end}
        rec.writer.replay(self.writers[k])
        d = self.done[k]
        d['episodes'] += 1
        d['steps'] += rec.outcome['steps']
        d['start'], d['end'] = min(d['start'], rec.start), max(d['end'], rec.end)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _keep(rec: EpisodeRecording, bags: _Bags, outcomes: list, hosts: dict) -> None:
    """Write a finished episode to its bag and count it."""
    bags.write(rec)
    outcomes.append(rec.outcome)
    hosts[rec.node['node_id']] = hosts.get(rec.node['node_id'], 0) + 1


def collect_ray(settings: CollectSettings, address: str | None = None, progress: bool = True,
                max_retries: int = MAX_RETRIES) -> dict:
    """Collect on a Ray cluster; return the summary of `hlai_ros.data.collection.collect`.

    The summary has the local run's fields plus ``ray``: the address, nodes and CPUs used, and
    how many episodes ran on each node (by node id). An episode task that raises stops the
    collection (the episodes before it are written); KeyboardInterrupt cancels what runs and
    writes the finished episodes in order, with ``interrupted: true``.

    Args:
        settings: what to collect; ``settings.workers`` is the number of bags and of episodes
            run at once (as in a local run).
        address: the cluster (`hlai_ros.scale.connect`; None: RAY_ADDRESS or a new local one).
        progress: show a progress bar over episodes.
        max_retries: re-runs of an episode whose worker died.

    """
    ray = require_ray()
    prepare_output(settings.out, settings.overwrite)
    connect(address)
    count = min(settings.workers, settings.episodes)
    remote = ray.remote(num_cpus=1, max_retries=max_retries)(collect_episode)
    bags = _Bags(settings, count)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=settings.episodes, desc=f'collect {settings.task} (ray)', unit='ep')
    start = time.time()
    running: dict[Any, int] = {}
    finished: dict[int, Any] = {}
    outcomes, errors, hosts = [], [], {}
    submitted = written = 0
    interrupted = False
    try:
        while written < settings.episodes and not errors:
            while (submitted < settings.episodes and len(running) < count
                   and len(finished) < 4 * count):
                running[remote.remote(settings, submitted)] = submitted
                submitted += 1
            if running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in ready:
                    finished[running.pop(ref)] = ref
                    if bar is not None:
                        bar.update(1)
            while written in finished:
                try:
                    rec = ray.get(finished.pop(written))
                except ray.exceptions.RayError as exc:
                    errors.append(f'episode {written}: {exc}')
                    break
                _keep(rec, bags, outcomes, hosts)
                written += 1
                if bar is not None:
                    rate = np.mean([o['success'] for o in outcomes])
                    bar.set_postfix(success=f'{rate:.0%}', steps=sum(o['steps'] for o in outcomes))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if interrupted:  # keep what finished in order; a gap ends the bags
            while written in finished:
                try:
                    rec = ray.get(finished.pop(written), timeout=30)
                except (ray.exceptions.RayError, KeyboardInterrupt):
                    break
                _keep(rec, bags, outcomes, hosts)
                written += 1
        bags.close()
        if bar is not None:
            bar.close()
    summary = _summary(settings, count, outcomes, errors, bags.done, start, interrupted)
    summary['bags'] = [str(Path(settings.out) / f'worker_{k:02d}') for k in sorted(bags.done)]
    summary['ray'] = {'address': ray.get_runtime_context().gcs_address,
                      'nodes': len([n for n in ray.nodes() if n.get('Alive')]),
                      'cluster_cpus': int(ray.cluster_resources().get('CPU', 0)),
                      'episodes_by_node': hosts, 'max_retries': max_retries}
    (Path(settings.out) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary
