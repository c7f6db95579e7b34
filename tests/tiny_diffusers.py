"""Tiny random-weight diffusers video pipelines built fully offline, tokenizer and text encoder included.

diffusers' own tests take their tiny tokenizers and text encoders from the Hugging Face hub; these tests cannot
download, so the tokenizer is a `tokenizers` WordLevel vocabulary (whitespace split, unknown words -> <unk>) wrapped
in `PreTrainedTokenizerFast`, and the text encoder a 2-layer `T5EncoderModel` of width 32. Every builder writes the
pipeline with `save_pretrained` into a folder, so the code under test loads it from disk like a real model.

Sizes are chosen so that each pipeline runs in well under a second per 2-step call at 32x32 and 5-9 frames on
2 CPU cores; `scale` widens the denoiser (for the overhead benchmark, which needs measurable pipeline time).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

WORDS = ("a an the red green blue yellow white black circle square triangle moves left right up down on background "
         "of fox cat dog runs through snow city street night day slowly quickly camera pans zooms").split()
TEXT_DIM = 32
"""Width of the tiny T5 encoder's hidden states (the denoisers' text input width)."""


def tiny_tokenizer() -> Any:
    """A WordLevel tokenizer over `WORDS` with T5-like special tokens (<pad> id 0, </s> id 1, <unk> id 2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    # like T5: every sequence ends with </s>
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)


def tiny_text_encoder(seed: int = 0, umt5: bool = False) -> Any:
    """A 2-layer T5 encoder of width `TEXT_DIM` (UMT5, Wan's encoder type, when `umt5`), random weights."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    config, model = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    cfg = config(vocab_size=len(WORDS) + 3, d_model=TEXT_DIM, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return model(cfg).eval()


def _wan_parts(seed: int, scale: int, in_channels: int, image_dim: int | None = None,
               pos_embed_seq_len: int | None = None) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(seed + 1)
    heads = 2 * scale
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=12, in_channels=in_channels,
        out_channels=16, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32 * scale, num_layers=2 * scale,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=image_dim,
        pos_embed_seq_len=pos_embed_seq_len)
    return {"vae": vae, "transformer": transformer, "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
            "text_encoder": tiny_text_encoder(seed + 2, umt5=True), "tokenizer": tiny_tokenizer()}


def wan_t2v(seed: int = 0, scale: int = 1) -> Any:
    """`WanPipeline` (Wan 2.1 text-to-video layout): 16 latent channels, 4k+1 frames, sizes in multiples of 16."""
    from diffusers import WanPipeline

    return WanPipeline(**_wan_parts(seed, scale, in_channels=16))


def wan_i2v(seed: int = 0, scale: int = 1) -> Any:
    """`WanImageToVideoPipeline` without a CLIP image encoder (the Wan 2.2 image-to-video layout): the denoiser
    sees the noisy latents concatenated with the encoded conditioning video and its mask (16 + 16 + 4 channels)."""
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline(**_wan_parts(seed, scale, in_channels=36), image_encoder=None,
                                   image_processor=None)


def ltx(seed: int = 0, scale: int = 1) -> Any:
    """`LTXPipeline`: a 4x spatial / 4x temporal VAE (so 4k+1 frames), sizes in multiples of 32 (the pipeline's
    own check). Its components also make `LTXImageToVideoPipeline` and `LTXConditionPipeline`."""
    import torch
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline,
                           LTXVideoTransformer3DModel)

    torch.manual_seed(seed)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False)
    torch.manual_seed(seed + 1)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4 * scale,
        attention_head_dim=8, cross_attention_dim=32 * scale, num_layers=1 * scale, caption_channels=TEXT_DIM)
    return LTXPipeline(vae=vae, transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                       text_encoder=tiny_text_encoder(seed + 2), tokenizer=tiny_tokenizer())


def cogvideox(seed: int = 0, scale: int = 1) -> Any:
    """`CogVideoXPipeline` (1.0 layout, learned sin-cos positions): 8x spatial / 4x temporal VAE, 4k+1 frames,
    sizes in multiples of 16. The text length is the real models' 226 tokens (the denoiser's positions count it)."""
    import torch
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline,
                           CogVideoXTransformer3DModel)

    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    torch.manual_seed(seed + 1)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4 * scale, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=TEXT_DIM, num_layers=1 * scale, sample_width=4, sample_height=4, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226)
    return CogVideoXPipeline(vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler(),
                             text_encoder=tiny_text_encoder(seed + 2), tokenizer=tiny_tokenizer())


BUILDERS: dict[str, Callable[..., Any]] = {"wan_t2v": wan_t2v, "wan_i2v": wan_i2v, "ltx": ltx,
                                           "cogvideox": cogvideox}


def save_tiny(name: str, folder: Path, seed: int = 0, scale: int = 1) -> Path:
    """Build the tiny pipeline `name` (a key of `BUILDERS`) and `save_pretrained` it into `folder`; returns it."""
    folder = Path(folder)
    BUILDERS[name](seed=seed, scale=scale).save_pretrained(folder)
    return folder


def wan_ti2v(seed: int = 0, scale: int = 1) -> Any:
    """`WanPipeline` with `expand_timesteps` (the Wan 2.2 TI2V layout): one model for text-to-video and, through
    `WanImageToVideoPipeline`, image-to-video (the first latent frame is the encoded image)."""
    from diffusers import WanPipeline

    return WanPipeline(**_wan_parts(seed, scale, in_channels=16), expand_timesteps=True)


def wan_flf2v(seed: int = 0, scale: int = 1) -> Any:
    """`WanImageToVideoPipeline` in the Wan 2.1 FLF2V layout: a CLIP vision encoder embeds the first and last frame
    for the denoiser's image cross-attention (which has positions for two images' tokens: 2 x (32x32 patches + 1)),
    besides the encoded conditioning video. Without those positions it is the Wan 2.1 I2V layout (first frame only)."""
    import torch
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed + 3)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=32, intermediate_size=16,
                                               patch_size=1)).eval()
    processor = CLIPImageProcessor(crop_size=32, size=32)
    parts = _wan_parts(seed, scale, in_channels=36, image_dim=4, pos_embed_seq_len=2 * (32 * 32 + 1))
    return WanImageToVideoPipeline(**parts, image_encoder=encoder, image_processor=processor)


BUILDERS["wan_ti2v"] = wan_ti2v
BUILDERS["wan_flf2v"] = wan_flf2v


def to_hub_cache(folder: Path, cache: Path, repo_id: str, commit: str = "c0ffee" * 6 + "abcd") -> Path:
    """Lay `folder` out in `cache` the way the Hugging Face hub cache does (blobs named by the file's sha256, a
    snapshot of relative links per commit, `refs/main`), as `huggingface-cli download` would; returns the snapshot."""
    import hashlib
    import os
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
