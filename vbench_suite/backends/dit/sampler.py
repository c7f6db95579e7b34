"""Rectified flow (flow matching): the training loss, an Euler sampler with classifier-free guidance and hard
keyframe constraints, and latent interpolation.

Convention: x_t = (1 - t) * x0 + t * noise, t in [0, 1] (t = 1 is pure noise); the model predicts the velocity
v = noise - x0, so an Euler step from t to s < t is x_s = x_t + (s - t) * v.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn

from vbench_suite.errors import UserError


class LatentShapeError(UserError):
    """Two latents cannot be interpolated because their shapes differ."""


@dataclass
class Conditioning:
    """Model inputs other than x_t and t, for a batch of B videos with T latent frames.

    text (B, L, 384) token embeddings; text_mask (B, T, L) bool per latent frame; pooled (B, T, 384);
    image (B, C, h, w) image latent (zeros if none); image_flag (B,) 1.0 where an image is given.
    """

    text: torch.Tensor
    text_mask: torch.Tensor
    pooled: torch.Tensor
    image: torch.Tensor
    image_flag: torch.Tensor

    def cat(self, other: "Conditioning") -> "Conditioning":
        """Stack along the batch (used to run conditional and unconditional branches in one pass)."""
        return Conditioning(*(torch.cat([a, b]) for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return (self.text, self.text_mask, self.pooled, self.image, self.image_flag)


@dataclass
class KeyframeConstraint:
    """Hard constraints on the latent trajectory: latent frame `index` must end at `latent` (B, C, h, w).

    `where` (B,) bool says which batch rows carry the constraint.
    """

    index: int
    latent: torch.Tensor
    where: torch.Tensor


def sample_times(b: int, gen: torch.Generator, device: torch.device, logit_mean: float = 0.0,
                 logit_std: float = 1.0) -> torch.Tensor:
    """Logit-normal training times (SD3): t = sigmoid(logit_mean + logit_std * n), n ~ N(0, 1).

    A positive `logit_mean` trains more at high noise, where the layout (how many objects, where) is decided; with
    (0, 1) times above 0.9 are drawn 1.4% of the time and a small model never learns to start from pure noise.
    """
    u = torch.randn(b, generator=gen).to(device)  # (B,)
    return torch.sigmoid(logit_mean + logit_std * u)


def flow_matching_loss(model: nn.Module, batch: Mapping[str, torch.Tensor], gen: torch.Generator,
                       logit_mean: float = 0.0, logit_std: float = 1.0) -> torch.Tensor:
    """Weighted MSE between predicted and true velocity.

    `batch` holds x0 (B, C, T, h, w), the Conditioning fields and optionally `weight` (B, 1, T, h, w): per latent
    pixel loss weights (training up-weights latent pixels that cover objects, which are a few percent of each frame
    yet carry every attribute a prompt names). The weighted mean is normalised by the mean weight. Times are drawn
    by `sample_times(logit_mean, logit_std)`.
    """
    x0 = batch["x0"]
    b = x0.shape[0]
    t = sample_times(b, gen, x0.device, logit_mean, logit_std)  # (B,)
    noise = torch.randn(x0.shape, generator=gen).to(x0.device)  # (B, C, T, h, w)
    tt = t[:, None, None, None, None]
    xt = (1 - tt) * x0 + tt * noise  # (B, C, T, h, w)
    v = model(xt, t, batch["text"], batch["text_mask"], batch["pooled"], batch["image"], batch["image_flag"])
    err = (v.float() - (noise - x0)).square()  # (B, C, T, h, w)
    weight = batch.get("weight")
    if weight is None:
        return err.mean()
    return (err * weight).mean() / weight.mean()


def time_grid(steps: int, shift: float = 1.0) -> torch.Tensor:
    """(steps + 1,) times from 1 to 0; shift > 1 spends more steps at high noise (t' = s t / (1 + (s - 1) t))."""
    if steps < 1:
        raise UserError(f"steps must be >= 1, got {steps}")
    t = torch.linspace(1.0, 0.0, steps + 1)
    return shift * t / (1 + (shift - 1) * t)


def apply_constraints(x: torch.Tensor, noise: torch.Tensor, t: float,
                      constraints: list[KeyframeConstraint]) -> torch.Tensor:
    """Put each constrained latent frame on its own straight path from the shared noise to its target at time t."""
    for c in constraints:
        target = (1 - t) * c.latent + t * noise[:, :, c.index]  # (B, C, h, w)
        x[:, :, c.index] = torch.where(c.where[:, None, None, None], target, x[:, :, c.index])
    return x


@torch.no_grad()
def sample(model: nn.Module, noise: torch.Tensor, cond: Conditioning, uncond: Conditioning | None,
           steps: int, guidance: float | torch.Tensor, shift: float = 1.0,
           constraints: list[KeyframeConstraint] | None = None, init: torch.Tensor | None = None,
           start: float = 1.0) -> torch.Tensor:
    """Euler integration of the guided velocity from noise (t = 1) to a clean latent (t = 0).

    noise (B, C, T, h, w); `uncond` None disables classifier-free guidance, otherwise
    v = v_uncond + guidance * (v_cond - v_uncond) with both branches in one batched call; `guidance` is a float or
    a per-video (B,) tensor. With `init` (B, C, T, h, w) and `start` < 1 (SDEdit) integration begins at t = start
    from (1 - start) * init + start * noise and takes only the grid's steps below `start`. Returns (B, C, T, h, w).
    """
    constraints = constraints or []
    times = time_grid(steps, shift).tolist()
    if init is not None and start < 1.0:
        times = [start] + [t for t in times if t < start]
        x = (1 - start) * init + start * noise
    else:
        x = noise.clone()
    guided = uncond is not None
    g = torch.as_tensor(guidance, dtype=noise.dtype, device=noise.device).reshape(-1, 1, 1, 1, 1)  # (B or 1, 1, 1, 1, 1)
    both = cond.cat(uncond) if guided else cond
    b = x.shape[0]
    for t, s in zip(times[:-1], times[1:]):
        x = apply_constraints(x, noise, t, constraints)
        t_batch = torch.full((b * (2 if guided else 1),), t, device=x.device)
        x_in = torch.cat([x, x]) if guided else x  # (B or 2B, C, T, h, w)
        v = model(x_in, t_batch, *both.astuple()).float()  # (B or 2B, C, T, h, w)
        if guided:
            v_c, v_u = v.chunk(2)
            v = v_u + g * (v_c - v_u)
        x = x + (s - t) * v
    return apply_constraints(x, noise, 0.0, constraints)


def interpolate_latents(a: torch.Tensor, b: torch.Tensor, alpha: float, method: str = "slerp") -> torch.Tensor:
    """Latent between `a` (alpha = 0) and `b` (alpha = 1), both (..., C, T, h, w) of the same shape.

    'linear': (1 - alpha) a + alpha b. 'slerp': spherical interpolation of the flattened latents (keeps the norm
    profile of Gaussian-like latents); falls back to linear when they are (anti)parallel.
    """
    if a.shape != b.shape:
        raise LatentShapeError(f"cannot interpolate latents of different shapes {tuple(a.shape)} and "
                               f"{tuple(b.shape)}: generate both videos with the same frames and resolution")
    if method == "linear":
        return torch.lerp(a, b, alpha)
    if method != "slerp":
        raise UserError(f"unknown interpolation method {method!r}; use 'linear' or 'slerp'")
    fa, fb = a.reshape(-1).double(), b.reshape(-1).double()
    cos = torch.dot(fa, fb) / (fa.norm() * fb.norm()).clamp(min=1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(torch.sin(omega)) < 1e-6:
        return torch.lerp(a, b, alpha)
    wa = torch.sin((1 - alpha) * omega) / torch.sin(omega)
    wb = torch.sin(alpha * omega) / torch.sin(omega)
    return (wa * fa + wb * fb).reshape(a.shape).to(a.dtype)
