"""From recorded episodes to world-model episodes: perception over every frame.

The recordings (hlai_ros.data, from `hlai collect` or a real robot) hold raw sensors and
commands; training needs model states. Each episode gets a fresh estimator built from the
calibrated camera carried by the bag, so the states are what the robot itself would perceive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hlai_ros.tasks.base import Task, close_estimator
from hlai_ros.world_model.dataset import Episode as ModelEpisode


@dataclass(frozen=True)
class TaskRun:
    """A run of consecutive valid commands, with what the critic needs besides the states."""

    states: np.ndarray
    """Model states s[0..T], float32 (T+1, S)."""
    actions: np.ndarray
    """Commands a[0..T-1], float32 (T, A)."""
    goal: np.ndarray
    """The perceived goal (x, y), metres, float32 (2,)."""
    scene: Any
    """The perceived static scene at the run's last step (for the scene's cost terms)."""
    terminal: bool
    """The run ends where the episode ended in success or failure (nothing follows it)."""
    failed: bool
    """The episode ended in a failure (fall, collision) at the run's end."""

    def __len__(self) -> int:
        """Number T of transitions."""
        return int(self.actions.shape[0])

    def model_episode(self) -> ModelEpisode:
        """The states and actions alone, for world-model training."""
        return ModelEpisode(self.states, self.actions)


def perceive_runs(task: Task, episode) -> list[TaskRun]:
    """Perceive one recorded episode; return its runs of consecutive valid commands.

    A step whose command is missing (NaN, e.g. a gap in a real recording) splits the episode,
    since the model must never be taught a transition under an unknown action. With
    `Task.train_measured_only`, so does every frame perception did not measure
    (`Percept.measured`) and the frame after it (whose velocity differences a guessed
    position).
    """
    camera = episode.camera
    if camera is None:
        raise ValueError(f'{episode.source} episode {episode.index}: no camera extrinsics '
                         '(/tf_static) in the recording; perception needs the calibrated pose')
    estimator = task.make_perception(camera)
    n = episode.num_steps
    try:
        percepts = [task.perceive(estimator, episode.observation(t)) for t in range(n + 1)]
    finally:
        close_estimator(estimator)
    states = np.stack([p.model_state for p in percepts])
    valid = episode.action_valid & np.isfinite(episode.actions).all(axis=1)
    valid &= np.isfinite(states[:-1]).all(axis=1) & np.isfinite(states[1:]).all(axis=1)
    if task.train_measured_only:
        measured = np.array([p.measured for p in percepts])
        measured[1:] &= measured[:-1].copy()  # and the frame before
        valid &= measured[:-1] & measured[1:]
    failed = bool(getattr(episode, 'metadata', {}).get('failure'))
    ended = bool(getattr(episode, 'terminated', False))
    return [TaskRun(states[start:end + 1].astype(np.float32),
                    episode.actions[start:end].astype(np.float32),
                    np.asarray(percepts[start].goal, dtype=np.float32),
                    percepts[end].scene, ended and end == n, failed and end == n)
            for start, end in valid_spans(valid)]


def valid_spans(valid: np.ndarray) -> list[tuple[int, int]]:
    """The runs of consecutive True transitions of `valid` (T,), as (first, last) state indices.

    Run ``(s, e)`` holds the states ``s..e`` and the transitions ``s..e-1``.
    """
    spans, start = [], None
    for t in range(len(valid) + 1):
        if t < len(valid) and valid[t]:
            start = t if start is None else start
        elif start is not None:
            spans.append((start, t))
            start = None
    return spans


def perceive_episode(task: Task, episode) -> list[ModelEpisode]:
    """Perceive one recorded episode into world-model episodes (see `perceive_runs`)."""
    return [run.model_episode() for run in perceive_runs(task, episode)]


def perceive_task_runs(task: Task, episodes: Sequence, progress: bool = True
                       ) -> list[TaskRun]:
    """Perceive every recorded episode (see `perceive_runs`), with a progress bar."""
    if progress:
        from tqdm import tqdm
        episodes = tqdm(episodes, desc='perception', unit='episode')
    out: list[TaskRun] = []
    for ep in episodes:
        out.extend(perceive_runs(task, ep))
    if not out:
        raise ValueError('the recordings hold no transition with a valid command')
    return out


def perceive_episodes(task: Task, episodes: Sequence, progress: bool = True
                      ) -> list[ModelEpisode]:
    """Perceive every recorded episode into world-model episodes, with a progress bar."""
    return [run.model_episode() for run in perceive_task_runs(task, episodes, progress)]


def run_step_costs(task: Task, run: TaskRun, failure_cost: float = 0.0) -> np.ndarray:
    """The task cost of every recorded step of a run, (T,), float32, cost units.

    Each step is scored as the planner scores a predicted one, with the run's perceived scene
    and goal, but without the goal's terminal weight (a recording has no horizon end).
    `failure_cost` is added to the last step of a run that ended in a failure.
    """
    import torch

    from hlai_ros.cost.base import CostContext
    cost = task.cost(run.scene, terminal=False)
    states = torch.as_tensor(run.states).view(1, 1, *run.states.shape)
    actions = torch.as_tensor(run.actions).unsqueeze(0)
    with torch.no_grad():
        costs = cost.per_step(states, actions, CostContext(goal=torch.as_tensor(run.goal)))
    out = costs[0].numpy().astype(np.float32)
    if run.failed and len(out):
        out[-1] += failure_cost
    return out


