"""The multi-node Ray run of test_ray.py; run it only inside a loopback-only network namespace.

    unshare -n sh -c 'ip link set lo up; exec python test/scale/ray_cluster_run.py WORKDIR'

Starts a two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: a head and a second
node, one CPU each, no dashboard), then:

1. collect: a local `hlai collect` and the same on the cluster while a watcher kills -9 a Ray
   worker in the middle of an episode; checks that every episode is in the bags exactly once,
   that both nodes ran episodes, and that the bags hold the local run's messages;
2. eval: `compare_ray` against the local `compare`, episode by episode;
3. train (with ``--train``): `train_world_model_ray` with 2 workers for 3 epochs, and a
   watcher kills -9 one training worker after the first checkpoint; checks that the run
   resumed from it, wrote a local run's files and that the validation error is within
   `VAL_TOLERANCE` of the local run's;
4. the ``--ray ADDRESS`` flags of the three commands, through `hlai_ros.cli.main` (train: one
   local epoch, then ``--ray`` resumes from ``--out`` for the second);
5. network: every socket seen during the run has its peer in 127.0.0.0/8.

Prints one JSON object with the figures on its last line; any failed check raises.
"""
from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
import re
import signal
import sys
import threading
import time

os.environ['RAY_USAGE_STATS_ENABLED'] = '0'
# Ray Train's controller registers reported checkpoints when it polls the workers (every 2 s
# by default); poll often so that the kill below comes after a registered checkpoint.
os.environ['RAY_TRAIN_HEALTH_CHECK_INTERVAL_S'] = '0.2'
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402
import psutil  # noqa: E402

LOOPBACK = ipaddress.ip_network('127.0.0.0/8')
VAL_TOLERANCE = 0.05
"""Largest relative gap between the Ray and the local validation error after the same epochs."""


def _peer_is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split('%')[0])
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        else:
            return addr == ipaddress.ip_address('::1')
    return addr in LOOPBACK


class Watcher(threading.Thread):
    """Samples every socket of this namespace and kills -9 the first process named `title`."""

    def __init__(self, title: str | None = None, when=None):
        super().__init__(daemon=True)
        self.title, self.when = title, when
        self.killed: dict | None = None
        self.peers: set[str] = set()
        self.samples = 0
        self.stop = threading.Event()

    def sample_sockets(self) -> None:
        for c in psutil.net_connections('inet'):
            if c.raddr:
                self.peers.add(c.raddr.ip)
        self.samples += 1

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            if self.title and self.killed is None and (self.when is None or self.when()):
                for p in psutil.process_iter(['pid', 'cmdline']):
                    cmd = ' '.join(p.info['cmdline'] or [])
                    if cmd.startswith(self.title):
                        os.kill(p.info['pid'], signal.SIGKILL)
                        self.killed = {'pid': p.info['pid'], 'title': cmd.strip(),
                                       'at_s': round(time.monotonic() - start, 2)}
                        break
            if self.samples % 20 == 0 or self.killed:
                self.sample_sockets()
            else:
                self.samples += 1
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        self.join()
        self.sample_sockets()


def bag_messages(root: Path) -> dict[str, list]:
    """{bag name: [(topic, log time, CDR bytes)]} of every bag under `root`."""
    from mcap.reader import make_reader
    out = {}
    for f in sorted(root.rglob('*.mcap')):
        with f.open('rb') as fh:
            out[f.parent.name] = [(c.topic, m.log_time, bytes(m.data))
                                  for _, c, m in make_reader(fh).iter_messages(
                                      log_time_order=False)]
    return out


