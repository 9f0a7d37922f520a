"""Learn a world model of any gymnasium env with Box spaces, then control it by planning.

`learn_and_evaluate(env_id, budget_steps, seed)` reads top to bottom: explore with random
actions, then alternate training the world model (with a reward head, or with a given cost
function) and collecting more data with the planner, until the budget of environment steps is
spent; train once more on everything, then evaluate random actions and the planner (and the
policy, when trained) over seeded episodes, side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from hlai_ros.actor.agent import Agent
from hlai_ros.actor.optimizer import OptimizerConfig
from hlai_ros.actor.planner import Planner, PlannerConfig
from hlai_ros.actor.policy import Policy, PolicyConfig, PolicyTrainer
from hlai_ros.cost.composite import Cost
from hlai_ros.cost.function import CostFunction, FunctionCost
from hlai_ros.cost.reward import RewardCost
from hlai_ros.cost.uncertainty import UncertaintyCost
from hlai_ros.evaluation.rollouts import EpisodeRecord, RandomController, run_episode
from hlai_ros.evaluation.statistics import ControllerSummary, summarise


@dataclass(frozen=True)
class GymLearningConfig:
    """How to explore, train and evaluate on a gymnasium env."""

    random_fraction: float = 0.3
    """Fraction of the step budget explored with random actions before the first model."""
    rounds: int = 2
    """Train-then-collect-with-the-planner rounds sharing the rest of the budget."""
    episodes: int = 5
    """Evaluation episodes per controller (seeds seed+10000+i)."""
    max_episode_steps: int | None = None
    """Cap on steps per episode (exploration and evaluation); None keeps the env's limit."""
    planner: PlannerConfig = PlannerConfig(
        horizon=15, sampling=OptimizerConfig(samples=256, iterations=2), gradient_steps=1,
        policy_fraction=0.0, critic_weight=0.0)
    """Planner settings for data collection and evaluation."""
    model: dict = field(default_factory=lambda: {
        'latent_dim': 0, 'ensemble_size': 3, 'hidden_sizes': (128, 128), 'train_horizon': 4,
        'max_epochs': 60, 'patience': 8, 'time_budget_s': 60.0, 'batch_size': 128})
    """World-model settings (WorldModelConfig fields) other than sizes and the reward head."""
    uncertainty_weight: float = 0.1
    """Weight of the ensemble-disagreement cost added to the task cost."""
    train_policy: bool = False
    """Also train a policy through the final model and evaluate it alone."""
    policy_steps: int = 300
    """Gradient steps of policy training through the model."""
    device: str | None = None
    """torch device; None chooses CUDA when present, else CPU."""
    progress: bool = False
    """Show progress bars."""


@dataclass
class GymResults:
    """What learn_and_evaluate measured."""

    env_id: str
    budget_steps: int
    seed: int
    controllers: dict[str, ControllerSummary]
    """Summary per controller name (random, planner, policy)."""
    model_train_seconds: float
    """Total wall time spent training the world model."""
    transitions: int
    """Environment steps the world model was trained on."""
    episode_returns: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {'env_id': self.env_id, 'budget_steps': self.budget_steps, 'seed': self.seed,
                'transitions': self.transitions,
                'model_train_seconds': self.model_train_seconds,
                'controllers': {k: v.to_dict() for k, v in self.controllers.items()}}


class AgentController:
    """An `Agent` as a `Controller` on a gymnasium env's observation vectors."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def reset(self, world=None, seed: int | None = None) -> None:
        """New episode: the agent forgets its warm start."""
        self.agent.reset()

    def act(self, obs, info: dict | None = None) -> np.ndarray:
        """The agent's action for the observation as a float32 state."""
        return self.agent.act(np.asarray(obs, dtype=np.float32))


def _box(space: gym.Space, what: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f'{what} space must be a 1-D gymnasium Box, got {space}')
    return space


def _train_model(records: list[EpisodeRecord], obs_dim: int, act_dim: int, reward_head: bool,
                 config: GymLearningConfig, seed: int, device):
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model
    episodes = [(r.observations, r.actions, r.rewards) if reward_head else
                (r.observations, r.actions) for r in records]
    wm_config = WorldModelConfig(state_dim=obs_dim, action_dim=act_dim,
                                 predict_reward=reward_head, seed=seed, **config.model)
    model, _ = train_world_model(episodes, wm_config, progress=config.progress, device=device)
    return model.eval()


def _task_cost(model, cost_fn: CostFunction | None, config: GymLearningConfig) -> Cost:
    """The env's cost: the given function, or the negated predicted reward; plus disagreement."""
    terms = [('cost', FunctionCost(cost_fn), 1.0, 1.0) if cost_fn is not None
             else ('reward', RewardCost(model), 1.0, 1.0)]
    if config.uncertainty_weight:
        terms.append(('uncertainty', UncertaintyCost(), config.uncertainty_weight, 1.0))
    return Cost(terms)


