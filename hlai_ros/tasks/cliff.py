"""The cliff task: a differential-drive base reaching a goal near the edge of a platform.

Model state: ``x, y`` (m), ``cos yaw, sin yaw``, ``v`` (m/s), ``omega`` (rad/s) from odometry;
yaw is carried as cos/sin so that the model never sees the jump at +-pi. The platform and the
obstacles are static: perception finds them in the depth image and they enter the cost (fall and
collision barriers), not the model state.
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np

from hlai_ros.contract import ROBOT_POSE
from hlai_ros.perception.cliff import CliffPerception, CliffScene
from hlai_ros.sim.base import CameraModel
from hlai_ros.tasks.base import GOAL_NAMES, Percept, Task
from hlai_ros.tasks.registry import register_task

PLATFORM_NAMES = ('platform_x_min', 'platform_x_max', 'platform_y_min', 'platform_y_max',
                  'platform_top_z')
"""Labels of the perceived platform in the perception state (``/hlai/state``), metres."""
OBSTACLE_FIELDS = ('x', 'y', 'radius', 'height')
"""Per obstacle k, labels ``obstacle<k>_<field>``: centre, enclosing radius, height, metres."""


@register_task
class CliffTask(Task):
    """Reach the goal without driving off the platform or into an obstacle.

    The planner (config/cliff.yaml) gives the critic weight 0: the critic sees the robot's
    state relative to the goal but not the obstacles, so at weight 1 it outweighed the geodesic
    goal term and brought back the straight-line local minima (seed 14: stuck at 3.3 m with
    it, reached the goal without it); it is trained and shipped, and `hlai eval
    --critic-weight W` uses it. The shipped policy is loaded (the fallback controller) but
    proposes nothing by default (``planner.policy_fraction: 0``): its effect on success was
    measured on 2 episodes only; `hlai eval --policy-fraction 0.1` plans with it.
    """

    name = 'cliff'
    embodiment_name = 'husky'
    env_id = 'hlai/Cliff-v0'
    world = 'hlai_ros.sim.cliff:CliffWorld'
    max_steps = 300
    scripted = 'hlai_ros.sim.cliff_scripted:CliffScripted'
    model_state_names = ('x', 'y', 'cos_yaw', 'sin_yaw', 'v', 'omega')
    position_indices = (0, 1)
    pose_topic = ROBOT_POSE
    pose_labels = ('x', 'y', 'yaw')
    latent_defaults = MappingProxyType({'keypoints': 8, 'keypoint_decoder_proprio': False})
    """The pixel model's keypoints must stay on the robot (the goal is about where it is), so
    its decoder gets no odometry that would explain the robot away (BENCHMARKS.md, issue 12)."""
    latent_goal_weighting = 'self'
    """The goal image shows where the robot should stand: its own keypoints carry the goal."""
    latent_plan_target = 'base_position'
    """The latent plan is drawn as where the robot goes."""
    latent_cost_weights = MappingProxyType({'uncertainty': 0.3, 'geodesic': 10.0})
    """At the default weight (1) the ensemble's disagreement holds the robot where its
    predictions are surest: it stalled in open space; at 0.3: 74% / 73% success (seeds 0..99 /
    1000..1099) against 63% / 59%. The goal term measures the robot's keypoints along the
    learned danger map (geodesic 10) instead of in a straight line, so an obstacle between
    robot and goal is no local minimum (BENCHMARKS.md, issue 12)."""

    def cost_terms(self) -> dict[str, Any]:
        """Goal path length around obstacles, fall and collision barriers, effort, uncertainty.

        The goal term is the geodesic distance on the perceived scene (a navigation function)
        rather than the straight-line one, whose local minima behind obstacles left the robot
        waiting in front of them until the time limit. Its path length counts the fall and
        collision barriers per metre (30 per step, ~25 steps a metre), so that it never routes
        through a gap the barriers forbid; at the horizon's end it adds the turn still to come
        (heading) and every step before the goal is reached costs 1 (time to success).
        """
        return {
            'terms': ['goal', 'fall', 'collision', 'effort', 'uncertainty'],
            'goal': {'kind': 'geodesic_goal', 'position_indices': [0, 1],
                     'terminal_weight': 2.0, 'body_radius': 0.45, 'clearance': 0.08,
                     'edge_margin': 0.15, 'barrier_weight': 750.0, 'heading_indices': [2, 3],
                     'heading_weight': 2.0, 'reach_radius': 0.22, 'reach_bonus': 1.0},
            'fall': {'kind': 'platform_fall', 'position_indices': [0, 1],
                     'margin': 0.15, 'sharpness': 30.0, 'ensemble_reduce': 'max'},
            'collision': {'kind': 'obstacle_collision',
                          'position_indices': [0, 1], 'body_radius': 0.45, 'margin': 0.08,
                          'sharpness': 30.0, 'ensemble_reduce': 'max'},
            'effort': {'scale': [0.5, 1.0]},
            'uncertainty': {'state_indices': [0, 1]},
        }

    def make_perception(self, camera: CameraModel, control_dt: float = 0.1
                        ) -> CliffPerception:
        """The depth + odometry estimator of `hlai_ros.perception.cliff`."""
        return CliffPerception(camera)

    def encode(self, estimate) -> tuple[tuple[str, ...], np.ndarray]:
        """Odometry and goal (`CliffPerception.state_names`), then the scene's entries."""
        scene_names, scene_values = self.scene_entries(estimate.scene)
        names = tuple(CliffPerception.state_names) + scene_names
        return names, np.concatenate([np.asarray(estimate.state, dtype=np.float32),
                                      scene_values])

    @staticmethod
    def scene_entries(scene: CliffScene | None) -> tuple[tuple[str, ...], np.ndarray]:
        """Labels and values (n,) of a perceived scene, appended to ``/hlai/state``.

        The inverse of the scene part of `decode`: ``PLATFORM_NAMES``, then
        ``obstacle<k>_<field>`` for each obstacle k (``OBSTACLE_FIELDS``); none for no scene.
        """
        if scene is None:
            return (), np.zeros(0, dtype=np.float32)
        names = list(PLATFORM_NAMES)
        values = [float(b) for b in scene.bounds] + [float(scene.top_z)]
        for k, (centre, radius, height) in enumerate(zip(
                scene.obstacle_centres, scene.obstacle_radii, scene.obstacle_heights)):
            names += [f'obstacle{k}_{f}' for f in OBSTACLE_FIELDS]
            values += [float(centre[0]), float(centre[1]), float(radius), float(height)]
        return tuple(names), np.asarray(values, dtype=np.float32)

    def decode(self, names, values) -> Percept:
        """Map a labelled perception state (``/hlai/state``) to a `Percept`, scene included.

        Odometry ``x, y, yaw, v, omega`` and ``goal_x, goal_y`` give the model state (yaw as
        cos/sin, computed as `perceive` does); the platform and obstacle entries
        (`scene_entries`), when present, give the scene (else None: no fall or collision
        barrier).

        Raises:
            ValueError: names and values differ in length, or a needed label is missing.

        """
        derived = {'cos_yaw': 'yaw', 'sin_yaw': 'yaw'}
        wanted = [derived.get(n, n) for n in self.model_state_names] + list(GOAL_NAMES)
        names, values = self.labelled_state(names, values, wanted)
        get = dict(zip(names, (float(v) for v in values)))
        yaw = get['yaw']
        get['cos_yaw'], get['sin_yaw'] = math.cos(yaw), math.sin(yaw)
        state = np.array([get[n] for n in self.model_state_names], dtype=np.float32)
        goal = np.array([get[n] for n in GOAL_NAMES], dtype=np.float32)
        scene = None
        if all(n in get for n in PLATFORM_NAMES):
            centres, radii, heights = [], [], []
            k = 0
            while all(f'obstacle{k}_{f}' in get for f in OBSTACLE_FIELDS):
                x, y, radius, height = (get[f'obstacle{k}_{f}'] for f in OBSTACLE_FIELDS)
                centres.append((x, y))
                radii.append(radius)
                heights.append(height)
                k += 1
            scene = CliffScene(np.array([get[n] for n in PLATFORM_NAMES[:4]]),
                               get['platform_top_z'], np.array(centres).reshape(-1, 2),
                               np.array(radii), np.array(heights))
        return Percept(state, goal, scene, values)

    def scene_terms(self, scene) -> dict[str, dict[str, Any]]:
        """Perceived platform bounds and obstacle circles."""
        if scene is None:
            return {'fall': {'enabled': False}, 'collision': {'enabled': False}}
        bounds = [float(b) for b in scene.bounds]
        centres = [[float(c[0]), float(c[1])] for c in scene.obstacle_centres]
        radii = [float(r) for r in scene.obstacle_radii]
        out: dict[str, dict[str, Any]] = {'fall': {'bounds': bounds}}
        if self.cost_terms().get('goal', {}).get('kind') == 'geodesic_goal':
            out['goal'] = {'bounds': bounds, 'centres': centres, 'radii': radii}
        if len(scene.obstacle_radii):
            out['collision'] = {'centres': centres, 'radii': radii}
        else:
            out['collision'] = {'enabled': False}
        return out
