"""Online learning in latent space, hot reload into the latent stack, and the plan probe.

A tiny latent folder (an untrained tiny encoder, planning dynamics with the cliff task's latent
identity, a plain goal cost) is enough: the live learner only needs the encoder's layout and the
planning dynamics; the stack plans with whatever dynamics it holds.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from test_latent_model import TINY, tiny_data
import torch

import hlai_ros
from hlai_ros.latent.checkpoint import save_latent_model
from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.goal import GoalCost
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.stack import LatentStack, save_latent_cost
from hlai_ros.tasks import get_task
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model, save_world_model
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel

S = 2 * TINY['keypoints'] + TINY['proprio_latent_dim']
"""Planning state of the tiny encoder: keypoints (x, y each) + proprioception latent."""
B = torch.tensor(np.random.default_rng(7).normal(size=(S, 2)), dtype=torch.float32)


def world(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The 'true' planning dynamics of the stream: a drift under the command."""
    return 0.9 * s + 0.2 * torch.tanh(a @ B.T)


def stream(episodes: int, steps: int, seed: int):
    """Episodes of (planning states (T+1, S), actions (T, A)) under random commands."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(episodes):
        s = torch.randn(S, generator=g) * 0.5
        a = torch.rand(steps, 2, generator=g) * 2 - 1
        states = [s]
        for t in range(steps):
            states.append(world(states[-1], a[t]))
        out.append((torch.stack(states).numpy(), a.numpy()))
    return out


def tiny_folder(root: Path, task='cliff') -> tuple[Path, LatentWorldModel]:
    """Encoder + untrained planning dynamics + goal cost, with `task`'s latent identity."""
    torch.manual_seed(0)
    folder = root / f'{task}_latent'
    identity = {'identity': get_task(task).identity('latent')}
    encoder = LatentWorldModel(LatentConfig(**TINY))
    save_latent_model(encoder, folder, identity)
    dynamics = WorldModel(WorldModelConfig(state_dim=S, action_dim=2, ensemble_size=2,
                                           hidden_sizes=(64, 64), latent_dim=2))
    states = np.concatenate([e[0][:-1] for e in stream(4, 20, 1)])
    nxt = np.concatenate([e[0][1:] for e in stream(4, 20, 1)])
    actions = np.concatenate([e[1] for e in stream(4, 20, 1)])
    dynamics.fit_normalizers(*(torch.as_tensor(x) for x in (states, actions, nxt)))
    save_world_model(dynamics, folder, identity)
    k = TINY['keypoints']
    save_latent_cost(folder, GoalCost(0, 2 * k, torch.ones(k), torch.ones(k)), None, 'world')
    return folder, encoder


def latent_message(encoder, state: np.ndarray) -> tuple[tuple, np.ndarray]:
    """A /hlai/latent message's (layout, values) carrying planning state `state`."""
    from hlai_ros.latent.node_core import latent_layout
    layout = latent_layout(encoder)
    values = np.zeros(sum(size for _, size in layout), np.float32)
    values[encoder.map_dim:] = state
    return layout, values


def live_learner(folder: Path, out: Path, **settings):
    from hlai_ros.world_model.live import LiveLearner, WorldModelNodeConfig
    cfg = WorldModelNodeConfig(**dict(dict(
        task='cliff', model_path=str(folder), output_dir=str(out), learning_rate=3e-3,
        batch_size=32, min_transitions=8, replay_size=500, rehearsal_size=50,
        max_surprise=1e3), **settings))
    return LiveLearner(get_task('cliff'), cfg, torch.device('cpu'))


def feed(live, encoder, episodes) -> None:
    """Stream episodes through the learner as the node does: latent, then its command."""
    t = 0
    for states, actions in episodes:
        live.reset()
        for k, state in enumerate(states):
            live.on_state(live.read_state(*latent_message(encoder, state)), t)
            if k < len(actions):
                live.on_command(actions[k], t + 1)
            t += 100_000_000


def one_step_error(model, episodes) -> float:
    s = torch.as_tensor(np.concatenate([e[0][:-1] for e in episodes]))
    a = torch.as_tensor(np.concatenate([e[1] for e in episodes]))
    s2 = torch.as_tensor(np.concatenate([e[0][1:] for e in episodes]))
    z = torch.zeros(model.ensemble_size, len(s), model.latent_dim)
    with torch.no_grad():
        return float(((model.next(s, a, z).mean(0) - s2) ** 2).mean())


