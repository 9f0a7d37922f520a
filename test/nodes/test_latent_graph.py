"""The latent graph over DDS: goal images, /hlai/latent, the latent mpc_actor behind the gate.

A tiny latent folder for cliff (an untrained encoder at the real image size, 64, and the
robot's 5 proprioception values, its planning stage trained on three short random episodes
with tiny budgets, untrained event heads that read the camera frame, a plan probe fitted on
the same episodes) drives sim + perception +
world_model (learning online) + mpc_actor + command_gate in real processes: the goal image and
its latent arrive, the latent has the model's size and parts, the actor's commands reach the
robot through the gate, its plan is drawn on /hlai/plan through the probe, the world_model
learns from /hlai/latent and the actor hot-reloads its checkpoint, and no node dies.
"""
from pathlib import Path
import subprocess

import numpy as np
import pytest
from ros_processes import stop_processes

pytestmark = pytest.mark.ros
STEPS = 10
"""Steps of each collected episode."""


def tiny_latent_folder(data_dir: Path, folder: Path) -> Path:
    """An untrained tiny encoder for cliff + its planning stage on the bags in `data_dir`."""
    import torch

    from hlai_ros.latent.checkpoint import save_latent_model
    from hlai_ros.latent.config import LatentConfig
    from hlai_ros.latent.data import load_dataset
    from hlai_ros.latent.model import LatentWorldModel
    from hlai_ros.latent.planning import PlanningSettings, train_planning
    from hlai_ros.tasks import get_task
    task = get_task('cliff')
    data = load_dataset(data_dir)
    torch.manual_seed(0)
    config = LatentConfig(image_size=64, proprio_dim=data.proprio.shape[1], action_dim=2,
                          channels=8, map_channels=2, map_size=8, keypoints=4,
                          keypoint_channels=8, proprio_latent_dim=4, predictor_channels=8,
                          ensemble_size=2, recon_size=8)
    encoder = LatentWorldModel(config)
    encoder.fit_normalizers(data.rgb, data.depth.float(), data.proprio, data.actions)
    metadata = {'identity': task.identity('latent')}
    save_latent_model(encoder, folder, metadata)
    failed = data.failed if data.failed is not None else np.zeros(data.episode.max() + 1, bool)
    train_planning(folder, data, failed,
                   PlanningSettings(dynamics_budget_s=2.0, ensemble_size=2, event_steps=20,
                                    value_steps=20, val_fraction=0.34),
                   metadata=metadata, progress=False, log=lambda *_: None)
    from hlai_ros.latent.probes import fit_plan_probe, save_plan_probe
    save_plan_probe(folder, fit_plan_probe(encoder, data, 'cliff', folds=3))
    # event heads that read the camera frame (untrained: three short random episodes hold no
    # failure), so the actor takes the camera's frames as their scene
    from hlai_ros.latent.events import EventConfig, PixelEventHeads
    from hlai_ros.latent.stack import load_latent_cost, save_latent_cost
    goal, _, value, header = load_latent_cost(folder, config.keypoints)
    heads = PixelEventHeads((4, 64, 64), 2 * config.keypoints + config.proprio_latent_dim,
                            config.keypoints, EventConfig(kind='pixels', scene_features=4))
    save_latent_cost(folder, goal, heads.eval(), header['weighting'], {}, metadata, value)
    return folder


@pytest.fixture(scope='module')
def latent_folder(tmp_path_factory):
    """Three collected cliff episodes of STEPS random steps -> a tiny latent model folder."""
    from hlai_ros.cli import main
    root = tmp_path_factory.mktemp('latent_graph')
    assert main(['collect', '--task', 'cliff', '--episodes', '3', '--max-steps', str(STEPS),
                 '--policy', 'random', '--out', str(root / 'data'), '--no-progress']) == 0
    return tiny_latent_folder(root / 'data', root / 'cliff_latent')


