"""Push-world perception error against ground truth, over scripted episodes.

    .venv/bin/python benchmarks/push_perception.py --episodes 10 [--sizes 64 128] [--at-rest] \
        [--randomize-camera] [--noise 0.03] [--contact-radius M]

Runs the scripted controller (with a little action noise, so that the box also drifts and
turns) on seeds 0..N-1 at each square image size, estimates the state with `PushPerception`
from the observation alone, and prints, against ``info['ground_truth']``: the end-effector
error, the box position error over the frames where the box was seen, over the frames where
the hand hid it (the box is then moved with a pushing hand, else kept) and over all frames, the
box velocity error, and the fraction of frames where the box was seen. Errors are planar,
metres (m/s for velocity): mean, median and 95th percentile. ``--randomize-camera`` perturbs
the true camera pose every episode (1 cm, 0.01 rad standard deviations) while perception keeps
the nominal one. With ``--at-rest`` it also prints
the error on the first frame of seeds 0..19 (box at rest and wholly visible, the arm away).
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from tqdm import tqdm

from hlai_ros.perception.push import PushPerception, PushPerceptionConfig
from hlai_ros.sim.push import PushWorld
from hlai_ros.sim.push_scripted import PushScripted


def measure(size: int, episodes: int, noise: float = 0.03, randomize_camera: bool = False,
            contact_radius: float | None = None) -> dict[str, np.ndarray]:
    """Return per-frame errors at a `size` x `size` camera over seeded scripted episodes."""
    world = PushWorld(image_width=size, image_height=size, randomize_camera=randomize_camera)
    config = PushPerceptionConfig(control_dt=world.dt)
    if contact_radius is not None:
        config = dataclasses.replace(config, contact_radius=contact_radius)
    perception = PushPerception(world.nominal_camera(), config)
    out = {'ee': [], 'box_seen': [], 'box_hidden': [], 'box_all': [], 'velocity': [],
           'seen': []}
    for seed in tqdm(range(episodes), desc=f'{size}x{size}', leave=False):
        controller = PushScripted(noise_std=noise, seed=seed)
        obs, info = world.reset(seed=seed)
        perception.reset()
        for _ in range(200):
            state = perception.estimate(obs)
            gt = info['ground_truth']
            out['ee'].append(np.linalg.norm(state[0:2] - gt['ee_position'][:2]))
            out['seen'].append(perception.visible)
            if np.all(np.isfinite(state[2:4])):
                err = np.linalg.norm(state[2:4] - gt['object_position'][:2])
                out['box_all'].append(err)
                out['box_seen' if perception.visible else 'box_hidden'].append(err)
                if perception.visible:
                    out['velocity'].append(np.linalg.norm(state[4:6]
                                                          - gt['object_velocity'][:2]))
            obs, _, terminated, _, info = world.step(controller.act(obs, info))
            if terminated:
                break
    world.close()
    perception.close()
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def measure_at_rest(size: int, seeds: int = 20) -> np.ndarray:
    """Return the box position errors (m) on the first frame of `seeds` episodes."""
    world = PushWorld(image_width=size, image_height=size)
    perception = PushPerception(world.nominal_camera(),
                                PushPerceptionConfig(control_dt=world.dt))
    errors = []
    for seed in range(seeds):
        obs, info = world.reset(seed=seed)
        perception.reset()
        state = perception.estimate(obs)
        errors.append(np.linalg.norm(state[2:4] - info['ground_truth']['object_position'][:2]))
    world.close()
    perception.close()
    return np.asarray(errors)


def main() -> None:
    """Print the error figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--noise', type=float, default=0.03,
                        help="scripted controller's action noise, m/s (0.08: as in data/push)")
    parser.add_argument('--contact-radius', type=float, default=None,
                        help='PushPerceptionConfig.contact_radius, m (0: a hidden box stays '
                             'where it was last seen; default: the config)')
    parser.add_argument('--at-rest', action='store_true')
    parser.add_argument('--randomize-camera', action='store_true',
                        help='perturb the true camera pose (perception keeps the nominal one)')
    args = parser.parse_args()
    for size in args.sizes:
        if args.at_rest:
            v = measure_at_rest(size)
            print(f'## {size}x{size} at rest, seeds 0..19: box error (m) median '
                  f'{np.median(v):.4f}  max {v.max():.4f}')
        e = measure(size, args.episodes, args.noise, args.randomize_camera,
                    args.contact_radius)
        print(f'## {size}x{size}, {args.episodes} scripted episodes (noise {args.noise}), '
              f'{len(e["ee"])} frames; '
              f'box seen in {e["seen"].mean():.1%} of frames')
        for name, unit in (('ee', 'm'), ('box_seen', 'm'), ('box_hidden', 'm'),
                           ('box_all', 'm'), ('velocity', 'm/s')):
            v = e[name]
            if not len(v):
                continue
            print(f'{name:>9} error ({unit}): mean {v.mean():.4f}  median {np.median(v):.4f}  '
                  f'p95 {np.percentile(v, 95):.4f}  max {v.max():.4f}')


if __name__ == '__main__':
    main()
