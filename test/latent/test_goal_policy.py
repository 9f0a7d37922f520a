"""The latent stack's goal-conditioned policy: hindsight pairs, learning, files, planner use."""
from __future__ import annotations

import numpy as np
import pytest
from test_latent_stack import _latent_folder
import torch

from hlai_ros.actor.planner import PlannerConfig, uses_goal
from hlai_ros.actor.stack import load_stack
from hlai_ros.cost.base import CostContext
from hlai_ros.latent.goal import GoalCost
from hlai_ros.latent.planning import PlanningSettings, train_policy
from hlai_ros.latent.policy import LatentPolicy, PolicyFitConfig, fit_goal_policy, hindsight_pairs
from hlai_ros.latent.stack import LatentStack, load_latent_policy


def test_hindsight_pairs_take_successful_episodes_to_their_last_frame():
    episode = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    valid = np.array([1, 1, 0, 1, 0, 1, 0, 0], bool)     # last frames hold no command
    frames, goals = hindsight_pairs(episode, valid, np.array([True, False, True]), [0, 1, 2])
    assert frames.tolist() == [0, 1, 5] and goals.tolist() == [2, 2, 7]
    frames, _ = hindsight_pairs(episode, valid, np.array([False, False, False]), [0, 1, 2])
    assert len(frames) == 0


def _goal_cost() -> GoalCost:
    """Planning states [keypoint x, y | 2 proprioception numbers]: the keypoint is compared."""
    return GoalCost(0, 2, torch.ones(1), torch.ones(1))


def _recorded(steps: int, seed: int = 0, drift: float = 0.0):
    """Episodes of a behaviour that moves at most 0.2 a step straight towards its goal.

    The world adds a random drift of std `drift` to every step.
    """
    rng = np.random.default_rng(seed)
    states, actions, episode, valid, goals = [], [], [], [], []
    for e in range(60):
        pos, goal = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
        goals.append(np.concatenate([goal, np.zeros(2)]))
        for t in range(steps):
            last = t == steps - 1
            a = np.full(2, np.nan) if last else np.clip(goal - pos, -0.2, 0.2)
            states.append(np.concatenate([pos, rng.normal(size=2)]))
            actions.append(a)
            episode.append(e)
            valid.append(not last)
            if not last:
                pos = pos + a + drift * rng.normal(size=2)
    return (torch.as_tensor(np.array(states), dtype=torch.float32),
            torch.nan_to_num(torch.as_tensor(np.array(actions), dtype=torch.float32)),
            np.array(episode), np.array(valid), torch.as_tensor(np.array(goals),
                                                                dtype=torch.float32))


def test_the_policy_learns_to_head_for_the_goal_it_was_shown_and_keeps_its_best_check():
    states, actions, episode, valid, _ = _recorded(12)
    succeeded = np.ones(60, bool)
    succeeded[5] = False                        # a failed episode is never imitated
    policy, report = fit_goal_policy(states, actions, valid, episode, succeeded, _goal_cost(),
                                     [-0.2, -0.2], [0.2, 0.2], list(range(50)),
                                     list(range(50, 60)), PolicyFitConfig(steps=1000))
    assert report['train_frames'] == 49 * 11 and report['val_frames'] == 10 * 11
    assert report['val_mse'] < 0.3 * report['val_mse_mean_baseline']
    assert 0 < report['best_step'] <= 1000
    latent = LatentPolicy(policy, _goal_cost())
    assert uses_goal(latent)
    s = torch.tensor([0.5, -0.5, 0.0, 0.0])
    a = latent.act(s, torch.tensor([-0.5, 0.5, 0.0, 0.0]))
    assert a.shape == (2,) and a[0] < -0.1 and a[1] > 0.1        # towards the goal
    assert np.abs(a).max() <= 0.2 + 1e-6                          # within the recorded bounds


def test_recorded_goal_images_are_the_goals_the_policy_learns_to_reach():
    # short episodes that drift end far from their goals, not on the way to them: only the
    # recorded goal says where they head
    states, actions, episode, valid, goals = _recorded(3, seed=1, drift=0.3)
    goals[7] = float('nan')                     # an episode without its goal image
    fits = {}
    for name, given in (('last frame', None), ('goal image', goals)):
        _, fits[name] = fit_goal_policy(states, actions, valid, episode, np.ones(60, bool),
                                        _goal_cost(), [-0.2, -0.2], [0.2, 0.2],
                                        list(range(50)), list(range(50, 60)),
                                        PolicyFitConfig(steps=1000), goal_states=given)
    assert fits['last frame']['goal_images'] == 0 and fits['goal image']['goal_images'] == 59
    assert fits['goal image']['val_mse'] < 0.5 * fits['last frame']['val_mse']


def test_the_policy_is_written_with_the_cost_and_proposes_samples_and_the_fallback(tmp_path):
    task, folder, data, report = _latent_folder(tmp_path)
    assert report['policy']['successful_episodes'] == 0   # the fake episodes mark no success
    assert load_latent_policy(folder) is None
    data.succeeded = np.array([i not in (1, 4) for i in range(data.num_episodes)])
    fit = train_policy(folder, data, PlanningSettings(policy_steps=50, val_fraction=0.34),
                       progress=False, log=lambda *_: None)
    assert fit['train_frames'] > 0 and 'val_mse' in fit
    stack = load_stack(task, folder, 'cpu')
    assert stack.policy is not None and stack.heads is not None and stack.value is not None
    stack = LatentStack(task, stack.encoder, stack.model, stack.goal_cost, stack.heads,
                        stack.value, planner=PlannerConfig(horizon=4, policy_fraction=0.5),
                        device='cpu', policy=stack.policy.policy)
    assert stack.planner.policy is stack.policy
    frame = {'rgb': data.rgb[0].permute(1, 2, 0).numpy(), 'depth': data.depth[0].float().numpy(),
             'proprio': data.proprio[0].numpy()}
    stack.set_goal(frame)
    percept = stack.perceive(frame)
    proposals = stack.planner.proposals(
        torch.as_tensor(percept.state), stack.model.sample_z(4),
        CostContext(goal=stack.goal))
    assert proposals.shape[1:] == (4, 2) and torch.isfinite(proposals).all()
    fallback = stack.fallback(percept)
    assert fallback.shape == (2,) and np.isfinite(fallback).all()
    assert np.isfinite(stack.plan(percept).action).all()
    # acting by the policy: its action now, its rollout through the dynamics as the plan
    by_policy = LatentStack(task, stack.encoder, stack.model, stack.goal_cost,
                            planner=PlannerConfig(horizon=4), device='cpu',
                            policy=stack.policy.policy, actor='policy')
    by_policy.set_goal(frame)
    plan = by_policy.plan(by_policy.perceive(frame))
    assert plan.actions.shape == (4, 2) and np.isfinite(plan.cost)
    np.testing.assert_allclose(plan.action, by_policy.policy.act(percept.state, by_policy.goal),
                               atol=1e-6)
    assert by_policy.last_plan.actions is plan.actions
    with pytest.raises(ValueError, match='needs a goal-conditioned policy'):
        LatentStack(task, stack.encoder, stack.model, stack.goal_cost, actor='policy')
