"""Settings of the world model G(s, a, z) and of its training, frozen before use."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

ACTIVATIONS = ('silu', 'relu', 'elu', 'tanh', 'gelu')
_INDEX_TUPLES = ('frame_origin', 'frame_points', 'rotation_vectors', 'rotation_action_vectors')
_TUPLES = ('hidden_sizes',) + _INDEX_TUPLES


@dataclass(frozen=True)
class WorldModelConfig:
    """Architecture and training settings of the latent-variable ensemble world model."""

    state_dim: int
    """Size S of the state vector s (physical units, as given by perception)."""

    action_dim: int
    """Size A of the action vector a."""

    latent_dim: int = 2
    """Size Z of the latent z for what the state leaves undetermined (mass, friction); 0 = none."""

    ensemble_size: int = 5
    """Number E of ensemble members, each trained on its own bootstrap of the windows."""

    hidden_sizes: tuple[int, ...] = (128, 128, 128)
    """Widths of the hidden layers of each member's dynamics MLP."""

    encoder_hidden: int = 64
    """Width of the posterior encoder q(z | window) (per-transition MLP, then mean pooling)."""

    activation: str = 'silu'
    """Hidden-layer nonlinearity: one of silu, relu, elu, tanh, gelu."""

    predict_delta: bool = True
    """Predict the state change s[t+1] - s[t] (True) or s[t+1] itself (False)."""

    predict_reward: bool = False
    """Also learn a reward head r(s, a), for environments defined by their reward."""

    learning_rate: float = 1e-3
    """AdamW learning rate."""

    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""

    grad_clip: float = 10.0
    """Clip the global gradient norm to this value; 0 = no clipping."""

    train_horizon: int = 8
    """Length H of the multi-step loss: the model is unrolled H steps from each window's start."""

    window_stride: int = 1
    """Steps between the starts of consecutive training windows within an episode."""

    batch_size: int = 256
    """Windows per member per optimiser step."""

    max_epochs: int = 200
    """Upper bound on training epochs (one epoch = one pass over each member's bootstrap)."""

    max_windows_per_epoch: int = 20000
    """Cap on windows per member per epoch, so that epochs stay short on large data sets."""

    patience: int = 10
    """Early stopping: stop after this many epochs without a better validation error."""

    time_budget_s: float = 600.0
    """Stop training (keeping the best model) after this many seconds; 0 = no limit."""

    beta: float = 0.01
    """Weight of the latent regulariser R(z): KL(q(z | window) || N(0, I)) per window."""

    latent_context: str = 'episode'
    """What the posterior q(z | ...) sees in training: 'window' = the predicted window itself
    (s[t..t+H], a[t..t+H-1]); 'episode' = another window of the same episode, so that z can only
    carry what is constant over an episode (mass, friction), never the window's own noise."""

    frame_origin: tuple[int, ...] = ()
    """State indices of a moving origin (e.g. the end-effector's x, y): with `frame_points`, the
    dynamics see those points relative to it. Empty = every state as given (absolute)."""

    frame_points: tuple[int, ...] = ()
    """State indices of positions given to the dynamics relative to `frame_origin`: the i-th is
    paired with origin index i mod len(frame_origin) (e.g. the ball's x, y with the hand's x,
    y). Indices are into the model's state (`Task.model_state_names`), not perception's
    labelled state. Only the network's input changes; predictions stay in the state's frame."""

    frame_keep_origin: bool = True
    """Whether the dynamics also see the origin's absolute coordinates. False makes the learned
    dynamics invariant to translating the whole scene (contact learned once, not at every place
    on the table); keep it where the robot's own motion depends on where it is (workspace
    limits, edges in its path)."""

    augment_rotation: float = 0.0
    """Rotate each training window about its first frame origin by a random angle in
    [-this, this] rad (`hlai_ros.world_model.augment`); 0 = off. Needs a two-index
    `frame_origin` (x, y) and `frame_points` in x, y pairs: use it where the dynamics are the
    same in every direction on the plane (a ball pushed on a table) but the data do not show
    every direction alike (a camera that loses the ball behind the hand)."""

    rotation_vectors: tuple[int, ...] = ()
    """State indices of planar vectors (velocities), in x, y pairs, rotated with the window."""

    rotation_action_vectors: tuple[int, ...] = ()
    """Action indices of planar vectors (velocity commands), in x, y pairs, rotated with it."""

    val_fraction: float = 0.2
    """Fraction of the episodes held out for validation (split by episode, never by step)."""

    checkpoint_every: int = 1
    """Save the resumable training state every this many epochs (when out_dir is given)."""

    seed: int = 0
    """Seed of the initial weights, bootstraps, batches and latent noise."""

    def __post_init__(self):
        """Check every field, so that a bad setting fails here and not deep in training."""
        positive = ('state_dim', 'action_dim', 'ensemble_size', 'encoder_hidden',
                    'train_horizon', 'window_stride', 'batch_size', 'max_epochs',
                    'max_windows_per_epoch', 'patience', 'checkpoint_every')
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'WorldModelConfig.{name} must be an integer >= 1, got {value!r}')
        if not isinstance(self.latent_dim, int) or self.latent_dim < 0:
            raise ValueError(f'WorldModelConfig.latent_dim must be an integer >= 0, '
                             f'got {self.latent_dim!r}')
        object.__setattr__(self, 'hidden_sizes', tuple(int(h) for h in self.hidden_sizes))
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f'WorldModelConfig.hidden_sizes must be one or more positive widths, '
                             f'got {self.hidden_sizes!r}')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'WorldModelConfig.activation must be one of {ACTIVATIONS}, '
                             f'got {self.activation!r}')
        for name in ('learning_rate',):
            if not getattr(self, name) > 0:
                raise ValueError(f'WorldModelConfig.{name} must be > 0, got {getattr(self, name)}')
        for name in ('weight_decay', 'grad_clip', 'beta', 'time_budget_s'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'WorldModelConfig.{name} must be >= 0, '
                                 f'got {getattr(self, name)}')
        for name in _INDEX_TUPLES:
            object.__setattr__(self, name, tuple(int(i) for i in getattr(self, name)))
        origin, points = self.frame_origin, self.frame_points
        used = origin + points
        if bool(origin) != bool(points) or len(points) % max(len(origin), 1):
            raise ValueError(f'WorldModelConfig.frame_points must be a whole multiple of '
                             f'frame_origin in length, both given or neither; got {origin} and '
                             f'{points}')
        if any(not 0 <= i < self.state_dim for i in used) or len(set(used)) != len(used):
            raise ValueError(f'WorldModelConfig.frame_origin and frame_points must be distinct '
                             f'state indices in [0, {self.state_dim}), got {origin} and {points}')
        if self.augment_rotation < 0:
            raise ValueError(f'WorldModelConfig.augment_rotation must be >= 0, '
                             f'got {self.augment_rotation}')
        if self.augment_rotation > 0:
            if len(origin) != 2 or any(len(v) % 2 for v in (
                    points, self.rotation_vectors, self.rotation_action_vectors)):
                raise ValueError('WorldModelConfig.augment_rotation needs an x, y frame_origin '
                                 'and frame_points, rotation_vectors and '
                                 'rotation_action_vectors in x, y pairs')
            if any(not 0 <= i < self.state_dim for i in self.rotation_vectors) or any(
                    not 0 <= i < self.action_dim for i in self.rotation_action_vectors):
                raise ValueError('WorldModelConfig.rotation_vectors / rotation_action_vectors '
                                 'hold an index outside the state / action')
        if self.latent_context not in ('window', 'episode'):
            raise ValueError(f"WorldModelConfig.latent_context must be 'window' or 'episode', "
                             f'got {self.latent_context!r}')
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f'WorldModelConfig.val_fraction must be in [0, 1), '
                             f'got {self.val_fraction}')

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-able values."""
        out = asdict(self)
        for name in _TUPLES:
            out[name] = list(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WorldModelConfig:
        """Build a config from plain values, rejecting unknown keys by name."""
        if not isinstance(values, dict):
            raise ValueError(f'world model config must be a mapping, got {type(values).__name__}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f'unknown world model config keys {unknown}; expected some of '
                             f'{sorted(known)}')
        values = dict(values)
        for name in _TUPLES:
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)
