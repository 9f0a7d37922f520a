"""`hlai collect` end to end with a tiny budget: collect, then load and read back."""
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

from mcap.reader import make_reader
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from hlai_ros.cli import main
from hlai_ros.contract import episode_topics
from hlai_ros.data import load_episodes
from hlai_ros.tasks import get_task


def _contract(task):
    return {(t.name, t.msgtype) for t in episode_topics(get_task(task).embodiment)}


def test_collect_then_load_in_process_with_two_workers(tmp_path, capsys):
    out = tmp_path / 'push'
    code = main(['collect', '--task', 'push', '--episodes', '3', '--workers', '2', '--out',
                 str(out), '--max-steps', '2', '--policy', 'mixed', '--seed', '7',
                 '--width', '32', '--height', '24', '--no-progress', '--json'])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['episodes'] == 3 and summary['workers'] == 2 and not summary['errors']
    assert summary['transitions'] == 3 * 2
    bags = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert bags == ['worker_00', 'worker_01']
    assert all((out / b / 'metadata.yaml').exists() for b in bags)

    episodes = load_episodes(out, cache_dir=tmp_path / 'cache')
    assert sorted(e.metadata['seed'] for e in episodes) == [7, 8, 9]
    assert sorted(e.metadata['episode'] for e in episodes) == [0, 1, 2]
    for e in episodes:
        assert e.task == 'push' and e.metadata['env_id'] == 'hlai/Push-v0'
        assert e.metadata['policy'] in ('random', 'scripted') and e.metadata['ended']
        assert e.num_steps == 2 and e.action_valid.all()
        assert e.observations['rgb'].shape == (3, 24, 32, 3)
        assert e.observations['proprio'].shape == (3, 14)
        assert np.all(np.abs(e.actions) <= 0.2 + 1e-6)
        assert e.camera is not None and e.camera.width == 32
        assert len(e.ground_truth) == 3
        # each episode's goal image, as the world renders it for that seed (the latent goal)
        assert e.goal_image['rgb'].shape == (24, 32, 3) and e.goal_image['rgb'].dtype == np.uint8
        assert e.goal_image['depth'].shape == (24, 32)
        assert not np.array_equal(e.goal_image['rgb'], e.observations['rgb'][0])

    # the same bags through independent readers
    for bag in bags:
        with AnyReader([out / bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as r:
            assert {(c.topic, c.msgtype) for c in r.connections} == _contract('push')
            markers = [json.loads(r.deserialize(raw, c.msgtype).data)
                       for c, _, raw in r.messages(
                           connections=[c for c in r.connections if c.topic == '/hlai/episode'])]
        assert [m['event'] for m in markers] == ['start', 'end'] * (len(markers) // 2)
        assert all(m['task'] == 'push' for m in markers)
        with (out / bag / f'{bag}.mcap').open('rb') as f:
            summary = make_reader(f).get_summary()
        assert {(c.topic, summary.schemas[c.schema_id].name)
                for c in summary.channels.values()} == _contract('push')


def test_collect_as_installed_script_for_cliff(tmp_path):
    script = Path(sys.executable).with_name('hlai')
    assert script.exists(), f'the hlai console script is not installed next to {sys.executable}'
    out = tmp_path / 'cliff'
    proc = subprocess.run([str(script), 'collect', '--task', 'cliff', '--episodes', '2',
                           '--out', str(out), '--max-steps', '2', '--policy', 'random',
                           '--width', '16', '--height', '16'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '2/2 cliff episodes, 4 transitions' in proc.stdout
    episodes = load_episodes(out, cache=False)
    assert [e.metadata['seed'] for e in episodes] == [0, 1]
    assert all(e.task == 'cliff' and e.proprio_names == ('x', 'y', 'yaw', 'v', 'omega')
               for e in episodes)
    with AnyReader([out / 'worker_00'],
                   default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        assert {(c.topic, c.msgtype) for c in reader.connections} == _contract('cliff')


def _terminal_sigint():
    """Give the child the SIGINT of a terminal's foreground job, whatever the test runner has.

    An ignored SIGINT is inherited through exec (and Python then keeps ignoring it); a full test
    session can leave it ignored in this process, which would make the child deaf to Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_leaves_closed_loadable_bags(tmp_path):
    out = tmp_path / 'interrupted'
    script = Path(sys.executable).with_name('hlai')
    proc = subprocess.Popen([str(script), 'collect', '--task', 'cliff', '--episodes', '500',
                             '--out', str(out), '--policy', 'random', '--width', '16',
                             '--height', '16', '--no-progress'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, 'PYTHONFAULTHANDLER': '1'},
                            preexec_fn=_terminal_sigint)
    bag = out / 'worker_00' / 'worker_00.mcap'
    try:
        for _ in range(600):  # wait until the worker has flushed some steps
            if bag.exists() and bag.stat().st_size > 20_000:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGABRT)  # faulthandler prints where each process hung
            stdout, stderr = proc.communicate(timeout=30)
            pytest.fail(f'collect did not stop within 120 s of Ctrl-C:\n{stdout}\n{stderr}')
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert 'interrupted' in stdout
    assert (out / 'worker_00' / 'metadata.yaml').exists()
    episodes = load_episodes(out, cache=False)
    assert episodes and episodes[-1].metadata['ended']
    assert all(e.num_steps >= 1 for e in episodes[:-1])


@pytest.mark.parametrize('argv, message', [
    (['--task', 'push', '--episodes', '0'], 'episodes must be at least 1'),
    (['--task', 'push', '--episodes', '2', '--workers', '0'], 'workers must be at least 1'),
    (['--task', 'push', '--episodes', '2', '--policy', 'greedy'], "unknown policy 'greedy'"),
    (['--task', 'push', '--episodes', '2', '--max-steps', '0'], 'max_steps must be at least'),
    (['--task', 'push', '--episodes', '2', '--policy', 'learned', '--model', '/nonexistent'],
     'holds no world_model.json'),
    (['--task', 'push', '--episodes', '2', '--model', 'models/push'],
     "model is for the policy 'learned' only"),
])
def test_bad_arguments_get_a_clear_error(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        main(['collect', '--out', str(tmp_path / 'out')] + argv)
    assert not (tmp_path / 'out').exists()


def test_an_unknown_task_lists_the_known_ones(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['collect', '--out', str(tmp_path / 'out'), '--task', 'walk', '--episodes', '2'])
    err = capsys.readouterr().err
    assert "unknown task 'walk'; known tasks:" in err and 'cliff' in err
    assert not (tmp_path / 'out').exists()


def test_existing_output_needs_overwrite_and_foreign_files_are_never_deleted(tmp_path):
    out = tmp_path / 'out'
    (out / 'worker_00').mkdir(parents=True)
    from hlai_ros.data.collection import prepare_output
    with pytest.raises(ValueError, match='not empty; choose a new directory or pass --overwrite'):
        prepare_output(out, overwrite=False)
    prepare_output(out, overwrite=True)
    assert list(out.iterdir()) == []
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(ValueError, match='did not write'):
        prepare_output(out, overwrite=True)
    assert (out / 'notes.txt').read_text() == 'mine'
    shutil.rmtree(out)
    with pytest.raises(SystemExit, match='exists and is not empty'):
        (out / 'x').mkdir(parents=True)
        main(['collect', '--task', 'push', '--episodes', '1', '--out', str(out)])


def test_collect_with_the_learned_stack_records_its_actions(tmp_path, capsys):
    import torch

    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    from hlai_ros.tasks.compare import CompareConfig, make_controller

    out = tmp_path / 'learned'
    code = main(['collect', '--task', 'push', '--episodes', '1', '--out', str(out),
                 '--max-steps', '2', '--policy', 'learned', '--noise', '0', '--seed', '3',
                 '--no-progress', '--json'])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['by_policy'] == {'learned': {'episodes': 1, 'success_rate': 0.0,
                                                'failure_rate': 0.0}}
    (episode,) = load_episodes(out, cache_dir=tmp_path / 'cache')
    assert episode.metadata['policy'] == 'learned' and episode.metadata['noise'] == 0.0

    # the recorded first action is the learned stack's plan for that seed's first image
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = make('push', config=world_config('push'))
        controller = make_controller('learned', CompareConfig(task='push'))
        obs, _ = env.reset(seed=3)
        controller.reset(env.unwrapped)
        expected = controller.act(obs)
        env.close()
    finally:
        torch.set_num_threads(threads)
    assert np.allclose(episode.actions[0], expected, atol=1e-3)
