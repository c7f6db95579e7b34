"""A small group-causal video autoencoder (VAE) for the shapes world.

Time layout (as in causal video VAEs): frame 0 is encoded alone as its own latent frame, every following group of
`temporal_factor` frames becomes one latent frame. A group's frames are stacked along channels and compressed by a 2D
conv net (space-to-depth in time), so encoding and decoding are cheap on a CPU. Frame 0 is encoded as a "still" group
(the frame repeated), which is also what makes image conditioning and first-frame constraints exact.

Pixels are floats in [-1, 1], laid out (B, 3, F, H, W); latents are (B, C, T, h, w) with T = 1 + (F - 1) / tf.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vbench_suite.backends.dit.config import AutoencoderConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """Pre-norm residual block of two 3x3 convolutions."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (N, C_out, H, W)
        h = self.conv2(F.silu(self.norm2(h)))  # (N, C_out, H, W)
        return self.skip(x) + h


class Encoder(nn.Module):
    """(N, 3*tf, H, W) stacked group -> (N, 2*C, H/s, W/s) posterior mean and log-variance."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.conv_in = nn.Conv2d(3 * cfg.temporal_factor, ch[0], 3, padding=1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [ResBlock(c_in, c_in), nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)]
        layers += [ResBlock(ch[-1], ch[-1])]
        self.down = nn.Sequential(*layers)
        self.norm_out = _norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(self.conv_in(x))  # (N, ch[-1], h, w)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, 2C, h, w)


class Decoder(nn.Module):
    """(N, C, h, w) latent -> (N, 3*tf, H, W) stacked group in [-1, 1] (before clamping)."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        ch = tuple(reversed(cfg.channels))
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        layers: list[nn.Module] = [ResBlock(ch[0], ch[0])]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1),
                       ResBlock(c_out, c_out)]
        self.up = nn.Sequential(*layers)
        self.norm_out = _norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 3 * cfg.temporal_factor, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.conv_in(z))  # (N, ch[0], H, W)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, 3*tf, H, W)


class VideoAutoencoder(nn.Module):
    """Encode (B, 3, F, H, W) videos in [-1, 1] to (B, C, T, h, w) latents and back."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    # -- time layout -------------------------------------------------------------------------------------------
    def to_groups(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) -> (B*T, 3*tf, H, W): frame 0 repeated tf times, then consecutive groups of tf frames."""
        b, c, f, h, w = video.shape
        tf = self.cfg.temporal_factor
        if (f - 1) % tf:
            raise ValueError(f"video has {f} frames; the autoencoder needs 1 + {tf}*k")
        first = video[:, :, :1].expand(b, c, tf, h, w)  # (B, 3, tf, H, W)
        rest = video[:, :, 1:]  # (B, 3, F-1, H, W)
        groups = torch.cat([first, rest], dim=2).reshape(b, c, -1, tf, h, w)  # (B, 3, T, tf, H, W)
        return groups.permute(0, 2, 3, 1, 4, 5).reshape(-1, tf * c, h, w)  # (B*T, tf*3, H, W)

    def from_groups(self, groups: torch.Tensor, batch: int) -> torch.Tensor:
        """(B*T, 3*tf, H, W) -> (B, 3, F, H, W): keeps one frame of the first (still) group, all frames of the rest."""
        tf = self.cfg.temporal_factor
        n, _, h, w = groups.shape
        g = groups.reshape(batch, n // batch, tf, 3, h, w)  # (B, T, tf, 3, H, W)
        first = g[:, :1].mean(dim=2)  # (B, 1, 3, H, W): the still group's frames agree; average them
        rest = g[:, 1:].reshape(batch, -1, 3, h, w)  # (B, F-1, 3, H, W)
        return torch.cat([first, rest], dim=1).permute(0, 2, 1, 3, 4)  # (B, 3, F, H, W)

    # -- encode / decode ---------------------------------------------------------------------------------------
    def encode_groups(self, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3*tf, H, W) -> posterior mean and log-variance, each (N, C, h, w)."""
        mean, logvar = self.encoder(groups).chunk(2, dim=1)  # (N, C, h, w) each
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) in [-1, 1] -> posterior mean latents (B, C, T, h, w)."""
        b = video.shape[0]
        mean, _ = self.encode_groups(self.to_groups(video))  # (B*T, C, h, w)
        return mean.reshape(b, -1, *mean.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, C, T, h, w)

    def encode_still(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) image -> (B, C, h, w): the latent frame of a still group (frame 0 or a held keyframe)."""
        tf = self.cfg.temporal_factor
        mean, _ = self.encode_groups(image.repeat(1, tf, 1, 1))  # (B, C, h, w)
        return mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, T, h, w) latents -> (B, 3, F, H, W) video in [-1, 1]."""
        b = z.shape[0]
        flat = z.permute(0, 2, 1, 3, 4).reshape(-1, *z.shape[1:2], *z.shape[3:])  # (B*T, C, h, w)
        return self.from_groups(self.decoder(flat), b).clamp(-1.0, 1.0)  # (B, 3, F, H, W)


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Object-weighted L1 + MSE plus an L1 on image gradients, for stacked groups (N, 3*tf, H, W) in [-1, 1].

    Objects cover a small part of each frame and carry everything a prompt asks for, so pixels that differ from the
    group's median colour (the background) weigh 5x; the gradient term punishes rounded corners and soft edges, which
    is what separates a diamond from a circle at 10-15 pixels.
    """
    background = target.flatten(2).median(dim=2).values[:, :, None, None]  # (N, 3*tf, 1, 1)
    weight = 1.0 + 4.0 * ((target - background).abs() > 0.1).float()  # (N, 3*tf, H, W)
    err = recon - target  # (N, 3*tf, H, W)
    l1 = (weight * err.abs()).mean()
    mse = (weight * err.square()).mean()
    grad = ((recon.diff(dim=-1) - target.diff(dim=-1)).abs().mean()
            + (recon.diff(dim=-2) - target.diff(dim=-2)).abs().mean())
    return l1 + mse + 2.0 * grad, {"l1": float(l1.detach()), "mse": float(mse.detach()), "grad": float(grad.detach())}


def autoencoder_loss(model: VideoAutoencoder, groups: torch.Tensor, kl_weight: float = 1e-6,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """VAE loss on a batch of stacked groups (N, 3*tf, H, W) in [-1, 1]: `reconstruction_loss` + a small KL."""
    mean, logvar = model.encode_groups(groups)  # (N, C, h, w) each
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    z = mean + torch.exp(0.5 * logvar) * noise  # (N, C, h, w)
    recon = model.decoder(z).float()  # (N, 3*tf, H, W)
    loss, parts = reconstruction_loss(recon, groups)
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).float().mean()
    return loss + kl_weight * kl, {**parts, "kl": float(kl.detach())}