def value_trajectories(task: Task, runs: Sequence[TaskRun], failure_cost: float = 100.0):
    """Recorded runs as critic training data: states, per-step task costs, terminal, goal."""
    from hlai_ros.actor.training import ValueTrajectory
    return [ValueTrajectory(run.states, run_step_costs(task, run, failure_cost), run.terminal,
                            run.goal) for run in runs if len(run)]


def goal_relative_indices(task: Task) -> tuple[int, ...]:
    """Model-state entries the critic and policy see relative to the goal.

    A task may name them (`goal_relative_indices`, e.g. both the hand and the object of a push);
    by default they are the position that must reach the goal.
    """
    return tuple(task.goal_relative_indices or task.position_indices)


def train_task_actor(task: Task, model, runs: Sequence[TaskRun], config=None,
                     progress: bool = True):
    """Train the critic and the policy of a task's world model from its perceived runs.

    The critic learns the task cost of the recordings (with each run's perceived scene); the
    policy learns in imagination with the scene-free part of the task cost (goal, effort,
    uncertainty). Both see positions relative to the goal. Returns ActorTrainingResult.
    """
    from dataclasses import replace

    from hlai_ros.actor.training import ActorTrainingConfig, train_critic_and_policy
    config = config or ActorTrainingConfig()
    rel = goal_relative_indices(task)
    config = replace(config, critic=replace(config.critic, goal_relative_indices=rel),
                     policy=replace(config.policy, goal_relative_indices=rel))
    return train_critic_and_policy(model, task.cost(None), value_trajectories(task, runs),
                                   task.action_low, task.action_high, config, progress)


def critic_trajectories(task: Task, episodes: Sequence[dict], critic, model=None,
                        imagine_every: int = 4, imagine_horizon: int = 16,
                        failure_cost: float = 100.0, generator=None,
                        imagine_noise: tuple[float, ...] = (0.0,)):
    """Recorded (and imagined) episodes as TD(lambda) data of a critic: its features, costs.

    Each episode is a dict with ``states`` (T+1, S) and ``actions`` (T, A) as perceived and
    applied, ``goal`` (2,), ``scenes`` (the perceived scene of each step; the last one scores
    the whole episode, as the planner's cost would), ``success`` and ``failure``
    (`benchmarks/critic_record.py` writes them). Every step costs what the planner would charge
    for it (the task cost of that scene without the goal's terminal weight, `failure_cost` on
    a failed episode's last step); an episode that ended in success or failure owes nothing
    after it. With a world `model`, every `imagine_every`-th recorded state also starts an
    imagined run of `imagine_horizon` steps under the recorded actions, one per ensemble
    member, scored the same way (bootstrapped at its end); one such run per entry of
    `imagine_noise`, whose actions are the recorded ones plus Gaussian noise of that std (a
    fraction of the action half-range, clipped to the bounds), so that the critic also learns
    the states a planner's samples reach and the recordings do not. Returns `ValueTrajectory`s
    whose states are the critic's features (`Critic.features`, in the episode's scene).
    """
    import torch

    from hlai_ros.actor.imagination import member_step_costs
    from hlai_ros.actor.training import ValueTrajectory
    from hlai_ros.cost.base import CostContext
    out = []
    for ep in episodes:
        states = torch.as_tensor(ep['states'], dtype=torch.float32)
        actions = torch.as_tensor(ep['actions'], dtype=torch.float32)
        if len(actions) == 0:
            continue
        goal = torch.as_tensor(ep['goal'], dtype=torch.float32)
        cost = task.cost(ep['scenes'][-1], terminal=False)
        context = CostContext(goal=goal)
        with torch.no_grad():
            costs = cost.per_step(states.view(1, 1, *states.shape), actions[None], context)[0]
            if ep.get('failure'):
                costs[-1] += failure_cost
            feats = critic.features(states, goal, cost)
            out.append(ValueTrajectory(feats.numpy(), costs.numpy(),
                                       bool(ep.get('success') or ep.get('failure')), None))
            if model is None:
                continue
            starts = list(range(0, len(actions) - imagine_horizon + 1, imagine_every))
            if not starts:
                continue
            low = torch.as_tensor(task.action_low, dtype=torch.float32)
            high = torch.as_tensor(task.action_high, dtype=torch.float32)
            s0 = states[starts]
            recorded = torch.stack([actions[t:t + imagine_horizon] for t in starts])
            for noise in imagine_noise:
                acts = recorded
                if noise:
                    acts = recorded + noise * (high - low) / 2 * torch.randn(
                        recorded.shape, generator=generator)
                    acts = torch.max(torch.min(acts, high), low)
                z = model.sample_z(len(starts), generator=generator)
                imagined = model.rollout(s0, acts, z)  # (E, n, H+1, S)
                e, n = imagined.shape[:2]
                step_costs = member_step_costs(cost, imagined, acts, context)  # (E*n, H)
                feats = critic.features(imagined.reshape(e * n, *imagined.shape[2:]), goal,
                                        cost)
                out.extend(ValueTrajectory(f.numpy(), c.numpy(), False, None)
                           for f, c in zip(feats, step_costs))
    if not out:
        raise ValueError('the recordings hold no step')
    return out
