"""Whether cliff's decimated Husky meshes are equivalent to the full ones where it matters.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/camera_equivalence.py \
        [--keep 0.5,0.3,0.2,0.1,0.05] [--grid] [--seeds 5] [--model models/cliff_latent]

Same scenes as ``bench_camera.py`` (seeds 0..``--seeds``-1: reset, 20 random steps, the goal
image; the physics does not depend on the visual meshes, so every variant sees the same
states) rendered with the Husky's full meshes (``robot_mesh_keep=1.0``) and with each variant.
Per variant against the full meshes:

- images: pixels per frame that differ at all and by more than 16 levels in a channel or 5 cm
  in depth (mean / max of 4,096), max and mean absolute RGB and depth difference;
- the hand-written cliff perception (`hlai_ros.perception.cliff.CliffPerception`, robot pose
  from odometry): largest difference of its scene features and of the platform bounds, top
  height and obstacle count;
- the shipped latent stack (``--model``): the L2 norm of the change of the encoder's code, the
  robot position its planning state gives through the folder's plan probe (the keypoints the
  cost reads; cm), and the pixel event heads' danger map (mean absolute change, logits).

Two yardsticks from the full meshes alone: the same frames with the four wheels turned to
random angles (a state the task does not care about, and the images the models were trained
on show it at every angle), and one step of motion (the code's change between consecutive
frames). ``--grid``: also the former ``light_robot_meshes`` (vertices merged on a 4 cm grid).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench_camera import column, frame_difference  # the benchmarks folder is on sys.path
import numpy as np


def make_env(keep):
    from hlai_ros.config import world_config
    from hlai_ros.sim import make
    return make('cliff', config=world_config('cliff', robot_mesh_keep=keep))


def grid_meshes(grid: float = 0.04):
    """Patch the world to draw the Husky with vertex-clustered meshes (the old light meshes)."""
    import hashlib
    import re
    import tempfile

    import pybullet_data

    import hlai_ros.sim.cliff as cliff
    source = Path(pybullet_data.getDataPath()) / 'husky' / 'husky.urdf'
    text = source.read_text(encoding='utf-8')
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    out = Path(tempfile.gettempdir()) / f'hlai_bench_grid_{digest}'
    out.mkdir(exist_ok=True)
    for name in sorted(set(re.findall(r'filename="meshes/([\w.-]+\.stl)"', text))):
        tris, normals = cliff._read_stl(source.parent / 'meshes' / name)
        v = tris.reshape(-1, 3)
        _, inv = np.unique(np.floor(v / grid).astype(np.int64), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        count = np.bincount(inv)
        reps = np.stack([np.bincount(inv, v[:, i]) for i in range(3)], axis=1) / count[:, None]
        idx = inv.reshape(-1, 3)
        ok = (idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2]) & (idx[:, 0] != idx[:, 2])
        idx, normals = idx[ok], normals[ok]
        _, first = np.unique(np.sort(idx, axis=1), axis=0, return_index=True)
        first = np.sort(first)
        rec = np.zeros(len(first), cliff._STL_RECORD)
        rec['n'], rec['v'] = normals[first], reps[idx[first]]
        (out / name).write_bytes(bytes(80) + np.uint32(len(first)).tobytes() + rec.tobytes())
    urdf = out / source.name
    urdf.write_text(text.replace('filename="meshes/', f'filename="{out.as_posix()}/'))
    original = cliff._robot_urdf
    GRID_KEEP = 0.999  # a keep value nobody uses stands for the grid meshes
    cliff._robot_urdf = lambda u, keep: str(urdf) if keep == GRID_KEEP else original(u, keep)
    return GRID_KEEP


def episode(keep, seed: int, turned: bool = False, steps: int = 20):
    """Frames of one scene; `turned`: also each step's frame with the wheels at random angles."""
    env = make_env(keep)
    w = env.unwrapped
    rng = np.random.default_rng(1000 + seed)
    out, spun = [], []

    def spin():
        b = w.bullet
        state = b.saveState()
        for j in w._wheels:
            angle = b.getJointState(w._robot, j)[0] + rng.uniform(0.0, 2 * np.pi)
            b.resetJointState(w._robot, j, angle)
        rgb, depth = w._render_camera(w._camera_pose, w.config.image_width,
                                      w.config.image_height, w.camera_spec.fov_deg,
                                      composite=True)
        b.restoreState(state)
        b.removeState(state)
        spun.append({'rgb': rgb, 'depth': np.clip(depth, 0.0, w.camera_spec.far)})

    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out.append(obs)
        if turned:
            spin()
        for _ in range(steps):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            out.append(obs)
            if turned:
                spin()
            if term or trunc:
                break
        out.append(w.goal_observation())
        return out, spun, w.nominal_camera()
    finally:
        env.close()


