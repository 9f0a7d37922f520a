"""The latent world model: encode RGB-D + proprioception, predict the latent forward.

Shapes: B batch, E ensemble members, H horizon, A action size, P proprioception size, K
keypoints, D latent size = C * m * m (the image latent map, flattened) + 2K (keypoint x, y) + Dp
(the proprioception latent). The image latent is the map and the keypoints.

- `encode`: RGB-D (normalised, minus the training set's mean frame, plus two pixel-coordinate
  channels) -> a C x m x m feature map, kept spatial so that where a small object is stays in
  the code; proprioception -> Dp values. Both end in a BatchNorm projector.
- keypoints (`LatentConfig.keypoints`): a spatial-softmax head on a half-resolution map gives K
  expected (x, y) image positions. An expectation over a normalised attention map is linear in
  where the attended object is, which a pooled or flattened feature map is not; they are
  trained only through `decode_keypoints` (Transporter / KeyNet style): a frame is decoded from
  another frame of the same episode plus both frames' keypoints rendered as Gaussians, so what
  moved between them (the hand, the box, the robot) has to be carried by the keypoints.
- `next` / `rollout`: E predictor members, run as grouped convolutions on the map with the
  action, the proprioception latent and z broadcast over it; each predicts a residual. Their
  spread is the model's disagreement.
- `decode_image`: a small decoder from the image latent back to a low-resolution RGB-D frame
  (the auxiliary reconstruction loss of `objective`; not used to plan).

The latent variable z (`LatentConfig.z_dim`, default 0) enters every predictor step as extra
broadcast channels; ``z=None`` means zeros. It is the interface a posterior over what the
frames do not show (mass, friction) will use; at z_dim 0 the ensemble alone carries the
uncertainty.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from hlai_ros.latent.config import LatentConfig


def coord_channels(batch: int, size: int, device, dtype) -> torch.Tensor:
    """(B, 2, size, size) pixel coordinates in [-1, 1] (x across, y down)."""
    r = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(r, r, indexing='ij')
    return torch.stack([xx, yy]).unsqueeze(0).expand(batch, -1, -1, -1)


class ImageEncoder(nn.Module):
    """(B, 4, S, S) normalised RGB-D -> (B, C, m, m) feature map."""

    def __init__(self, c: LatentConfig):
        super().__init__()
        self.coord_conv = c.coord_conv
        ch = c.channels
        layers = [nn.Conv2d(4 + 2 * c.coord_conv, ch, 4, 2, 1), nn.GroupNorm(4, ch), nn.GELU(),
                  nn.Conv2d(ch, ch, 3, 2, 1), nn.GroupNorm(4, ch), nn.GELU(),
                  nn.Conv2d(ch, ch, 3, 1, 1), nn.GroupNorm(4, ch), nn.GELU()]
        size = c.image_size // 4
        while size > c.map_size:
            layers += [nn.Conv2d(ch, ch, 3, 2, 1), nn.GroupNorm(4, ch), nn.GELU()]
            size //= 2
        layers += [nn.Conv2d(ch, c.map_channels, 1), nn.BatchNorm2d(c.map_channels)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode (B, 4, S, S) -> (B, C, m, m)."""
        if self.coord_conv:
            x = torch.cat([x, coord_channels(x.shape[0], x.shape[-1], x.device, x.dtype)], 1)
        return self.net(x)


def spatial_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) logits -> (B, K, 2) expected (x, y) in [-1, 1] under the softmax over h*w."""
    b, k, h, w = logits.shape
    attn = torch.softmax(logits.flatten(2), -1).view(b, k, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=logits.device, dtype=logits.dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=logits.device, dtype=logits.dtype)
    return torch.stack([(attn.sum(2) * xs).sum(-1), (attn.sum(3) * ys).sum(-1)], -1)


def gaussian_maps(kp: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, K, 2) keypoints in [-1, 1] -> (B, K, size, size) Gaussian blobs of peak 1."""
    r = torch.linspace(-1.0, 1.0, size, device=kp.device, dtype=kp.dtype)
    dx = (r.view(1, 1, 1, -1) - kp[..., 0, None, None]) ** 2
    dy = (r.view(1, 1, -1, 1) - kp[..., 1, None, None]) ** 2
    return torch.exp(-(dx + dy) / (2.0 * sigma ** 2))


