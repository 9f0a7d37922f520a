"""Audit the learned roll stack's plans against the simulator (does the model rank them right?).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roll_plan_audit.py --model DIR --seeds 1,2

Runs the learned stack (fed the true state, so that perception is out of the question) and,
every `--every` steps, scores two action sequences of the planner's horizon by the task cost
(config/roll.yaml): the plan the stack chose, and what the privileged scripted baseline would
do from the same state (rolled out in a snapshot of the simulator). Each is scored twice: by
the world model (the planner's own objective, its members and latents) and by replaying it in
the simulator and costing the true states (plus 1000 for a fall), as the oracle does. A row
where the model prefers the chosen plan but the simulator prefers the scripted one is a model
error the planner exploits; a row where the simulator prefers the chosen plan too is the cost's
fault (no model would go round). The last column shows the ball's true and predicted drift
under the chosen plan; `--terms` breaks both costs down by term (model / true). Ground truth is
read for measuring only.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from hlai_ros.actor.stack import load_stack
from hlai_ros.config import world_config
from hlai_ros.cost.base import CostContext
from hlai_ros.sim import make
from hlai_ros.tasks import get_task
from hlai_ros.tasks.controllers import LearnedController, ScriptedController


def true_cost(world, task, cost, snap, start, previous, actions) -> tuple[float, np.ndarray]:
    """Task cost of `actions` (T, A) replayed in the simulator from `snap`, and its states."""
    world.restore(snap)
    states = np.repeat(task.true_state(start, previous, world.dt)[None], len(actions) + 1, 0)
    before, failed = start, False
    for k, a in enumerate(actions):
        _, _, done, _, info = world.step(np.asarray(a, dtype=np.float32))
        states[k + 1:] = task.true_state(info['ground_truth'], before, world.dt)
        before = info['ground_truth']
        if done:
            failed = info['failure'] is not None
            break
    world.restore(snap)
    goal = torch.as_tensor(np.asarray(start['goal'], dtype=np.float32)[:2])
    value = cost(torch.from_numpy(states)[None, None], torch.from_numpy(actions)[None],
                 CostContext(goal=goal))
    return float(value) + 1000.0 * failed, states


def scripted_actions(world, task, snap, obs, info, horizon: int) -> np.ndarray:
    """The scripted baseline's next `horizon` actions from `snap` (zeros after an ending)."""
    scripted = ScriptedController(task)
    scripted.reset()
    world.restore(snap)
    actions = np.zeros((horizon, task.action_dim), np.float32)
    for k in range(horizon):
        actions[k] = scripted.act(obs, info)
        obs, _, done, _, info = world.step(actions[k])
        if done:
            break
    world.restore(snap)
    return actions


def print_terms(cost, context, actions, model_states, true_states) -> None:
    """Each term's sum over the horizon for the two plans, by the model and replayed true."""
    true_states = torch.from_numpy(true_states).unsqueeze(0)  # one 'member'
    with torch.no_grad():
        by_model = cost.per_term(model_states, actions, context)
        by_truth = cost.per_term(true_states, actions, context)
    for i, name in enumerate(('plan', 'scripted')):
        row = '  '.join(f'{term} {float(by_model[term][i].sum()):5.2f}/'
                        f'{float(by_truth[term][i].sum()):5.2f}' for term in by_model
                        if abs(float(by_model[term][i].sum())) + abs(float(
                            by_truth[term][i].sum())) > 0.005)
        print(f'      {name:8s} model/true: {row}')


def main() -> None:
    """Parse the arguments, run the episodes and print one row per audited step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='world model folder')
    parser.add_argument('--seeds', default='1,2', help='comma-separated episode seeds')
    parser.add_argument('--every', type=int, default=10, help='audit every this many steps')
    parser.add_argument('--terms', action='store_true',
                        help='also print each cost term of both plans, by the model and true')
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task('roll')
    stack = load_stack(task, args.model, 'cpu')
    planner = stack.agent.planner
    cost = task.cost(None)
    env = make('roll', config=world_config('roll'))
    world = env.unwrapped
    controller = LearnedController(stack)
    horizon = planner.config.horizon
    print('step  hand-ball  ball-goal | model: plan scripted | true: plan scripted | ball '
          'drift under the plan, true / model (cm)')
    for seed in (int(s) for s in args.seeds.split(',')):
        obs, _ = env.reset(seed=seed)
        controller.reset(world, seed)
        previous, truth, info, k = None, world.ground_truth(), {}, 0
        info = {'ground_truth': truth}
        while True:
            percept = task.perceive(controller.estimator, obs)
            percept = dataclasses.replace(
                percept, model_state=task.true_state(truth, previous, world.dt))
            plan = stack.plan(percept)
            if k and k % args.every == 0:
                chosen = np.asarray(plan.actions, dtype=np.float32)
                with world.camera_disabled():
                    snap = world.snapshot()
                    other = scripted_actions(world, task, snap, obs, info, horizon)
                    both = torch.from_numpy(np.stack([chosen, other]))
                    with torch.no_grad():
                        model, states = planner.objective(
                            torch.as_tensor(percept.model_state), planner._z,
                            task.context(percept), both, with_states=True)
                    true_plan, plan_states = true_cost(world, task, cost, snap, truth,
                                                       previous, chosen)
                    true_other, other_states = true_cost(world, task, cost, snap, truth,
                                                         previous, other)
                hand, ball = truth['ee_position'][:2], truth['object_position'][:2]
                drift_true = 100 * np.linalg.norm(plan_states[-1, 2:4] - ball)
                drift_model = 100 * np.linalg.norm(
                    states[:, 0, -1, 2:4].mean(0).numpy() - ball)
                print(f'{seed:3d}:{k:<3d} {100 * np.linalg.norm(hand - ball):6.1f} cm '
                      f'{100 * np.linalg.norm(ball - truth["goal"][:2]):6.1f} cm | '
                      f'{float(model[0]):7.2f} {float(model[1]):7.2f} | {true_plan:7.2f} '
                      f'{true_other:7.2f} | {drift_true:4.1f} / {drift_model:4.1f}', flush=True)
                if args.terms:
                    print_terms(planner.cost, task.context(percept), both, states,
                                np.stack([plan_states, other_states]))
            previous = truth
            obs, _, done, cut, info = env.step(np.asarray(plan.action))
            truth, k = info['ground_truth'], k + 1
            if done or cut:
                break
        print(f'seed {seed}: ' + ('success' if info['is_success']
                                  else info['failure'] or 'time limit') + f' after {k} steps')
    env.close()


if __name__ == '__main__':
    main()
