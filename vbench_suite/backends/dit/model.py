"""A latent video Diffusion Transformer (DiT) with factorised space/time attention and text cross-attention.

Follows DiT (Peebles & Xie) for patch embedding, adaLN-Zero and the final layer, Latte / OpenSora-style factorised
spatial then temporal self-attention, and PixArt-style cross-attention to text token embeddings. Written for this
project; no code copied.

Shapes: latents x are (B, C, T, H, W); tokens are (B, T, N, D) with N = (H/p)*(W/p) patches per latent frame; text
tokens are (B, L, text_dim) with a per-latent-frame mask (B, T, L) so different frames can attend to different
prompts (token masking). Conditioning vectors c are per latent frame: (B, T, D).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vbench_suite.backends.dit.config import DiTConfig


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation; x (B, T, N, D), shift/scale (B, T, D) broadcast over the N tokens of each frame."""
    return x * (1 + scale.unsqueeze(2)) + shift.unsqueeze(2)


def sinusoidal_1d(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(P,) float positions -> (P, dim) sin/cos embedding."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=positions.device)  # (dim/2,)
    freqs = torch.exp(-math.log(max_period) * steps / half)  # (dim/2,)
    args = positions.float()[:, None] * freqs[None]  # (P, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)  # (P, dim)


def spacetime_pos_embed(dim: int, frames: int, grid: int) -> torch.Tensor:
    """Fixed sinusoidal positions: half the width encodes (row, col), added to a temporal code. -> (T, N, D)."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    spatial = torch.cat([sinusoidal_1d(rows.flatten(), dim // 2),
                         sinusoidal_1d(cols.flatten(), dim // 2)], dim=1)  # (N, D)
    temporal = sinusoidal_1d(torch.arange(frames), dim)  # (T, D)
    return temporal[:, None, :] + spatial[None, :, :]  # (T, N, D)


class TimestepEmbedder(nn.Module):
    """Scalar flow time t in [0, 1] -> (B, D) via sinusoidal features and an MLP."""

    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_1d(t * 1000.0, self.freq_dim).to(t.device))  # (B, D)


FUSED_ATTENTION = False
"""True: use F.scaled_dot_product_attention. False (default): the same attention written as two matmuls and a
softmax, which on the 2-core CPU is faster for these short sequences (64 spatial, 5 temporal, 64 text tokens);
`benchmarks/bench_dit.py` measures both."""


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None, cross-attention otherwise."""

    def __init__(self, dim: int, num_heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (S, N, D), context (S, L, Dc), mask (S, N, L) bool (True = attend) -> (S, N, D)."""
        s, n, d = x.shape
        h = self.num_heads
        ctx = x if context is None else context
        q = self.q(x).reshape(s, n, h, d // h).transpose(1, 2)  # (S, h, N, d/h)
        k, v = self.kv(ctx).reshape(s, ctx.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)  # (S, h, L, d/h) each
        if FUSED_ATTENTION:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None])
        else:
            scores = (q @ k.transpose(-2, -1)) * (d // h) ** -0.5  # (S, h, N, L)
            if mask is not None:
                scores = scores.masked_fill(~mask[:, None], float("-inf"))  # every query row keeps >= 1 token
            out = scores.float().softmax(dim=-1).to(v.dtype) @ v  # (S, h, N, d/h)
        return self.proj(out.transpose(1, 2).reshape(s, n, d))  # (S, N, D)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """Spatial self-attn -> temporal self-attn -> text cross-attn -> MLP, with adaLN-Zero on the three
    self-conditioned branches (shift, scale, gate each) and a zero-initialised cross-attention output."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm_s = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn_s = Attention(dim, num_heads)
        self.norm_t = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn_t = Attention(dim, num_heads)
        self.norm_x = nn.LayerNorm(dim, eps=1e-6)
        self.cross = Attention(dim, num_heads)
        self.norm_m = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 9 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, N, D), c (B, T, D), text (B, L, D), text_mask (B, T, L) -> (B, T, N, D)."""
        b, t, n, d = x.shape
        (shift_s, scale_s, gate_s, shift_t, scale_t, gate_t,
         shift_m, scale_m, gate_m) = self.adaLN_modulation(c).chunk(9, dim=-1)  # (B, T, D) each

        h = modulate(self.norm_s(x), shift_s, scale_s).reshape(b * t, n, d)  # (B*T, N, D)
        x = x + gate_s.unsqueeze(2) * self.attn_s(h).reshape(b, t, n, d)  # (B, T, N, D)

        h = modulate(self.norm_t(x), shift_t, scale_t)  # (B, T, N, D)
        h = h.permute(0, 2, 1, 3).reshape(b * n, t, d)  # (B*N, T, D)
        h = self.attn_t(h).reshape(b, n, t, d).permute(0, 2, 1, 3)  # (B, T, N, D)
        x = x + gate_t.unsqueeze(2) * h

        # Cross-attention over all T*N tokens at once; each token sees only the text tokens of its frame's prompt.
        h = self.norm_x(x).reshape(b, t * n, d)  # (B, T*N, D)
        mask = text_mask[:, :, None, :].expand(b, t, n, text_mask.shape[-1]).reshape(b, t * n, -1)  # (B, T*N, L)
        x = x + self.cross(h, text, mask).reshape(b, t, n, d)  # (B, T, N, D)

        h = modulate(self.norm_m(x), shift_m, scale_m)  # (B, T, N, D)
        return x + gate_m.unsqueeze(2) * self.mlp(h)


class FinalLayer(nn.Module):
    """adaLN then a linear map from tokens to patches of the velocity."""

    def __init__(self, dim: int, patch: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)  # (B, T, D) each
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, T, N, p*p*C)


class VideoDiT(nn.Module):
    """Predicts the flow-matching velocity of latent video x_t given time, text tokens and an optional image latent.

    Input channels: C noisy latent + C image latent (broadcast over time; zeros when absent) + 1 image-present flag.
    """

    def __init__(self, cfg: DiTConfig, latent_channels: int, latent_frames: int, latent_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.latent_channels = latent_channels
        d, p = cfg.hidden_size, cfg.patch_size
        self.grid = latent_size // p
        in_channels = 2 * latent_channels + 1
        self.x_embedder = nn.Conv3d(in_channels, d, kernel_size=(1, p, p), stride=(1, p, p))
        self.t_embedder = TimestepEmbedder(d)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.pooled_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.register_buffer("pos_embed", spacetime_pos_embed(d, latent_frames, self.grid), persistent=False)
        self.blocks = nn.ModuleList([DiTBlock(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.final_layer = FinalLayer(d, p, latent_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def _basic(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.apply(_basic)
        w = self.x_embedder.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        for m in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(m.weight, std=0.02)
        for block in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
            nn.init.zeros_(block.cross.proj.weight)
            nn.init.zeros_(block.cross.proj.bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, p*p*C) -> (B, C, T, H, W)."""
        b, t, _, _ = x.shape
        p, g, c = self.cfg.patch_size, self.grid, self.latent_channels
        x = x.reshape(b, t, g, g, p, p, c)  # (B, T, gh, gw, p, p, C)
        return x.permute(0, 6, 1, 2, 4, 3, 5).reshape(b, c, t, g * p, g * p)  # (B, C, T, H, W)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                pooled: torch.Tensor, image: torch.Tensor, image_flag: torch.Tensor) -> torch.Tensor:
        """Velocity for x_t.

        x (B, C, T, H, W) noisy latent; t (B,) in [0, 1] (1 = pure noise); text (B, L, text_dim) token embeddings;
        text_mask (B, T, L) bool, which tokens each latent frame attends to; pooled (B, T, text_dim) the pooled
        text of each frame's prompt; image (B, C, H, W) image latent (zeros if none); image_flag (B,) 1.0 if given.
        Returns (B, C, T, H, W).
        """
        b, _, frames, h, w = x.shape
        cond = torch.cat([image[:, :, None].expand(-1, -1, frames, -1, -1),
                          image_flag[:, None, None, None, None].expand(b, 1, frames, h, w)], dim=1)  # (B, C+1, T, H, W)
        tokens = self.x_embedder(torch.cat([x, cond], dim=1))  # (B, D, T, gh, gw)
        tokens = tokens.flatten(3).permute(0, 2, 3, 1) + self.pos_embed[:frames]  # (B, T, N, D)
        c = self.t_embedder(t)[:, None, :] + self.pooled_proj(pooled)  # (B, T, D)
        ctx = self.text_proj(text)  # (B, L, D)
        for block in self.blocks:
            tokens = block(tokens, c, ctx, text_mask)  # (B, T, N, D)
        return self.unpatchify(self.final_layer(tokens, c))  # (B, C, T, H, W)
