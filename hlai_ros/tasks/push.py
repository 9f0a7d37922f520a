"""The push task: an arm pushes a box across a table to a goal without pushing it off.

Model state: end-effector ``ee_x, ee_y`` (m, forward kinematics of the joint angles), box
``obj_x, obj_y`` (m, from the RGB-D camera) and the end-effector's velocity ``ee_vx, ee_vy``
(m/s, finite differences of the exact kinematics). The hand lags its command (on held-out
scripted data one step's hand motion is 0.06 s x command + 0.4 x the last step's motion; the
command alone leaves 3.7 mm of it unexplained, with the last motion 1 mm), so its velocity is
state. The box's velocity is left out: on this table the box stops within a control step once
the hand leaves it (quasi-static pushing), so its next position follows from the positions and
the hand's motion, while a velocity estimated from 64 x 64 images steps by ~0.1 m/s per pixel
and would be a mostly-noise target.
The goal enters the cost, not the state. The table top is the robot's calibrated workspace
(``sim/push.yaml``, section ``table``), like a table's pose configured on a real cell.

Cost (`PushTask.cost_terms`; weights in config/push.yaml): box-to-goal distance; the hand's
way round the box to the *pre-push point* behind it on the goal-box line (`approach_cost`), so
that the hand goes round the box rather than into its near face; a barrier at the table's
edges; effort; ensemble disagreement on the box's position.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Sequence

import numpy as np
import torch

from hlai_ros.contract import OBJECT_POSE
from hlai_ros.cost.base import CostContext, check_shapes
from hlai_ros.perception.push import STATE_NAMES, PushPerception, PushPerceptionConfig
from hlai_ros.sim.base import CameraModel
from hlai_ros.tasks.base import Task
from hlai_ros.tasks.registry import register_task


def table_bounds() -> list[float]:
    """The table top (x_min, x_max, y_min, y_max), metres, world frame."""
    from hlai_ros.sim.push import load_scene
    table = load_scene()['table']
    (cx, cy), (hx, hy) = table['center'], table['half_extents']
    return [cx - hx, cx + hx, cy - hy, cy + hy]


def _side_angle(states: torch.Tensor, goal: torch.Tensor, ee_indices: Sequence[int],
                box_indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The hand's angle (rad) about the box from its pushing side, and its distance (m)."""
    ee = states[..., list(ee_indices)]
    box = states[..., list(box_indices)]
    away = box - goal
    behind = away / torch.sqrt(away.pow(2).sum(-1, keepdim=True) + 1e-6)
    rel = ee - box
    along = (rel * behind).sum(-1)
    across = behind[..., 0] * rel[..., 1] - behind[..., 1] * rel[..., 0]
    return torch.atan2(across, along), torch.sqrt(rel.pow(2).sum(-1) + 1e-9)


def approach_cost(states: torch.Tensor, goal: torch.Tensor, standoff: float,
                  clearance: float = 0.035, turn: float = 0.6,
                  ee_indices: Sequence[int] = (0, 1),
                  box_indices: Sequence[int] = (2, 3)) -> torch.Tensor:
    """How far (m) the hand is from pushing the box towards the goal, the way round the box.

    In polar coordinates about the box centre, with angle 0 on the side away from the goal
    (where the hand must be to push the box towards it): the arc the hand still has to travel
    round the box, ``(standoff + clearance) * |angle|``, plus its radial distance from a
    desired radius that is `standoff` behind the box and widens by `clearance` once the hand is
    more than `turn` radians off that side (so that it circles clear of the box instead of
    dragging it). Zero at the pre-push point ``box - standoff * (goal - box) / |goal - box|``.
    A straight-line distance to that point would lead a hand on the wrong side through the box.
    The way round is the one on the hand's side at the plan's start (step 0): the angles of the
    later steps are unwrapped step by step from it, so a hand in front of the box does not see
    two equally good ways round, between which a sampling planner's average would stall.

    Args:
        states: states (E, N, T+1, S), metres, index 0 the current one (not scored).
        goal: goal position (2,) or (N, 2), metres.
        standoff: box centre to the hand's centre when pushing, metres.
        clearance: extra radius (m) while circling round the box.
        turn: angle (rad) off the pushing side beyond which the hand circles at full clearance.
        ee_indices: state indices of the hand's (x, y).
        box_indices: state indices of the box's (x, y).

    Returns:
        (E, N, T) costs, metres, for steps 1..T.

    """
    goal = torch.as_tensor(goal, dtype=states.dtype, device=states.device)
    goal = goal.view(1, 1, 1, 2) if goal.dim() == 1 else goal.view(1, -1, 1, 2)
    angle, radius = _side_angle(states, goal, ee_indices, box_indices)
    turned = angle[..., 1:] - angle[..., :-1]
    angle = angle[..., :1] + torch.atan2(torch.sin(turned), torch.cos(turned)).cumsum(-1)
    radius = radius[..., 1:]
    angle = torch.sqrt(angle.pow(2) + 1e-4)
    wanted = standoff + clearance * (angle / turn).clamp(max=1.0)
    radial = torch.sqrt((radius - wanted).pow(2) + 1e-6)
    return (standoff + clearance) * angle + radial


