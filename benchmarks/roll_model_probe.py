"""Probe a roll world model: the drift it predicts for a ball at rest that nothing touches.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_model_probe.py --model DIR

A ball at rest d = 6, 8, 12, 20 cm from the hand (64 random hand positions and directions on
the table), hand still, then 20 steps (2 s) of a command pattern: zero commands, or full-speed
commands that reverse every step ("thrash": the hand jitters within ~2 cm; what the planner
does when it exploits a model), or an orbit (0.08 m/s round the ball at the start distance,
the way round to the pushing side). The true ball does not move unless the hand reaches it (at
most 2.5 cm radius + 2.1 cm half hand + 2 cm of jitter: from 8 cm on it never does; an orbit
from 6 cm on never touches it). Prints
the predicted ball drift (mean of |drift| over members and cases, and its component towards
the hand) with z = 0.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from hlai_ros.world_model.checkpoint import load_world_model


def main() -> None:
    """Parse the arguments, roll the model out and print the drifts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='world model folder')
    parser.add_argument('--cases', type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_world_model(args.model, device='cpu')
    rng = np.random.default_rng(0)
    for pattern in ('zero', 'thrash', 'orbit'):
        for d in (0.06, 0.08, 0.12, 0.2):
            states = []
            while len(states) < args.cases:
                ee = np.array([rng.uniform(0.3, 0.7), rng.uniform(-0.2, 0.2)])
                angle = rng.uniform(0, 2 * np.pi)
                ball = ee + d * np.array([np.cos(angle), np.sin(angle)])
                if 0.32 < ball[0] < 0.68 and abs(ball[1]) < 0.2:  # on the table, inside
                    states.append([*ee, *ball, 0.0, 0.0, 0.0, 0.0])
            s0 = torch.tensor(states, dtype=torch.float32)
            n = len(states)
            if pattern == 'zero':
                actions = torch.zeros(n, 20, 2)
            elif pattern == 'orbit':
                start = np.arctan2(s0[:, 1] - s0[:, 3], s0[:, 0] - s0[:, 2]).numpy()
                turn = rng.choice([-1.0, 1.0], size=n)
                angle = start[:, None] + turn[:, None] * 0.08 * 0.1 / d * np.arange(20)[None]
                tangent = np.stack([-np.sin(angle), np.cos(angle)], -1) * turn[:, None, None]
                actions = torch.tensor(0.08 * tangent, dtype=torch.float32)
            else:
                signs = rng.choice([-1.0, 1.0], size=(n, 1, 2))
                alternate = (-1.0) ** np.arange(20)[None, :, None]
                actions = torch.tensor(0.2 * signs * alternate, dtype=torch.float32)
            z = torch.zeros(model.ensemble_size, n, model.latent_dim)
            with torch.no_grad():
                out = model.rollout(s0, actions, z).numpy()
            drift = out[:, :, -1, 2:4] - out[:, :, 0, 2:4]
            towards = (s0[:, 0:2] - s0[:, 2:4]).numpy()
            towards /= np.linalg.norm(towards, axis=1, keepdims=True)
            along = (drift * towards[None]).sum(-1)
            size = 100 * np.linalg.norm(drift, axis=-1).mean()
            members = ' '.join(f'{100 * a:+.1f}' for a in along.mean(1))
            print(f'{pattern:6s} d = {d:.2f} m: |drift| mean {size:5.2f} cm, towards the hand '
                  f'{100 * along.mean():+5.2f} cm (members {members})')


if __name__ == '__main__':
    main()
