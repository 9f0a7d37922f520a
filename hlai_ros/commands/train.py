"""`hlai train`: learn a task's world model from recorded episode bags.

Reads every bag under --data (from `hlai collect` or a recording of the ROS graph), runs the
task's perception over every frame to get model states (never ground truth), and trains the
ensemble world model with its latent variable by multi-step prediction, with a train/validation
split by episode and early stopping. Writes safetensors + a plain JSON config into --out, and a
model card (README.md) with the command, seed, data size and validation error. Training resumes
from --out when it was interrupted. ``--ray [ADDRESS] --workers N`` trains the world model, the
critic and the policy data-parallel with Ray Train into the same files (`hlai_ros.scale.train`,
`hlai_ros.scale.actor`, docs/ray.md).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import shlex
import sys
import time

from hlai_ros.tasks.registry import task_argument

HELP = "train a task's world model from episode bags (self-supervised, multi-step)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `hlai train`."""
    parser.add_argument('--task', type=task_argument, required=True,
                        help='a registered task (hlai_ros.tasks)')
    parser.add_argument('--data', type=Path, required=True,
                        help='folder of rosbag2 (MCAP) episode bags, searched recursively')
    parser.add_argument('--representation', choices=('state', 'latent'), default='state',
                        help="what the world model works on: 'state' (the task's estimator, "
                             "default) or 'latent' (an encoder learned from the camera's pixels "
                             'and proprioception, hlai_ros.latent; takes --set KEY=VALUE)')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder (default: models/<task>, models/<task>_latent)')
    parser.add_argument('--max-transitions', type=int, default=None,
                        help='train on at most this many transitions (whole episodes, in order)')
    parser.add_argument('--epochs', type=int, default=None, help='maximum epochs')
    parser.add_argument('--time-budget', type=float, default=None,
                        help='training time budget, seconds (default: the config, 600)')
    parser.add_argument('--ensemble', type=int, default=None, help='ensemble size')
    parser.add_argument('--latent-dim', type=int, default=None, help='latent size')
    parser.add_argument('--hidden', type=int, nargs='+', default=None,
                        help='hidden layer sizes, e.g. --hidden 128 128')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default=None, help='torch device (default: cuda if present)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default: 1; 0: torch\'s own): one thread '
                             'holds up beside other busy processes, two do not '
                             '(BENCHMARKS.md, issue 14)')
    parser.add_argument('--fresh', action='store_true',
                        help='ignore a resumable training state in --out')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    parser.add_argument('--no-actor', action='store_true',
                        help='train the world model only (no critic, no policy)')
    parser.add_argument('--actor-only', action='store_true',
                        help='train only the critic and the policy, through the world model '
                             'already in --out')
    parser.add_argument('--critic-steps', type=int, default=None,
                        help='TD(lambda) updates of the critic on recorded windows (default 1500)')
    parser.add_argument('--policy-steps', type=int, default=None,
                        help='policy updates through the model (default 300)')
    parser.add_argument('--actor-seconds', type=float, default=None,
                        help='time budget of critic + policy training, s (default 300)')
    parser.add_argument('--ray', nargs='?', const='', default=None, metavar='ADDRESS',
                        help='train the world model, the critic and the policy data-parallel '
                             'with Ray Train on the cluster at ADDRESS (without it: '
                             'RAY_ADDRESS, else a new Ray instance on this machine); same files '
                             'in --out (docs/ray.md)')
    parser.add_argument('--workers', type=int, default=2,
                        help='--ray: Ray Train workers (DDP processes; default: 2)')
    parser.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE',
                        help='override model config fields: WorldModelConfig '
                             '(hlai_ros/world_model/config.py, e.g. train_horizon=16; after '
                             "the task's model_defaults) for 'state', LatentConfig "
                             "(hlai_ros/latent/config.py, e.g. map_size=16) for 'latent'")
    parser.add_argument('--stage', choices=('all', 'encoder', 'planning', 'events', 'policy'),
                        default='all',
                        help="--representation latent: 'encoder' (the pixel model), 'planning' "
                             "(dynamics, goal cost, event heads, value and goal policy on the "
                             "folder's encoder), 'events' (only the event heads of a trained "
                             "folder), 'policy' (only its goal-conditioned policy) or 'all' "
                             '(default: encoder, then planning)')
    parser.add_argument('--plan-set', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--representation latent: override the planning stage '
                             '(hlai_ros.latent.planning.PlanningSettings), e.g. '
                             'dynamics_budget_s=600 event_within=15')


