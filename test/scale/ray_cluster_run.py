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
   `VAL_TOLERANCE` of the local run's; then the critic and the policy through that model
   (`train_task_actor_ray`, 2 workers, a worker killed -9 after the first checkpoint): resumed,
   a local run's files (loaded with the normal loaders) and losses within `ACTOR_TOLERANCE`;
4. the ``--ray ADDRESS`` flags of the three commands, through `hlai_ros.cli.main` (train: one
   local epoch, then ``--ray`` resumes from ``--out`` for the second and trains a critic and a
   policy);
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
ACTOR_TOLERANCE = 1e-3
"""Largest relative gap between the Ray and the local critic TD loss (mean of the last tenth of
the steps, as `hlai train` reports it) and final imagined policy cost after the same steps."""


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


def kill_after_first_checkpoint(storage: Path, watchers: list) -> Watcher:
    """A watcher that kills a Ray Train worker once a checkpoint under `storage` registers."""

    def after_first_checkpoint() -> bool:
        """True once Ray Train's controller has registered a reported checkpoint."""
        return any(storage.glob('*/checkpoint_manager_snapshot.json'))

    watcher = Watcher('ray::RayTrainWorker', when=after_first_checkpoint)
    watchers.append(watcher)
    return watcher


def check_train(work: Path, watchers: list) -> dict:
    watcher = kill_after_first_checkpoint(work / 'train' / 'ray' / '.ray_train', watchers)
    epochs = 3
    result = compare_training(work / 'local', work / 'train', workers=2, epochs=epochs,
                              batch_size=1, watch=watcher)
    assert watcher.killed is not None, 'the watcher never saw a training worker to kill'
    assert 1 <= result['started_at_epoch'] < epochs, \
        ('the run did not resume from its last checkpoint', result)
    result['killed'] = watcher.killed
    return result


