"""Cliff perception errors against ground truth, at several camera resolutions.

Usage::

    .venv/bin/python benchmarks/cliff_perception.py --episodes 20 --sizes 64 128
"""
from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from hlai_ros.perception.cliff import CliffPerception, scene_errors
from hlai_ros.sim.cliff import CliffWorld
from hlai_ros.sim.cliff_scripted import CliffScripted


def measure(size: int, episodes: int, every: int = 5, frames: int = 10,
            randomize_camera: bool = False, depth_noise: float = 0.0) -> dict:
    """Drive the scripted controller and compare the estimate with ground truth."""
    env = CliffWorld(image_width=size, image_height=size, randomize_camera=randomize_camera,
                     depth_noise_m=depth_noise)
    perception = CliffPerception(env.nominal_camera())
    rows = []
    for seed in tqdm(range(episodes), desc=f'{size}x{size}', leave=False):
        obs, info = env.reset(seed=seed)
        ctrl = CliffScripted()
        for step in range(every * frames):
            if step % every == 0:
                est = perception.estimate(obs)
                rows.append(scene_errors(est.scene, info['ground_truth']))
                gt = info['ground_truth']
                pose = np.r_[gt['base_position'][:2], gt['base_rpy'][2]]
                rows[-1]['pose_error'] = float(np.abs(est.state[:2] - pose[:2]).max())
            obs, _, term, _, info = env.step(ctrl.act(obs, info))
            if term:
                break
    centre = np.concatenate([r['centre_errors'] for r in rows])
    radius = np.concatenate([r['radius_errors'] for r in rows])
    return {
        'frames': len(rows),
        'bounds_mae': np.mean([r['bounds_error'] for r in rows]),
        'bounds_max': np.max([r['bounds_error'] for r in rows]),
        'top_max': np.max([r['top_error'] for r in rows]),
        'detection_rate': sum(r['detected'] for r in rows) / sum(r['obstacles'] for r in rows),
        'false_positives_per_frame': np.mean([r['false_positives'] for r in rows]),
        'centre_mean': centre.mean(), 'centre_p95': np.percentile(centre, 95),
        'centre_max': centre.max(),
        'radius_bias': radius.mean(), 'radius_mae': np.abs(radius).mean(),
        'pose_max': np.max([r['pose_error'] for r in rows]),
    }


def main() -> None:
    """Print one line of errors per resolution."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=20)
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--randomize-camera', action='store_true')
    parser.add_argument('--depth-noise', type=float, default=0.0)
    args = parser.parse_args()
    for size in args.sizes:
        m = measure(size, args.episodes, randomize_camera=args.randomize_camera,
                    depth_noise=args.depth_noise)
        print(f'{size}x{size}: ' + ', '.join(
            f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}' for k, v in m.items()))


if __name__ == '__main__':
    main()
