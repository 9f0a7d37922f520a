"""The latent graph over DDS: goal images, /hlai/latent, the latent mpc_actor behind the gate.

A tiny latent folder for cliff (an untrained encoder at the real image size, 64, and the
robot's 5 proprioception values, its planning stage trained on three short random episodes
with tiny budgets) drives sim + perception + mpc_actor + command_gate in real processes: the
goal image and its latent arrive, the latent has the model's size and parts, the actor's
commands reach the robot through the gate, and no node dies.
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
    return folder


@pytest.fixture(scope='module')
def latent_folder(tmp_path_factory):
    """Three collected cliff episodes of STEPS random steps -> a tiny latent model folder."""
    from hlai_ros.cli import main
    root = tmp_path_factory.mktemp('latent_graph')
    assert main(['collect', '--task', 'cliff', '--episodes', '3', '--max-steps', str(STEPS),
                 '--policy', 'random', '--out', str(root / 'data'), '--no-progress']) == 0
    return tiny_latent_folder(root / 'data', root / 'cliff_latent')


GRAPH = ('sim', 'perception', 'mpc_actor', 'command_gate')
"""The nodes started: the world, the encoder, the latent actor and the safety gate."""
PLANNER = (('cost_critic', 'planner.horizon', 8), ('cost_critic', 'planner.samples', 32),
           ('cost_critic', 'planner.iterations', 1))
"""A planner small enough for a loaded 2-core machine (the actor's start profile)."""


def latent_specs(folder: Path):
    """GRAPH of the realtime latent graph (`hlai run --model FOLDER --mode realtime`)."""
    from hlai_ros.graph import GraphOptions, build
    options = GraphOptions(task='cliff', model=str(folder), mode='realtime',
                           node_parameters=PLANNER + (
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
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray

    from hlai_ros.graph import params_file
    from hlai_ros.runner import node_command
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    got = {k: [] for k in ('goal_image', 'goal_depth', 'latent_goal', 'latent', 'cmd',
                           'actor', 'diag')}
    for topic, kind, key, qos in (
            ('/goal_image', Image, 'goal_image', latched),
            ('/goal_image/depth', Image, 'goal_depth', latched),
            ('/hlai/latent_goal', Float32MultiArray, 'latent_goal', latched),
            ('/hlai/latent', Float32MultiArray, 'latent', 10), ('/cmd_vel', Twist, 'cmd', 10),
            ('/hlai/actor_command', Twist, 'actor', 10),
            ('/diagnostics', DiagnosticArray, 'diag', 50)):
        probe.create_subscription(kind, topic, lambda m, k=key: got[k].append(m), qos)
    procs = []
    try:
        for spec in latent_specs(latent_folder):
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
        dead = [(s.name, p.returncode) for s, p in zip(latent_specs(latent_folder), procs)
                if p.poll() is not None]
        assert not dead, (dead, {s.name: (tmp_path / f'{s.name}.log').read_text()[-2000:]
                                 for s in latent_specs(latent_folder)})
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
    print(f"latent graph: encode {float(perception['encode_ms']):.1f} ms/frame, plan "
          f"{float(actor['plan_ms']):.1f} ms (max {float(actor['plan_ms_max']):.1f} ms), "
          f"{actor['plans']} plans, {len(got['cmd'])} gated commands, "
          f"{actor['deadline_misses']} deadline misses")


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
    assert supervision.is_latent(stack) and reload.watcher is None
    assert not reload.due(1e9, 1.0)                          # no hot reload in latent mode
    from hlai_ros.latent.node_core import latent_layout
    layout = latent_layout(stack.encoder)
    latent = np.zeros(stack.encoder.config.latent_dim, np.float32)
    with pytest.raises(ValueError, match='no goal latent'):
        supervision.read_latent(stack, layout, latent)
    supervision.set_latent_goal(stack, layout, latent + 0.1)
    percept = supervision.read_latent(stack, layout, latent)
    stats = supervision.ActorStats()
    action, plan, late = supervision.act(stack, percept, stats, 1e-9, True)
    assert action is None and stats.fallbacks == 1 and 'zero' in late
    action, plan, late = supervision.act(stack, percept, stats, 10.0, True)
    assert action.shape == (2,) and np.isfinite(action).all() and not late
    assert supervision.plan_positions(task, stack, percept, plan.actions) is None
    assert supervision.apply_profile(stack, 'not even json', stats) == ''
    level, text, values = supervision.status(cfg, stack, stats, reload.folder, False, False)
    assert level == 'ok' and values['representation'] == 'latent'
