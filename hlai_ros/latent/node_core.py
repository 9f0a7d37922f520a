"""The latent stack in the ROS graph, without ROS: what the nodes do in latent mode.

A model folder that holds a latent model (``latent_model.json``,
`hlai_ros.actor.stack.folder_representation`) puts the graph in latent mode:

- the ``perception`` node runs no hand-written estimator: `LatentFramePipeline` matches the
  camera's RGB-D and the robot's proprioception by stamp, as `FramePipeline` does, and encodes
  each matched frame with the folder's encoder into a latent (``/hlai/latent``);
  `GoalImages` pairs the goal image's colour and depth (``/goal_image``,
  ``/goal_image/depth``) by stamp, and the same encoder makes their latent
  (``/hlai/latent_goal``);
- the ``mpc_actor`` node plans with a `hlai_ros.latent.stack.LatentStack` from the latent
  towards the goal latent (`hlai_ros.actor.supervision`), hot-reloads the planning dynamics
  that the ``world_model`` node learns online (`supervision.model_watcher`,
  `LatentStack.swap_model`) and draws its plan on ``/hlai/plan`` through the folder's plan
  probe when it has one (`PlanDrawing`: the probe only draws, the stack's cost never sees it);
- the ``world_model`` node learns the planning dynamics online from ``/hlai/latent``
  (`hlai_ros.world_model.live.LiveLearner` in latent mode).

A latent travels as a ``std_msgs/Float32MultiArray`` whose layout has one dimension per part
(`latent_layout`): ``map`` (the image latent map, C x m x m flattened), ``keypoints`` (2K: x, y
per keypoint, in [-1, 1] image units) and ``proprio_latent``, in this order, each with its
size (stride = size, data_offset 0). `check_latent` refuses a message whose parts or sizes are
not the model's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hlai_ros.perception.pipeline import FramePipeline

LATENT_PARTS = ('map', 'keypoints', 'proprio_latent')
"""Labels of a latent message's dimensions, in order."""


def model_folder(task, model: str) -> Path:
    """The model folder of a node's ``model`` parameter (empty: the shipped models/<task>)."""
    from hlai_ros.actor.stack import default_model_dir
    return Path(model).expanduser() if model else default_model_dir(task)


def model_representation(task, model: str) -> str:
    """``latent`` when the model folder holds a latent model, else ``state``."""
    from hlai_ros.actor.stack import folder_representation
    return folder_representation(model_folder(task, model))


def latent_layout(encoder) -> tuple[tuple[str, int], ...]:
    """The parts of the encoder's latent: ((label, size), ...) in `LATENT_PARTS` order."""
    c = encoder.config
    return tuple(zip(LATENT_PARTS, (int(encoder.map_dim), 2 * int(c.keypoints),
                                    int(c.proprio_latent_dim))))


def check_latent(parts, values, expected) -> np.ndarray:
    """The latent (D,) float32 of a message's parts ((label, size), ...) and values.

    Raises:
        ValueError: the parts are not `expected` (`latent_layout`: labels and sizes), the
            values are not as many, or not finite.

    """
    parts = tuple((str(label), int(size)) for label, size in parts)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if parts != tuple(expected):
        raise ValueError(f'latent layout {list(parts)} is not the model\'s {list(expected)}')
    if values.size != sum(size for _, size in parts):
        raise ValueError(f'latent layout sums to {sum(s for _, s in parts)} entries, the '
                         f'message carries {values.size}')
    if not np.all(np.isfinite(values)):
        raise ValueError('latent is not finite')
    return values


def load_encoder(task, folder: str | Path, torch_threads: int = 1):
    """The encoder of a latent model folder, checked for `task` (identity), in eval mode.

    Sets torch's CPU threads (one is fastest where the graph shares two cores).

    Raises:
        CheckpointError: no latent model there, or one trained for another task or robot.

    """
    import torch

    from hlai_ros.latent.checkpoint import load_latent_model
    torch.set_num_threads(torch_threads)
    return load_latent_model(Path(folder).expanduser(), identity=task.identity('latent'))


def latent_pipeline(task, model: str, proprio_names, tolerance_ns: int
                    ) -> 'LatentFramePipeline | None':
    """The perception node's `LatentFramePipeline` if its ``model`` folder is latent, else None.

    None: state mode, the task's estimator (`FramePipeline`).
    """
    if model_representation(task, model) != 'latent':
        return None
    encoder = load_encoder(task, model_folder(task, model))
    return LatentFramePipeline(task, encoder, proprio_names, tolerance_ns)