def check_collect(work: Path, watchers: list) -> dict:
    from hlai_ros.data import load_episodes
    from hlai_ros.data.collection import CollectSettings, collect
    from hlai_ros.scale.collect import collect_ray
    common = dict(task='push', episodes=6, workers=2, policy='mixed', seed=11, width=32,
                  height=24, max_steps=30)
    local = collect(CollectSettings(out=work / 'local', **common), progress=False)
    assert not local['errors'], local['errors']
    watcher = Watcher('ray::collect_episode')
    watchers.append(watcher)
    watcher.start()
    t0 = time.perf_counter()
    summary = collect_ray(CollectSettings(out=work / 'ray', **common), progress=False)
    wall = time.perf_counter() - t0
    watcher.finish()
    assert watcher.killed is not None, 'the watcher never saw an episode running to kill'
    assert not summary['errors'], summary['errors']
    episodes = load_episodes(work / 'ray', cache=False)
    indices = sorted(e.metadata['episode'] for e in episodes)
    assert indices == list(range(6)), f'episodes lost or doubled: {indices}'
    assert all(e.metadata['ended'] for e in episodes)
    assert len(summary['ray']['episodes_by_node']) == 2, summary['ray']
    ours, theirs = bag_messages(work / 'ray'), bag_messages(work / 'local')
    assert ours.keys() == theirs.keys(), (ours.keys(), theirs.keys())
    for bag in ours:
        assert ours[bag] == theirs[bag], f'{bag} differs from the local run'
    return {'episodes': len(episodes), 'transitions': summary['transitions'],
            'killed': watcher.killed, 'ray_wall_s': round(wall, 2),
            'episodes_by_node': list(summary['ray']['episodes_by_node'].values()),
            'messages': {k: len(v) for k, v in ours.items()}}


def check_eval() -> dict:
    from hlai_ros.scale.evaluate import compare_ray
    from hlai_ros.tasks.compare import CompareConfig, compare
    config = CompareConfig(task='cliff', episodes=3, seed=5, controllers=('random', 'scripted'))
    _, local = compare(config, progress=False, log=None)
    _, ours = compare_ray(config, progress=False, log=None)
    for name in config.controllers:
        assert [o.seed for o in ours[name]] == [5, 6, 7]
        for a, b in zip(local[name], ours[name]):
            assert (a.seed, a.steps, a.episode_return, a.success, a.failure_reason) == \
                (b.seed, b.steps, b.episode_return, b.success, b.failure_reason)
            np.testing.assert_array_equal(a.actions, b.actions)
            np.testing.assert_array_equal(a.rewards, b.rewards)
    return {name: [round(o.episode_return, 4) for o in ours[name]] for name in ours}


def compare_training(data: Path, out: Path, workers: int, epochs: int, batch_size: int = 32,
                     watch=None) -> dict:
    """Train the world model on `data` locally and with `workers` Ray Train workers."""
    import torch

    from hlai_ros.data import load_episodes
    from hlai_ros.scale.train import train_world_model_ray
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_task_runs
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model
    torch.set_num_threads(1)
    task = get_task('push')
    runs = perceive_task_runs(task, load_episodes(data, cache=False), progress=False)
    episodes = [run.model_episode() for run in runs]
    config = WorldModelConfig(state_dim=task.state_dim, action_dim=task.action_dim, seed=0,
                              max_epochs=epochs, ensemble_size=2, hidden_sizes=(32, 32),
                              batch_size=batch_size)
    _, local = train_world_model(episodes, config, out_dir=out / 'local', progress=False)
    if watch is not None:
        watch.start()
    details = {}
    _, ours = train_world_model_ray(episodes, config, out / 'ray', workers=workers,
                                    progress=False, details=details)
    if watch is not None:
        watch.finish()
    files = {name: sorted(re.sub('-[0-9a-f]{16}', '', p.name) for p in (out / name).iterdir())
             for name in ('local', 'ray')}
    assert files['local'] == files['ray'], files
    assert len(ours.val_error) == epochs, ours.val_error
    gap = abs(ours.val_error[-1] - local.val_error[-1]) / local.val_error[-1]
    assert gap <= VAL_TOLERANCE, (local.val_error, ours.val_error)
    return {'val_local': local.val_error, 'val_ray': ours.val_error, 'files': files['ray'],
            'val_gap': gap, 'started_at_epoch': details.get('started_at_epoch'),
            'epoch_s_local': local.epoch_seconds, 'epoch_s_ray': ours.epoch_seconds}