def _make_agent(model, action_space: gym.spaces.Box, cost_fn: CostFunction | None,
                config: GymLearningConfig, seed: int, device,
                policy: Policy | None = None) -> Agent:
    planner_config = replace(config.planner, seed=seed)
    if policy is not None and planner_config.policy_fraction == 0.0:
        planner_config = replace(planner_config, policy_fraction=0.1)
    planner = Planner(model, _task_cost(model, cost_fn, config), action_space.low,
                      action_space.high, planner_config, policy=policy, device=device)
    return Agent(planner, policy)


def learn_and_evaluate(env_id: str, budget_steps: int, seed: int = 0,
                       config: GymLearningConfig = GymLearningConfig(),
                       cost_fn: CostFunction | None = None,
                       env_kwargs: dict | None = None,
                       log: Callable[[str], None] | None = None) -> GymResults:
    """Explore, learn a world model, and evaluate random vs the planner on env_id.

    budget_steps: environment steps available for learning (exploration + planner data).
    cost_fn: optional cost function(states, actions, context) -> (N, T); without it the
    world model learns a reward head and the planner maximises predicted reward.
    """
    log = log or (lambda msg: None)
    if budget_steps < 2:
        raise ValueError(f'budget_steps must be >= 2, got {budget_steps}')
    device = torch.device(config.device) if config.device else (
        torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu'))
    torch.manual_seed(seed)
    env = gym.make(env_id, **(env_kwargs or {}))
    obs_space = _box(env.observation_space, 'observation')
    act_space = _box(env.action_space, 'action')
    obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
    reward_head = cost_fn is None

    records: list[EpisodeRecord] = []
    used = 0
    bar = tqdm(total=budget_steps, desc=f'learning {env_id}', disable=not config.progress)

    def collect(controller, steps: int) -> None:
        nonlocal used
        target = min(budget_steps, used + steps)
        while used < target:
            cap = target - used
            if config.max_episode_steps is not None:
                cap = min(cap, config.max_episode_steps)
            rec = run_episode(env, controller, seed=seed + len(records), max_steps=cap,
                              record_observations=True)
            records.append(rec)
            used += len(rec.actions)
            bar.update(len(rec.actions))

    collect(RandomController.for_space(act_space, seed),
            max(1, int(config.random_fraction * budget_steps)))
    log(f'explored {used} random steps')
    train_seconds = 0.0
    per_round = (budget_steps - used) // max(config.rounds, 1)
    for r in range(config.rounds):
        start = time.perf_counter()
        model = _train_model(records, obs_dim, act_dim, reward_head, config, seed + r, device)
        train_seconds += time.perf_counter() - start
        steps = per_round if r < config.rounds - 1 else budget_steps - used
        collect(AgentController(_make_agent(model, act_space, cost_fn, config, seed + r, device)),
                steps)
        log(f'round {r + 1}: {used} steps collected')
    bar.close()
    start = time.perf_counter()
    model = _train_model(records, obs_dim, act_dim, reward_head, config, seed + 99, device)
    train_seconds += time.perf_counter() - start

    policy = None
    if config.train_policy:
        policy = _train_policy(model, records, act_space, cost_fn, config, seed, device)

    controllers: dict[str, Any] = {
        'random': RandomController.for_space(act_space, seed + 7),
        'planner': AgentController(_make_agent(model, act_space, cost_fn, config, seed, device,
                                               policy))}
    if policy is not None:
        controllers['policy'] = AgentController(Agent(policy=policy))
    summaries, returns = {}, {}
    for name, controller in controllers.items():
        recs = [run_episode(env, controller, seed=seed + 10000 + i,
                            max_steps=config.max_episode_steps) for i in range(config.episodes)]
        returns[name] = [r.total_return for r in recs]
        summaries[name] = summarise(name, returns[name], [r.success for r in recs],
                                    [r.failure for r in recs],
                                    1000.0 * float(np.mean([r.step_seconds for r in recs])))
        log(f'{name}: mean return {summaries[name].mean_return:.1f}')
    env.close()
    return GymResults(env_id, budget_steps, seed, summaries, train_seconds, used, returns)


def _train_policy(model, records, act_space, cost_fn, config, seed, device) -> Policy:
    """Train a policy through the model, starting imagined rollouts at recorded observations."""
    torch.manual_seed(seed)
    starts = torch.as_tensor(np.concatenate([r.observations for r in records]),
                             device=device)
    policy = Policy(starts.shape[1], act_space.low, act_space.high,
                    PolicyConfig(horizon=config.planner.horizon, critic_weight=0.0)).to(device)
    policy.set_normalization(starts)
    PolicyTrainer(policy, model, _task_cost(model, cost_fn, config)).fit(
        starts, config.policy_steps, generator=torch.Generator(device=device).manual_seed(seed))
    return policy.eval()
