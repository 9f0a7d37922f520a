"""The training objective on a batch of H-step windows.

total = prediction + sigreg_weight * (SIGReg(image latent maps) + SIGReg(proprio latents))
        + recon_weight * reconstruction + keypoint_recon_weight * keypoint reconstruction

- prediction: every ensemble member rolls the latent of frame 0 forward through the H recorded
  actions; the squared error to the encodings of frames 1..H, averaged per dimension over the
  image part and over the proprioception part separately (so that the 16 proprioception values
  are not drowned by the image's C*m*m), summed; the keypoints' error is averaged on its own,
  weighted by `keypoint_pred_weight`, and reaches only the predictor (keypoints are detached:
  a prediction term on them would pull them onto what does not move). The map's targets are
  not detached (as LeWorldModel): SIGReg, not a stop-gradient, keeps the encoder from
  collapsing.
- SIGReg on each branch on its own: on the image latent maps (all frames of the batch) and on the
  proprioception latents. Regularising the image branch itself is what keeps it from going blind
  when proprioception alone could explain the hand (the quick experiment's VICReg failure).
- reconstruction (of the window's first and last frames by default): a low-resolution
  (`recon_size`) RGB-D frame, minus the mean frame, decoded from the image latent. After the
  mean frame is removed, what is left to reconstruct is mostly what moves (the hand, the box),
  which forces small objects into the code.
- keypoint reconstruction (with `keypoints`): the window's last frame, decoded from another frame
  of the same episode (``batch['ref_rgb']``, ``batch['ref_depth']``) plus both frames'
  keypoints; pixels that differ between the two frames weigh more (`keypoint_motion_weight`).
  The reference frame shows the episode's static scene, so only what moved needs the keypoints.
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
    keypoint_reconstruction: torch.Tensor | None = None


def window_loss(model: LatentWorldModel, batch: dict[str, torch.Tensor],
                generator: torch.Generator | None = None) -> LossTerms:
    """The objective on a batch of windows.

    batch: rgb (B, H+1, 3, S, S) uint8, depth (B, H+1, S, S) m, proprio (B, H+1, P), actions
    (B, H, A) in action units; with keypoints also ref_rgb (B, 3, S, S) and ref_depth (B, S, S),
    a reference frame of each window's episode (default: the window's first frame).
    """
    c = model.config
    b, h1 = batch['rgb'].shape[:2]
    x = model.pixels(batch['rgb'].flatten(0, 1), batch['depth'].flatten(0, 1))
    # keypoints learn only from the keypoint reconstruction (of each window's last frame), so
    # the other frames' keypoints are computed without a graph (a third of the step's time)
    with torch.no_grad():
        kp = model.keypoints(x).flatten(1)
    latents = torch.cat([model.image_encoder(x).flatten(1), kp,
                         model.encode_proprio(batch['proprio'].flatten(0, 1))], -1)
    km, k = model.map_dim, model.image_dim
    seq = latents.view(b, h1, -1)
    pred = model.rollout(seq[:, 0], batch['actions'])                     # (E, B, H, D)
    target = seq[:, 1:].unsqueeze(0)
    err = (pred - target) ** 2
    prediction = err[..., :km].mean() + err[..., k:].mean()
    if k > km:
        prediction = prediction + c.keypoint_pred_weight * err[..., km:k].mean()
    reg = sigreg(latents[:, :km], c.sigreg_slices, generator) \
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
    kp_recon = None
    if k > km and c.keypoint_recon_weight > 0:
        if 'ref_rgb' in batch:
            ref_x = model.pixels(batch['ref_rgb'], batch['ref_depth'])
            ref_p = batch.get('ref_proprio', batch['proprio'][:, 0])
        else:  # no reference frame given: the window's first frame
            ref_x, ref_p = x[torch.arange(b) * h1], batch['proprio'][:, 0]
        last = torch.arange(b) * h1 + h1 - 1
        kp_tgt = model.keypoints(x[last])
        kp_ref = model.keypoints(ref_x)
        ref_r, tgt_r = model.recon_target(ref_x), model.recon_target(x[last])
        sq = (model.decode_keypoints(ref_r, kp_ref, kp_tgt, ref_p, batch['proprio'][:, -1])
              - tgt_r) ** 2
        if c.keypoint_motion_weight > 0:
            moved = (tgt_r - ref_r).pow(2).sum(1, keepdim=True)
            sq = sq * (1.0 + c.keypoint_motion_weight * moved / moved.mean().clamp_min(1e-6))
        kp_recon = sq.mean()
        total = total + c.keypoint_recon_weight * kp_recon
    return LossTerms(total, prediction, reg, recon, kp_recon)