def check_train(work: Path, watchers: list) -> dict:
    storage = work / 'train' / 'ray' / '.ray_train'

    def after_first_checkpoint() -> bool:
        """True once Ray Train's controller has registered a reported checkpoint."""
        return any(storage.glob('*/checkpoint_manager_snapshot.json'))

    watcher = Watcher('ray::RayTrainWorker', when=after_first_checkpoint)
    watchers.append(watcher)
    epochs = 3
    result = compare_training(work / 'local', work / 'train', workers=2, epochs=epochs,
                              batch_size=1, watch=watcher)
    assert watcher.killed is not None, 'the watcher never saw a training worker to kill'
    assert 1 <= result['started_at_epoch'] < epochs, \
        ('the run did not resume from its last checkpoint', result)
    result['killed'] = watcher.killed
    return result


def check_cli(work: Path, address: str, train: bool) -> dict:
    """The ``--ray ADDRESS`` flags of `hlai collect`, `hlai eval` and `hlai train`."""
    import contextlib
    import io

    from hlai_ros.cli import main as hlai

    def run(argv: list[str]) -> dict:
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            assert hlai(argv) == 0, argv
        lines = [ln for ln in text.getvalue().splitlines() if ln.startswith('{"task"')]
        assert lines, text.getvalue()[-2000:]
        return json.loads(lines[-1])

    data = work / 'cli_data'
    collected = run(['collect', '--task', 'cliff', '--episodes', '3', '--workers', '2',
                     '--out', str(data), '--max-steps', '5', '--policy', 'random',
                     '--no-progress', '--json', '--ray', address])
    assert collected['episodes'] == 3 and collected['transitions'] == 15, collected
    evaluated = run(['eval', '--task', 'cliff', '--episodes', '2', '--controllers', 'random',
                     '--json', '--ray', address])
    assert evaluated['controllers']['random']['episodes'] == 2, evaluated
    result = {'collect_transitions': collected['transitions'],
              'eval_random_return': evaluated['controllers']['random']['mean_return']}
    if train:  # one local epoch, then `--ray` resumes from --out for a second one
        common = ['train', '--task', 'cliff', '--data', str(data), '--out',
                  str(work / 'cli_model'), '--ensemble', '2', '--hidden', '16', '--no-actor',
                  '--quiet']
        assert run(common + ['--epochs', '1'])['epochs'] == 1
        trained = run(common + ['--epochs', '2', '--ray', address, '--workers', '2'])
        assert trained.get('epochs') == 2, trained
        names = sorted(p.name for p in (work / 'cli_model').iterdir())
        assert len(names) == 5 and names[0] == 'README.md', names  # no .ray_train left
        result['train_val_error'] = trained['val_error']
    return result


def main(work: Path, train: bool) -> dict:
    import ray
    from ray.cluster_utils import Cluster

    from hlai_ros.scale import connect
    node = dict(num_cpus=1, include_dashboard=False, node_ip_address='127.0.0.1')
    cluster = Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    watchers: list[Watcher] = []
    try:
        connect(cluster.address)
        assert len([n for n in ray.nodes() if n['Alive']]) == 2
        result = {'collect': check_collect(work, watchers), 'eval': check_eval()}
        if train:
            result['train'] = check_train(work, watchers)
        result['cli'] = check_cli(work, cluster.address, train)
        final = Watcher()
        final.sample_sockets()
        watchers.append(final)
    finally:
        ray.shutdown()
        cluster.shutdown()
    peers = set().union(*(w.peers for w in watchers))
    outside = sorted(p for p in peers if not _peer_is_loopback(p))
    assert peers, 'no socket of the run was seen'
    assert not outside, f'sockets with peers outside 127.0.0.0/8: {outside}'
    result['socket_peers'] = sorted(peers)
    return result


if __name__ == '__main__':
    print(json.dumps(main(Path(sys.argv[1]), '--train' in sys.argv[2:])), flush=True)