class LatentFramePipeline(FramePipeline):
    """`FramePipeline`'s stamp matching, with the folder's encoder in place of the estimator.

    It waits for nothing but frames (no intrinsics, extrinsics or goal pose: the encoder takes
    the pixels as the camera gives them). `encode` turns a matched frame into a latent (D,).

    Args:
        task: the registered task.
        encoder: the latent model (`load_encoder`).
        proprio_names: labels of the proprioception vector (the robot's decoder reads them).
        tolerance_ns: largest stamp difference of a frame's messages, ns.

    """

    def __init__(self, task, encoder, proprio_names, tolerance_ns: int):
        super().__init__(task, 0.1, proprio_names, 0.0, 0.0, tolerance_ns)
        self.encoder = encoder
        self.layout = latent_layout(encoder)
        self.goal_images = GoalImages(tolerance_ns)
        """The goal image's colour and depth, paired by stamp."""
        if len(self.proprio_names) != encoder.config.proprio_dim:
            raise ValueError(f'the encoder takes {encoder.config.proprio_dim} proprioception '
                             f'values, the robot gives {len(self.proprio_names)} '
                             f'({list(self.proprio_names)})')

    def missing(self) -> list[str]:
        """Nothing: the encoder needs no calibration and no goal pose."""
        return []

    def _make_estimator(self) -> None:
        """No estimator in latent mode."""

    def add(self, role: str, stamp: int, msg) -> list[tuple[int, dict]]:
        """Add one sensor message; return the frames now complete, oldest first."""
        return self.sync.add(role, stamp, msg)

    def encode(self, frame: dict) -> np.ndarray:
        """The latent (D,) float32 of a matched frame (rgb, depth, proprio messages).

        Raises:
            ValueError: an image or the proprioception cannot be read, or the image is not the
                encoder's size.

        """
        from hlai_ros.data import messages
        proprio = self.task.embodiment.decode_proprio(frame['proprio'], self.proprio_names)
        return self._encode(messages.image_to_rgb(frame['rgb']),
                            messages.image_to_depth(frame['depth']), proprio)

    def encode_goal(self, rgb_msg, depth_msg) -> np.ndarray:
        """The latent (D,) of a goal image (colour and depth messages; no proprioception)."""
        from hlai_ros.data import messages
        return self._encode(messages.image_to_rgb(rgb_msg), messages.image_to_depth(depth_msg),
                            None)

    def _encode(self, rgb: np.ndarray, depth: np.ndarray, proprio) -> np.ndarray:
        from hlai_ros.latent.stack import encode_observation
        size = self.encoder.config.image_size
        if rgb.shape[:2] != (size, size) or depth.shape[:2] != (size, size):
            raise ValueError(f'images of {rgb.shape[1]}x{rgb.shape[0]} (depth '
                             f'{depth.shape[1]}x{depth.shape[0]}); the encoder takes '
                             f'{size}x{size}')
        obs = {'rgb': rgb, 'depth': depth, 'proprio': proprio}
        return encode_observation(self.encoder, obs).numpy().astype(np.float32)


class GoalImages:
    """Pairs a goal image's colour and depth by stamp; each pair is handed out once.

    Args:
        tolerance_ns: largest stamp difference of the two, ns.

    """

    def __init__(self, tolerance_ns: int):
        self.tolerance_ns = int(tolerance_ns)
        self._latest: dict[str, tuple[int, object]] = {}
        self._done: tuple[int, int] | None = None

    def add(self, role: str, stamp: int, msg):
        """Add ``rgb`` or ``depth``; return (rgb, depth) messages when a new pair is complete."""
        if role not in ('rgb', 'depth'):
            raise KeyError(f'unknown goal image role {role!r}')
        self._latest[role] = (int(stamp), msg)
        if len(self._latest) < 2:
            return None
        (t_rgb, rgb), (t_depth, depth) = self._latest['rgb'], self._latest['depth']
        if abs(t_rgb - t_depth) > self.tolerance_ns or (t_rgb, t_depth) == self._done:
            return None
        self._done = (t_rgb, t_depth)
        return rgb, depth


class PlanDrawing:
    """A latent plan in metres, through the model folder's plan probe, to draw only.

    The probe (`hlai_ros.latent.probes.load_plan_probe`) is loaded here, beside the stack and
    never given to it: it decodes the plan's predicted planning states (ensemble mean) into the
    positions the task is about, and nothing of it enters the cost. Without a probe, or with
    one refused (fitted on another encoder), `positions` is None and `note` says why.
    """

    def __init__(self, stack):
        from hlai_ros.latent.probes import load_plan_probe
        from hlai_ros.world_model.checkpoint import CheckpointError
        self.stack, self.probe, self.frame = stack, None, ''
        try:
            self.probe = load_plan_probe(stack.folder) if stack.folder is not None else None
        except CheckpointError as exc:
            self.note = f'plan probe refused, /hlai/plan not published: {exc}'
            return
        if self.probe is None:
            self.note = (f'no plan probe in {stack.folder} (latent_probe.json; python -m '
                         'hlai_ros.latent.probes --fit): /hlai/plan not published')
        elif self.probe.state_dim != int(stack.model.state_dim):
            self.note = (f'plan probe reads {self.probe.state_dim}-entry planning states, the '
                         f'model plans in {stack.model.state_dim}: /hlai/plan not published')
            self.probe = None
        else:
            self.frame = self.probe.frame
            self.note = f'/hlai/plan through the plan probe, {self.probe.describe()}'

    def positions(self, percept, actions) -> list[tuple[float, float]] | None:
        """The plan's positions [(x, y)] (m, in `frame`), or None without a probe."""
        if self.probe is None:
            return None
        xy = self.probe.decode(self.stack.predict(percept, actions))
        return [(float(x), float(y)) for x, y in xy]
