"""The critic and policy training state a Ray run checkpoints (no Ray needed).

`ActorTraining` is what the local `train_critic_and_policy` and every Ray Train rank step;
`save_state` / `load_state` are what a restarted Ray worker group continues from.
"""
import numpy as np
import pytest
import torch

from hlai_ros.actor.policy import PolicyConfig
from hlai_ros.actor.training import (
    ActorTraining,
    ActorTrainingConfig,
    ValueTrajectory,
    train_critic_and_policy,
)
from hlai_ros.cost import Cost, GoalCost
from hlai_ros.cost.critic import CriticConfig
from hlai_ros.world_model.checkpoint import CheckpointError
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.model import WorldModel

torch.set_num_threads(1)
CONFIG = ActorTrainingConfig(
    critic=CriticConfig(hidden=16, ensemble_size=2, goal_relative_indices=(0, 1)),
    policy=PolicyConfig(hidden=16, horizon=4, batch_size=32, goal_relative_indices=(0, 1)),
    window=6, critic_steps=12, policy_steps=8, time_budget_s=60, seed=2)
COST = Cost([('goal', GoalCost(position_indices=(0, 1)), 1.0, 1.0)])


def _reach_trajectories(n: int, steps: int) -> list[ValueTrajectory]:
    """Random walks of a point (x, y, vx, vy) with goals; cost = distance to the goal."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        goal = rng.uniform(-1, 1, 2).astype(np.float32)
        states = np.cumsum(rng.normal(0, 0.1, (steps + 1, 4)), 0).astype(np.float32)
        costs = np.linalg.norm(states[1:, :2] - goal, axis=1).astype(np.float32)
        out.append(ValueTrajectory(states, costs, False, goal))
    return out


def _model():
    torch.manual_seed(5)  # a world model with a latent: the policy steps draw latents
    return WorldModel(WorldModelConfig(state_dim=4, action_dim=2, ensemble_size=2,
                                       hidden_sizes=(8,))).eval()


def _training(model, config=CONFIG):
    return ActorTraining(model, COST, _reach_trajectories(n=8, steps=10), [-1, -1], [1, 1],
                         config)


def test_a_run_continued_from_a_saved_state_takes_the_uninterrupted_runs_steps(tmp_path):
    model = _model()
    whole = train_critic_and_policy(model, COST, _reach_trajectories(n=8, steps=10), [-1, -1],
                                    [1, 1], CONFIG, progress=False)
    first = _training(model)

    def save_midway(stage, ended):  # after 12 critic and 3 policy steps
        if stage == 'policy' and len(first.policy_losses) == 3 and not ended:
            first.save_state(tmp_path)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.run(after_step=save_midway)
    second = _training(model)
    assert second.load_state(tmp_path) and second.critic_done
    assert len(second.critic_losses) == 12 and len(second.policy_losses) == 3
    second.run()
    resumed = second.result()
    assert resumed.critic_losses == whole.critic_losses
    assert resumed.policy_losses == whole.policy_losses
    for a, b in ((resumed.critic, whole.critic), (resumed.policy, whole.policy)):
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), k


def test_a_state_of_other_settings_is_refused_and_shares_cover_each_minibatch(tmp_path):
    model = _model()
    _training(model).save_state(tmp_path)
    other = ActorTrainingConfig(**{**CONFIG.__dict__, 'seed': 3})
    with pytest.raises(CheckpointError, match='other settings'):
        _training(model, other).load_state(tmp_path)
    assert not _training(model).load_state(tmp_path / 'none')
    shares = []
    for rank in range(3):
        t = ActorTraining(model, COST, _reach_trajectories(n=4, steps=10), [-1, -1], [1, 1],
                          CONFIG, rank=rank, size=3)
        shares.append((t.share(7).tolist(), t.fraction))
    assert [s for s, _ in shares] == [[0, 3, 6], [1, 4], [2, 5]]
    assert sum(f for _, f in shares) == pytest.approx(1.0)
    t = ActorTraining(model, COST, _reach_trajectories(n=4, steps=10), [-1, -1], [1, 1],
                      CONFIG, rank=2, size=3)
    assert t.share(2).tolist() == [0] and t.fraction == 0.0  # joins the all-reduce, weight 0