GRAPH = ('sim', 'perception', 'world_model', 'mpc_actor', 'command_gate')
"""The nodes started: the world, the encoder, online learning, the latent actor, the gate."""
ONLINE = (('world_model', 'save_period_s', 1.0), ('world_model', 'update_period_s', 0.2),
          ('world_model', 'min_transitions', 4), ('world_model', 'batch_size', 16),
          ('world_model', 'rehearsal_size', 100), ('world_model', 'replay_size', 200),
          ('mpc_actor', 'reload_period_s', 0.5))
"""Online learning that checkpoints within the test's seconds, the actor checking as often."""
PLANNER = (('cost_critic', 'planner.horizon', 8), ('cost_critic', 'planner.samples', 32),
           ('cost_critic', 'planner.iterations', 1))
"""A planner small enough for a loaded 2-core machine (the actor's start profile)."""


def latent_specs(folder: Path, online: Path | None = None):
    """GRAPH of the realtime latent graph (`hlai run --model FOLDER --mode realtime`).

    With `online`: ``--online DIR`` (the world_model learns into DIR, the actor watches it).
    """
    from hlai_ros.graph import GraphOptions, build
    options = GraphOptions(task='cliff', model=str(folder), mode='realtime',
                           online=str(online) if online else '',
                           node_parameters=PLANNER + ONLINE + (
                               ('sim', 'wait_for_nodes', list(GRAPH[1:])),
                               ('sim', 'start_delay_s', 0.5)))
    return [s for s in build(options) if s.name in GRAPH]


def test_latent_graph_spec_follows_the_model_folder(latent_folder):
    specs = {s.name: dict(s.parameters) for s in latent_specs(latent_folder)}
    assert specs['perception']['model'] == specs['mpc_actor']['model'] == str(latent_folder)
    from hlai_ros.graph import GraphOptions, build
    (world_model,) = [s for s in build(GraphOptions(task='cliff', model=str(latent_folder)))
                      if s.name == 'world_model']
    assert dict(world_model.parameters)['model_path'] == str(latent_folder)


