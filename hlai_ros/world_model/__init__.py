"""World model G(s, a, z): a latent-variable ensemble learnt from observed episodes.

The pieces, one file each: `config` (WorldModelConfig), `model` (WorldModel, the Dynamics of
`protocol`), `latent` (prior and posterior of z), `dataset` (episodes and windows), `objective`
(multi-step loss), `train` (train_world_model), `checkpoint` (safetensors + JSON), `online`
(OnlineLearner), `horizon` (k-step error against baselines), `gym_episodes` (gymnasium data).
"""
from hlai_ros.world_model.checkpoint import CheckpointError, load_world_model, save_world_model
from hlai_ros.world_model.config import WorldModelConfig
from hlai_ros.world_model.dataset import Episode
from hlai_ros.world_model.horizon import horizon_errors, plot_horizon_errors
from hlai_ros.world_model.model import WorldModel, default_device
from hlai_ros.world_model.online import OnlineLearner
from hlai_ros.world_model.protocol import Dynamics
from hlai_ros.world_model.train import TrainingHistory, train_world_model

__all__ = ['CheckpointError', 'Dynamics', 'Episode', 'OnlineLearner', 'TrainingHistory',
           'WorldModel', 'WorldModelConfig', 'default_device', 'horizon_errors',
           'load_world_model', 'plot_horizon_errors', 'save_world_model', 'train_world_model']
