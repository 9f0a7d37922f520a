"""The latent stack: planning states, event heads, the planning stage and planning to a goal."""
from __future__ import annotations

import numpy as np
from test_latent_model import TINY, FakeEpisode, tiny_data
import torch

from hlai_ros.actor.planner import PlannerConfig
from hlai_ros.actor.stack import folder_representation, load_stack
from hlai_ros.latent.checkpoint import save_latent_model
from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.events import EventConfig, EventHeads, fit_event_heads
from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.planning import (
    PlanningSettings,
    event_labels,
    planning_episodes,
    train_planning,
)
from hlai_ros.latent.stack import LatentStack
from hlai_ros.tasks import get_task


def test_planning_episodes_follow_valid_commands_and_never_cross_episodes():
    data = tiny_data(3)                      # 3 episodes of 12 steps, 13 frames each
    data.valid[5] = False                    # a gap in episode 0
    states = torch.arange(len(data), dtype=torch.float32)[:, None].repeat(1, 2)
    runs = planning_episodes(data, states)
    assert [len(r.actions) for r in runs] == [5, 6, 12, 12]
    for r in runs:
        frames = r.states[:, 0].astype(int)
        assert (np.diff(frames) == 1).all()                     # consecutive frames
        assert len(set(data.episode[frames].tolist())) == 1    # one episode each
        np.testing.assert_array_equal(r.actions, data.actions[frames[:-1]].numpy())


def test_event_labels_mark_the_last_steps_of_failed_episodes():
    data = tiny_data(2)
    labels = event_labels(data, np.array([False, True]), within=3)
    assert not labels[:13].any()
    assert labels[13:].tolist() == [False] * 9 + [True] * 4    # steps 9..12 of episode 1


def test_event_heads_learn_where_failures_happen_and_report_held_out_precision_recall():
    rng = np.random.default_rng(0)
    n_ep, steps = 40, 20
    episode = np.repeat(np.arange(n_ep), steps)
    step = np.tile(np.arange(steps), n_ep)
    states = torch.as_tensor(rng.uniform(-1, 1, (n_ep * steps, 3)), dtype=torch.float32)
    labels = states[:, 0].numpy() > 0.6                      # "near the edge"
    maps = torch.zeros(n_ep * steps, 4 * 2 * 2)
    heads, report = fit_event_heads(maps, (4, 2, 2), states, labels, episode, step,
                                    range(30), range(30, 40),
                                    EventConfig(steps=400, batch_size=128, hidden=32))
    assert report['val_event_frames'] == int(labels[episode >= 30].sum()) > 0
    assert report['precision'] > 0.8 and report['recall'] > 0.8
    heads.set_scene(torch.zeros(16))
    p = heads.probability(torch.tensor([[0.95, 0.0, 0.0], [-0.9, 0.0, 0.0]]))
    assert p[0] > 0.8 and p[1] < 0.2


def _latent_folder(tmp_path, event_kind: str = 'mlp'):
    """A tiny encoder + the planning stage on fake episodes, for the cliff task's identity."""
    task = get_task('cliff')
    episodes = [FakeEpisode(i) for i in range(6)]
    for i, e in enumerate(episodes):
        e.metadata = {'failure': 'fell' if i in (1, 4) else None}
    from hlai_ros.latent.data import dataset_from_episodes
    data = dataset_from_episodes(episodes)
    torch.manual_seed(0)
    config = LatentConfig(**TINY)
    encoder = LatentWorldModel(config)
    encoder.fit_normalizers(data.rgb, data.depth.float(), data.proprio, data.actions)
    folder = tmp_path / 'cliff_latent'
    metadata = {'identity': task.identity('latent')}
    save_latent_model(encoder, folder, metadata)
    report = train_planning(folder, data, data.failed,
                            PlanningSettings(dynamics_budget_s=3.0, ensemble_size=2,
                                             event_steps=30, value_steps=30,
                                             val_fraction=0.34, event_kind=event_kind),
                            metadata=metadata, progress=False, log=lambda *_: None)
    return task, folder, data, report


def test_planning_stage_writes_a_folder_the_stack_loads_and_plans_with(tmp_path):
    task, folder, data, report = _latent_folder(tmp_path)
    assert report['events']['events'] == 2 and report['planning_transitions'] == 72
    assert folder_representation(folder) == 'latent'
    stack = load_stack(task, folder, 'cpu')
    assert isinstance(stack, LatentStack) and stack.heads is not None
    assert stack.value is not None and report['value']['train_pairs'] > 0
    stack = LatentStack(task, stack.encoder, stack.model, stack.goal_cost, stack.heads,
                        stack.value, planner=PlannerConfig(horizon=4), device='cpu')
    assert {name for name, *_ in stack.planner.cost.terms} == {
        'goal', 'uncertainty', 'effort', 'event', 'value'}
    frame = {'rgb': data.rgb[0].permute(1, 2, 0).numpy(), 'depth': data.depth[0].float().numpy(),
             'proprio': data.proprio[0].numpy()}
    goal = {'rgb': data.rgb[12].permute(1, 2, 0).numpy(),
            'depth': data.depth[12].float().numpy(), 'proprio': data.proprio[12].numpy()}
    stack.set_goal(goal)
    percept = stack.perceive(frame)
    assert percept.state.shape == (2 * TINY['keypoints'] + TINY['proprio_latent_dim'],)
    plan = stack.plan(percept)
    assert plan.action.shape == (2,) and np.isfinite(plan.action).all()
    assert (plan.action >= np.asarray(task.action_low) - 1e-6).all()
    assert (plan.action <= np.asarray(task.action_high) + 1e-6).all()
    assert stack.predict(percept, plan.actions).shape == (5, percept.state.shape[0])


