"""The latent representation: a world model learned from pixels and proprioception.

Self-supervised, from the same bags as the state model, with no hand-written perception and no
ground truth in training:

- `data`: frames and H-step windows from recorded episodes (`LatentDataset`);
- `model`: `LatentWorldModel` with `encode`, `next`, `rollout` (ensemble) and `decode_image`;
- `sigreg`: the collapse regulariser; `objective`: the training loss;
- `train`: `train_latent` and the ``main`` CLI; `checkpoint`: atomic safetensors with identity;
- `goal`: the goal cost over latents (keypoints weighted by what proprioception does not
  explain) and its ranking measure;
- `probes`: linear probes, collapse and prediction figures (evaluation only, reads ground truth).

Never imports rclpy.
"""
from hlai_ros.latent.config import LatentConfig
from hlai_ros.latent.data import LatentDataset, dataset_from_episodes, load_dataset
from hlai_ros.latent.model import LatentWorldModel

__all__ = ['LatentConfig', 'LatentDataset', 'LatentWorldModel', 'dataset_from_episodes',
           'load_dataset']