def run_latent(args: argparse.Namespace) -> int:
    """`hlai train --representation latent`: hand over to `hlai_ros.latent.train.main`."""
    from hlai_ros.latent.train import main as train_latent_main
    unused = [flag for flag, value in (
        ('--epochs', args.epochs),
        ('--ensemble', args.ensemble), ('--latent-dim', args.latent_dim),
        ('--hidden', args.hidden), ('--device', args.device), ('--actor-only', args.actor_only),
        ('--critic-steps', args.critic_steps), ('--policy-steps', args.policy_steps),
        ('--actor-seconds', args.actor_seconds)) if value not in (None, False)]
    if unused:
        raise SystemExit(f'hlai train: {", ".join(unused)} apply to the state model only; '
                         'with --representation latent use --set KEY=VALUE')
    out = args.out or Path('models') / f'{args.task}_latent'
    argv = ['--task', args.task, '--data', str(args.data), '--out', str(out),
            '--seed', str(args.seed), '--stage', args.stage]
    if args.threads:
        argv += ['--threads', str(args.threads)]
    if args.time_budget is not None:
        argv += ['--time-budget', str(args.time_budget)]
    if args.max_transitions is not None:
        argv += ['--max-transitions', str(args.max_transitions)]
    if args.fresh:
        argv.append('--no-resume')
    if args.quiet:
        argv.append('--no-progress')
    if args.set:
        argv += ['--set', *args.set]
    if args.plan_set:
        argv += ['--plan-set', *args.plan_set]
    return train_latent_main(argv)


def _state_settings(pairs: list[str], task) -> dict:
    """`--set KEY=VALUE` pairs as WorldModelConfig values (YAML scalars).

    Checked by name, then as a whole config with the task's sizes and `Task.model_defaults`.
    """
    from hlai_ros.commands import key_values
    from hlai_ros.world_model.config import WorldModelConfig
    known = set(WorldModelConfig.__dataclass_fields__) - {'state_dim', 'action_dim'}
    settings = key_values(pairs, 'hlai train')
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SystemExit(f'hlai train: --set {unknown}: not a setting; KEY is one of '
                         f'{sorted(known)}')
    try:  # checked before the data are read
        WorldModelConfig.from_dict({**task.model_defaults, **settings,
                                    'state_dim': task.state_dim, 'action_dim': task.action_dim})
    except (TypeError, ValueError) as exc:
        raise SystemExit(f'hlai train: --set: {exc}') from None
    return settings


