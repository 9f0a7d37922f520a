"""Cliff world figures: simulator throughput and scripted / random outcome rates.

Usage::

    .venv/bin/python benchmarks/cliff_world.py --throughput
    .venv/bin/python benchmarks/cliff_world.py --rates --episodes 100
    .venv/bin/python benchmarks/cliff_world.py --rates --episodes 100 --noise 0.1 \
        --controllers scripted
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from hlai_ros.sim.cliff import CliffWorld
from hlai_ros.sim.cliff_scripted import CliffScripted


def throughput(steps: int) -> None:
    """Print physics steps/s and env steps/s at 64x64 and 640x480."""
    env = CliffWorld(render_camera=False)
    env.reset(seed=0)
    t = time.perf_counter()
    for _ in range(steps * env.substeps):
        env.bullet.stepSimulation()
    print(f'physics steps/s: {steps * env.substeps / (time.perf_counter() - t):.0f}')
    for w, h, render in ((64, 64, False), (64, 64, True), (640, 480, True)):
        env = CliffWorld(image_width=w, image_height=h, render_camera=render)
        env.reset(seed=0)
        n = steps if w < 100 else max(steps // 10, 5)
        action = np.array([0.2, 0.3], dtype=np.float32)
        t = time.perf_counter()
        for _ in range(n):
            _, _, term, _, _ = env.step(action)
            if term:
                env.reset(seed=1)
        rate = n / (time.perf_counter() - t)
        print(f'env steps/s at {w}x{h} camera={"on" if render else "off"}: {rate:.1f}')
        env.close()


def rates(episodes: int, noise: float = 0.0, controllers=('scripted', 'random'),
          max_steps: int = 300) -> None:
    """Print success / fell / collision / timeout rates of scripted and random over seeds."""
    for name in controllers:
        env = CliffWorld(render_camera=False)
        env.action_space.seed(12345)
        ctrl = CliffScripted(noise_std=noise, seed=0)
        counts = {'success': 0, 'fell': 0, 'collision': 0, 'timeout': 0}
        for seed in tqdm(range(episodes), desc=name):
            obs, info = env.reset(seed=seed)
            ctrl.reset()
            outcome = 'timeout'
            for _ in range(max_steps):
                action = ctrl.act(obs, info) if name == 'scripted' else env.action_space.sample()
                obs, _, term, _, info = env.step(action)
                if term:
                    outcome = 'success' if info['is_success'] else info['failure']
                    break
            counts[outcome] += 1
        label = f'{name} (noise {noise})' if name == 'scripted' and noise else name
        print(f'{label}: ' + ', '.join(f'{k} {v / episodes:.2f}' for k, v in counts.items()))


def main() -> None:
    """Parse the arguments and print the figures asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--throughput', action='store_true')
    parser.add_argument('--rates', action='store_true')
    parser.add_argument('--episodes', type=int, default=100)
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--noise', type=float, default=0.0,
                        help='Gaussian action noise of the scripted controller')
    parser.add_argument('--controllers', nargs='+', default=['scripted', 'random'],
                        choices=['scripted', 'random'])
    args = parser.parse_args()
    if args.throughput:
        throughput(args.steps)
    if args.rates:
        rates(args.episodes, args.noise, args.controllers)


if __name__ == '__main__':
    main()