class KeypointEncoder(nn.Module):
    """(B, 4, S, S) normalised RGB-D -> (B, K, 2) keypoints from a spatial softmax at S/2."""

    def __init__(self, c: LatentConfig):
        super().__init__()
        self.coord_conv = c.coord_conv
        ch = c.keypoint_channels
        self.net = nn.Sequential(
            nn.Conv2d(4 + 2 * c.coord_conv, ch, 4, 2, 1), nn.GroupNorm(4, ch), nn.GELU(),
            nn.Conv2d(ch, ch, 3, 1, 1), nn.GroupNorm(4, ch), nn.GELU(),
            nn.Conv2d(ch, ch, 3, 1, 2, dilation=2), nn.GroupNorm(4, ch), nn.GELU(),
            nn.Conv2d(ch, c.keypoints, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Keypoints (B, K, 2), x then y, in [-1, 1]."""
        if self.coord_conv:
            x = torch.cat([x, coord_channels(x.shape[0], x.shape[-1], x.device, x.dtype)], 1)
        return spatial_softmax(self.net(x))


class KeypointDecoder(nn.Module):
    """Reference frame + reference and target keypoints -> the target frame (B, 4, r, r).

    Inputs at the reconstruction size r: the reference frame, the reference frame moved
    keypoint by keypoint to the target keypoints (each shift weighted by the target keypoint's
    Gaussian), and both sets of Gaussians. Everything that moved must come from the keypoints.
    """

    def __init__(self, c: LatentConfig):
        super().__init__()
        ch, k = c.channels, c.keypoints
        self.sigma, self.size = c.keypoint_sigma, c.recon_size
        self.proprio = c.keypoint_decoder_proprio
        extra = 2 * c.proprio_dim if self.proprio else 0
        self.net = nn.Sequential(
            nn.Conv2d(8 + 2 * k + 2 + extra, ch, 3, 1, 1), nn.GELU(),
            nn.Conv2d(ch, ch, 3, 1, 2, dilation=2), nn.GELU(),
            nn.Conv2d(ch, ch, 3, 1, 4, dilation=4), nn.GELU(),
            nn.Conv2d(ch, ch, 3, 1, 1), nn.GELU(),
            nn.Conv2d(ch, 4, 3, 1, 1))

    def forward(self, ref: torch.Tensor, kp_ref: torch.Tensor, kp_tgt: torch.Tensor,
                proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Decode: ref (B, 4, r, r), kp_ref / kp_tgt (B, K, 2) -> (B, 4, r, r).

        proprio (B, 2P): both frames' normalised proprioception (with
        `keypoint_decoder_proprio`).
        """
        b, k = kp_ref.shape[:2]
        r = self.size
        g_ref = gaussian_maps(kp_ref, r, self.sigma)
        g_tgt = gaussian_maps(kp_tgt, r, self.sigma)
        base = coord_channels(b * k, r, ref.device, ref.dtype).permute(0, 2, 3, 1)
        shift = (kp_ref - kp_tgt).reshape(b * k, 1, 1, 2)
        moved = F.grid_sample(ref.repeat_interleave(k, 0), base + shift, align_corners=True,
                              padding_mode='border').view(b, k, 4, r, r)
        moved = (moved * g_tgt.unsqueeze(2)).sum(1)
        parts = [ref, moved, g_ref, g_tgt, coord_channels(b, r, ref.device, ref.dtype)]
        if self.proprio:
            parts.append(proprio[..., None, None].expand(-1, -1, r, r))
        return self.net(torch.cat(parts, 1))


class ImageDecoder(nn.Module):
    """(B, C, m, m) image latent -> (B, 4, r, r) low-resolution RGB-D (normalised units)."""

    def __init__(self, c: LatentConfig):
        super().__init__()
        ch = c.channels
        layers: list[nn.Module] = [nn.Conv2d(c.map_channels + 2, ch, 3, 1, 1), nn.GELU()]
        size = c.map_size
        while size < c.recon_size:
            layers += [nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.GELU()]
            size *= 2
        layers += [nn.Conv2d(ch, 4, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        """Decode (B, C, m, m) -> (B, 4, r, r)."""
        coords = coord_channels(m.shape[0], m.shape[-1], m.device, m.dtype)
        return self.net(torch.cat([m, coords], 1))


class EnsemblePredictor(nn.Module):
    """E residual predictors on the latent map, as grouped convolutions (one pass for all)."""

    def __init__(self, c: LatentConfig):
        super().__init__()
        e, pc, cm = c.ensemble_size, c.predictor_channels, c.map_channels
        # the vector part of the latent: keypoints then proprioception latent
        dv = 2 * c.keypoints + c.proprio_latent_dim
        self.e, self.cm, self.m, self.dp = e, cm, c.map_size, dv
        cin = cm + c.action_dim + dv + c.z_dim + 2
        self.cin = cin
        self.conv = nn.Sequential(
            nn.Conv2d(e * cin, e * pc, 3, 1, 1, groups=e), nn.GELU(),
            nn.Conv2d(e * pc, e * pc, 3, 1, 2, dilation=2, groups=e), nn.GELU(),
            nn.Conv2d(e * pc, e * pc, 3, 1, 1, groups=e), nn.GELU())
        self.map_out = nn.Conv2d(e * pc, e * cm, 1, groups=e)
        # proprioception head: pooled hidden map + own inputs -> residual, per member
        self.prop_hidden = nn.Conv1d(e * (pc + dv + c.action_dim + c.z_dim), e * pc, 1,
                                     groups=e)
        self.prop_out = nn.Conv1d(e * pc, e * dv, 1, groups=e)
        nn.init.zeros_(self.map_out.weight)
        nn.init.zeros_(self.map_out.bias)
        nn.init.zeros_(self.prop_out.weight)
        nn.init.zeros_(self.prop_out.bias)

    def forward(self, latent: torch.Tensor, action: torch.Tensor, z: torch.Tensor
                ) -> torch.Tensor:
        """Predict: latent (E, B, D), action (B, A) normalised, z (B, Z) -> (E, B, D)."""
        e, b, _ = latent.shape
        m, cm = self.m, self.cm
        img = latent[..., :cm * m * m].reshape(e, b, cm, m, m)
        prop = latent[..., cm * m * m:]
        extra = torch.cat([action.expand(e, -1, -1), prop, z.expand(e, -1, -1)], -1)
        coords = coord_channels(b, m, latent.device, latent.dtype).expand(e, -1, -1, -1, -1)
        grid = extra.unsqueeze(-1).unsqueeze(-1).expand(-1, -1, -1, m, m)
        x = torch.cat([img, grid, coords], 2)                       # (E, B, cin, m, m)
        x = x.permute(1, 0, 2, 3, 4).reshape(b, e * self.cin, m, m)
        h = self.conv(x)
        d_img = self.map_out(h).reshape(b, e, cm, m, m).permute(1, 0, 2, 3, 4)
        pooled = h.mean((-1, -2)).reshape(b, e, -1)                  # (B, E, pc)
        p_in = torch.cat([pooled, extra.permute(1, 0, 2)], -1).reshape(b, -1, 1)
        d_prop = self.prop_out(F.gelu(self.prop_hidden(p_in))).reshape(b, e, self.dp)
        return latent + torch.cat([d_img.reshape(e, b, -1), d_prop.permute(1, 0, 2)], -1)


class LatentWorldModel(nn.Module):
    """Encoder, E-member predictor and auxiliary decoder; normalisers as buffers."""

    def __init__(self, config: LatentConfig):
        super().__init__()
        c = self.config = config
        s = c.image_size
        self.image_encoder = ImageEncoder(c)
        self.keypoint_encoder = KeypointEncoder(c) if c.keypoints else None
        self.keypoint_decoder = KeypointDecoder(c) if c.keypoints else None
        self.proprio_encoder = nn.Sequential(
            nn.Linear(c.proprio_dim, 64), nn.GELU(), nn.Linear(64, c.proprio_latent_dim),
            nn.BatchNorm1d(c.proprio_latent_dim))
        self.predictor = EnsemblePredictor(c)
        self.decoder = ImageDecoder(c)
        self.register_buffer('pixel_mean', torch.zeros(4))
        self.register_buffer('pixel_std', torch.ones(4))
        self.register_buffer('mean_frame', torch.zeros(4, s, s))
        self.register_buffer('proprio_mean', torch.zeros(c.proprio_dim))
        self.register_buffer('proprio_std', torch.ones(c.proprio_dim))
        self.register_buffer('action_scale', torch.ones(c.action_dim))

    # -- normalisation ----------------------------------------------------------------------
    @torch.no_grad()
    def fit_normalizers(self, rgb: torch.Tensor, depth: torch.Tensor, proprio: torch.Tensor,
                        actions: torch.Tensor) -> None:
        """Fit the input statistics on training frames.

        rgb (N, 3, S, S) uint8, depth (N, S, S) m, proprio (N, P), actions (N, A) (rows with
        non-finite values ignored).
        """
        x = torch.cat([rgb.float() / 255.0, depth.float().unsqueeze(1)], 1)
        self.pixel_mean.copy_(x.mean((0, 2, 3)))
        self.pixel_std.copy_(x.std((0, 2, 3)).clamp_min(1e-3))
        x = (x - self.pixel_mean.view(1, 4, 1, 1)) / self.pixel_std.view(1, 4, 1, 1)
        if self.config.mean_frame:
            self.mean_frame.copy_(x.mean(0))
        self.proprio_mean.copy_(proprio.mean(0))
        self.proprio_std.copy_(proprio.std(0).clamp_min(1e-3))
        ok = torch.isfinite(actions).all(1)
        if ok.any():
            self.action_scale.copy_(actions[ok].abs().amax(0).clamp_min(1e-3))

    def pixels(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Pixels: rgb (B, 3, S, S) uint8, depth (B, S, S) m -> (B, 4, S, S), mean removed."""
        x = torch.cat([rgb.float() / 255.0, depth.float().unsqueeze(1)], 1)
        x = (x - self.pixel_mean.view(1, 4, 1, 1)) / self.pixel_std.view(1, 4, 1, 1)
        return x - self.mean_frame

    # -- the world model's roles ------------------------------------------------------------
    @property
    def image_dim(self) -> int:
        """Size of the image part of the latent (its first entries)."""
        return self.config.image_latent_dim

    def image_part(self, latent: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., C*m*m), the image latent."""
        return latent[..., :self.image_dim]

    @property
    def map_dim(self) -> int:
        """Size of the latent map part (the first entries; the keypoints follow)."""
        return self.config.map_latent_dim

    def keypoint_part(self, latent: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., 2K), the keypoints' (x, y), keypoint by keypoint."""
        return latent[..., self.map_dim:self.image_dim]

    def keypoints(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 4, S, S) -> keypoints (B, K, 2) (K may be 0)."""
        if self.keypoint_encoder is None:
            return x.new_zeros(x.shape[0], 0, 2)
        return self.keypoint_encoder(x)

    def encode_pixels(self, x: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 4, S, S) + raw proprioception (B, P) -> latent (B, D)."""
        img = self.image_encoder(x).flatten(1)
        kp = self.keypoints(x).flatten(1)
        return torch.cat([img, kp, self.encode_proprio(proprio)], -1)

    def encode_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        """Raw proprioception (B, P) -> the proprioception latent (B, Dp)."""
        return self.proprio_encoder((proprio - self.proprio_mean) / self.proprio_std)

    def decode_keypoints(self, ref: torch.Tensor, kp_ref: torch.Tensor, kp_tgt: torch.Tensor,
                         proprio_ref: torch.Tensor | None = None,
                         proprio_tgt: torch.Tensor | None = None) -> torch.Tensor:
        """Decode a frame from a reference frame and keypoints.

        ref (B, 4, r, r) the reference frame's `recon_target`, kp_ref / kp_tgt (B, K, 2),
        raw proprioception of both frames (B, P) (used with `keypoint_decoder_proprio`) ->
        (B, 4, r, r), the target frame's `recon_target` as predicted.
        """
        prop = None
        if self.config.keypoint_decoder_proprio:
            prop = torch.cat([(proprio_ref - self.proprio_mean) / self.proprio_std,
                              (proprio_tgt - self.proprio_mean) / self.proprio_std], -1)
        return self.keypoint_decoder(ref, kp_ref, kp_tgt, prop)

    def encode(self, rgb: torch.Tensor, depth: torch.Tensor, proprio: torch.Tensor
               ) -> torch.Tensor:
        """Encode rgb (B, 3, S, S) uint8, depth (B, S, S) m, proprio (B, P) -> (B, D)."""
        return self.encode_pixels(self.pixels(rgb, depth), proprio)

    def next(self, latent: torch.Tensor, action: torch.Tensor, z: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Predict one step for every member.

        latent (B, D) or (E, B, D), action (B, A) in action units, z (B, Z) or None ->
        (E, B, D).
        """
        if latent.dim() == 2:
            latent = latent.unsqueeze(0).expand(self.config.ensemble_size, -1, -1)
        b = latent.shape[1]
        if z is None:
            z = latent.new_zeros(b, self.config.z_dim)
        return self.predictor(latent, action / self.action_scale, z)

    def rollout(self, latent: torch.Tensor, actions: torch.Tensor,
                z: torch.Tensor | None = None) -> torch.Tensor:
        """Roll latent (B, D) through actions (B, H, A) -> (E, B, H, D), steps 1..H."""
        out = []
        state = latent
        for k in range(actions.shape[1]):
            state = self.next(state, actions[:, k], z)
            out.append(state)
        return torch.stack(out, 2)

    def decode_image(self, latent: torch.Tensor) -> torch.Tensor:
        """Decode latent (B, D) -> (B, 4, r, r) low-resolution RGB-D minus the mean frame."""
        c = self.config
        img = latent[..., :self.map_dim].reshape(-1, c.map_channels, c.map_size, c.map_size)
        return self.decoder(img)

    def recon_target(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 4, S, S) -> the decoder's target (B, 4, r, r)."""
        return F.adaptive_avg_pool2d(x, self.config.recon_size)
