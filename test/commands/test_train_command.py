"""`hlai train` end to end with a tiny budget: world model, critic and policy from fresh bags."""
import json

import numpy as np
import pytest
import torch

from hlai_ros.actor.checkpoint import load_critic, load_policy
from hlai_ros.cli import main
from hlai_ros.data.errors import BagError
from hlai_ros.tasks.base import Percept
from hlai_ros.tasks.compare import CompareConfig, make_controller
from hlai_ros.world_model.checkpoint import load_world_model

torch.set_num_threads(1)


def test_train_writes_model_critic_policy_and_card_then_eval_loads_them(tmp_path, capsys):
    data, out = tmp_path / 'data', tmp_path / 'model'
    assert main(['collect', '--task', 'cliff', '--episodes', '2', '--out', str(data),
                 '--max-steps', '12', '--policy', 'mixed', '--seed', '3', '--no-progress']) == 0
    capsys.readouterr()
    assert main(['train', '--task', 'cliff', '--data', str(data), '--out', str(out),
                 '--epochs', '1', '--time-budget', '30', '--ensemble', '2', '--hidden', '16',
                 '--critic-steps', '3', '--policy-steps', '2', '--quiet',
                 '--set', 'train_horizon=3']) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['transitions'] == 24
    assert summary['critic_steps'] == 3 and summary['policy_steps'] == 2
    model = load_world_model(out)
    assert model.config.train_horizon == 3  # --set reaches the world model's config
    critic, policy = load_critic(out), load_policy(out)
    assert model.state_dim == critic.state_dim == policy.state_dim == 6
    assert critic.config.goal_relative_indices == (0, 1)
    card = (out / 'README.md').read_text()
    assert 'critic V(s)' in card and 'hlai train' in card

    # --actor-only retrains critic and policy through the saved model, leaving it as it was
    weights = sorted(p.name for p in out.glob('world_model-*.safetensors'))
    assert main(['train', '--task', 'cliff', '--data', str(data), '--out', str(out),
                 '--actor-only', '--critic-steps', '2', '--policy-steps', '1', '--quiet']) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['critic_steps'] == 2
    assert sorted(p.name for p in out.glob('world_model-*.safetensors')) == weights

    controller = make_controller('learned', CompareConfig(task='cliff', model_dir=str(out)))
    assert controller.stack.critic is not None and controller.stack.policy is not None
    assert controller.stack.profile.planner.critic_weight == 0.0  # the cliff task's own settings
    assert controller.stack.profile.planner.policy_fraction == 0.0
    percept = Percept(np.array([0, 0, 1, 0, 0, 0], np.float32), np.array([1, 0], np.float32))
    assert controller.stack.fallback(percept) is not None  # the policy is still the fallback
    weighted = make_controller('learned', CompareConfig(
        task='cliff', model_dir=str(out),
        profile=(('planner.critic_weight', 0.5), ('planner.policy_fraction', 0.2))))
    assert weighted.stack.planner.config.critic_weight == 0.5
    assert weighted.stack.planner.config.policy_fraction == 0.2
    plain = make_controller('learned', CompareConfig(task='cliff', model_dir=str(out),
                                                     use_critic=False, use_policy=False))
    assert plain.stack.critic is None and plain.stack.policy is None


def test_train_representation_latent_writes_a_latent_checkpoint_with_its_identity(tmp_path,
                                                                                    capsys):
    from hlai_ros.latent.checkpoint import load_latent_model
    from hlai_ros.tasks import get_task
    data, out = tmp_path / 'data', tmp_path / 'latent'
    assert main(['collect', '--task', 'cliff', '--episodes', '3', '--out', str(data),
                 '--max-steps', '8', '--policy', 'random', '--seed', '3', '--no-progress']) == 0
    capsys.readouterr()
    assert main(['train', '--task', 'cliff', '--data', str(data), '--out', str(out),
                 '--representation', 'latent', '--time-budget', '30', '--quiet', '--set',
                 'horizon=2', 'steps_per_epoch=2', 'max_epochs=1', 'batch_size=4',
                 'ensemble_size=2', 'val_fraction=0.34', '--plan-set', 'dynamics_budget_s=2',
                 'ensemble_size=2', 'event_steps=20', 'value_steps=20']) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['episodes'] == 3 and summary['epochs'] == 1
    model = load_latent_model(out, identity=get_task('cliff').identity('latent'))
    assert model is not None
    # the planning stage wrote what the actor plans with: the folder is a latent stack
    from hlai_ros.actor.stack import load_stack
    from hlai_ros.latent.stack import LatentStack
    assert summary['planning']['planning_transitions'] > 0
    assert isinstance(load_stack(get_task('cliff'), out, 'cpu'), LatentStack)
    # --stage events refits only the event heads; the dynamics stay as they were
    dynamics = sorted(p.name for p in out.glob('world_model*'))
    assert main(['train', '--task', 'cliff', '--data', str(data), '--out', str(out),
                 '--representation', 'latent', '--stage', 'events', '--quiet', '--plan-set',
                 'event_steps=5', 'event_kind=pixels', 'val_fraction=0.34']) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['events']['episodes'] == 3 and 'planning' not in summary
    assert sorted(p.name for p in out.glob('world_model*')) == dynamics
    assert isinstance(load_stack(get_task('cliff'), out, 'cpu'), LatentStack)
    with pytest.raises(SystemExit, match='--stage'):
        main(['train', '--task', 'cliff', '--data', str(data), '--stage', 'events'])
    # the state model's options are refused with the latent representation
    try:
        main(['train', '--task', 'cliff', '--data', str(data), '--representation', 'latent',
              '--epochs', '2'])
    except SystemExit as exc:
        assert '--epochs' in str(exc)
    else:
        raise AssertionError('--epochs with --representation latent was not refused')


def test_train_refuses_a_bad_model_setting_before_reading_the_data(tmp_path):
    tmp_path.joinpath('data').mkdir()
    for setting, reason in (('bogus=1', "'bogus'.*not a setting; KEY is one of"),
                            ('train_horizon', 'takes KEY=VALUE'),
                            ('train_horizon=0', 'train_horizon must be')):
        with pytest.raises(SystemExit, match=reason):
            main(['train', '--task', 'cliff', '--data', str(tmp_path / 'data'),
                  '--set', setting])


def test_train_checks_settings_with_the_tasks_sizes_and_defaults(tmp_path):
    """A rotation needs an x, y frame: cliff has none, roll's defaults give one.

    Cliff's is refused; roll's passes the check, and the run stops only at the empty data.
    """
    tmp_path.joinpath('data').mkdir()
    with pytest.raises(SystemExit, match='augment_rotation needs an x, y frame_origin'):
        main(['train', '--task', 'cliff', '--data', str(tmp_path / 'data'),
              '--set', 'augment_rotation=1.0'])
    with pytest.raises(BagError, match='no rosbag2 bags'):
        main(['train', '--task', 'roll', '--data', str(tmp_path / 'data'), '--quiet',
              '--set', 'augment_rotation=3.14', 'rotation_vectors=[4, 5, 6, 7]',
              'rotation_action_vectors=[0, 1]'])
