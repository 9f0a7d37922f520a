"""Roll-world scripted controller: success, fall and time-out rates over seeded episodes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_scripted.py --episodes 100 \
        [--start-seed 0] [--noise 0.0] [--random] [--verbose]

Runs `RollScripted` (or, with ``--random``, uniform random actions) on seeds
``start-seed .. start-seed + episodes - 1`` of `RollWorld` (default `RollConfig`, camera off,
200-step limit) and prints the success, fall and time-limit rates with 95% Wilson intervals,
and the mean number of steps of the successful episodes.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from hlai_ros.sim.roll import RollConfig, RollWorld
from hlai_ros.sim.roll_scripted import RollScripted


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Return the 95% Wilson score interval of a rate `successes` / `n`."""
    if n == 0:
        return 0.0, 1.0
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    spread = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - spread), min(1.0, centre + spread)


def run(episodes: int, start_seed: int = 0, noise: float = 0.0, random: bool = False,
        verbose: bool = False, max_steps: int = 200) -> dict[str, list]:
    """Return per-episode outcomes ('success', 'fell', 'steps') of seeded episodes."""
    world = RollWorld(RollConfig(render_camera=False))
    controller = RollScripted(noise_std=noise, seed=start_seed)
    out = {'success': [], 'fell': [], 'steps': []}
    try:
        for seed in range(start_seed, start_seed + episodes):
            obs, info = world.reset(seed=seed)
            world.action_space.seed(seed)
            controller.reset()
            steps = 0
            for steps in range(1, max_steps + 1):
                if random:
                    action = world.action_space.sample()
                else:
                    action = controller.act(obs, info)
                obs, _, terminated, _, info = world.step(action)
                if terminated:
                    break
            out['success'].append(bool(info['is_success']))
            out['fell'].append(info['failure'] == 'fell')
            out['steps'].append(steps)
            if verbose:
                gt = info['ground_truth']
                print(f"seed {seed}: {'success' if info['is_success'] else info['failure']} "
                      f"in {steps} steps, distance {gt['distance_to_goal']:.3f} m, "
                      f"speed {gt['object_speed']:.3f} m/s")
    finally:
        world.close()
    return out


def main() -> None:
    """Parse the arguments, run the episodes and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=100)
    parser.add_argument('--start-seed', type=int, default=0)
    parser.add_argument('--noise', type=float, default=0.0, help='action noise std, m/s')
    parser.add_argument('--random', action='store_true', help='uniform random actions')
    parser.add_argument('--verbose', action='store_true', help='print every episode')
    args = parser.parse_args()
    start = time.perf_counter()
    out = run(args.episodes, args.start_seed, args.noise, args.random, args.verbose)
    n = len(out['success'])
    for name in ('success', 'fell'):
        k = int(np.sum(out[name]))
        lo, hi = wilson(k, n)
        print(f'{name}: {k}/{n} = {k / n:.0%} (95% Wilson [{lo:.0%}, {hi:.0%}])')
    timeouts = n - int(np.sum(out['success'])) - int(np.sum(out['fell']))
    print(f'time limit: {timeouts}/{n}')
    steps = [s for s, ok in zip(out['steps'], out['success']) if ok]
    if steps:
        print(f'steps to success: mean {np.mean(steps):.1f}, max {max(steps)}')
    print(f'wall time {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