def run(args: argparse.Namespace) -> int:
    """Train and save; return 0."""
    if args.threads < 0:
        raise SystemExit(f'hlai train: --threads must be >= 0, got {args.threads}')
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from hlai_ros.data import load_episodes
    from hlai_ros.tasks import get_task
    from hlai_ros.tasks.pipeline import perceive_task_runs
    from hlai_ros.world_model.config import WorldModelConfig
    from hlai_ros.world_model.train import train_world_model

    if not args.data.exists():
        raise SystemExit(f'hlai train: --data {args.data} does not exist')
    if args.representation == 'latent' and args.ray is not None:
        raise SystemExit('hlai train: --ray trains the state model only, not --representation '
                         'latent')
    if args.representation == 'latent':
        return run_latent(args)
    if args.plan_set or args.stage != 'all':
        raise SystemExit('hlai train: --plan-set and --stage apply to --representation '
                         'latent only')
    task = get_task(args.task)
    settings = _state_settings(args.set, task)
    if args.max_transitions is not None and args.max_transitions < 1:
        raise SystemExit('hlai train: --max-transitions must be at least 1')
    if args.no_actor and args.actor_only:
        raise SystemExit('hlai train: --no-actor and --actor-only exclude each other')
    if args.ray is not None:
        from hlai_ros.scale import RayMissingError, require_ray
        try:
            require_ray()
        except RayMissingError as exc:
            raise SystemExit(f'hlai train: {exc}') from None
    out = args.out or Path('models') / args.task
    progress = not args.quiet
    t0 = time.perf_counter()
    recorded = load_episodes(args.data, progress=progress)
    recorded = [ep for ep in recorded if ep.task in (None, args.task)]
    if not recorded:
        raise SystemExit(f'hlai train: no {args.task} episodes under {args.data}')
    runs = perceive_task_runs(task, recorded, progress=progress)
    if args.max_transitions is not None:
        kept, total = [], 0
        for run in runs:
            if total >= args.max_transitions:
                break
            kept.append(run)
            total += len(run)
        runs = kept
    episodes = [run.model_episode() for run in runs]
    n_transitions = sum(len(ep) for ep in episodes)
    overrides = {k: v for k, v in {
        'max_epochs': args.epochs, 'time_budget_s': args.time_budget,
        'ensemble_size': args.ensemble, 'latent_dim': args.latent_dim,
        'hidden_sizes': tuple(args.hidden) if args.hidden else None}.items() if v is not None}
    try:
        config = WorldModelConfig.from_dict({
            **task.model_defaults, **settings, 'state_dim': task.state_dim,
            'action_dim': task.action_dim, 'seed': args.seed, **overrides})
    except (TypeError, ValueError) as exc:
        raise SystemExit(f'hlai train: {exc}') from None
    command = 'hlai train ' + ' '.join(shlex.quote(a) for a in sys.argv[2:]) \
        if sys.argv[1:2] == ['train'] else 'hlai train (Python API)'
    metadata = {'task': args.task, 'identity': task.identity('state'),
                'state_names': list(task.model_state_names),
                'action_low': list(task.action_low), 'action_high': list(task.action_high),
                'transitions': n_transitions, 'episodes': len(episodes),
                'data': str(args.data), 'seed': args.seed, 'command': command}
    print(f'{args.task}: {len(recorded)} recorded episodes -> {len(episodes)} runs, '
          f'{n_transitions} transitions; perception took {time.perf_counter() - t0:.1f} s',
          flush=True)
    summary = {'task': args.task, 'out': str(out), 'transitions': n_transitions}
    if args.actor_only:
        from hlai_ros.world_model.checkpoint import load_world_model
        model = load_world_model(out, identity=task.identity('state'))
        previous = json.loads((out / 'world_model.json').read_text()).get('metadata', {})
        metadata = {**previous, 'actor_command': command}
        summary.update({k: previous.get(k) for k in ('val_error', 'best_epoch')},
                       stop_reason='see world_model.json')
    else:
        if args.ray is not None:
            from hlai_ros.scale.train import train_world_model_ray as train_world_model
            place = {'workers': args.workers, 'address': args.ray or None,
                     'use_gpu': (args.device or '').startswith('cuda')}
        else:
            place = {'device': args.device}
        model, history = train_world_model(episodes, config, out_dir=out, progress=progress,
                                           resume=not args.fresh, metadata=metadata, **place)
        best = (history.val_error[history.best_epoch] if history.best_epoch >= 0
                else float('nan'))
        summary.update({'epochs': len(history.val_error), 'best_epoch': history.best_epoch,
                        'val_error': best, 'stop_reason': history.stop_reason,
                        'model_minutes': round((time.perf_counter() - t0) / 60, 2)})
    if not args.no_actor:
        summary.update(train_actor(args, task, model, runs, out, metadata, progress))
    summary['minutes'] = round((time.perf_counter() - t0) / 60, 2)
    collected = args.data / 'collect_summary.json'
    if collected.exists():
        c = json.loads(collected.read_text())
        metadata['collect_command'] = (
            f"hlai collect --task {c['task']} --episodes {c['episodes_requested']} --workers "
            f"{c['workers']} --policy {c['policy']} --seed {c['seed']} --out {args.data}")
    write_card(out, metadata, summary)
    print(json.dumps(summary))
    return 0


