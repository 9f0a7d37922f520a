"""The roll task: the Panda stops a rolling ball and brings it to rest on a goal on the table.

Momentum is the intuitive physics here: a ball keeps rolling after the hand leaves it, and a
ball that rolls off the table is lost. The ball's radius, mass, rolling friction and initial
velocity are randomised every episode (``sim/roll.yaml``).

Model state: the hand ``ee_x, ee_y`` (m, forward kinematics), the ball ``obj_x, obj_y`` (m,
colour + depth) and its velocity ``obj_vx, obj_vy`` (m/s, filtered; unlike push's box, a ball
keeps its velocity, so it is state), and the hand's velocity ``ee_vx, ee_vy`` (m/s).

Cost (`RollTask.cost_terms`; weights in config/roll.yaml): ball-to-goal distance; the hand's
way round the ball to the pre-push point behind it (push's `approach_cost`); the ball's speed
(at rest on the goal is success); the hand's speed at the ball (gentle contact); the table-edge
barrier on the ball, and on where the ball would roll to if left alone (its run-out); effort;
the change of command between steps (smoothness: full-speed reversals every step are nowhere in
the data, and world models trained on it predict that they set a ball 8-20 cm away rolling,
which the planner then exploits); disagreement.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from hlai_ros.contract import OBJECT_POSE
from hlai_ros.cost.base import CostContext, check_shapes
from hlai_ros.perception.roll import STATE_NAMES, RollPerception, RollPerceptionConfig
from hlai_ros.sim.base import CameraModel
from hlai_ros.tasks.base import Task
from hlai_ros.tasks.push import PushTask, table_bounds
from hlai_ros.tasks.registry import register_task


@register_task
class RollTask(Task):
    """Bring the ball to rest within 3 cm of the goal; never off the table."""

    name = 'roll'
    embodiment_name = 'panda'
    env_id = 'hlai/Roll-v0'
    world = 'hlai_ros.sim.roll:RollWorld'
    max_steps = 200
    scripted = 'hlai_ros.sim.roll_scripted:RollScripted'
    model_state_names = ('ee_x', 'ee_y', 'obj_x', 'obj_y', 'obj_vx', 'obj_vy', 'ee_vx', 'ee_vy')
    position_indices = (2, 3)
    goal_relative_indices = (0, 1, 2, 3)
    pose_topic = OBJECT_POSE
    pose_labels = ('obj_x', 'obj_y')
    oracle_objective = 'cost'
    model_defaults = MappingProxyType({
        'frame_origin': (0, 1), 'frame_points': (2, 3), 'frame_keep_origin': False,
        'train_horizon': 16})
    """The dynamics see the ball from the hand, wherever on the table the two are (a push looks
    the same everywhere), and are unrolled 16 steps (1.6 s) in training so the ball's momentum
    carries over a whole horizon."""
    latent_defaults = MappingProxyType({'keypoints': 16, 'keypoint_decoder_proprio': True})
    """The pixel model's decoder draws the arm from proprioception, so that its keypoints go to
    the ball (as push's)."""
    latent_goal_weighting = 'residual'
    """Keypoints mix the hand and the ball: the goal compares them minus what proprioception
    predicts of them (as push's)."""
    unmeasured_indices = (2, 3, 4, 5)
    """The ball's position and velocity are perception's guesses while the hand hides it."""
    train_measured_only = True
    """The hand hides the ball while pushing it; perception's dead-reckoned guesses there taught
    a ball that lags the hand (BENCHMARKS.md, roll's fourth attempt: 34% against 75% fed the
    true state)."""
    approach_standoff = 0.05
    """Ball centre to hand centre when pushing, m: the largest ball's radius (2.5 cm) plus
    the fingertips' half thickness and clearance."""
    approach_clearance = PushTask.approach_clearance
    """Extra radius (m) of the approach's way round the ball (`approach_cost`), push's."""

    def cost_terms(self) -> dict[str, Any]:
        """Ball-goal distance, approach, speed, edge and run-out barriers, effort, doubt."""
        return {
            'terms': ['goal', 'approach', 'rest', 'gentle', 'fall', 'runout', 'effort',
                      'smoothness', 'uncertainty'],
            'goal': {'position_indices': [2, 3], 'terminal_weight': 2.0},
            'approach': {'kind': 'function', 'function': self._approach},
            'rest': {'kind': 'function', 'function': self._speed},
            'gentle': {'kind': 'function', 'function': self._gentle},
            'fall': {'kind': 'platform_fall', 'position_indices': [2, 3],
                     'bounds': table_bounds(), 'margin': 0.015, 'sharpness': 300.0,
                     'ensemble_reduce': 'max'},
            'runout': {'kind': 'platform_fall', 'position_indices': [2, 3],
                       'velocity_indices': [4, 5], 'deceleration': self.runout_deceleration,
                       'bounds': table_bounds(), 'margin': 0.015, 'sharpness': 300.0,
                       'ensemble_reduce': 'max', 'running_max': False},
            'effort': {'scale': [0.2, 0.2]},
            'smoothness': {'scale': [0.2, 0.2]},
            'uncertainty': {'state_indices': [2, 3]},
        }

    _approach = PushTask._approach
    """Approach term (push's, with this task's `approach_standoff`)."""

    @staticmethod
    def _speed(states: torch.Tensor, actions: torch.Tensor,
               context: CostContext) -> torch.Tensor:
        """The ball's speed (m/s) at steps 1..T: states (E, N, T+1, S) -> (E, N, T)."""
        check_shapes(states, actions)
        velocity = states[..., 1:, 4:6]
        return torch.sqrt(velocity.pow(2).sum(-1) + 1e-6)

    gentle_contact = 0.05
    """Hand-ball distance (m) within which `_gentle` counts fully: about touching."""
    gentle_band = 0.05
    """Distance (m) beyond `gentle_contact` over which `_gentle` fades to zero."""

    runout_deceleration = 0.04
    """Deceleration (m/s^2) of a ball left alone that the run-out term assumes: the slowest
    to stop in `sim/roll.yaml` (rolling friction 1.5e-4 at radius 2.5 cm: 0.042), so a ball is
    charged when it would roll off the table, not only once the horizon shows it fall (most
    misses of the learned stack were balls pushed to a goal near the edge too fast to stop
    there; BENCHMARKS.md)."""
    gentle_speed = 0.1
    """Hand speed (m/s) that `_gentle` lets pass free at the ball: a slow push is how the ball
    gets to the goal (charging it too, the planner hovered 8-11 cm off; BENCHMARKS.md)."""

    def _gentle(self, states: torch.Tensor, actions: torch.Tensor,
                context: CostContext) -> torch.Tensor:
        """Squared speed over `gentle_speed` (per action bound) at the ball: -> (E, N, T).

        A hit sends the ball off at about the hand's speed, and at this rolling friction it then
        rolls 40 cm from 0.2 m/s; a hand that touches the ball slowly keeps it where the world
        model has data and the ball where the hand can still stop it.
        """
        check_shapes(states, actions)
        speed = torch.sqrt(actions.pow(2).sum(-1) + 1e-12)
        excess = (speed - self.gentle_speed).clamp(min=0.0) / max(self.action_high)
        distance = (states[..., :-1, 0:2] - states[..., :-1, 2:4]).norm(dim=-1)
        near = (1.0 - (distance - self.gentle_contact) / self.gentle_band).clamp(0.0, 1.0)
        return near * excess.pow(2)

    def true_state(self, ground_truth: dict[str, Any], previous: dict[str, Any] | None,
                   dt: float) -> np.ndarray:
        """Push's true state (hand, ball, hand velocity) with the ball's velocity inserted."""
        hand_and_ball = PushTask.true_state(self, ground_truth, previous, dt)
        ball_v = np.asarray(ground_truth['object_velocity'], dtype=np.float32)[:2]
        return np.concatenate([hand_and_ball[:4], ball_v, hand_and_ball[4:]])

    def make_perception(self, camera: CameraModel, control_dt: float = 0.1) -> RollPerception:
        """Forward kinematics + colour/depth ball estimator of `hlai_ros.perception.roll`."""
        return RollPerception(camera, RollPerceptionConfig(control_dt=control_dt))

    def encode(self, estimate) -> tuple[tuple[str, ...], np.ndarray]:
        """The estimator's vector, labelled `hlai_ros.perception.roll.STATE_NAMES`."""
        return STATE_NAMES, np.asarray(estimate, dtype=np.float32)
