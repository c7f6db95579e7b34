"""The three-stage pipeline: text encoding -> iterative denoising of a latent video by the DiT -> VAE decoding.

`DiTPipeline.load(path)` reads a checkpoint folder (config.json + model.safetensors); without a path it reads the
checkpoint shipped in `vbench_suite/backends/dit/weights/`. One `SampleSpec` describes one video: its prompt
segments (token masking), whether text is used, an optional conditioning image, optional first/last keyframes, seed,
steps and guidance. Every video's noise comes from its own `torch.Generator(seed)`, so a video does not depend on
the batch it is generated in.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vbench_suite.backends.dit.autoencoder import VideoAutoencoder
from vbench_suite.backends.dit.config import WEIGHTS_DIR, WEIGHTS_FILE, PipelineConfig
from vbench_suite.backends.dit.model import VideoDiT
from vbench_suite.backends.dit.sampler import Conditioning, KeyframeConstraint, interpolate_latents, sample
from vbench_suite.backends.dit.text_encoder import TEXT_DIM, TextEmbedding, TextEncoder
from vbench_suite.errors import BackendNotConfigured, UserError

@dataclass(frozen=True)
class Segment:
    """Prompt for the pixel frames first..last (inclusive)."""

    first: int
    last: int
    prompt: str


@dataclass(frozen=True)
class SampleSpec:
    """One video to sample. Images are uint8 (H, W, 3) arrays at the model's resolution."""

    segments: tuple[Segment, ...]
    """One segment covering every frame for a plain prompt; several for token masking."""
    seed: int = 0
    steps: int = 20
    guidance: float = 4.0
    use_text: bool = True
    """False for pure image-to-video (the null prompt; no guidance)."""
    image: np.ndarray | None = field(default=None, compare=False)
    """Conditioning image, concatenated channel-wise with the noisy latent at every step (i2v / hybrid)."""
    first_frame: np.ndarray | None = field(default=None, compare=False)
    """Hard constraint: latent frame 0 is pinned to this frame's latent along the whole trajectory."""
    last_frame: np.ndarray | None = field(default=None, compare=False)
    """Hard constraint: the last latent frame (the last `temporal_factor` frames) is pinned to this frame held still."""


def single_prompt(prompt: str, num_frames: int, **options: object) -> SampleSpec:
    """A SampleSpec with one prompt for every frame."""
    return SampleSpec(segments=(Segment(0, num_frames - 1, prompt),), **options)  # type: ignore[arg-type]


def latent_frame_of_pixels(num_frames: int, temporal_factor: int) -> list[list[int]]:
    """Pixel frames covered by each latent frame: [[0], [1..tf], [tf+1..2tf], ...]."""
    groups = [[0]]
    for start in range(1, num_frames, temporal_factor):
        groups.append(list(range(start, min(start + temporal_factor, num_frames))))
    return groups


