"""Camera throughput per world and renderer, and how far each renderer's images are from today's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_camera.py [--task push,cliff,roll] \
        [--steps 150] [--rounds 3] [--seeds 5] [--keep 0.1,0.2,0.3,0.05] [--no-egl]

Per world, env steps/s (random actions, seed 0, one process, one thread) of:

- ``physics only``: ``render_camera=False`` (zero images): stepping, control, outcome;
- ``tiny, full``: the TinyRenderer drawing the whole scene every step (the path before the
  static-scene cache, ``camera_cache_static=False``), cliff's Husky with its full meshes
  (``robot_mesh_keep=1.0``): the reference images;
- ``tiny (default)``: static bodies rendered once per episode, moving ones composited;
- ``tiny, keep K`` (cliff, ``--keep``): the default with the Husky's meshes decimated to a
  share K of their triangles (``robot_mesh_keep=K``);
- ``egl``: the eglRenderer plugin (OpenGL through EGL), where it loads.

The variants run in turns (``--rounds`` rounds of ``--steps`` steps each) so that a noisy
machine slows them alike; the rate is steps over the summed time, wall-clock and (what one
core does when it is not shared) the process's CPU time. Then, over seeds
0..``--seeds``-1 (reset, 20 random steps, the goal image), each variant's images are compared
with the full TinyRenderer's: max and mean absolute RGB difference (0-255), pixels that
differ per frame (at all, and by more than 16 levels in a channel or 5 cm in depth), and max /
mean absolute depth difference. ``benchmarks/camera_equivalence.py`` judges cliff's decimated
meshes further (perception, the latent encoder, the wheels' own rotation as a yardstick).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

FULL_MESHES = {'cliff': {'robot_mesh_keep': 1.0}}


def full(task: str) -> dict:
    """The reference: the whole scene drawn every step, cliff's Husky with its full meshes."""
    return {'camera_cache_static': False, **FULL_MESHES.get(task, {})}


def variants(task: str, egl: bool, keeps: list[float] = ()) -> dict[str, dict | None]:
    """Name -> world settings (None: camera off)."""
    out = {'physics only': None, 'tiny, full': full(task), 'tiny (default)': {}}
    if task == 'cliff':
        for k in keeps:
            out[f'tiny, keep {k:g}'] = {'robot_mesh_keep': k}
    if egl:
        out['egl'] = {'renderer': 'egl'}
    return out


def make_env(task: str, settings: dict | None):
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    if settings is None:
        return make(task, config=world_config(task, render_camera=False))
    return make(task, config=world_config(task, **settings))


def rates(task: str, table: dict, steps: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Env steps/s of each variant, measured in turns: per wall-clock and per CPU second."""
    envs = {name: make_env(task, s) for name, s in table.items()}
    spent = {name: [0.0, 0.0] for name in envs}
    for env in envs.values():
        env.reset(seed=0)
        env.action_space.seed(0)
    try:
        for _ in range(rounds):
            for name, env in envs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(steps):
                    _, _, term, trunc, _ = env.step(env.action_space.sample())
                    if term or trunc:
                        env.reset()
                spent[name][0] += time.perf_counter() - t0
                spent[name][1] += time.process_time() - c0
    finally:
        for env in envs.values():
            env.close()
    return {name: (steps * rounds / t, steps * rounds / c) for name, (t, c) in spent.items()}


def episode_frames(task: str, settings: dict, seed: int, steps: int = 20) -> list[dict]:
    env = make_env(task, settings)
    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs]
        for _ in range(steps):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            out.append(obs)
            if term or trunc:
                break
        out.append(env.unwrapped.goal_observation())
        return out
    finally:
        env.close()


def frame_difference(a: dict, b: dict) -> dict[str, float]:
    """Differences of one frame pair (observations with 'rgb' and 'depth').

    Max and mean absolute RGB (0-255) and depth (m), and the pixels that differ at all and by
    more than 16 levels in a channel or 5 cm in depth.
    """
    d = np.abs(a['rgb'].astype(np.int16) - b['rgb'].astype(np.int16))
    e = np.abs(a['depth'] - b['depth'])
    return {'rgb_max': float(d.max()), 'rgb_mean': float(d.mean()),
            'depth_max': float(e.max()), 'depth_mean': float(e.mean()),
            'changed': int((d.max(-1) > 0).sum()),
            'large': int(((d.max(-1) > 16) | (e > 0.05)).sum())}


def column(diffs: list[dict], key: str) -> np.ndarray:
    """One `frame_difference` figure over many frame pairs."""
    return np.array([d[key] for d in diffs])


def differences(task: str, settings: dict, seeds: int) -> str:
    """Image differences of `settings` from the full TinyRenderer render."""
    diffs = []
    for seed in range(seeds):
        ref = episode_frames(task, full(task), seed)
        new = episode_frames(task, settings, seed)
        diffs += [frame_difference(a, b) for a, b in zip(ref, new)]
    changed, large = column(diffs, 'changed'), column(diffs, 'large')
    depth_mean = column(diffs, 'depth_mean').mean()
    return (f'RGB max {column(diffs, "rgb_max").max():.0f} mean '
            f'{column(diffs, "rgb_mean").mean():.3f}; pixels differing per frame '
            f'mean {changed.mean():.1f} max {changed.max()} of {ref[0]["rgb"][..., 0].size}, '
            f'by > 16 levels or 5 cm mean {large.mean():.1f} max {large.max()}; '
            f'depth max {column(diffs, "depth_max").max() * 1e3:.1f} mm mean '
            f'{depth_mean * 1e3:.3f} mm ({len(diffs)} frames)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', default='push,cliff,roll', help='comma-separated worlds')
    ap.add_argument('--steps', type=int, default=150, help='steps per variant per round')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--seeds', type=int, default=5, help='seeds for the image comparison')
    ap.add_argument('--keep', default='0.1,0.2,0.3,0.05',
                    help="cliff: more robot_mesh_keep values, comma-separated ('': none)")
    ap.add_argument('--no-egl', action='store_true', help='skip the EGL renderer')
    args = ap.parse_args()
    egl = False
    if not args.no_egl:
        from hlai_ros.sim.base import bullet_client_quiet, load_egl_plugin
        probe = bullet_client_quiet()
        egl = load_egl_plugin(probe)
        probe.disconnect()
        if not egl:
            print('EGL renderer plugin unavailable: egl rows skipped')
    for task in args.task.split(','):
        keeps = [float(k) for k in args.keep.split(',') if k]
        table = variants(task, egl, keeps)
        r = rates(task, table, args.steps, args.rounds)
        print(f'## {task} (64x64, {args.rounds} x {args.steps} steps per variant)')
        base = r['tiny, full'][0]
        phys_ms = 1e3 / r['physics only'][0]
        for name, (rate, cpu) in r.items():
            cam = '' if name == 'physics only' else \
                f', camera {1e3 / rate - phys_ms:.2f} ms/step, x{rate / base:.2f} vs tiny full'
            print(f'{name:20s} {rate:7.1f} env steps/s ({1e3 / rate:.2f} ms/step{cam}); '
                  f'{cpu:.1f} per CPU second')
        if args.seeds > 0:
            for name, settings in table.items():
                if settings is None or name == 'tiny, full':
                    continue
                print(f'images, {name} vs tiny full: {differences(task, settings, args.seeds)}')
        print()


if __name__ == '__main__':
    main()