@register_task
class PushTask(Task):
    """Push the box to within 3 cm of the goal; never off the table."""

    name = 'push'
    embodiment_name = 'panda'
    env_id = 'hlai/Push-v0'
    world = 'hlai_ros.sim.push:PushWorld'
    max_steps = 200
    scripted = 'hlai_ros.sim.push_scripted:PushScripted'
    model_state_names = ('ee_x', 'ee_y', 'obj_x', 'obj_y', 'ee_vx', 'ee_vy')
    position_indices = (2, 3)
    goal_relative_indices = (0, 1, 2, 3)
    """The critic and the policy see the hand and the box relative to the goal."""
    pose_topic = OBJECT_POSE
    pose_labels = ('obj_x', 'obj_y')
    latent_defaults = MappingProxyType({'keypoint_decoder_proprio': True})
    """The pixel model's decoder draws the arm from proprioception, so that its keypoints go to
    the box (the goal is about the box; measured in BENCHMARKS.md, issue 12)."""
    latent_goal_weighting = 'residual'
    """Keypoints mix the hand and the box: the goal compares them minus what proprioception
    predicts of them, which leaves the box."""
    latent_actor = 'policy'
    """The latent stack acts by its goal-conditioned policy, learned from the recorded episodes
    and their goal images: planning over the keypoint goal cost and the value pushed 5% of the
    boxes home, the policy 89% (seeds 0..99; BENCHMARKS.md, issue 12)."""
    latent_cost_weights = MappingProxyType({'value': 1.0})
    """The latent stack leans on the learned steps-to-goal value: the keypoint goal term alone
    never brings the hand behind the box (BENCHMARKS.md, issue 12)."""
    approach_standoff = 0.045
    """Box centre to hand centre when pushing, m: the largest box's half width (2.8 cm) plus
    the fingertips' half thickness and clearance (1.6 cm), as the scripted baseline pushes."""
    approach_clearance = 0.035
    """Extra radius (m) of the approach's way round the object (`approach_cost`)."""

    def cost_terms(self) -> dict[str, Any]:
        """Box-to-goal distance, the pre-push approach, the table-edge barrier, effort, doubt."""
        return {
            'terms': ['goal', 'approach', 'fall', 'effort', 'uncertainty'],
            'goal': {'position_indices': [2, 3], 'terminal_weight': 2.0},
            'approach': {'kind': 'function', 'function': self._approach},
            'fall': {'kind': 'platform_fall', 'position_indices': [2, 3],
                     'bounds': table_bounds(), 'margin': 0.015, 'sharpness': 300.0,
                     'ensemble_reduce': 'max'},
            'effort': {'scale': [0.2, 0.2]},
            'uncertainty': {'state_indices': [2, 3]},
        }

    oracle_objective = 'cost'
    """The oracle plans this cost on the true states: the world's reward (box-goal distance)
    does not change until the hand touches the box, so within the oracle's 8-step horizon a hand
    that starts away from the box sees no difference between its samples."""

    def true_state(self, ground_truth: dict[str, Any], previous: dict[str, Any] | None,
                   dt: float) -> np.ndarray:
        """Hand and box positions from ground truth, the hand's velocity by differences."""
        ee = np.asarray(ground_truth['ee_position'], dtype=np.float64)[:2]
        box = np.asarray(ground_truth['object_position'], dtype=np.float64)[:2]
        velocity = np.zeros(2)
        if previous is not None:
            velocity = (ee - np.asarray(previous['ee_position'], dtype=np.float64)[:2]) / dt
        return np.concatenate([ee, box, velocity]).astype(np.float32)

    def _approach(self, states: torch.Tensor, actions: torch.Tensor,
                  context: CostContext) -> torch.Tensor:
        """Approach term: states (E, N, T+1, S), actions (N, T, A) -> (E, N, T), metres."""
        check_shapes(states, actions)
        if context.goal is None:
            raise ValueError(f'the {self.name} approach cost needs CostContext.goal, got None')
        return approach_cost(states, context.goal, self.approach_standoff,
                             self.approach_clearance)

    def make_perception(self, camera: CameraModel, control_dt: float = 0.1) -> PushPerception:
        """Forward kinematics + colour/depth box estimator of `hlai_ros.perception.push`."""
        return PushPerception(camera, PushPerceptionConfig(control_dt=control_dt))

    def encode(self, estimate) -> tuple[tuple[str, ...], np.ndarray]:
        """The estimator's vector, labelled `hlai_ros.perception.push.STATE_NAMES`."""
        return STATE_NAMES, np.asarray(estimate, dtype=np.float32)