def _relative_gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def actor_figures(result) -> dict:
    """What `hlai train` reports of a critic and policy training."""
    tail = max(1, len(result.critic_losses) // 10)
    return {'critic_td_loss': sum(result.critic_losses[-tail:]) / tail,
            'policy_imagined_cost': result.policy_losses[-1],
            'steps': [len(result.critic_losses), len(result.policy_losses)]}


def compare_actor(data: Path, model_dir: Path, out: Path, workers: int, critic_steps: int,
                  policy_steps: int, checkpoint_steps: int, watch=None) -> dict:
    """Train critic and policy on `data` through the model in `model_dir`, locally and on Ray."""
    import torch

    from hlai_ros.actor.checkpoint import (
        load_critic,
        load_policy,
        save_critic,
        save_policy,
    )
    from hlai_ros.actor.policy import PolicyConfig
    from hlai_ros.actor.training import ActorTrainingConfig
    from hlai_ros.cost.critic import CriticConfig
    from hlai_ros.data import load_episodes
    from hlai_ros.scale.actor import train_task_actor_ray
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_task_runs, train_task_actor
    from hlai_ros.world_model.checkpoint import load_world_model
    torch.set_num_threads(1)
    task = get_task('push')
    runs = perceive_task_runs(task, load_episodes(data, cache=False), progress=False)
    model = load_world_model(model_dir)
    config = ActorTrainingConfig(critic=CriticConfig(hidden=32, ensemble_size=2),
                                 policy=PolicyConfig(hidden=32, horizon=5), window=8,
                                 critic_steps=critic_steps, policy_steps=policy_steps, seed=0)
    meta = {'task': 'push', 'seed': 0}
    t0 = time.perf_counter()
    local = train_task_actor(task, model, runs, config, progress=False)
    local_s = time.perf_counter() - t0
    counts = {'critic_steps': critic_steps, 'policy_steps': policy_steps}
    save_critic(local.critic, out / 'local', dict(meta, **counts))
    save_policy(local.policy, out / 'local', dict(meta, **counts))
    if watch is not None:
        watch.start()
    details = {}
    t0 = time.perf_counter()
    ours = train_task_actor_ray(task, model, runs, config, out_dir=out / 'ray', workers=workers,
                                progress=False, metadata=meta, details=details,
                                checkpoint_steps=checkpoint_steps)
    ray_s = time.perf_counter() - t0
    if watch is not None:
        watch.finish()
    files = {name: sorted(re.sub('-[0-9a-f]{16}', '', p.name) for p in (out / name).iterdir())
             for name in ('local', 'ray')}
    assert files['local'] == files['ray'] == ['critic.json', 'critic.safetensors',
                                              'policy.json', 'policy.safetensors'], files
    for name in ('critic', 'policy'):  # the same headers (config, metadata), other weights
        headers = [json.loads((out / run / f'{name}.json').read_text())
                   for run in ('local', 'ray')]
        keep = ('format', 'version', 'state_dim', 'config', 'metadata', 'action_low',
                'action_high')
        assert [{k: h.get(k) for k in keep} for h in headers[:1]] == \
            [{k: h.get(k) for k in keep} for h in headers[1:]], headers
    critic, policy = load_critic(out / 'ray'), load_policy(out / 'ray')
    states = torch.as_tensor(runs[0].states[:4])
    goal = torch.as_tensor(runs[0].goal) if runs[0].goal is not None else None
    for a, b in ((critic, local.critic), (policy, local.policy)):
        assert torch.allclose(a(states, goal), b(states, goal), rtol=1e-3, atol=1e-4)
    mine, theirs = actor_figures(ours), actor_figures(local)
    assert mine['steps'] == theirs['steps'] == [critic_steps, policy_steps], (mine, theirs)
    gaps = {k: _relative_gap(theirs[k], mine[k]) for k in ('critic_td_loss',
                                                            'policy_imagined_cost')}
    assert max(gaps.values()) <= ACTOR_TOLERANCE, (gaps, mine, theirs)
    return {'local': theirs, 'ray': mine, 'gaps': gaps,
            'started_at_step': details.get('started_at_step'),
            'local_s': round(local_s, 2), 'ray_s': round(ray_s, 2)}


def check_actor(work: Path, watchers: list) -> dict:
    """Critic and policy on 2 Ray Train workers, one killed -9 after the first checkpoint."""
    watcher = kill_after_first_checkpoint(work / 'actor' / 'ray' / '.ray_train', watchers)
    steps = (120, 40)
    result = compare_actor(work / 'local', work / 'train' / 'local', work / 'actor', workers=2,
                           critic_steps=steps[0], policy_steps=steps[1], checkpoint_steps=10,
                           watch=watcher)
    assert watcher.killed is not None, 'the watcher never saw a training worker to kill'
    assert 1 <= result['started_at_step'] < sum(steps), \
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
        from hlai_ros.actor.checkpoint import load_critic, load_policy
        common = ['train', '--task', 'cliff', '--data', str(data), '--out',
                  str(work / 'cli_model'), '--ensemble', '2', '--hidden', '16', '--quiet']
        assert run(common + ['--epochs', '1', '--no-actor'])['epochs'] == 1
        trained = run(common + ['--epochs', '2', '--ray', address, '--workers', '2',
                                '--critic-steps', '8', '--policy-steps', '4'])
        assert trained.get('epochs') == 2, trained
        assert (trained['critic_steps'], trained['policy_steps']) == (8, 4), trained
        names = sorted(re.sub('-[0-9a-f]{16}', '', p.name)
                       for p in (work / 'cli_model').iterdir())
        assert names == ['README.md', 'critic.json', 'critic.safetensors', 'policy.json',
                         'policy.safetensors', 'train_state.json', 'train_state.safetensors',
                         'world_model.json', 'world_model.safetensors'], names  # no .ray_train
        critic, policy = load_critic(work / 'cli_model'), load_policy(work / 'cli_model')
        assert critic is not None and policy is not None
        meta = json.loads((work / 'cli_model' / 'policy.json').read_text())['metadata']
        assert (meta['critic_steps'], meta['policy_steps'], meta['task']) == (8, 4, 'cliff')
        result['train_val_error'] = trained['val_error']
        result['critic_td_loss'] = trained['critic_td_loss']
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
        result['actor'] = check_actor(work, watchers)
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