class Judge:
    def __init__(self, model: str, seeds: int):
        import torch
        torch.set_num_threads(1)
        from hlai_ros.latent.planning import planning_part
        from hlai_ros.latent.probes import load_plan_probe
        from hlai_ros.latent.stack import LatentStack
        from hlai_ros.perception.cliff import CliffPerception
        from hlai_ros.tasks import get_task
        self.stack = LatentStack.from_folder(get_task('cliff'), model)
        self.encoder = self.stack.encoder
        self.part = planning_part(self.encoder)
        self.probe = load_plan_probe(model)
        self.ref = [episode(1.0, s, turned=True) for s in range(seeds)]
        self.perception = CliffPerception(self.ref[0][2])

    def code(self, obs) -> np.ndarray:
        from hlai_ros.latent.stack import encode_observation
        return encode_observation(self.encoder, obs).numpy()

    def robot(self, obs) -> np.ndarray:
        """The robot position the planning state gives (plan probe), m; NaN without a probe."""
        if self.probe is None:
            return np.full(2, np.nan)
        return self.probe.decode(self.code(obs)[self.part])

    def danger(self, obs) -> np.ndarray:
        """The pixel event heads' danger map of the frame (logits); empty for other heads."""
        import torch

        from hlai_ros.latent.stack import scene_pixels
        if not self.stack.reads_pixels:
            return np.zeros(0)
        with torch.no_grad():
            pixels = scene_pixels(self.encoder, obs)[None]
            return self.stack.heads.scene_features(pixels)[0].numpy()

    def compare(self, pairs) -> dict:
        diffs, feat, scene, shift, moved, danger = [], [], [], [], [], []
        for a, b in pairs:
            diffs.append(frame_difference(a, b))
            ea, eb = self.perception.estimate(a), self.perception.estimate(b)
            feat.append(float(np.abs(ea.features - eb.features).max()))
            scene.append(max(float(np.abs(ea.scene.bounds - eb.scene.bounds).max()),
                             abs(ea.scene.top_z - eb.scene.top_z),
                             abs(len(ea.scene.obstacle_radii) - len(eb.scene.obstacle_radii))))
            shift.append(float(np.linalg.norm(self.code(a) - self.code(b))))
            moved.append(float(np.linalg.norm(self.robot(a) - self.robot(b))))
            danger.append(float(np.abs(self.danger(a) - self.danger(b)).mean()))
        changed, large = column(diffs, 'changed'), column(diffs, 'large')
        rgb_max, depth_max = column(diffs, 'rgb_max').max(), column(diffs, 'depth_max').max()
        rgb_mean, depth_mean = column(diffs, 'rgb_mean').mean(), column(diffs, 'depth_mean').mean()
        return {'frames': len(diffs),
                'pixels differing mean / max': f'{changed.mean():.1f} / {changed.max()}',
                '> 16 levels or 5 cm mean / max': f'{large.mean():.1f} / {large.max()}',
                'RGB max / mean': f'{rgb_max:.0f} / {rgb_mean:.3f}',
                'depth max / mean mm': f'{depth_max * 1e3:.0f} / {depth_mean * 1e3:.3f}',
                'perception features max / mean': f'{max(feat):.2g} / {np.mean(feat):.2g}',
                'perception scene max': f'{max(scene):.2g}',
                'code shift mean / max': f'{np.mean(shift):.2f} / {max(shift):.2f}',
                'probe robot cm mean / max':
                    f'{np.mean(moved) * 100:.2f} / {max(moved) * 100:.2f}',
                'danger map mean': f'{np.mean(danger):.4f}'}

    def variant(self, keep) -> dict:
        pairs = []
        for seed, (ref, _, _) in enumerate(self.ref):
            new = episode(keep, seed)[0]
            for a, b in zip(ref, new):
                if not np.array_equal(a['proprio'], b['proprio']):
                    raise AssertionError('the physics differs between the renders')
                pairs.append((a, b))
        return self.compare(pairs)

    def yardsticks(self) -> tuple[dict, dict]:
        """The full meshes against themselves: wheels turned; one step of motion."""
        turned, steps = [], []
        for ref, spun, _ in self.ref:
            turned += [(a, dict(a, **b)) for a, b in zip(ref, spun)]
            steps += list(zip(ref[:-2], ref[1:-1]))  # consecutive frames, goal image left out
        return self.compare(turned), self.compare(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--keep', default='0.5,0.3,0.2,0.1,0.05',
                    help='robot_mesh_keep values to judge, comma-separated')
    ap.add_argument('--grid', action='store_true', help='also the old 4 cm vertex clustering')
    ap.add_argument('--seeds', type=int, default=5)
    ap.add_argument('--model', default='models/cliff_latent', help='latent model folder')
    args = ap.parse_args()
    judge = Judge(args.model, args.seeds)
    turned, step = judge.yardsticks()
    print(f'full meshes, wheels turned to random angles: {turned}')
    print(f'full meshes, one step of motion: {step}', flush=True)
    rows = {f'keep {k}': float(k) for k in args.keep.split(',') if k}
    if args.grid:
        rows['old light meshes (4 cm grid)'] = grid_meshes()
    for name, keep in rows.items():
        print(f'{name}: {judge.variant(keep)}', flush=True)


if __name__ == '__main__':
    main()
