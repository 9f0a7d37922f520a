"""The latent stack learns and plans from pixels and proprioception alone.

No module on its training or run-time path reads the simulator's ground truth
(`LatentDataset.positions`, an episode's `ground_truth`, `HlaiWorld.ground_truth`) or runs a
hand-written estimator (`hlai_ros.perception`); only the probes and benchmarks, which measure,
do. The README's "no ground truth" statement rests on this test.
"""
from __future__ import annotations

import ast
from pathlib import Path

import hlai_ros

ROOT = Path(hlai_ros.__file__).parent / 'latent'
PATH = ('checkpoint', 'config', 'cost', 'data', 'events', 'model', 'objective', 'planning',
        'policy', 'sigreg', 'stack', 'train', 'value')
"""Modules of training and run time (goal.py is checked function by function below)."""
FORBIDDEN_ATTRIBUTES = {'positions', 'ground_truth', 'true_state', 'true_camera'}


def offences(tree: ast.AST, allow: set[str] = frozenset()) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES - allow:
            found.append(f'.{node.attr} at line {node.lineno}')
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ''] if isinstance(node, ast.ImportFrom) else [
                a.name for a in node.names]
            found += [f'import {n} at line {node.lineno}' for n in names
                      if n.startswith('hlai_ros.perception')]
    return found


def test_training_and_run_time_modules_read_no_ground_truth_and_no_estimator():
    bad = {}
    for name in PATH:
        tree = ast.parse((ROOT / f'{name}.py').read_text())
        # data.py builds the probes' positions (kept apart, never given to training)
        allow = {'positions', 'ground_truth'} if name == 'data' else set()
        if found := offences(tree, allow):
            bad[name] = found
    assert not bad, bad


def test_data_keeps_ground_truth_apart_and_training_never_touches_it():
    tree = ast.parse((ROOT / 'data.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in ('windows', 'frames'):
            assert not offences(node), node.name          # what training draws from


def test_the_goal_cost_reads_no_ground_truth_only_its_ranking_benchmark_does():
    tree = ast.parse((ROOT / 'goal.py').read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name != 'goal_ranking':
            assert not offences(node), node.name


def test_the_learned_controller_gives_a_latent_stack_only_the_observation_and_goal_image():
    import inspect

    from hlai_ros.tasks.controllers import LearnedController
    source = inspect.getsource(LearnedController)
    assert 'goal_observation()' in source and 'ground_truth' not in source