def test_pixel_event_heads_read_the_camera_frame_in_python_and_from_camera_messages(tmp_path):
    from hlai_ros.data import messages
    from hlai_ros.latent.events import PixelEventHeads
    from hlai_ros.latent.stack import scene_pixels
    from hlai_ros.nodes.latent_io import ActorInputs
    task, folder, data, report = _latent_folder(tmp_path, 'pixels')
    assert report['events']['kind'] == 'pixels'
    stack = load_stack(task, folder, 'cpu')
    assert isinstance(stack.heads, PixelEventHeads) and stack.reads_pixels
    frame = {'rgb': data.rgb[3].permute(1, 2, 0).numpy(), 'depth': data.depth[3].float().numpy(),
             'proprio': data.proprio[3].numpy()}
    stack.perceive(frame)             # the Python loop: the frame itself is the heads' scene
    expected = stack.heads.scene_features(scene_pixels(stack.encoder, frame)[None])[0]
    assert torch.equal(stack.heads._scene, expected)
    # the node's way: the latent from /hlai/latent leaves the scene alone, the camera sets it
    stack.heads._scene = None
    stack.percept(stack.encode(frame))
    assert stack.heads._scene is None
    inputs = ActorInputs(task, stack)
    topics = dict((topic.name, callback) for topic, callback in inputs.scene_topics())
    assert set(topics) == {'/camera/image_raw', '/camera/depth/image_raw'}
    rgb = messages.rgb_image(frame['rgb'], 5, 'camera_optical_frame')
    depth = messages.depth_image(frame['depth'], 7, 'camera_optical_frame')
    assert topics['/camera/image_raw'](rgb) == '' and stack.heads._scene is None
    assert topics['/camera/depth/image_raw'](depth) == '' and stack.heads._scene is None
    depth = messages.depth_image(frame['depth'], 5, 'camera_optical_frame')   # same stamp
    assert topics['/camera/depth/image_raw'](depth) == ''
    assert torch.allclose(stack.heads._scene, expected, atol=1e-5)
    small = messages.rgb_image(frame['rgb'][::2, ::2], 9, 'camera_optical_frame')
    topics['/camera/image_raw'](small)
    fault = topics['/camera/depth/image_raw'](messages.depth_image(frame['depth'][::2, ::2], 9,
                                                                  'camera_optical_frame'))
    assert fault and inputs.scene_faults == 1 and inputs.notes()['scene_faults'] == 1
    # a stack whose heads read the latent map subscribes to no camera
    c = stack.encoder.config
    heads = EventHeads((c.map_channels, c.map_size, c.map_size), stack.model.state_dim)
    mlp = LatentStack(task, stack.encoder, stack.model, stack.goal_cost, heads, device='cpu')
    assert not mlp.reads_pixels and ActorInputs(task, mlp).scene_topics() == ()


def test_hindsight_targets_are_the_first_time_the_goal_held():
    from hlai_ros.latent.goal import GoalCost
    from hlai_ros.latent.value import hindsight_targets
    # one keypoint moving 0, 0, 1, 2, 2, 2 (x): the goal "at 2" first holds at frame 3
    x = torch.tensor([0.0, 0.0, 1.0, 2.0, 2.0, 2.0])
    states = torch.stack([x, torch.zeros(6)], 1)
    cost = GoalCost(0, 2, torch.ones(1), torch.ones(1))
    target = hindsight_targets(states, cost, reach=0.01, max_gap=4)
    assert target[0].tolist() == [0, 0, 2, 3, 3, -1]          # gap 5 > max_gap
    assert target[2].tolist() == [-1, -1, 0, 1, 1, 1]
    assert target[4, 3] == -1 and target[4, 4] == 0


def test_a_latent_folder_is_refused_for_another_task(tmp_path):
    from hlai_ros.world_model.checkpoint import CheckpointError
    _, folder, _, _ = _latent_folder(tmp_path)
    try:
        load_stack(get_task('push'), folder, 'cpu')
    except CheckpointError as err:
        assert 'cliff' in str(err) and 'push' in str(err)
    else:
        raise AssertionError('a cliff latent folder was loaded for push')