def test_live_learner_learns_latent_transitions_and_its_checkpoint_swaps_into_the_stack(
        tmp_path):
    from hlai_ros.actor.supervision import model_watcher
    folder, encoder = tiny_folder(tmp_path)
    out = tmp_path / 'online'
    live = live_learner(folder, out)
    assert live.representation == 'latent' and live.model is not None
    assert live.model.state_dim == S and live.error == ''
    assert 'no plan probe' in live.probe_note
    held_out = stream(4, 20, seed=99)
    before = one_step_error(live.model, held_out)
    feed(live, encoder, stream(6, 20, seed=3))
    assert live.stats['transitions'] == 6 * 20 and live.stats['rejected'] == 0
    losses = []
    for _ in range(150):
        assert live.update()
        losses.append(live.stats['loss'])
    after = one_step_error(live.model, held_out)
    assert after < 0.4 * before, (before, after)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert live.imagined_positions(held_out[0][0][0]) is None   # no probe: nothing to draw

    # a glitch (a jump no physics makes) is published, not learned from
    live.cfg = type(live.cfg)(**dict(vars(live.cfg), max_surprise=5.0))
    live.reset()
    state = held_out[0][0][0]
    live.on_state(state, 10**12)
    live.on_command(np.zeros(2, np.float32), 10**12 + 1)
    assert live.on_state(state + 50.0, 10**12 + 10**8) > 5.0
    assert live.stats['rejected'] == 1

    stack = LatentStack.from_folder(get_task('cliff'), folder, 'cpu')
    watcher = model_watcher(get_task('cliff'), stack, out)
    path = live.save()
    assert path == out / 'world_model.json' and live.stats['checkpoints'] == 1
    assert live.save() is None                                  # nothing new since
    learned = watcher.poll()
    assert watcher.last_error == '' and learned is not None
    assert learned.checkpoint_metadata['identity']['representation'] == 'latent'
    assert learned.checkpoint_metadata['online']['updates'] == 150
    stack.swap_model(learned)
    assert stack.model is learned and stack.planner.model is learned
    stack.set_goal_latent(torch.as_tensor(latent_message(encoder, np.zeros(S))[1]))
    percept = stack.percept(torch.as_tensor(latent_message(encoder, state)[1]))
    plan = stack.plan(percept)
    assert plan.action.shape == (2,) and np.isfinite(plan.action).all()


def test_swap_model_refuses_a_state_model_another_task_or_layout_and_keeps_its_own(tmp_path):
    from hlai_ros.actor.supervision import model_watcher
    from hlai_ros.paths import model_dir
    folder, _ = tiny_folder(tmp_path)
    push_folder, _ = tiny_folder(tmp_path, 'push')
    task = get_task('cliff')
    stack = LatentStack.from_folder(task, folder, 'cpu')
    own = stack.model
    state_model = load_world_model(model_dir() / 'cliff')
    for model, names in ((state_model, ('state representation', 'latent representation')),
                         (load_world_model(push_folder), ('push', 'cliff'))):
        with pytest.raises(CheckpointError) as err:
            stack.swap_model(model)
        assert all(name in str(err.value) for name in names), str(err.value)
        assert stack.model is own and stack.planner.model is own
    other = WorldModel(WorldModelConfig(state_dim=S + 2, action_dim=2, ensemble_size=2,
                                        hidden_sizes=(8,)))
    other.checkpoint_metadata = {'identity': task.identity('latent')}
    with pytest.raises(CheckpointError, match=f'predicts {S + 2}-entry states.*plans in {S}'):
        stack.swap_model(other)
    assert stack.model is own
    # the hot reload's watcher refuses a state checkpoint in the watched folder the same way
    out = tmp_path / 'watched'
    watcher = model_watcher(task, stack, out)
    save_world_model(state_model, out, state_model.checkpoint_metadata)
    assert watcher.poll() is None and 'cannot be loaded' in watcher.last_error


