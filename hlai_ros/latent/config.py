"""The latent world model's settings: one frozen dataclass, defaults here and nowhere else."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class LatentConfig:
    """Shapes, loss weights and training budget of a latent world model."""

    image_size: int = 64
    """Height and width of the RGB-D input, pixels (square)."""
    proprio_dim: int = 14
    """Size P of the proprioception vector (the embodiment's labels)."""
    action_dim: int = 2
    """Size A of the action."""
    channels: int = 32
    """Width of the encoder's and decoder's convolutions."""
    map_channels: int = 16
    """Channels C of the image latent map."""
    map_size: int = 8
    """Side of the image latent map (8 or 16): the image latent is C x map_size x map_size."""
    coord_conv: bool = True
    """Append pixel-coordinate channels to the input (CoordConv), so position is linear."""
    mean_frame: bool = True
    """Subtract the training set's mean RGB-D frame from every input."""
    keypoints: int = 16
    """Keypoints K of the image latent (0: none): a spatial-softmax head on a half-resolution map
    whose K expected (x, y) positions, in [-1, 1] image coordinates, are appended to the image
    latent (2K values). Trained only through `keypoint_recon_weight` (Transporter style)."""
    keypoint_channels: int = 16
    """Width of the keypoint head's convolutions."""
    keypoint_sigma: float = 0.08
    """Std of the Gaussian each keypoint is rendered as when decoded, in [-1, 1] image units."""
    keypoint_recon_weight: float = 1.0
    """Weight of the keypoint reconstruction: a window's last frame decoded from a reference
    frame of the same episode and both frames' keypoints (what moved must be in the keypoints)."""
    keypoint_motion_weight: float = 10.0
    """Extra weight of the keypoint reconstruction on pixels that differ between the target and
    the reference frame: 1 + this x the squared difference over its batch mean."""
    keypoint_decoder_proprio: bool = False
    """Give the keypoint decoder both frames' proprioception too, so the robot's own body can be
    drawn from it and the keypoints are left for what proprioception does not explain (the box)."""
    keypoint_pred_weight: float = 10.0
    """Weight of the keypoints' multi-step prediction error (trains the predictor only)."""
    proprio_latent_dim: int = 16
    """Size of the proprioception part of the latent."""
    predictor_channels: int = 32
    """Width of each predictor member's convolutions."""
    ensemble_size: int = 3
    """Predictor members; their spread is the model's disagreement."""
    z_dim: int = 0
    """Size of the latent variable z fed to the predictor (0: deterministic, z unused)."""
    horizon: int = 5
    """Steps of the multi-step prediction loss."""
    sigreg_weight: float = 0.1
    """Weight of the SIGReg collapse regulariser (image and proprioception latents each)."""
    sigreg_slices: int = 256
    """Random directions SIGReg tests per step."""
    recon_weight: float = 1.0
    """Weight of the low-resolution RGB-D reconstruction from the image latent (0: none)."""
    recon_size: int = 32
    """Side of the reconstruction target, pixels."""
    recon_motion_weight: float = 10.0
    """Extra reconstruction weight on pixels that differ from the mean frame: each target pixel
    weighs 1 + this x its squared residual over the batch mean (what moves: hand, box)."""
    recon_frames: str = 'ends'
    """Frames of a window that are reconstructed: 'ends' (the first and the last) or 'all'."""
    batch_size: int = 32
    """Windows per gradient step."""
    learning_rate: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 5.0
    """Gradient-norm clip (0: none)."""
    steps_per_epoch: int = 150
    """Gradient steps between validation passes."""
    max_epochs: int = 200
    """Most epochs."""
    patience: int = 8
    """Epochs without validation improvement before stopping."""
    time_budget_s: float = 1800.0
    """Wall-clock budget of the training loop, seconds (0: none)."""
    val_fraction: float = 0.1
    """Share of episodes held out for validation (split by episode)."""
    val_windows: int = 256
    """Validation windows evaluated per epoch (a fixed subset)."""
    seed: int = 0
    """Seed of the split, the initialisation and the batches."""

    def __post_init__(self):
        if self.map_size not in (8, 16):
            raise ValueError(f'map_size must be 8 or 16, got {self.map_size}')
        if self.image_size % 16:
            raise ValueError(f'image_size must be a multiple of 16, got {self.image_size}')
        if self.image_size // 4 < self.map_size:
            raise ValueError(f'image_size {self.image_size} is too small for a '
                             f'{self.map_size} x {self.map_size} map (needs 4 x map_size)')
        if self.keypoints < 0:
            raise ValueError(f'keypoints must be >= 0, got {self.keypoints}')
        if self.horizon < 1 or self.ensemble_size < 1:
            raise ValueError('horizon and ensemble_size must be at least 1')

    @property
    def map_latent_dim(self) -> int:
        """Size of the flattened latent map, C * map_size**2."""
        return self.map_channels * self.map_size ** 2

    @property
    def image_latent_dim(self) -> int:
        """Size of the image latent: the flattened map, then 2K keypoint coordinates."""
        return self.map_latent_dim + 2 * self.keypoints

    @property
    def latent_dim(self) -> int:
        """Size D of the whole latent: image part, then proprioception part."""
        return self.image_latent_dim + self.proprio_latent_dim

    def for_task(self, task) -> 'LatentConfig':
        """This config with the task plugin's `Task.latent_defaults` applied."""
        return replace(self, **dict(getattr(task, 'latent_defaults', None) or {}))

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'LatentConfig':
        """Build a config from `to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        if 'keypoints' not in data:  # saved before keypoints existed: a model without them
            data = dict(data, keypoints=0)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown latent config fields {unknown}')
        return cls(**data)

    def with_overrides(self, pairs: list[str]) -> 'LatentConfig':
        """Apply ``key=value`` strings (types from the defaults)."""
        types = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        updates: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition('=')
            if not sep or key not in types:
                raise ValueError(f'bad override {pair!r}; fields: {sorted(types)}')
            kind = types[key]
            if kind is bool:
                updates[key] = value.lower() in ('1', 'true', 'yes')
            else:
                updates[key] = kind(value)
        return replace(self, **updates)