def test_latent_graph_plans_to_the_goal_image_through_the_gate(latent_folder, probe, tmp_path,
                                                                ros_env):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Path as PathMsg
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray

    from hlai_ros.graph import params_file
    from hlai_ros.runner import node_command
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    got = {k: [] for k in ('goal_image', 'goal_depth', 'latent_goal', 'latent', 'cmd',
                           'actor', 'diag', 'plan')}
    online = tmp_path / 'online'
    specs = latent_specs(latent_folder, online)
    for topic, kind, key, qos in (
            ('/goal_image', Image, 'goal_image', latched),
            ('/goal_image/depth', Image, 'goal_depth', latched),
            ('/hlai/latent_goal', Float32MultiArray, 'latent_goal', latched),
            ('/hlai/latent', Float32MultiArray, 'latent', 10), ('/cmd_vel', Twist, 'cmd', 10),
            ('/hlai/actor_command', Twist, 'actor', 10), ('/hlai/plan', PathMsg, 'plan', 10),
            ('/diagnostics', DiagnosticArray, 'diag', 50)):
        probe.create_subscription(kind, topic, lambda m, k=key: got[k].append(m), qos)
    procs = []
    try:
        for spec in specs:
            log = open(tmp_path / f'{spec.name}.log', 'wb')
            procs.append(subprocess.Popen(node_command(spec, params_file('cliff')), stdout=log,
                                          stderr=subprocess.STDOUT, env=ros_env,
                                          start_new_session=True))
        def planned():
            return int(status('mpc_actor: planning').get('plans', 0)) >= 5

        def status(name):
            found = [{kv.key: kv.value for kv in s.values} for d in got['diag'] for s in d.status
                     if s.name == name]
            return found[-1] if found else {}
        probe.spin_until(lambda: len(got['cmd']) >= 10 and got['latent_goal'] and planned(), 60,
                         'gated commands, the goal latent and five latent plans')
        # online learning from /hlai/latent, its checkpoint hot-reloaded by the latent actor
        probe.spin_until(lambda: int(status('mpc_actor: planning').get('reloads', 0)) >= 1, 60,
                         'the actor to hot-reload the online planning dynamics')
        probe.spin_until(  # its diagnostics come once a second; under load they lag
            lambda: int(status('world_model: online learning').get('updates', 0)) > 0, 30,
            "the world model's diagnostics of its online updates")
        from std_msgs.msg import Bool
        estop = probe.create_publisher(Bool, '/hlai/estop', 10)
        estop.publish(Bool(data=True))
        probe.spin_until(lambda: status('mpc_actor: planning').get('estop') == 'True', 10,
                         'the actor to latch the e-stop')
        probe.spin_for(0.3)  # what was on its way before the latch
        seen = {k: len(got[k]) for k in ('actor', 'cmd')}
        probe.spin_for(1.0)
        for key in ('actor', 'cmd'):  # the actor and the gate: zero from then on
            after = got[key][seen[key]:]
            assert after and all(m.linear.x == m.angular.z == 0.0 for m in after), key
        dead = [(s.name, p.returncode) for s, p in zip(specs, procs) if p.poll() is not None]
        assert not dead, (dead, {s.name: (tmp_path / f'{s.name}.log').read_text()[-2000:]
                                 for s in specs})
    finally:
        stop_processes(procs)
    from hlai_ros.actor.stack import load_stack
    from hlai_ros.latent.node_core import latent_layout
    from hlai_ros.tasks import get_task
    stack = load_stack(get_task('cliff'), latent_folder, 'cpu')
    layout = [(label, size) for label, size in latent_layout(stack.encoder)]
    image, depth = got['goal_image'][0], got['goal_depth'][0]
    assert (image.encoding, depth.encoding) == ('rgb8', '32FC1')
    assert image.header.frame_id == depth.header.frame_id == 'camera_optical_frame'
    assert (image.width, image.height) == (64, 64)
    for msg in (got['latent_goal'][-1], got['latent'][-1]):
        assert [(d.label, d.size) for d in msg.layout.dim] == layout
        assert len(msg.data) == stack.encoder.config.latent_dim == sum(s for _, s in layout)
        assert np.isfinite(msg.data).all()
    assert len(got['latent']) >= 5
    assert got['actor'], 'the actor published nothing on the gate input'
    actor, perception = status('mpc_actor: planning'), status('perception: state estimate')
    assert actor['representation'] == 'latent' and int(actor['plans']) >= 5
    assert float(perception['encode_ms']) > 0
    learner = status('world_model: online learning')
    assert learner['representation'] == 'latent' and int(learner['updates']) > 0
    assert int(learner['checkpoints']) >= 1 and (online / 'world_model.json').is_file()
    assert int(actor['reloads']) >= 1 and actor['reload_error'] == ''
    assert actor['plan_probe'].startswith('/hlai/plan through the plan probe')
    # the pixel event heads' scene: the camera's frames, read by the actor
    assert int(actor['scene_frames']) >= 5 and actor['scene_faults'] == '0'

    # the plan, decoded by the probe: metres in the world frame, horizon + 1 poses
    plan = got['plan'][-1]
    assert plan.header.frame_id == 'world' and len(plan.poses) == 8 + 1
    assert np.isfinite([(p.pose.position.x, p.pose.position.y) for p in plan.poses]).all()
    print(f"latent graph: encode {float(perception['encode_ms']):.1f} ms/frame, plan "
          f"{float(actor['plan_ms']):.1f} ms (max {float(actor['plan_ms_max']):.1f} ms), "
          f"{actor['plans']} plans, {len(got['cmd'])} gated commands, "
          f"{actor['deadline_misses']} deadline misses; online {learner['updates']} updates "
          f"({float(learner['update_ms']):.1f} ms each), {actor['reloads']} reloads")