def train_actor(args: argparse.Namespace, task, model, runs, out: Path, metadata: dict,
                progress: bool) -> dict:
    """Train and save the critic and the policy next to the world model; return figures."""
    from dataclasses import replace

    import torch

    from hlai_ros.actor.checkpoint import save_critic, save_policy
    from hlai_ros.actor.training import ActorTrainingConfig
    from hlai_ros.tasks.pipeline import train_task_actor

    config = ActorTrainingConfig(seed=args.seed)
    changes = {k: v for k, v in {'critic_steps': args.critic_steps,
                                 'policy_steps': args.policy_steps,
                                 'time_budget_s': args.actor_seconds}.items() if v is not None}
    config = replace(config, **changes)
    model = model.to('cpu').eval()
    torch.manual_seed(args.seed)
    meta = {'task': args.task, 'identity': task.identity('state'), 'seed': args.seed,
            'transitions': metadata.get('transitions'),
            'command': metadata.get('actor_command', metadata.get('command'))}
    if args.ray is not None:  # rank 0 writes the files below, the driver installs them
        from hlai_ros.scale.actor import train_task_actor_ray
        result = train_task_actor_ray(task, model, runs, config, out_dir=out,
                                      workers=args.workers, address=args.ray or None,
                                      progress=progress, metadata=meta)
    else:
        result = train_task_actor(task, model, runs, config, progress=progress)
        meta.update(critic_steps=len(result.critic_losses),
                    policy_steps=len(result.policy_losses))
        save_critic(result.critic, out, meta)
        save_policy(result.policy, out, meta)
    tail = max(1, len(result.critic_losses) // 10)
    return {'critic_td_loss': round(sum(result.critic_losses[-tail:]) / tail, 4),
            'critic_steps': len(result.critic_losses),
            'policy_steps': len(result.policy_losses),
            'policy_imagined_cost': round(result.policy_losses[-1], 3)
            if result.policy_losses else None,
            'actor_minutes': round(result.seconds / 60, 2)}


def write_card(out: Path, metadata: dict, summary: dict) -> None:
    """Write the model card (README.md) next to the checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# World model: {metadata['task']}", '',
        'Ensemble world model `G(s, a, z)` with a latent variable, trained self-supervised by '
        'multi-step prediction on perception-estimated states (never simulator ground truth).',
        '', f"- data collected with: `{metadata.get('collect_command', 'a recording')}`",
        f"- command: `{metadata['command']}`",
        f"- seed: {metadata['seed']}",
        f"- data: {metadata['episodes']} episode runs, {metadata['transitions']} transitions "
        f"from `{metadata['data']}`",
        f"- state: {', '.join(metadata['state_names'])}",
        f"- validation multi-step error (normalised MSE): {summary.get('val_error') or 0:.4g} "
        f"(epoch {summary.get('best_epoch')}, stopped: {summary.get('stop_reason', 'n/a')})",
        f"- training time: {summary['minutes']} min in this run", '']
    if summary.get('critic_steps'):
        lines[-1:-1] = [
            f"- critic V(s) (critic.json): {summary['critic_steps']} TD(lambda) updates on "
            f"recorded windows, final TD loss {summary['critic_td_loss']}; policy P(s) "
            f"(policy.json): {summary['policy_steps']} updates through the model (each also a "
            f"critic update on imagined rollouts); {summary['actor_minutes']} min",
            f"- critic and policy command: `{metadata.get('actor_command', metadata['command'])}`"]
    (out / 'README.md').write_text('\n'.join(lines))