class DiTPipeline:
    """Autoencoder + DiT + frozen text encoder, ready to sample. Not thread-safe."""

    def __init__(self, cfg: PipelineConfig, vae: VideoAutoencoder, dit: VideoDiT, device: torch.device,
                 version: str = "random", text_encoder: TextEncoder | None = None) -> None:
        self.cfg = cfg
        self.vae = vae.to(device).eval().requires_grad_(False)
        self.dit = dit.to(device).eval().requires_grad_(False)
        self.device = device
        self.version = version
        """sha256 prefix of the weights file ('random' for random weights)."""
        self._text_encoder = text_encoder
        self._text_cache: dict[str, TextEmbedding] = {}

    # -- construction --------------------------------------------------------------------------------------------
    @staticmethod
    def build_modules(cfg: PipelineConfig) -> tuple[VideoAutoencoder, VideoDiT]:
        a = cfg.autoencoder
        return VideoAutoencoder(a), VideoDiT(cfg.dit, a.latent_channels, cfg.latent_frames, a.latent_size)

    @classmethod
    def random(cls, cfg: PipelineConfig, seed: int = 0, device: str | torch.device = "cpu",
               text_encoder: TextEncoder | None = None) -> "DiTPipeline":
        """Random weights (tests). The DiT's zero-initialised outputs are perturbed so every layer matters."""
        torch.manual_seed(seed)
        vae, dit = cls.build_modules(cfg)
        with torch.no_grad():
            for p in dit.parameters():
                if p.abs().sum() == 0:
                    p.normal_(0.0, 0.02)
        return cls(cfg, vae, dit, torch.device(device), "random", text_encoder)

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device | None = None) -> "DiTPipeline":
        """Load a checkpoint folder (config.json + model.safetensors); None means the shipped weights."""
        from safetensors.torch import load_file

        folder = Path(path) if path is not None else WEIGHTS_DIR
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise BackendNotConfigured(f"no {WEIGHTS_FILE} in {folder}; train one with "
                                       "`python -m vbench_suite.backends.dit.train --out DIR` and pass that folder")
        cfg = PipelineConfig.load(folder)
        vae, dit = cls.build_modules(cfg)
        tensors = load_file(str(weights))
        vae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vae.")})
        dit_state = {k[4:]: v for k, v in tensors.items() if k.startswith("dit.")}
        if not dit_state:
            raise BackendNotConfigured(f"{weights} holds only the autoencoder (DiT training has not started yet)")
        dit.load_state_dict(dit_state)
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(cfg, vae, dit, dev, digest)

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(self.cfg.max_text_tokens, self.device)
        return self._text_encoder

    # -- stages --------------------------------------------------------------------------------------------------
    def encode_text(self, prompts: Sequence[str]) -> list[TextEmbedding]:
        """Per-prompt embeddings (tokens (1, L, 384)), cached by prompt text."""
        missing = sorted({p for p in prompts if p not in self._text_cache})
        if missing:
            e = self.text_encoder.encode(missing)
            for i, p in enumerate(missing):
                self._text_cache[p] = TextEmbedding(e.tokens[i:i + 1], e.mask[i:i + 1], e.pooled[i:i + 1])
        return [self._text_cache[p] for p in prompts]

    def to_pixels(self, image: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, 3) -> (1, 3, H, W) in [-1, 1] on the device; must already be at the model's size."""
        size = self.cfg.autoencoder.image_size
        if image.shape != (size, size, 3) or image.dtype != np.uint8:
            raise UserError(f"conditioning image must be uint8 ({size}, {size}, 3), got {image.dtype} {image.shape}")
        return torch.from_numpy(image).permute(2, 0, 1)[None].float().to(self.device) / 127.5 - 1.0

    @torch.no_grad()
    def encode_still(self, image: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, 3) -> normalised latent frame (C, h, w) of the image held still."""
        z = self.vae.encode_still(self.to_pixels(image))[0]  # (C, h, w)
        return (z - self.cfg.latent_shift) * self.cfg.latent_scale

    @torch.no_grad()
    def encode_video(self, video: np.ndarray) -> torch.Tensor:
        """uint8 (F, H, W, 3) with F = num_frames at the model's size -> normalised latent (C, T, h, w)."""
        size, frames = self.cfg.autoencoder.image_size, self.cfg.num_frames
        if video.shape != (frames, size, size, 3) or video.dtype != np.uint8:
            raise UserError(f"video must be uint8 ({frames}, {size}, {size}, 3), got {video.dtype} {video.shape}")
        x = torch.from_numpy(video).permute(3, 0, 1, 2)[None].float().to(self.device) / 127.5 - 1.0  # (1, 3, F, H, W)
        return (self.vae.encode(x)[0] - self.cfg.latent_shift) * self.cfg.latent_scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """(B, C, T, h, w) normalised latents -> uint8 (B, F, H, W, 3)."""
        z = latents / self.cfg.latent_scale + self.cfg.latent_shift
        video = self.vae.decode(z.to(self.device))  # (B, 3, F, H, W)
        return ((video + 1.0) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 4, 1).cpu().numpy()

    def noise(self, seed: int) -> torch.Tensor:
        """The initial noise (1, C, T, h, w) of a video with this seed (CPU generator, so it is device-independent)."""
        gen = torch.Generator().manual_seed(int(seed))
        return torch.randn((1, *self.cfg.latent_shape), generator=gen).to(self.device)

    def conditioning(self, specs: Sequence[SampleSpec], null_text: bool = False) -> Conditioning:
        """Batch conditioning. Each spec's segments fill prompt slots of L tokens; each latent frame attends to the
        slot of the segment covering most of its pixel frames."""
        cfg = self.cfg
        length, frames = cfg.max_text_tokens, cfg.latent_frames
        slots = max(2, max(len(s.segments) for s in specs))
        pixel_groups = latent_frame_of_pixels(cfg.num_frames, cfg.autoencoder.temporal_factor)
        text = torch.zeros(len(specs), slots * length, TEXT_DIM, device=self.device)
        mask = torch.zeros(len(specs), frames, slots * length, dtype=torch.bool, device=self.device)
        pooled = torch.zeros(len(specs), frames, TEXT_DIM, device=self.device)
        image = torch.zeros(len(specs), cfg.autoencoder.latent_channels, cfg.autoencoder.latent_size,
                            cfg.autoencoder.latent_size, device=self.device)
        flag = torch.zeros(len(specs), device=self.device)
        for i, spec in enumerate(specs):
            prompts = [""] if (null_text or not spec.use_text) else [s.prompt for s in spec.segments]
            embeddings = self.encode_text(prompts)
            for j, e in enumerate(embeddings):
                text[i, j * length:(j + 1) * length] = e.tokens[0]
            for k, pixels in enumerate(pixel_groups):
                j = 0 if len(embeddings) == 1 else segment_for(spec.segments, pixels)
                mask[i, k, j * length:(j + 1) * length] = embeddings[j].mask[0]
                pooled[i, k] = embeddings[j].pooled[0]
            source = spec.image if spec.image is not None else spec.first_frame
            if source is not None:
                image[i] = self.encode_still(source)
                flag[i] = 1.0
        return Conditioning(text, mask, pooled, image, flag)

    @torch.no_grad()
    def sample_latents(self, specs: Sequence[SampleSpec], init: torch.Tensor | None = None,
                       start: float = 1.0) -> torch.Tensor:
        """Denoise a batch (all specs must share `steps`). Returns normalised latents (B, C, T, h, w).

        `init` (B, C, T, h, w) and `start` < 1: begin from `init` noised to t = start (SDEdit; see `sample`)."""
        if len({s.steps for s in specs}) != 1:
            raise ValueError("one batch must share the number of steps; group requests by steps first")
        cond = self.conditioning(specs)
        guidance = torch.tensor([s.guidance if s.use_text else 1.0 for s in specs], device=self.device)
        uncond = self.conditioning(specs, null_text=True) if bool((guidance != 1.0).any()) else None
        noise = torch.cat([self.noise(s.seed) for s in specs])  # (B, C, T, h, w)
        constraints = self.keyframe_constraints(specs)
        return sample(self.dit, noise, cond, uncond, specs[0].steps, guidance, self.cfg.time_shift, constraints,
                      init, start)

    def keyframe_constraints(self, specs: Sequence[SampleSpec]) -> list[KeyframeConstraint]:
        out = []
        shape = (len(specs), self.cfg.autoencoder.latent_channels, self.cfg.autoencoder.latent_size,
                 self.cfg.autoencoder.latent_size)
        for index, attr in ((0, "first_frame"), (self.cfg.latent_frames - 1, "last_frame")):
            where = torch.tensor([getattr(s, attr) is not None for s in specs], device=self.device)
            if bool(where.any()):
                latent = torch.zeros(shape, device=self.device)
                for i, s in enumerate(specs):
                    if getattr(s, attr) is not None:
                        latent[i] = self.encode_still(getattr(s, attr))
                out.append(KeyframeConstraint(index, latent, where))
        return out

    def generate(self, specs: Sequence[SampleSpec]) -> np.ndarray:
        """Sample and decode: uint8 (B, F, H, W, 3)."""
        return self.decode(self.sample_latents(specs))

    def interpolate(self, a: torch.Tensor, b: torch.Tensor, alphas: Sequence[float],
                    method: str = "slerp") -> np.ndarray:
        """Decode latents between two generations' latents (C, T, h, w) -> uint8 (len(alphas), F, H, W, 3)."""
        z = torch.stack([interpolate_latents(a, b, float(al), method) for al in alphas])  # (A, C, T, h, w)
        return self.decode(z)


def segment_for(segments: Sequence[Segment], pixels: Sequence[int]) -> int:
    """Index of the segment covering most of `pixels` (ties go to the earlier segment; uncovered frames to the nearest)."""
    votes = [sum(s.first <= p <= s.last for p in pixels) for s in segments]
    if max(votes) > 0:
        return int(np.argmax(votes))
    centre = float(np.mean(pixels))
    return int(np.argmin([min(abs(centre - s.first), abs(centre - s.last)) for s in segments]))
