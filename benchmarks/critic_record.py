"""Record closed-loop episodes of the learned stack for critic training (issue 14).

Each episode is the learned stack (perception -> plan) in the task's world at the given planner
settings; per step it keeps what the planner itself saw: the perceived model state, goal and
scene, and the applied action, plus the outcome. The critic trainer
(`benchmarks/critic_train.py`) turns these into TD(lambda) data.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/critic_record.py --task TASK \
        --seeds 5000 60 --set planner.horizon=16 --out /work/data/critic/TASK_h16.pkl
"""
from __future__ import annotations

import argparse
import pickle
import time

import numpy as np
import torch

from hlai_ros.sim import make
from hlai_ros.tasks.compare import CompareConfig, learned_stack
from hlai_ros.tasks.controllers import LearnedController
from hlai_ros.tasks.registry import task_argument


def record(task: str, seeds, profile=(), model_dir=None, max_steps: int | None = None,
           log=print) -> list[dict]:
    """Run the learned stack for each seed; return one dict per episode."""
    controller = LearnedController(learned_stack(CompareConfig(
        task=task, profile=tuple(profile), model_dir=model_dir)))
    env = make(task)
    episodes = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            controller.reset(env.unwrapped, seed=seed)
            states, goals, scenes, actions = [], [], [], []
            done = False
            while not done:
                action = controller.act(obs, info)
                p = controller.last_percept
                states.append(p.model_state)
                goals.append(p.goal)
                scenes.append(p.scene)
                actions.append(action)
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated or (max_steps and len(actions) >= max_steps)
            p = controller.task.perceive(controller.estimator, obs)
            states.append(p.model_state)
            scenes.append(p.scene)
            episodes.append({'seed': seed, 'states': np.stack(states).astype(np.float32),
                             'actions': np.stack(actions).astype(np.float32),
                             'goal': np.asarray(goals[0], np.float32), 'scenes': scenes,
                             'success': bool(info.get('is_success')),
                             'failure': info.get('failure'), 'terminated': bool(terminated)})
            log(f'seed {seed}: {len(actions)} steps, success {episodes[-1]["success"]}, '
                f'failure {episodes[-1]["failure"]}')
    finally:
        env.close()
    return episodes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', type=task_argument, required=True)
    parser.add_argument('--seeds', type=int, nargs=2, metavar=('FIRST', 'COUNT'),
                        default=(5000, 60))
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='profile change, e.g. planner.horizon=16 (repeatable)')
    parser.add_argument('--model', default=None, help='model folder (default: models/<task>)')
    parser.add_argument('--max-steps', type=int, default=None,
                        help='cut episodes after this many steps (default: the time limit)')
    parser.add_argument('--out', required=True, help='pickle file to write')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    profile = [(k, float(v)) for k, v in (s.split('=', 1) for s in args.set)]
    start = time.perf_counter()
    first, count = args.seeds
    episodes = record(args.task, range(first, first + count), profile, args.model,
                      args.max_steps)
    with open(args.out, 'wb') as f:
        pickle.dump({'task': args.task, 'profile': profile, 'episodes': episodes}, f)
    ok = np.mean([e['success'] for e in episodes])
    print(f'{len(episodes)} episodes, success {ok:.0%}, '
          f'{sum(len(e["actions"]) for e in episodes)} steps, '
          f'{time.perf_counter() - start:.0f} s -> {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
