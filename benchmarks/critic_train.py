"""Train a critic that sees the scene, by TD(lambda) on recorded and imagined episodes (issue 14).

The data are closed-loop episodes of the learned stack (`benchmarks/critic_record.py`): what
the planner itself did and saw. The critic learns the discounted cost-to-go of those episodes
in the planner's own cost units (the task cost per step, on the perceived states and scene),
from the recorded steps and from runs imagined in the world model under the recorded actions.
Where the task's cost has a goal term with a field over the scene (a geodesic goal), the critic
sees 'path' features (`hlai_ros.cost.critic`); else the goal-relative state.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/critic_train.py --task TASK \
        --data /work/data/critic/TASK_h16.pkl [...] --out models/TASK

writes critic.json + critic-<sha>.safetensors into --out (the world model is read from there).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import pickle
import shlex
import sys
import time

import numpy as np
import torch

from hlai_ros.actor.checkpoint import save_critic
from hlai_ros.actor.training import train_critic_on_features
from hlai_ros.cost.critic import Critic, CriticConfig, path_term
from hlai_ros.tasks import get_task
from hlai_ros.tasks.pipeline import critic_trajectories, goal_relative_indices
from hlai_ros.tasks.registry import task_argument
from hlai_ros.world_model.checkpoint import load_world_model


def critic_config(task, hidden: int, layers: int, gamma: float, lam: float,
                  lookahead=()) -> CriticConfig:
    """'path' features where the task's cost has a field over the scene, else 'state'."""
    term = path_term(task.cost(None))
    base = CriticConfig(hidden=hidden, layers=layers, gamma=gamma, lam=lam,
                        goal_relative_indices=goal_relative_indices(task))
    if term is None:
        return base
    return CriticConfig(hidden=hidden, layers=layers, gamma=gamma, lam=lam,
                        goal_relative_indices=tuple(term.position_indices), features='path',
                        position_indices=tuple(term.position_indices),
                        heading_indices=tuple(term.heading_indices or ()),
                        lookahead=tuple(lookahead))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', type=task_argument, required=True)
    parser.add_argument('--data', nargs='+', required=True, help='critic_record.py pickles')
    parser.add_argument('--out', required=True, help='model folder (holds the world model)')
    parser.add_argument('--steps', type=int, default=3000, help='TD(lambda) updates')
    parser.add_argument('--window', type=int, default=16, help='window length, steps')
    parser.add_argument('--imagine-every', type=int, default=4,
                        help='start an imagined run at every k-th recorded step (0: none)')
    parser.add_argument('--imagine-horizon', type=int, default=16)
    parser.add_argument('--imagine-noise', type=float, nargs='+', default=[0.0, 0.5],
                        help='one imagined run per start for each action-noise std (fraction '
                             'of the half-range)')
    parser.add_argument('--pessimism', type=float, default=0.0,
                        help="the critic's estimate: mean + this x the members' spread")
    parser.add_argument('--ensemble', type=int, default=3, help='value heads')
    parser.add_argument('--hidden', type=int, default=64)
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--gamma', type=float, default=0.97)
    parser.add_argument('--lam', type=float, default=0.9)
    parser.add_argument('--lookahead', type=float, nargs='*', default=[0.25, 0.5, 1.0],
                        help="'path' features: lookahead distances along the path, m")
    parser.add_argument('--lookahead-step', type=float, default=0.25,
                        help="'path' features: step of following the path, m")
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    task = get_task(args.task)
    start = time.perf_counter()
    episodes = []
    for path in args.data:
        with open(path, 'rb') as f:
            episodes += pickle.load(f)['episodes']
    config = replace(critic_config(task, args.hidden, args.layers, args.gamma, args.lam,
                                   args.lookahead),
                     pessimism=args.pessimism, ensemble_size=args.ensemble,
                     lookahead_step=args.lookahead_step)
    critic = Critic(task.state_dim, config)
    model = load_world_model(args.out, device='cpu', identity=task.identity('state')) \
        if args.imagine_every else None
    data = critic_trajectories(task, episodes, critic, model, max(1, args.imagine_every),
                               args.imagine_horizon,
                               generator=torch.Generator().manual_seed(args.seed),
                               imagine_noise=tuple(args.imagine_noise))
    losses = train_critic_on_features(critic, data, args.steps, args.window, args.seed)
    tail = max(1, len(losses) // 10)
    meta = {'task': task.name, 'identity': task.identity('state'), 'seed': args.seed,
            'episodes': len(episodes), 'trajectories': len(data),
            'steps': sum(len(e['actions']) for e in episodes), 'critic_steps': len(losses),
            'td_loss_last_tenth': float(np.mean(losses[-tail:])),
            'command': 'python ' + ' '.join(shlex.quote(a) for a in sys.argv)}
    save_critic(critic, args.out, meta)
    print(f'{len(episodes)} episodes ({meta["steps"]} steps), {len(data)} trajectories; '
          f'{len(losses)} TD updates, loss first {np.mean(losses[:tail]):.4f} last '
          f'{meta["td_loss_last_tenth"]:.4f}; {time.perf_counter() - start:.0f} s -> '
          f'{args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
