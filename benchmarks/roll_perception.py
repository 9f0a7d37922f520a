"""Roll-world estimator errors against ground truth (measuring only), by frame kind and distance.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_perception.py --episodes 10 \
        [--start-seed 0] [--noise 0.05] [--max-steps 150] [--filter] [--park]

Runs `RollScripted` with Gaussian action noise (or, with ``--park``, a hand that drives to a
point 4-12 cm from the ball and stays there) on seeds ``start-seed ..``, runs `RollPerception`
on every frame (``--filter``: the alpha-beta filter alone, ``difference=False``) and prints the
planar errors of the ball's position and velocity (mean / p95) by frame kind (seen after seen,
just reappeared, hidden), by hand-ball distance (with the error's component along the line
towards the hand: a bias there would show a ball "moving towards the hand"), and on frames
where the true ball is at rest.
"""
from __future__ import annotations

import argparse

import numpy as np

from hlai_ros.perception.roll import RollPerception, RollPerceptionConfig
from hlai_ros.sim.roll import RollWorld
from hlai_ros.sim.roll_scripted import RollScripted


def park_action(ee: np.ndarray, ball: np.ndarray, standoff: float) -> np.ndarray:
    """Drive the hand to `standoff` (m) from the ball on its side of it, then hold still."""
    rel = ee - ball
    target = ball + rel / max(float(np.linalg.norm(rel)), 1e-6) * standoff
    d = target - ee
    if np.linalg.norm(d) < 0.005:
        return np.zeros(2, np.float32)
    return np.clip(2.0 * d, -0.2, 0.2).astype(np.float32)


def run(episodes: int, start_seed: int, noise: float, max_steps: int, difference: bool,
        park: bool) -> np.ndarray:
    """Return one row per frame: seed, hand, true ball, true velocity, estimate, seen."""
    world = RollWorld()
    perception = RollPerception(world.nominal_camera(),
                                RollPerceptionConfig(control_dt=world.dt, difference=difference))
    rows = []
    try:
        for seed in range(start_seed, start_seed + episodes):
            controller = RollScripted(noise_std=noise, seed=seed)
            obs, info = world.reset(seed=seed)
            perception.reset()
            standoff = 0.04 + 0.02 * (seed % 5)
            for _ in range(max_steps):
                state = perception.estimate(obs)
                gt = info['ground_truth']
                ee, ball = gt['ee_position'][:2], gt['object_position'][:2]
                rows.append([seed, *ee, *ball, *gt['object_velocity'][:2], *state[2:6],
                             float(perception.visible)])
                action = park_action(ee, ball, standoff) if park else controller.act(obs, info)
                obs, _, terminated, _, info = world.step(action)
                if terminated:
                    break
    finally:
        perception.close()
        world.close()
    return np.asarray(rows, dtype=np.float64)


def stats(x: np.ndarray) -> str:
    """Mean / p95 of a 1-D array, or '-' when empty."""
    return f'{x.mean():.4f} / {np.percentile(x, 95):.4f}' if len(x) else '-'


def report(rows: np.ndarray) -> None:
    """Print the errors of `run`'s rows."""
    seed, ee, ball, v_true = rows[:, 0], rows[:, 1:3], rows[:, 3:5], rows[:, 5:7]
    pos, vel, seen = rows[:, 7:9], rows[:, 9:11], rows[:, 11] > 0
    same = np.r_[False, seed[1:] == seed[:-1]]
    prev_seen = np.r_[False, seen[:-1]] & same
    p_err = np.linalg.norm(pos - ball, axis=1)
    v_err = np.linalg.norm(vel - v_true, axis=1)
    print(f'{len(rows)} frames, ball seen in {seen.mean():.0%}')
    for name, m in [('seen after seen', seen & prev_seen), ('just reappeared', seen & ~prev_seen),
                    ('hidden', ~seen), ('all frames', np.ones(len(rows), bool))]:
        print(f'{name:16s} n={m.sum():5d}  position m {stats(p_err[m])}  velocity m/s '
              f'{stats(v_err[m])}')
    dist = np.linalg.norm(ball - ee, axis=1)
    towards = (ee - ball) / np.maximum(dist, 1e-9)[:, None]
    bias = ((pos - ball) * towards).sum(1)
    for lo, hi in [(0.0, 0.04), (0.04, 0.06), (0.06, 0.08), (0.08, 0.1), (0.1, 0.14),
                   (0.14, 0.2), (0.2, 1.0)]:
        m = (dist >= lo) & (dist < hi)
        if m.any():
            print(f'hand-ball {lo:.2f}-{hi:.2f} m n={m.sum():4d} seen {seen[m].mean():4.0%}  '
                  f'position error {1000 * p_err[m].mean():5.1f} mm, towards the hand '
                  f'{1000 * bias[m].mean():+5.2f} mm; velocity towards the hand: estimate '
                  f'{(vel[m] * towards[m]).sum(1).mean():+.4f}, true '
                  f'{(v_true[m] * towards[m]).sum(1).mean():+.4f} m/s')
    rest = np.linalg.norm(v_true, axis=1) < 0.005
    if rest.any():
        print(f'true ball at rest n={rest.sum()}: estimated speed m/s '
              f'{stats(np.linalg.norm(vel[rest], axis=1))}, position error towards the hand '
              f'{1000 * bias[rest].mean():+.2f} mm')


def main() -> None:
    """Parse the arguments, run the episodes and print the errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--start-seed', type=int, default=0)
    parser.add_argument('--noise', type=float, default=0.05, help='action noise std, m/s')
    parser.add_argument('--max-steps', type=int, default=150)
    parser.add_argument('--filter', action='store_true',
                        help='the alpha-beta filter alone (difference=False)')
    parser.add_argument('--park', action='store_true',
                        help='park the hand 4-12 cm from the ball instead of the scripted push')
    args = parser.parse_args()
    report(run(args.episodes, args.start_seed, args.noise, args.max_steps, not args.filter,
               args.park))


if __name__ == '__main__':
    main()
