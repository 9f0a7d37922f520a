"""Side-by-side closed-loop comparison on a task: random, scripted, learned stack, oracle MPC.

Every controller runs the same seeds in the pure-Python loop; the results carry 95% intervals
(Wilson for rates, Student t for the mean return).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hlai_ros.evaluation.rollouts import EpisodeRecord, RandomController
from hlai_ros.evaluation.statistics import ControllerSummary, summarise
from hlai_ros.tasks import get_task
from hlai_ros.tasks.controllers import (
    LearnedController,
    OracleConfig,
    OracleController,
    ScriptedController,
)
from hlai_ros.tasks.evaluate import evaluate

CONTROLLERS = ('random', 'scripted', 'learned', 'oracle')


@dataclass(frozen=True)
class CompareConfig:
    """What to compare and how long."""

    task: str
    """A registered task."""
    episodes: int = 100
    """Seeded episodes per controller (seeds seed .. seed + episodes - 1)."""
    oracle_episodes: int | None = None
    """Episodes for the oracle, which costs ~100x more per step (None: `episodes`)."""
    seed: int = 0
    """First seed."""
    controllers: tuple[str, ...] = CONTROLLERS
    """Which controllers to run, in order."""
    model_dir: str | None = None
    """Model folder of the learned stack (default: models/<task>)."""
    profile: tuple[tuple[str, float], ...] = ()
    """Changes to the task's cost profile for the learned stack, as profile parameters
    (``planner.horizon``, ``weights.goal``, ...; `hlai_ros.cost.profile`)."""
    latent: tuple[tuple[str, Any], ...] = ()
    """Settings of a latent stack (``latent.KEY`` without the prefix): its actor and its cost
    weights (`hlai_ros.latent.stack.latent_options`); refused for a state folder."""
    oracle: OracleConfig = OracleConfig()
    """Oracle MPC settings."""
    device: str | None = None
    """Torch device of the learned stack (default: cuda if present, else cpu)."""
    use_critic: bool = True
    """Load the critic saved next to the world model (if any)."""
    use_policy: bool = True
    """Load the policy saved next to the world model (if any); it proposes samples as the
    profile's ``planner.policy_fraction`` says, and is the fallback either way."""


def learned_stack(config: CompareConfig):
    """The learned stack of a comparison: `hlai_ros.actor.stack.load_stack` of its folder."""
    from hlai_ros.actor.stack import load_stack
    task = get_task(config.task)
    profile = task.default_profile().with_params(dict(config.profile))
    return load_stack(task, config.model_dir, config.device, profile, config.use_critic,
                      config.use_policy, dict(config.latent))


def make_controller(name: str, config: CompareConfig):
    """Build one controller of the comparison."""
    task = get_task(config.task)
    if name == 'random':
        return RandomController.for_task(task, seed=config.seed)
    if name == 'scripted':
        return ScriptedController(task, seed=config.seed)
    if name == 'oracle':
        return OracleController(task, config.oracle)
    if name == 'learned':
        return LearnedController(learned_stack(config))
    raise ValueError(f'unknown controller {name!r}; choose from {list(CONTROLLERS)}')


def summarise_outcomes(name: str, outcomes: list[EpisodeRecord]) -> ControllerSummary:
    """Rates and mean return with 95% intervals."""
    return summarise(name, [o.episode_return for o in outcomes],
                     [o.success for o in outcomes],
                     [o.failure_reason is not None for o in outcomes],
                     1000.0 * sum(o.step_seconds for o in outcomes) / len(outcomes))


def compare(config: CompareConfig, progress: bool = True, log=print
            ) -> tuple[dict[str, ControllerSummary], dict[str, list[EpisodeRecord]]]:
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
            falls = sum(o.failure_reason is not None for o in result)
            log(f'{config.task} {name}: success {s.success_rate:.0%}, failure '
                f'{falls / n:.0%}, mean return {s.mean_return:.2f} over {n} episodes, '
                f'{s.mean_step_ms:.1f} ms/step')
    return summaries, outcomes
