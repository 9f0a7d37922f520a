"""Record roll episodes where the hand also parks near the ball and waits (world-model data).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_collect_explore.py --episodes 250 \
        --seed 5000 --out /work/data/roll_park/a [--noise 0.05] [--max-steps 200]

Noisy scripted episodes (``hlai collect --policy scripted``) almost never hold the hand still
near a ball at rest: the scripted hand is always on its way somewhere, and it is still only
where it waits in a rolling ball's path, for the ball to run into it. A world model trained on
them alone predicts a ball at rest in front of a still hand rolling towards it, and the
planner exploits that (BENCHMARKS.md, issue 11). Here each episode switches every 8-40 steps
between the behaviours: the scripted controller with action noise; parking (drive to a point
4-16 cm from the ball, on a random side, then send zero commands); a slow wander (small
random velocities held for a few steps); and, with ``--jitter P`` (share of the switches), a
jitter: a new random command every step, half the time the last one reversed at full speed
(what a planner that exploits a model sends; without such data the models predict that it
sets a ball 10-20 cm away rolling, BENCHMARKS.md); and, with ``--orbit P``, an orbit: the hand
circles the ball at a random centre distance of 4.5-11 cm (from just touching to clear of it),
either way round, at 0.03-0.15 m/s (the way round to the pushing side; without such data the
models predict a ball that the hand passes 6-8 cm away rolling off, BENCHMARKS.md). The bags
are written exactly as ``hlai collect`` writes them (`hlai_ros.data.collection.run_episode`,
one bag under ``--out/worker_00``); the behaviour reads ground truth only to choose where data
is collected, and training reads only what a real robot would see.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import time

import numpy as np

from hlai_ros.sim.roll_scripted import RollScripted


class RollExplorer:
    """Scripted pushing, parking beside the ball and slow wandering, switched at random."""

    name = 'explore'

    def __init__(self, noise_std: float = 0.05, seed: int = 0, jitter: float = 0.0,
                 max_speed: float = 0.2, orbit: float = 0.0):
        for name, value in (('jitter', jitter), ('orbit', orbit)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} is a share of the behaviour switches, in [0, 1], '
                                 f'got {value}')
        if jitter + orbit > 1.0:
            raise ValueError(f'jitter + orbit must be at most 1, got {jitter} + {orbit}')
        self.rng = np.random.default_rng(seed)
        self.max_speed = max_speed
        share = 1.0 - jitter - orbit
        self.modes = ['scripted', 'park', 'wander', 'jitter', 'orbit']
        self.odds = [0.35 * share, 0.45 * share, 0.2 * share, jitter, orbit]
        self.radius, self.turn, self.speed = 0.08, 1.0, 0.08
        self.last = np.zeros(2)
        self.scripted = RollScripted(noise_std=noise_std, seed=seed + 1)
        self.mode, self.left, self.target, self.wander = 'scripted', 0, None, np.zeros(2)

    def reset(self, world=None, seed: int | None = None) -> None:
        """Start a new episode."""
        self.scripted.reset()
        self.left = 0

    def _switch(self, ee: np.ndarray, ball: np.ndarray) -> None:
        self.mode = str(self.rng.choice(self.modes, p=self.odds))
        self.left = int(self.rng.integers(8, 41))
        if self.mode == 'park':
            angle = self.rng.uniform(0, 2 * np.pi)
            self.target = ball + self.rng.uniform(0.04, 0.16) * np.array([np.cos(angle),
                                                                          np.sin(angle)])
            self.target = np.clip(self.target, [0.28, -0.29], [0.72, 0.29])
        if self.mode == 'scripted':
            self.scripted.reset()
        if self.mode == 'orbit':
            self.radius = self.rng.uniform(0.045, 0.11)
            self.turn = float(self.rng.choice([-1.0, 1.0]))
            self.speed = self.rng.uniform(0.03, 0.15)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Return the planar end-effector velocity command (2,), float32."""
        gt = info['ground_truth']
        ee, ball = np.asarray(gt['ee_position'])[:2], np.asarray(gt['object_position'])[:2]
        if self.left <= 0:
            self._switch(ee, ball)
        self.left -= 1
        if self.mode == 'scripted':
            return np.asarray(self.scripted.act(obs, info), dtype=np.float32)
        if self.mode == 'park':
            d = self.target - ee
            if np.linalg.norm(d) < 0.006:
                return np.zeros(2, np.float32)
            return np.clip(2.0 * d, -0.15, 0.15).astype(np.float32)
        if self.mode == 'orbit':
            rel = ee - ball
            distance = max(float(np.linalg.norm(rel)), 1e-6)
            out = rel / distance
            around = self.turn * np.array([-out[1], out[0]])
            command = self.speed * around + 2.0 * (self.radius - distance) * out
            return np.clip(command, -self.max_speed, self.max_speed).astype(np.float32)
        if self.mode == 'jitter':
            if self.rng.random() < 0.5:
                self.last = -np.sign(self.last + 1e-9) * self.max_speed
            else:
                self.last = self.rng.uniform(-self.max_speed, self.max_speed, 2)
            return self.last.astype(np.float32)
        if self.rng.random() < 0.3:
            self.wander = self.rng.uniform(-0.06, 0.06, 2)
        return self.wander.astype(np.float32)


def main() -> None:
    """Parse the arguments and record the episodes."""
    from hlai_ros.config import world_config
    from hlai_ros.data.collection import run_episode
    from hlai_ros.data.writer import EpisodeWriter
    from hlai_ros.sim import make

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=250)
    parser.add_argument('--seed', type=int, default=5000, help='seed of episode 0')
    parser.add_argument('--noise', type=float, default=0.05, help='scripted action noise, m/s')
    parser.add_argument('--max-steps', type=int, default=None)
    parser.add_argument('--jitter', type=float, default=0.0,
                        help='share of the behaviour switches that jitter (0..1)')
    parser.add_argument('--orbit', type=float, default=0.0,
                        help='share of the behaviour switches that orbit the ball (0..1)')
    parser.add_argument('--out', required=True, help='output folder (a new one)')
    args = parser.parse_args()
    env = make('roll', config=world_config('roll'))
    world = env.unwrapped
    policy = RollExplorer(args.noise, args.seed, args.jitter,
                          float(env.action_space.high[0]), args.orbit)
    writer = EpisodeWriter(Path(args.out) / 'worker_00', 'roll', world.nominal_camera(),
                           world.proprio_names, world.config.control_hz, 0.5,
                           metadata={'env_id': env.spec.id if env.spec else None, 'worker': 0,
                                     'policy': 'explore'})
    start, steps, outcomes = time.perf_counter(), 0, []
    try:
        for i in range(args.episodes):
            out = run_episode(env, policy, writer, i, args.seed + i, args.max_steps,
                              lambda: False, {'policy': 'explore', 'noise': args.noise})
            steps += out['steps']
            outcomes.append(out)
    finally:
        writer.close()
        env.close()
    wall = time.perf_counter() - start
    print(f'{len(outcomes)} episodes, {steps} transitions in {wall:.0f} s '
          f'({steps / wall:.0f}/s); success {np.mean([o["success"] for o in outcomes]):.0%}, '
          f'fell {np.mean([o["failure"] == "fell" for o in outcomes]):.0%}')


if __name__ == '__main__':
    main()
