"""The training objective on a batch of H-step windows.

total = prediction + sigreg_weight * (SIGReg(image latents) + SIGReg(proprio latents))
        + recon_weight * reconstruction

- prediction: every ensemble member rolls the latent of frame 0 forward through the H recorded
  actions; the squared error to the encodings of frames 1..H, averaged per dimension over the
  image part and over the proprioception part separately (so that the 16 proprioception values
  are not drowned by the image's C*m*m), summed. The targets are not detached (as LeWorldModel):
  SIGReg, not a stop-gradient, keeps the encoder from collapsing.
- SIGReg on each branch on its own: on the image latents (all frames of the batch) and on the
  proprioception latents. Regularising the image branch itself is what keeps it from going blind
  when proprioception alone could explain the hand (the quick experiment's VICReg failure).
- reconstruction (of the window's first and last frames by default): a low-resolution
  (`recon_size`) RGB-D frame, minus the mean frame, decoded from the image latent. After the
  mean frame is removed, what is left to reconstruct is mostly what moves (the hand, the box),
  which forces small objects into the code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hlai_ros.latent.model import LatentWorldModel
from hlai_ros.latent.sigreg import sigreg


@dataclass
class LossTerms:
    """The objective's terms on one batch (scalar tensors)."""

    total: torch.Tensor
    prediction: torch.Tensor
    sigreg: torch.Tensor
    reconstruction: torch.Tensor


def window_loss(model: LatentWorldModel, batch: dict[str, torch.Tensor],
                generator: torch.Generator | None = None) -> LossTerms:
    """The objective on a batch of windows.

    batch: rgb (B, H+1, 3, S, S) uint8, depth (B, H+1, S, S) m, proprio (B, H+1, P), actions
    (B, H, A) in action units.
    """
    c = model.config
    b, h1 = batch['rgb'].shape[:2]
    x = model.pixels(batch['rgb'].flatten(0, 1), batch['depth'].flatten(0, 1))
    latents = model.encode_pixels(x, batch['proprio'].flatten(0, 1))      # (B*(H+1), D)
    seq = latents.view(b, h1, -1)
    pred = model.rollout(seq[:, 0], batch['actions'])                     # (E, B, H, D)
    target = seq[:, 1:].unsqueeze(0)
    err = (pred - target) ** 2
    k = model.image_dim
    prediction = err[..., :k].mean() + err[..., k:].mean()
    reg = sigreg(latents[:, :k], c.sigreg_slices, generator) \
        + sigreg(latents[:, k:], c.sigreg_slices, generator)
    if c.recon_weight > 0:
        pick = slice(None)
        if c.recon_frames == 'ends':  # two frames per window carry the signal at a third the cost
            pick = torch.stack([torch.arange(b) * h1, torch.arange(b) * h1 + h1 - 1], 1).flatten()
        target = model.recon_target(x[pick])
        sq = (model.decode_image(latents[pick]) - target) ** 2
        if c.recon_motion_weight > 0:
            energy = target.detach().pow(2).sum(1, keepdim=True)
            sq = sq * (1.0 + c.recon_motion_weight * energy / energy.mean().clamp_min(1e-6))
        recon = sq.mean()
    else:
        recon = latents.new_zeros(())
    total = prediction + c.sigreg_weight * reg + c.recon_weight * recon
    return LossTerms(total, prediction, reg, recon)
