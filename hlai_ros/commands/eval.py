"""`hlai eval`: closed-loop evaluation of controllers over seeded episodes, side by side.

Two paths share the printing: `--gym-id ENV` learns a world model of any gymnasium env with
Box spaces from `--budget` steps and compares random actions with the planner (and, with
`--policy`, the policy alone); `--task TASK` compares random, scripted, the learned stack
(models/<task>) and the oracle MPC on this project's worlds over the same seeds.
Each path returns {controller name: ControllerSummary}; `--json` prints one JSON object on the
last line with success_rate, failure_rate and mean_return (plus intervals) per controller.
"""
from __future__ import annotations

import argparse
import json
import sys

from hlai_ros.tasks.registry import task_argument

HELP = 'evaluate controllers in closed loop (random vs learned planner) with confidence intervals'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai eval`."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--gym-id', help='a gymnasium env id with Box spaces, e.g. Pendulum-v1')
    target.add_argument('--task', type=task_argument,
                        help="a registered task (hlai_ros.tasks), e.g. one of this project's")
    parser.add_argument('--budget', type=int, default=3000,
                        help='environment steps to learn from (gym path; default: 3000)')
    parser.add_argument('--episodes', type=int, default=5,
                        help='evaluation episodes per controller (default: 5)')
    parser.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
    parser.add_argument('--max-episode-steps', type=int, default=None,
                        help="cap on steps per episode (default: the env's own limit)")
    parser.add_argument('--samples', type=int, default=None,
                        help='planner samples per iteration (default: 256 gym; task: the '
                             'profile, config/<task>.yaml cost_critic planner.samples)')
    parser.add_argument('--horizon', type=int, default=None,
                        help='planning horizon (default: 15 gym; task: the profile, '
                             'planner.horizon)')
    parser.add_argument('--controllers', nargs='+', default=None,
                        choices=['random', 'scripted', 'learned', 'oracle'],
                        help='task path: controllers to compare (default: all four)')
    parser.add_argument('--oracle-episodes', type=int, default=None,
                        help='task path: episodes for the oracle MPC, which is ~100x slower '
                             '(default: --episodes)')
    parser.add_argument('--model', default=None,
                        help='task path: world-model checkpoint folder (default: models/<task>)')
    parser.add_argument('--no-critic', action='store_true',
                        help="task path: ignore the critic saved next to the world model")
    parser.add_argument('--critic-weight', type=float, default=None,
                        help="task path: weight of the critic's cost-to-go in the planner "
                             "(default: the profile's planner.critic_weight)")
    parser.add_argument('--policy-fraction', type=float, default=None,
                        help="task path: fraction of the planner's samples proposed by the "
                             "policy (default: the profile's planner.policy_fraction)")
    parser.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE',
                        help='task path: profile settings to plan with, as the cost_critic '
                             'section of config/<task>.yaml names them (e.g. weights.fall=100 '
                             'planner.infer_latents=8; YAML values; docs/parameters.md); for '
                             'a latent model folder also latent.actor=planner|policy and its '
                             'cost weights latent.goal, .terminal, .event, .uncertainty, '
                             '.effort, .value, .geodesic (LatentCostWeights)')
    parser.add_argument('--no-policy', action='store_true',
                        help="task path: ignore the policy saved next to the world model")
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default: 1; 0: torch\'s own). Two threads '
                             'are up to 1.3x faster on an idle 2-core machine but 4-9x slower '
                             'beside other busy processes (BENCHMARKS.md, issue 14)')
    parser.add_argument('--rounds', type=int, default=2,
                        help='train-then-collect-with-the-planner rounds (gym path; default: 2)')
    parser.add_argument('--train-seconds', type=float, default=60.0,
                        help='time budget of each world-model training (default: 60)')
    parser.add_argument('--policy', action='store_true',
                        help='also train a policy through the model and evaluate it alone')
    parser.add_argument('--device', default=None, help='torch device (default: cuda if present)')
    parser.add_argument('--progress', action='store_true', help='show progress bars')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object with the results on the last line')
    parser.add_argument('--ray', nargs='?', const='', default=None, metavar='ADDRESS',
                        help='task path: run the episodes as Ray tasks on the cluster at '
                             'ADDRESS (without it: RAY_ADDRESS, else a new Ray instance on '
                             'this machine); same per-seed outcomes (docs/ray.md)')


def evaluate_gym(args: argparse.Namespace) -> tuple[dict, dict]:
    """Learn and evaluate on a gymnasium env; returns ({name: summary}, extra JSON fields)."""
    from dataclasses import replace

    from hlai_ros.evaluation.gym_learning import GymLearningConfig, learn_and_evaluate

    base = GymLearningConfig()
    planner = replace(base.planner, horizon=args.horizon or 15,
                      sampling=replace(base.planner.sampling, samples=args.samples or 256))
    config = replace(base, episodes=args.episodes, rounds=args.rounds,
                     max_episode_steps=args.max_episode_steps, planner=planner,
                     model={**base.model, 'time_budget_s': args.train_seconds},
                     train_policy=args.policy, device=args.device, progress=args.progress)
    if args.rounds == 0:
        config = replace(config, random_fraction=1.0)
    results = learn_and_evaluate(args.gym_id, args.budget, args.seed, config,
                                 log=None if args.json else lambda m: print(m, flush=True))
    extra = {'env_id': results.env_id, 'budget_steps': results.budget_steps,
             'seed': results.seed, 'transitions': results.transitions,
             'model_train_seconds': round(results.model_train_seconds, 2)}
    return results.controllers, extra


def evaluate_task(args: argparse.Namespace) -> tuple[dict, dict]:
    """Evaluate random, scripted, the learned stack and the oracle MPC on a task."""
    from hlai_ros.actor.stack import latent_stack_options
    from hlai_ros.commands import key_values
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.compare import CONTROLLERS, CompareConfig, compare

    flags = {'planner.horizon': args.horizon, 'planner.samples': args.samples,
             'planner.critic_weight': args.critic_weight,
             'planner.policy_fraction': args.policy_fraction}
    changes = {**key_values(args.set, 'hlai eval'),
               **{k: v for k, v in flags.items() if v is not None}}
    latent = {k[len('latent.'):]: changes.pop(k) for k in list(changes)
              if k.startswith('latent.')}
    try:  # refuse a bad setting here, by name, not in the middle of the episodes
        task = get_task(args.task)
        task.default_profile().with_params(changes)
        latent_stack_options(task, args.model, latent)
    except ValueError as exc:
        raise SystemExit(f'hlai eval: {exc}') from None
    config = CompareConfig(task=args.task, episodes=args.episodes, seed=args.seed,
                           oracle_episodes=args.oracle_episodes, model_dir=args.model,
                           controllers=tuple(args.controllers or CONTROLLERS),
                           profile=tuple(changes.items()), latent=tuple(latent.items()),
                           device=args.device, use_critic=not args.no_critic,
                           use_policy=not args.no_policy)
    log = None if args.json else lambda m: print(m, flush=True)
    if args.ray is not None:
        from hlai_ros.scale.evaluate import compare_ray
        summaries, _ = compare_ray(config, args.ray or None, progress=args.progress, log=log)
    else:
        summaries, _ = compare(config, progress=args.progress, log=log)
    extra = {'task': args.task, 'seed': args.seed, 'episodes': args.episodes}
    return summaries, extra


def _fmt_rate(rate, interval) -> str:
    if rate is None:
        return 'n/a'
    return f'{100 * rate:5.1f}% [{100 * interval[0]:.0f}, {100 * interval[1]:.0f}]'


def print_table(summaries: dict, file=None) -> None:
    """Print one row per controller: success, failure and return with 95% intervals."""
    file = file or sys.stdout
    print(f'{"controller":<12} {"episodes":>8} {"success":>18} {"failure":>18} '
          f'{"mean return [95% CI]":>32} {"ms/step":>8}', file=file)
    for name, s in summaries.items():
        ret = f'{s.mean_return:9.1f} [{s.return_interval[0]:.1f}, {s.return_interval[1]:.1f}]'
        print(f'{name:<12} {s.episodes:>8} {_fmt_rate(s.success_rate, s.success_interval):>18} '
              f'{_fmt_rate(s.failure_rate, s.failure_interval):>18} {ret:>32} '
              f'{s.mean_step_ms:8.1f}', file=file)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the results."""
    if args.budget < 2 or args.episodes < 1:
        print(f'need --budget >= 2 and --episodes >= 1, got {args.budget} and {args.episodes}',
              file=sys.stderr)
        return 2
    if args.ray is not None:
        from hlai_ros.scale import RayMissingError, require_ray
        if args.gym_id:
            print('hlai eval: --ray applies to --task only', file=sys.stderr)
            return 2
        try:
            require_ray()
        except RayMissingError as exc:
            print(f'hlai eval: {exc}', file=sys.stderr)
            return 2
    if args.threads < 0:
        print(f'hlai eval: --threads must be >= 0, got {args.threads}', file=sys.stderr)
        return 2
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        summaries, extra = evaluate_gym(args) if args.gym_id else evaluate_task(args)
    except NotImplementedError as err:
        print(err, file=sys.stderr)
        return 2
    except ValueError as err:
        print(f'hlai eval: {err}', file=sys.stderr)
        return 2
    print_table(summaries)
    if args.json:
        print(json.dumps({**extra, 'controllers': {k: v.to_dict()
                                                   for k, v in summaries.items()}}))
    return 0
