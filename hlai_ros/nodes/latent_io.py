"""Latent messages (``/hlai/latent``, ``/hlai/latent_goal``): std_msgs/Float32MultiArray.

One ``MultiArrayDimension`` per part of the latent (label, size, stride = size; data_offset
0), in the order of `hlai_ros.latent.node_core.latent_layout`: ``map``, ``keypoints``,
``proprio_latent``. The checks are the core's (`hlai_ros.latent.node_core.check_latent`).
"""
from __future__ import annotations

import numpy as np
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, MultiArrayLayout


def latent_message(layout, values) -> Float32MultiArray:
    """The message of a latent (D,) laid out in parts ((label, size), ...)."""
    dims = [MultiArrayDimension(label=label, size=size, stride=size) for label, size in layout]
    return Float32MultiArray(layout=MultiArrayLayout(dim=dims, data_offset=0),
                             data=np.asarray(values, np.float32).reshape(-1).tolist())


def latent_parts(msg) -> tuple[tuple[tuple[str, int], ...], np.ndarray]:
    """((label, size), ...) and the float32 values of a latent message.

    Raises:
        ValueError: a data offset (the layout has none).

    """
    if msg.layout.data_offset != 0:
        raise ValueError(f'latent layout has data_offset {msg.layout.data_offset}; expected 0')
    parts = tuple((d.label, int(d.size)) for d in msg.layout.dim)
    return parts, np.asarray(msg.data, dtype=np.float32)


class ActorInputs:
    """What the mpc_actor plans from: its goal and state topics, read for its stack.

    State mode: ``/hlai/state`` (`Task.decode`) with ``/goal_pose`` overriding the state's goal
    until the next episode start. Latent mode (a `LatentStack`): ``/hlai/latent`` towards the
    last ``/hlai/latent_goal`` (the goal image's latent; kept across episodes until the next),
    the plan drawn through the folder's probe (`hlai_ros.latent.node_core.PlanDrawing`), the
    planning dynamics hot-reloaded (`supervision.model_watcher`), the profile's planner settings
    applied.
    """

    def __init__(self, task, stack):
        from hlai_ros.actor import supervision
        from hlai_ros.contract import GOAL, LATENT, LATENT_GOAL, STATE
        self.task, self.stack, self.sv = task, stack, supervision
        self.latent = supervision.is_latent(stack)
        self.goal_topic, self.state_topic = (LATENT_GOAL, LATENT) if self.latent else (GOAL,
                                                                                      STATE)
        self.goal = None
        """The ``/goal_pose`` override (x, y) of this episode (state mode), or None."""
        self._frames = None
        """Camera images paired by stamp (`hlai_ros.latent.node_core.GoalImages`, exact)."""
        self.scene_frames = self.scene_faults = 0
        """Camera frames the pixel event heads read as their scene, and could not read."""
        self.drawing = None
        if self.latent:
            from hlai_ros.latent.node_core import PlanDrawing
            self.drawing = PlanDrawing(stack)

    def plan_path(self, percept, actions):
        """(positions [(x, y)] m, frame) of a plan to draw on ``/hlai/plan``; None: nothing.

        Latent mode: through the plan probe (None without one, `notes` says why).
        """
        if self.latent:
            points = self.drawing.positions(percept, actions)
            return None if points is None else (points, self.drawing.frame)
        points = self.sv.plan_positions(self.task, self.stack, percept, actions)
        return points, self.task.embodiment.state_frame

    def scene_topics(self):
        """((topic, callback), ...) of the camera frames the stack's event heads read.

        Only a latent stack whose event heads read pixels (`LatentStack.reads_pixels`) needs
        them; the scene is static within an episode, so the newest pair of one stamp will do.
        """
        if not (self.latent and self.stack.reads_pixels):
            return ()
        from hlai_ros.contract import CAMERA_DEPTH, CAMERA_RGB
        from hlai_ros.latent.node_core import GoalImages
        self._frames = GoalImages(tolerance_ns=0)
        return ((CAMERA_RGB, lambda m: self._on_frame('rgb', m)),
                (CAMERA_DEPTH, lambda m: self._on_frame('depth', m)))

    def _on_frame(self, role: str, msg) -> str:
        """Keep a camera image; a matched pair becomes the heads' scene. Returns a fault or ''."""
        from hlai_ros.data import messages
        from hlai_ros.nodes.convert import stamp_ns
        pair = self._frames.add(role, stamp_ns(msg.header.stamp), msg)
        if pair is None:
            return ''
        rgb, depth = pair
        try:
            self.stack.set_scene_frame({'rgb': messages.image_to_rgb(rgb),
                                        'depth': messages.image_to_depth(depth)})
        except (ValueError, RuntimeError) as exc:
            self.scene_faults += 1
            return f'camera frame for the event heads: {exc}'
        self.scene_frames += 1
        return ''

    def apply_profile(self, text: str, stats) -> str:
        """Apply a published profile; return why it is refused, or ''.

        Latent mode: only its planner settings (`LatentStack.reconfigure`).
        """
        return self.sv.apply_profile(self.stack, text, stats)

    def notes(self) -> dict:
        """Extra diagnostics values: latent mode, what ``/hlai/plan`` shows (``plan_probe``)."""
        if not self.latent:
            return {}
        notes = {'plan_probe': self.drawing.note}
        if self.stack.reads_pixels:
            notes.update(scene_frames=self.scene_frames, scene_faults=self.scene_faults)
        return notes

    def reset(self) -> None:
        """A new episode: the goal pose override ends (a goal latent stays)."""
        self.goal = None

    def on_goal(self, msg) -> str:
        """Take a goal message; return why it is ignored, or ''."""
        if self.latent:
            try:
                self.sv.set_latent_goal(self.stack, *latent_parts(msg))
            except ValueError as exc:
                return f'{self.goal_topic.name}: {exc}'
            return ''
        from hlai_ros.data import messages
        goal = messages.pose_to_goal(msg)
        fault = self.sv.goal_fault(goal, msg.header.frame_id.lstrip('/'),
                                   self.task.embodiment.goal_frames)
        if not fault:
            self.goal = goal
        return f'{self.goal_topic.name}: {fault}' if fault else ''

    def percept(self, msg):
        """The percept of a state message.

        Raises:
            ValueError: it cannot be read, is not finite, or (latent) no goal latent came yet.

        """
        if self.latent:
            return self.sv.read_latent(self.stack, *latent_parts(msg))
        from hlai_ros.nodes.convert import state_from_message
        return self.sv.read_percept(self.task, *state_from_message(msg), self.goal)