def test_goal_images_pair_by_stamp_once_and_latents_are_checked():
    from hlai_ros.latent.node_core import GoalImages, check_latent
    pairs = GoalImages(tolerance_ns=10)
    assert pairs.add('rgb', 100, 'c') is None
    assert pairs.add('depth', 200, 'd_far') is None        # outside the tolerance
    assert pairs.add('depth', 105, 'd') == ('c', 'd')
    assert pairs.add('depth', 105, 'd') is None            # the same pair again: once
    assert pairs.add('rgb', 300, 'c2') is None and pairs.add('depth', 300, 'd2') == ('c2', 'd2')
    layout = (('map', 2), ('keypoints', 2), ('proprio_latent', 1))
    assert check_latent(layout, [1, 2, 3, 4, 5], layout).dtype == np.float32
    for parts, values, match in ((layout, [1, 2, 3, 4], 'carries 4'),
                                 ((('map', 3),) + layout[1:], [0] * 6, 'not the model'),
                                 (layout, [0, 0, 0, 0, np.nan], 'not finite')):
        with pytest.raises(ValueError, match=match):
            check_latent(parts, values, layout)


def test_session_starts_each_episode_with_its_goal_image():
    from hlai_ros.config import world_config
    from hlai_ros.contract import GOAL_DEPTH, GOAL_IMAGE
    from hlai_ros.sim.session import EpisodeSession
    session = EpisodeSession('cliff', world_config('cliff'), seed=3, episodes=1, max_steps=2)
    try:
        out = dict((topic.name, msg) for topic, msg in session.begin())
        image, depth = out[GOAL_IMAGE.name], out[GOAL_DEPTH.name]
        assert (image.encoding, depth.encoding) == ('rgb8', '32FC1')
        assert image.header.frame_id == depth.header.frame_id == session.camera.frame_id
        assert image.header.stamp == out['/camera/image_raw'].header.stamp
        assert bytes(image.data) != bytes(out['/camera/image_raw'].data)  # the goal, not now
    finally:
        session.close()


def test_supervision_plans_a_latent_stack_and_a_late_plan_becomes_zero(latent_folder):
    from hlai_ros.actor import supervision
    cfg = supervision.ActorConfig(task='cliff', model=str(latent_folder), device='cpu')
    task, stack, reload = supervision.build(cfg)
    assert supervision.is_latent(stack)
    from hlai_ros.nodes.latent_io import ActorInputs
    inputs = ActorInputs(task, stack)
    assert reload.watcher is not None and reload.folder == latent_folder  # planning dynamics
    assert reload.watcher.identity == task.identity('latent')
    assert reload.due(1e9, 1.0)
    from hlai_ros.latent.node_core import latent_layout
    layout = latent_layout(stack.encoder)
    latent = np.zeros(stack.encoder.config.latent_dim, np.float32)
    with pytest.raises(ValueError, match='no goal latent'):
        supervision.read_latent(stack, layout, latent)
    supervision.set_latent_goal(stack, layout, latent + 0.1)
    stack.warm_up()        # as the node does at start: its zero scene is not kept for plans
    with pytest.raises(ValueError, match='no camera frame yet'):   # the event heads' scene
        supervision.read_latent(stack, layout, latent)
    rgb, depth = np.zeros((64, 64, 3), np.uint8), np.ones((64, 64), np.float32)
    stack.set_scene_frame({'rgb': rgb, 'depth': depth})
    percept = supervision.read_latent(stack, layout, latent)
    stats = supervision.ActorStats()
    action, plan, late = supervision.act(stack, percept, stats, 1e-9, True)
    assert action is None and stats.fallbacks == 1 and 'zero' in late
    action, plan, late = supervision.act(stack, percept, stats, 10.0, True)
    assert action.shape == (2,) and np.isfinite(action).all() and not late
    assert supervision.plan_positions(task, stack, percept, plan.actions) is None
    points, frame = inputs.plan_path(percept, plan.actions)   # through the folder's probe
    assert frame == 'world' and len(points) == plan.actions.shape[0] + 1
    assert supervision.apply_profile(stack, 'not even json', stats)
    assert inputs.apply_profile('not even json', stats) and stats.profile_refusals == 2
    assert inputs.apply_profile(stack.profile.to_json(), stats) == ''
    assert stats.profile_error == ''
    level, text, values = supervision.status(cfg, stack, stats, reload.folder, False, False)
    assert level == 'ok' and values['representation'] == 'latent'