def test_reconfigure_takes_the_profiles_planner_settings_and_there_is_no_fallback(tmp_path):
    from dataclasses import replace
    folder, _ = tiny_folder(tmp_path)
    stack = LatentStack.from_folder(get_task('cliff'), folder, 'cpu')
    profile = stack.profile
    horizon = stack.planner_config.horizon
    cost = stack.planner.cost
    new = replace(profile, planner=replace(stack.planner_config, horizon=horizon + 3))
    assert stack.reconfigure(new) is True
    assert stack.planner.config.horizon == horizon + 3 and stack.profile is new
    assert stack.reconfigure(new) is False                      # nothing new
    assert {n for n, *_ in stack.planner.cost.terms} == {n for n, *_ in cost.terms}
    assert stack.fallback(None) is None


def test_plan_probe_fits_on_ground_truth_saves_loads_and_is_refused_for_another_encoder(
        tmp_path):
    from hlai_ros.latent.probes import fit_plan_probe, load_plan_probe, save_plan_probe
    folder, encoder = tiny_folder(tmp_path)
    assert load_plan_probe(folder) is None
    data = tiny_data(8)
    probe = fit_plan_probe(encoder, data, 'cliff', plan_target='object_position', folds=4)
    score = probe.report['scores']['object_position']
    assert score['samples'] == len(data) and np.isfinite(score['r2'])
    save_plan_probe(folder, probe, {'data': 'tiny'})
    loaded = load_plan_probe(folder)
    assert loaded.plan_target == 'object_position' and loaded.frame == 'world'
    states = np.random.default_rng(0).normal(size=(3, 4, S))
    np.testing.assert_allclose(loaded.decode(states), probe.decode(states))
    assert loaded.decode(states).shape == (3, 4, 2)
    with pytest.raises(ValueError, match='planning state'):
        probe.decode(np.zeros(S + 1))
    save_latent_model(LatentWorldModel(LatentConfig(**TINY)), folder,
                      {'identity': get_task('cliff').identity('latent')})   # a new encoder
    with pytest.raises(CheckpointError, match='fitted on encoder .* the folder holds encoder'):
        load_plan_probe(folder)


def test_the_probe_draws_the_plan_and_never_enters_the_cost(tmp_path):
    from hlai_ros.latent.node_core import PlanDrawing
    from hlai_ros.latent.probes import fit_plan_probe, save_plan_probe
    folder, encoder = tiny_folder(tmp_path)
    task = get_task('cliff')

    def plan_once():
        stack = LatentStack.from_folder(task, folder, 'cpu')
        stack.set_goal_latent(torch.as_tensor(latent_message(encoder, np.ones(S))[1]))
        percept = stack.percept(torch.as_tensor(latent_message(encoder, np.zeros(S))[1]))
        torch.manual_seed(0)
        return stack, percept, stack.plan(percept)

    stack, percept, plan = plan_once()
    drawing = PlanDrawing(stack)
    assert drawing.positions(percept, plan.actions) is None
    assert 'not published' in drawing.note
    save_plan_probe(folder, fit_plan_probe(encoder, tiny_data(6), 'cliff', 'object_position',
                                           folds=3))
    stack2, percept2, plan2 = plan_once()
    assert torch.equal(plan.actions, plan2.actions) and plan.cost == plan2.cost
    assert [n for n, *_ in stack.planner.cost.terms] == [n for n, *_ in stack2.planner.cost.terms]
    drawing = PlanDrawing(stack2)
    points = drawing.positions(percept2, plan2.actions)
    assert drawing.frame == 'world' and len(points) == plan2.actions.shape[0] + 1
    expected = drawing.probe.decode(stack2.predict(percept2, plan2.actions))
    np.testing.assert_allclose(np.array(points), expected, rtol=1e-6)
    assert not any(value is drawing.probe for value in vars(stack2).values())
    # nothing on the planning path imports the probes' module (the planning stage does, for
    # encode_dataset, at training time)
    root = Path(hlai_ros.__file__).parent
    for path in ('latent/stack.py', 'latent/cost.py', 'latent/goal.py', 'latent/events.py',
                 'latent/value.py', 'actor/planner.py', 'actor/agent.py'):
        tree = ast.parse((root / path).read_text())
        imports = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert 'hlai_ros.latent.probes' not in imports, path
