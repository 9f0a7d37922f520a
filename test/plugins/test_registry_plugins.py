"""Tasks and robots are plugins: registered once, looked up everywhere, named nowhere else."""
from pathlib import Path
import re

import numpy as np
import pytest

from hlai_ros import contract
from hlai_ros.embodiments import embodiment_names, get_embodiment
from hlai_ros.tasks import get_task, task_names

ROOT = Path(__file__).resolve().parents[2]
HOMES = ('hlai_ros/sim/', 'hlai_ros/perception/')
"""Folders of the task-specific worlds and estimators, which may name their task. Elsewhere a
task's name appears only in hlai_ros/tasks/<task>.py (with the name of its robot), a robot's
only in hlai_ros/embodiments/<robot>.py; config/, sim/, models/ and test/ are not scanned."""


def _literal_uses(names) -> dict[str, list[str]]:
    pattern = re.compile(r"""['"](%s)['"]""" % '|'.join(map(re.escape, names)))
    found: dict[str, list[str]] = {}
    files = sorted((ROOT / 'hlai_ros').rglob('*.py')) + sorted((ROOT / 'launch').glob('*.py'))
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(HOMES):
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                home = {f'hlai_ros/tasks/{match.group(1)}.py',
                        f'hlai_ros/embodiments/{match.group(1)}.py'}
                robot = match.group(1) in embodiment_names()
                if rel not in home and not (robot and rel.startswith('hlai_ros/tasks/')):
                    found.setdefault(rel, []).append(f'{lineno}: {line.strip()}')
    return found


def test_task_and_robot_names_appear_only_in_their_own_files():
    names = task_names() + embodiment_names()
    found = _literal_uses(names)
    assert not found, ('task or robot names outside their homes (look them up through '
                       f'hlai_ros.tasks / hlai_ros.embodiments instead): {found}')


def test_every_task_is_registered_with_its_world_and_robot():
    import gymnasium as gym
    assert {'push', 'cliff', 'roll'} <= set(task_names())
    for name in task_names():
        task = get_task(name)
        assert task.env_id in gym.registry
        assert task.embodiment.name in embodiment_names()
        assert task.action_dim == len(task.embodiment.action_names)
        assert (ROOT / 'config' / f'{name}.yaml').is_file()


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match='unknown task .foo.; known tasks: push, cliff, roll'):
        get_task('foo')
    with pytest.raises(ValueError, match='unknown embodiment'):
        get_embodiment('foo')


@pytest.mark.parametrize('name', embodiment_names())
def test_embodiment_codecs_are_inverse(name):
    robot = get_embodiment(name)
    action = np.linspace(-0.1, 0.1, robot.action_dim).astype(np.float32)
    np.testing.assert_allclose(robot.decode_command(robot.encode_command(action, 7)), action)
    vector = np.arange(len(robot.proprio_names), dtype=np.float32) * 0.1
    msg = robot.encode_proprio(robot.proprio_names, vector, 7)
    np.testing.assert_allclose(robot.decode_proprio(msg, robot.proprio_names), vector,
                               atol=1e-6)
    assert robot.command in contract.episode_topics(robot)
    assert robot.proprio in contract.sensor_topics(robot)


def test_roll_reuses_the_panda_robot():
    assert get_task('roll').embodiment is get_task('push').embodiment
