"""PyBullet intuitive-physics worlds as gymnasium environments.

Importing this package registers the worlds under `hlai/Push-v0` and `hlai/Cliff-v0`.
"""
import gymnasium as gym

ENV_IDS = ('hlai/Push-v0', 'hlai/Cliff-v0')
TASK_TO_ENV_ID = {'push': 'hlai/Push-v0', 'cliff': 'hlai/Cliff-v0'}


def _register():
    specs = {
        'hlai/Push-v0': ('hlai_ros.sim.push:PushWorld', 200),
        'hlai/Cliff-v0': ('hlai_ros.sim.cliff:CliffWorld', 300),
    }
    for env_id, (entry_point, steps) in specs.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps)


_register()


def make(task: str, **kwargs) -> gym.Env:
    """Make the world of a task ('push' or 'cliff') with its time limit."""
    if task not in TASK_TO_ENV_ID:
        raise ValueError(f'unknown task {task!r}; choose one of {sorted(TASK_TO_ENV_ID)}')
    return gym.make(TASK_TO_ENV_ID[task], **kwargs)
