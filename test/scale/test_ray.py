"""Scale-out on Ray (hlai_ros.scale): a two-node cluster on this machine, and Ray missing.

The cluster runs only inside a network namespace that holds nothing but loopback (`unshare -n`,
as root), with usage statistics off and no dashboard: ray_cluster_run.py does the work there
and checks collection (a worker killed with -9, nothing lost or doubled, the local run's bags),
evaluation (the local per-seed outcomes), training of the world model and then of the critic and
policy (each with a worker killed with -9, resumed from the last checkpoint, a local run's files
and validation error or losses) and that no socket of the run had a peer outside 127.0.0.0/8.
"""
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from hlai_ros.cli import main

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
NO_RAY = 'the ray extra is not installed (pip install .[ray])'


def _unshare_works() -> bool:
    if shutil.which('unshare') is None or shutil.which('ip') is None:
        return False
    probe = subprocess.run(['unshare', '-n', 'sh', '-c', 'ip link set lo up'],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def test_two_node_cluster_collects_evaluates_and_trains_like_a_local_run(tmp_path):
    pytest.importorskip('ray', reason=NO_RAY)
    if not _unshare_works():
        pytest.skip('Ray runs here only in a loopback-only network namespace, and '
                    '`unshare -n` is not permitted (needs root)')
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0', ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               OMP_NUM_THREADS='1', HLAI_CACHE_DIR=str(tmp_path / 'cache'))
    command = (f'ip link set lo up; exec {sys.executable} {HERE / "ray_cluster_run.py"} '
               f'{tmp_path} --train')
    proc = subprocess.run(['unshare', '-n', 'sh', '-c', command], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['collect']['episodes'] == 6 and result['collect']['killed']
    assert sorted(result['collect']['episodes_by_node']) != [6]  # both nodes ran episodes
    assert result['train']['started_at_epoch'] >= 1 and result['train']['killed']
    assert result['actor']['started_at_step'] >= 1 and result['actor']['killed']
    assert all(p in ('127.0.0.1', '::ffff:127.0.0.1', '::1') or p.startswith('127.')
               for p in result['socket_peers'])


@pytest.mark.parametrize('command', [
    ['collect', '--task', 'cliff', '--episodes', '1', '--out', '{out}'],
    ['train', '--task', 'cliff', '--data', '{out}'],
    ['eval', '--task', 'cliff', '--episodes', '1'],
])
def test_ray_flag_without_ray_stops_at_once_with_the_install_command(command, tmp_path,
                                                                      monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'ray', None)  # `import ray` raises ImportError
    (tmp_path / 'data').mkdir()
    argv = [a.format(out=tmp_path / 'data') for a in command] + ['--ray']
    try:
        code = main(argv)
    except SystemExit as exc:
        message = str(exc)
    else:
        assert code == 2
        message = capsys.readouterr().err
    assert "pip install 'hlai_ros[ray]'" in message and 'ray[train]==' in message
    assert not any((tmp_path / 'data').iterdir())  # nothing was written


def test_recorded_episodes_replayed_by_the_driver_equal_the_local_bags(tmp_path):
    """The driver's side of `collect_ray` without a cluster: same bags as a local run."""
    pytest.importorskip('ray', reason=NO_RAY)
    from ray_cluster_run import bag_messages

    from hlai_ros.data.collection import CollectSettings, collect
    from hlai_ros.scale.collect import _Bags, collect_episode
    common = dict(task='cliff', episodes=3, workers=2, policy='mixed', seed=4, max_steps=6,
                  width=16, height=16)
    assert not collect(CollectSettings(out=tmp_path / 'local', **common),
                       progress=False)['errors']
    settings = CollectSettings(out=tmp_path / 'replayed', **common)
    (tmp_path / 'replayed').mkdir()
    bags = _Bags(settings, 2)
    for i in range(3):
        bags.write(collect_episode(settings, i))
    bags.close()
    assert bags.done[0]['episodes'] == 2 and bags.done[1]['episodes'] == 1
    ours, theirs = bag_messages(tmp_path / 'replayed'), bag_messages(tmp_path / 'local')
    assert sorted(ours) == ['worker_00', 'worker_01'] and ours == theirs
