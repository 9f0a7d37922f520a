"""Side-by-side closed-loop comparison on a task: random, scripted, learned stack, oracle MPC.

Every controller runs the same seeds in the pure-Python loop; the results carry 95% intervals
(Wilson for rates, Student t for the mean return).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from hlai_ros.actor.optimizer import OptimizerConfig
from hlai_ros.actor.planner import PlannerConfig
from hlai_ros.evaluation.statistics import ControllerSummary, summarise
from hlai_ros.tasks import get_task
from hlai_ros.tasks.controllers import (
    LearnedController, OracleConfig, OracleController, RandomController, ScriptedController)
from hlai_ros.tasks.evaluate import evaluate, Outcome

CONTROLLERS = ('random', 'scripted', 'learned', 'oracle')


@dataclass(frozen=True)
class CompareConfig:
    """What to compare and how long."""

    task: str
    """'push' or 'cliff'."""
    episodes: int = 100
    """Seeded episodes per controller (seeds seed .. seed + episodes - 1)."""
    oracle_episodes: int | None = None
    """Episodes for the oracle, which costs ~100x more per step (None: `episodes`)."""
    seed: int = 0
    """First seed."""
    controllers: tuple[str, ...] = CONTROLLERS
    """Which controllers to run, in order."""
    model_dir: str | None = None
    """World-model checkpoint of the learned stack (default: models/<task>)."""
    planner: PlannerConfig | None = None
    """Planner of the learned stack; None: the task's (`task_planner`, config/<task>.yaml)."""
    oracle: OracleConfig = OracleConfig()
    """Oracle MPC settings."""
    device: str | None = None
    """Torch device of the learned stack (default: cuda if present, else cpu)."""
    use_critic: bool = True
    """Load the critic saved next to the world model (if any) as the planner's terminal cost."""
    use_policy: bool = True
    """Load the policy saved next to the world model (if any) for the planner's proposals."""
    critic_weight: float | None = None
    """Weight of the critic's cost-to-go in the planner (None: the task's `critic_weight`,
    else the planner's)."""
    policy_fraction: float | None = None
    """Fraction of the planner's samples proposed by the policy (None: the task's
    `policy_fraction`, else the planner's). The policy is loaded either way, as the fallback."""


PLANNER_BASE = PlannerConfig(
    horizon=12, sampling=OptimizerConfig(samples=128, iterations=2), gradient_steps=1)
"""The learned stack's planner before a task's settings (horizon, samples, iterations,
gradient steps) from the ``mpc_actor`` section of config/<task>.yaml are applied."""
PLANNER_PARAMS = ('horizon', 'samples', 'iterations', 'gradient_steps')


def task_planner(task: str, **changes) -> PlannerConfig:
    """The planner of `task`'s learned stack: `PLANNER_BASE` with the ``mpc_actor`` settings
    of config/<task>.yaml, then `changes` (same names), applied. One source for ``hlai eval``
    and the mpc_actor node; each task's sized for <= 50 ms a plan on two CPU cores."""
    from hlai_ros.config import load_params
    values = {k: v for k, v in load_params(task).get('mpc_actor', {}).items()
              if k in PLANNER_PARAMS}
    unknown = sorted(set(changes) - set(PLANNER_PARAMS))
    if unknown:
        raise ValueError(f'unknown planner settings {unknown}; known: {list(PLANNER_PARAMS)}')
    values.update({k: v for k, v in changes.items() if v is not None})
    base = PLANNER_BASE
    sampling = replace(base.sampling, samples=int(values.get('samples', base.sampling.samples)),
                       iterations=int(values.get('iterations', base.sampling.iterations)))
    return replace(base, sampling=sampling, horizon=int(values.get('horizon', base.horizon)),
                   gradient_steps=int(values.get('gradient_steps', base.gradient_steps)))


def default_model_dir(task: str) -> Path:
    """The shipped checkpoint folder of a task: models/<task>."""
    from hlai_ros.paths import model_dir
    return model_dir() / task


def make_controller(name: str, config: CompareConfig):
    """Build one controller of the comparison."""
    task = get_task(config.task)
    if name == 'random':
        return RandomController(task, seed=config.seed)
    if name == 'scripted':
        return ScriptedController(task, seed=config.seed)
    if name == 'oracle':
        return OracleController(task, config.oracle)
    if name == 'learned':
        from hlai_ros.world_model.checkpoint import load_world_model
        from hlai_ros.world_model.model import default_device
        device = torch.device(config.device) if config.device else default_device()
        path = Path(config.model_dir) if config.model_dir else default_model_dir(config.task)
        model = load_world_model(path, device=device,
                                 expect={'state_dim': task.state_dim,
                                         'action_dim': task.action_dim})
        critic, policy = load_actor(path, task, device, config.use_critic, config.use_policy)
        planner = config.planner or task_planner(config.task)
        for name in ('critic_weight', 'policy_fraction'):
            value = getattr(config, name)
            if value is None:
                value = getattr(task, name, None)
            if value is not None:
                planner = replace(planner, **{name: float(value)})
        return LearnedController(task, model, planner, critic=critic, policy=policy,
                                 device=device)
    raise ValueError(f'unknown controller {name!r}; choose from {list(CONTROLLERS)}')


def load_actor(path: Path, task, device, use_critic: bool = True, use_policy: bool = True):
    """The critic and the policy saved next to a world model: (critic | None, policy | None)."""
    from hlai_ros.actor.checkpoint import load_critic, load_policy
    critic = load_critic(path, device, task.state_dim) if use_critic else None
    policy = load_policy(path, device, task.state_dim) if use_policy else None
    return critic, policy


def summarise_outcomes(name: str, outcomes: list[Outcome]) -> ControllerSummary:
    """Rates and mean return with 95% intervals."""
    return summarise(name, [o.episode_return for o in outcomes],
                     [o.success for o in outcomes], [o.failure is not None for o in outcomes],
                     1000.0 * sum(o.seconds_per_step for o in outcomes) / len(outcomes))


def compare(config: CompareConfig, progress: bool = True, log=print
            ) -> tuple[dict[str, ControllerSummary], dict[str, list[Outcome]]]:
    """Run every controller of `config` on the same seeds; return summaries and outcomes."""
    if config.episodes < 1:
        raise ValueError(f'episodes must be at least 1, got {config.episodes}')
    summaries, outcomes = {}, {}
    for name in config.controllers:
        n = config.episodes
        if name == 'oracle' and config.oracle_episodes is not None:
            n = min(n, config.oracle_episodes)
        controller = make_controller(name, config)
        result = evaluate(config.task, controller, range(config.seed, config.seed + n),
                          progress=progress)
        outcomes[name] = result
        summaries[name] = summarise_outcomes(name, result)
        if log is not None:
            s = summaries[name]
            falls = sum(o.failure is not None for o in result)
            log(f'{config.task} {name}: success {s.success_rate:.0%}, failure '
                f'{falls / n:.0%}, mean return {s.mean_return:.2f} over {n} episodes, '
                f'{s.mean_step_ms:.1f} ms/step')
    return summaries, outcomes
