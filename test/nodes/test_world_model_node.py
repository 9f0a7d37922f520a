"""The world_model node in a real process: surprise, imagined rollouts, online checkpoints."""
import json
import math

import numpy as np
import pytest
import torch

from hlai_ros.paths import model_dir

pytestmark = pytest.mark.ros
CLIFF_STATE = ('x', 'y', 'yaw', 'v', 'omega', 'goal_x', 'goal_y')
GOAL = (1.0, 0.5)


def _cliff_states(n: int, action):
    """Perception-layout cliff states (n, 7) that the shipped model itself predicts."""
    from hlai_ros.world_model.checkpoint import load_world_model

    model = load_world_model(model_dir() / 'cliff')
    s = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    z = torch.zeros(model.ensemble_size, 1, model.latent_dim)
    out = []
    with torch.no_grad():
        for _ in range(n):
            yaw = math.atan2(float(s[3]), float(s[2]))
            out.append([float(s[0]), float(s[1]), yaw, float(s[4]), float(s[5]), *GOAL])
            s = model.next(s[None], torch.tensor([action]), z).mean(0)[0]
    return np.array(out, dtype=np.float32)


def _outputs(probe) -> dict[str, list]:
    """Collect what the world_model node publishes: surprise, imagined paths, diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float32
    from visualization_msgs.msg import MarkerArray

    got = {'surprise': [], 'imagined': [], 'diag': []}
    probe.create_subscription(Float32, '/hlai/surprise', got['surprise'].append, 50)
    probe.create_subscription(MarkerArray, '/hlai/imagined', got['imagined'].append, 50)
    probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 50)
    return got


def test_world_model_node_learns_online_and_its_checkpoint_hot_reloads(probe, start_node,
                                                                       tmp_path, set_parameter):
    from geometry_msgs.msg import Twist
    from std_msgs.msg import Float32MultiArray, String
    from visualization_msgs.msg import Marker

    from hlai_ros.nodes.convert import state_message
    from hlai_ros.tasks import get_task
    from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model
    from hlai_ros.world_model.watch import CheckpointWatcher

    out = tmp_path / 'online'
    watcher = CheckpointWatcher(out, expect={'state_dim': 6, 'action_dim': 2},
                                identity=get_task('cliff').identity('state'))
    got = _outputs(probe)
    pubs = {'state': probe.create_publisher(Float32MultiArray, '/hlai/state', 10),
            'command': probe.create_publisher(Twist, '/cmd_vel', 10),
            'episode': probe.create_publisher(String, '/hlai/episode', 10)}
    node = start_node('world_model', 'cliff', f'output_dir:={out}', 'save_period_s:=0.5',
                      'update_period_s:=0.05', 'min_transitions:=4', 'batch_size:=8',
                      'replay_size:=100', 'imagine_horizon:=6', 'torch_threads:=1',
                      'max_surprise:=10.0')
    probe.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values())
                     and probe.count_publishers('/hlai/imagined') > 0, 60, 'world_model up')
    probe.spin_for(0.5)

    action = (0.3, 0.4)
    states = _cliff_states(10, action)
    jump = states[-1].copy()
    jump[0] += 1.0  # a teleport the model cannot have predicted
    pubs['episode'].publish(String(data=json.dumps({'event': 'start', 'episode': 0})))
    probe.spin_for(0.2)
    for k, state in enumerate(list(states) + [jump]):
        n = len(got['imagined'])
        pubs['state'].publish(state_message(CLIFF_STATE, state))
        probe.spin_until(lambda: len(got['imagined']) > n and len(got['surprise']) >= k, 20,
                         f'rollouts and surprise of state {k}')
        command = Twist()
        command.linear.x, command.angular.z = action
        pubs['command'].publish(command)
        probe.spin_for(0.2)
    surprise = [m.data for m in got['surprise']]
    assert len(surprise) == len(states)  # one per transition, the first state has none
    assert all(np.isfinite(surprise)) and min(surprise) >= 0
    assert surprise[-1] > 5 * max(surprise[:-1]), surprise  # the jump surprises it

    markers = got['imagined'][-1].markers
    assert len(markers) == 5  # one per ensemble member of the shipped cliff model
    for marker in markers:
        assert marker.type == Marker.LINE_STRIP and marker.header.frame_id == 'world'
        assert len(marker.points) == 6 + 1
    # from the last state under the last command (forward at 0.3 m/s): the paths lead away
    first, last = markers[0].points[0], markers[0].points[-1]
    assert (first.x, first.y) == pytest.approx(tuple(jump[:2]), abs=1e-5)
    assert math.hypot(last.x - first.x, last.y - first.y) > 0.05

    # the hot-reload path without the actor: an atomic checkpoint that a watcher loads
    loaded = []

    def poll():
        model = watcher.poll()
        if model is not None:
            loaded.append(model)
        return bool(loaded)

    probe.spin_until(poll, 30, 'an online checkpoint')
    learned = loaded[0]
    assert watcher.last_error == '' and learned.checkpoint_metadata['online']['updates'] > 0
    start = load_world_model(model_dir() / 'cliff')
    assert any(not torch.equal(a, b) for a, b in zip(learned.state_dict().values(),
                                                        start.state_dict().values()))
    assert load_world_model(out).config == start.config
    # the online checkpoint keeps the start model's identity: refused for another task
    assert learned.checkpoint_metadata['identity'] == start.checkpoint_metadata['identity']
    with pytest.raises(CheckpointError, match='cannot be loaded'):
        load_world_model(out, identity=get_task('push').identity('state'))
    probe.spin_until(lambda: any(kv.key == 'checkpoint_dir' and kv.value == str(out)
                                 for d in got['diag'] for s in d.status for kv in s.values),
                     10, 'diagnostics naming the checkpoint directory')
    def counts():
        last = {kv.key: kv.value for kv in got['diag'][-1].status[0].values}
        return last['rejected'], last['transitions']

    # the jump is above max_surprise: published, not learned from
    probe.spin_until(lambda: counts() == ('1', str(len(states) - 1)), 10,
                     'diagnostics counting one rejected transition')

    # parameters: invalid values are refused with the reason, read-only ones too
    def set_param(name, value):
        return set_parameter('world_model', name, value)

    bad = set_param('learning_rate', -1.0)
    assert not bad.successful and 'learning_rate must be in (0, 1]' in bad.reason
    bad = set_param('imagine_horizon', 0)
    assert not bad.successful and 'imagine_horizon must be in 1..200' in bad.reason
    assert not set_param('replay_size', 5).successful  # read-only: the buffer exists
    assert set_param('imagine_horizon', 3).successful
    assert set_param('save_period_s', 5.0).successful  # the timers are remade
    assert set_param('update_period_s', 0.1).successful
    assert set_param('learning', False).successful
    n = len(got['imagined'])
    pubs['state'].publish(state_message(CLIFF_STATE, states[0]))
    probe.spin_until(lambda: len(got['imagined']) > n, 10, 'rollouts at the new horizon')
    assert len(got['imagined'][-1].markers[0].points) == 3 + 1
    assert node.poll() is None


def test_world_model_node_without_a_model_says_so_and_loads_one_when_it_appears(
        probe, start_node, tmp_path):
    import shutil

    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from std_msgs.msg import Float32MultiArray
    from visualization_msgs.msg import MarkerArray

    from hlai_ros.nodes.convert import state_message

    models = tmp_path / 'models'
    got = {'imagined': [], 'diag': []}
    probe.create_subscription(MarkerArray, '/hlai/imagined', got['imagined'].append, 10)
    probe.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, 10)
    state = probe.create_publisher(Float32MultiArray, '/hlai/state', 10)
    node = start_node('world_model', 'cliff', f'model_path:={models}',
                      f'output_dir:={tmp_path / "online"}', 'update_period_s:=0.2')

    def status():
        return [s for d in got['diag'] for s in d.status if s.name.startswith('world_model')]

    probe.spin_until(lambda: status(), 60, 'world_model diagnostics')
    assert status()[-1].level == DiagnosticStatus.ERROR
    assert f'no world model at {models}' in status()[-1].message
    probe.spin_until(lambda: state.get_subscription_count() > 0, 10, 'the state subscription')
    state.publish(state_message(CLIFF_STATE, [0.0, 0.0, 0.0, 0.0, 0.0, *GOAL]))
    probe.spin_for(1.0)
    assert got['imagined'] == []  # nothing to imagine with

    models.mkdir()
    for weights in (model_dir() / 'cliff').glob('world_model-*.safetensors'):
        shutil.copy(weights, models)
    shutil.copy(model_dir() / 'cliff' / 'world_model.json', models)  # the commit point: last
    probe.spin_until(lambda: status()[-1].level == DiagnosticStatus.OK, 20, 'the model loaded')
    state.publish(state_message(CLIFF_STATE, [0.0, 0.0, 0.0, 0.0, 0.0, *GOAL]))
    probe.spin_until(lambda: got['imagined'], 10, 'imagined rollouts')
    assert node.poll() is None


def test_world_model_node_in_latent_mode_learns_from_latents_and_writes_a_latent_checkpoint(
        probe, start_node, tmp_path):
    """The shipped cliff latent folder: /hlai/latent + commands -> updates and a checkpoint."""
    from geometry_msgs.msg import Twist
    from std_msgs.msg import Float32MultiArray, String

    from hlai_ros.latent.node_core import latent_layout, load_encoder
    from hlai_ros.nodes.latent_io import latent_message
    from hlai_ros.tasks import get_task
    from hlai_ros.world_model.checkpoint import load_world_model

    task, folder, out = get_task('cliff'), model_dir() / 'cliff_latent', tmp_path / 'online'
    encoder = load_encoder(task, folder)
    layout = latent_layout(encoder)
    model = load_world_model(folder)
    got = _outputs(probe)
    pubs = {'latent': probe.create_publisher(Float32MultiArray, '/hlai/latent', 10),
            'command': probe.create_publisher(Twist, '/cmd_vel', 10),
            'episode': probe.create_publisher(String, '/hlai/episode', 10)}
    node = start_node('world_model', 'cliff', f'model_path:={folder}', f'output_dir:={out}',
                      'save_period_s:=0.5', 'update_period_s:=0.05', 'min_transitions:=4',
                      'batch_size:=16', 'replay_size:=100', 'rehearsal_size:=100',
                      'torch_threads:=1')
    probe.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 60,
                     'world_model up')
    probe.spin_for(0.5)

    def values():
        found = [{kv.key: kv.value for kv in s.values} for d in got['diag'] for s in d.status
                 if s.name.startswith('world_model')]
        return found[-1] if found else {}

    # planning states the shipped planning dynamics itself predicts, in a latent message
    s = model.input_norm.mean[:model.state_dim].clone()
    z = torch.zeros(model.ensemble_size, 1, model.latent_dim)
    action = (0.3, 0.2)
    pubs['episode'].publish(String(data=json.dumps({'event': 'start', 'episode': 0})))
    probe.spin_for(0.2)
    for k in range(12):
        latent = np.zeros(sum(size for _, size in layout), np.float32)
        latent[encoder.map_dim:] = s.numpy()
        n = len(got['imagined'])
        pubs['latent'].publish(latent_message(layout, latent))
        probe.spin_until(lambda: len(got['imagined']) > n, 20, f'rollouts of latent {k}')
        command = Twist()
        command.linear.x, command.angular.z = action
        pubs['command'].publish(command)
        probe.spin_for(0.1)
        with torch.no_grad():
            s = model.next(s[None], torch.tensor([action]), z).mean(0)[0]
    # the probe's decoding of the rollouts: metres, near where the robot is (world frame)
    marker = got['imagined'][-1].markers[0]
    assert marker.header.frame_id == 'world' and len(marker.points) == 10 + 1
    probe.spin_until(lambda: int(values().get('transitions', 0)) == 11
                     and int(values().get('checkpoints', 0)) > 0, 30,
                     'eleven transitions, online updates and a checkpoint in the diagnostics')
    v = values()
    assert v['representation'] == 'latent' and v['probe'] == 'ok'
    assert int(v['updates']) > 0 and int(v['rejected']) == 0
    assert v['checkpoint_dir'] == str(out)
    assert len(got['surprise']) == 11 and all(np.isfinite([m.data for m in got['surprise']]))
    learned = load_world_model(out, expect={'state_dim': model.state_dim, 'action_dim': 2},
                               identity=task.identity('latent'))
    assert learned.checkpoint_metadata['online']['updates'] > 0
    assert learned.checkpoint_metadata['identity'] == task.identity('latent')
    # a latent of another layout is refused and counted, the node stays up
    pubs['latent'].publish(latent_message((('map', 3),), np.zeros(3)))
    probe.spin_until(lambda: int(values().get('state_errors', 0)) == 1, 10,
                     'the bad latent counted')
    assert 'not the model' in values()['last_error'] and node.poll() is None
