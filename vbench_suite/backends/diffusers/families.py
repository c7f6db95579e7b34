"""Which diffusers video pipelines the `diffusers` backend knows, and what each accepts per request mode.

Pure arithmetic on the model's JSON configs (`model_index.json`, `transformer/config.json`, `vae/config.json`): no
torch or diffusers import, so `capabilities()` stays cheap. Frame-count rules and size multiples are derived from
the configs (so a tiny test model and the real checkpoint follow the same code); native resolution, frame rate and
frame count are the published ones of each family (the pipelines' own `__call__` defaults, which a test checks
against the installed diffusers). Sizes are (width, height), as everywhere in vbench_suite.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from vbench_suite.types import Capabilities, ModeCapabilities

TEXT, IMAGE, IMAGE_AND_LAST, CONDITIONS = "text", "image", "image+last", "conditions"
"""How a mode hands its inputs to the pipeline: prompt only; `image=` the first frame; `image=` + `last_image=`
(Wan's first+last frame); `conditions=[LTXVideoCondition(image, frame_index)]` (LTX keyframes at any frame)."""

PIPELINE_DEFAULTS: dict[str, tuple[int, float]] = {
    "WanPipeline": (50, 5.0), "WanImageToVideoPipeline": (50, 5.0),
    "LTXPipeline": (50, 3.0), "LTXImageToVideoPipeline": (50, 3.0), "LTXConditionPipeline": (50, 3.0),
    "CogVideoXPipeline": (50, 6.0), "CogVideoXImageToVideoPipeline": (50, 6.0),
    "HunyuanVideoPipeline": (50, 6.0), "HunyuanVideoImageToVideoPipeline": (50, 1.0),
}
"""Pipeline class -> (num_inference_steps, guidance_scale) it defaults to in diffusers 0.42 (checked by a test)."""


@dataclass(frozen=True)
class ModePlan:
    """How one request mode runs: which pipeline class, how inputs are passed, the limits requests are fitted to."""

    mode: str
    pipeline_class: str
    """diffusers class serving this mode; built from the loaded pipeline's components (`from_pipe`) when it is not
    the class the model was saved as."""
    inputs: str
    """One of TEXT, IMAGE, IMAGE_AND_LAST, CONDITIONS."""
    limits: ModeCapabilities
    steps: int | None
    """Default denoising steps (None: leave it to the pipeline)."""
    guidance: float | None
    """Default guidance scale (None: leave it to the pipeline)."""


@dataclass(frozen=True)
class FamilyPlan:
    """What a saved diffusers pipeline can do, mode by mode."""

    family: str
    """'wan', 'ltx', 'cogvideox', 'hunyuanvideo' or 'generic' (a pipeline class this table does not know)."""
    pipeline_class: str
    """`_class_name` of model_index.json."""
    modes: tuple[ModePlan, ...]
    takes_frame_rate: bool = False
    """True when the pipeline conditions on the frame rate (LTX: `frame_rate=`); others only write the file at it."""
    note: str = ""
    """A caveat to record with every generation (e.g. for the generic fallback)."""

    def plan(self, mode: str) -> ModePlan | None:
        return next((p for p in self.modes if p.mode == mode), None)

    def capabilities(self) -> Capabilities:
        return Capabilities.of({p.mode: p.limits for p in self.modes})


@dataclass(frozen=True)
class ModelConfigs:
    """The JSON a plan is derived from (empty dicts for components the model lacks)."""

    model_index: Mapping[str, Any]
    transformer: Mapping[str, Any]
    vae: Mapping[str, Any]

    @property
    def pipeline_class(self) -> str:
        return str(self.model_index.get("_class_name", ""))


def _limits(native: tuple[int, int], frames: int, fps: int, size_multiple: int, temporal: int,
            max_frames: int, fixed_size: bool = False) -> ModeCapabilities:
    """Limits of a model that makes `temporal`*k+1 frames at sizes in multiples of `size_multiple`, natively
    `frames` frames of `native` (w, h) at `fps`, at most `max_frames` frames."""
    return ModeCapabilities(
        max_duration_s=max_frames / fps, resolutions=(native,) if fixed_size else (), fps=(fps,),
        size_multiple=size_multiple, frame_multiple=max(1, temporal), frame_remainder=1 if temporal > 1 else 0,
        default_duration_s=frames / fps, default_resolution=native, default_fps=fps)


def _modes(limits: ModeCapabilities, entries: list[tuple[str, str, str]],
           keyframes: str = "first") -> tuple[ModePlan, ...]:
    """ModePlans from (mode, pipeline class, inputs); image modes take exactly one image, keyframes per `keyframes`."""
    out = []
    for mode, cls, inputs in entries:
        lim = limits
        if mode in ("i2v", "hybrid"):
            lim = dataclasses.replace(limits, min_images=1, max_images=1)
        elif mode == "keyframes":
            lim = dataclasses.replace(limits, keyframes=keyframes, max_images=0)  # type: ignore[arg-type]
        else:
            lim = dataclasses.replace(limits, max_images=0)
        steps, guidance = PIPELINE_DEFAULTS.get(cls, (None, None))
        out.append(ModePlan(mode, cls, inputs, lim, steps, guidance))
    return tuple(out)


def _image_modes(cls: str) -> list[tuple[str, str, str]]:
    # The i2v pipelines always read the prompt too, so they serve 'i2v' and 'hybrid' (prompt + image) alike.
    return [("i2v", cls, IMAGE), ("hybrid", cls, IMAGE)]


def _wan(cfg: ModelConfigs, max_frames: int | None) -> FamilyPlan:
    vae, tr, index = cfg.vae, cfg.transformer, cfg.model_index
    patch = list(tr.get("patch_size") or (1, 2, 2))
    temporal = int(vae.get("scale_factor_temporal") or 4)
    spatial = int(vae.get("scale_factor_spatial") or 8) * int(patch[1])
    if int(vae.get("z_dim", 16)) == 48:  # Wan 2.2 TI2V-5B: its own 16x VAE, 720p at 24 fps
        native, frames, fps = (1280, 704), 121, 24
    else:  # Wan 2.1 and 2.2 A14B: 480p at 16 fps
        native, frames, fps = (832, 480), 81, 16
    limits = _limits(native, frames, fps, spatial, temporal, max_frames or frames)
    expand = bool(index.get("expand_timesteps"))
    keyframes = ("keyframes", "WanImageToVideoPipeline", IMAGE_AND_LAST)
    rule = "first"
    if cfg.pipeline_class == "WanPipeline":
        # TI2V models (expand_timesteps) also animate a first frame, through the image-to-video pipeline.
        entries = [("t2v", "WanPipeline", TEXT)] + (_image_modes("WanImageToVideoPipeline") if expand else [])
    elif tr.get("image_dim") is not None and tr.get("pos_embed_seq_len"):
        # Wan 2.1 FLF2V: its denoiser's image cross-attention has positions for exactly two CLIP-embedded frames
        entries, rule = [keyframes], "first_and_last"
    else:
        entries = _image_modes("WanImageToVideoPipeline")
        # Wan 2.2 I2V (no CLIP image encoder) puts a last frame into the conditioning video as well; Wan 2.1 I2V
        # (CLIP, one image's positions) cannot, and with expand_timesteps diffusers conditions on the first only.
        if not expand and tr.get("image_dim") is None:
            entries.append(keyframes)
    return FamilyPlan("wan", cfg.pipeline_class, _modes(limits, entries, keyframes=rule))


def _ltx(cfg: ModelConfigs, max_frames: int | None) -> FamilyPlan:
    vae, tr = cfg.vae, cfg.transformer
    scaling = sum(bool(s) for s in (vae.get("spatio_temporal_scaling") or (True, True, True, False)))
    spatial = int(vae.get("spatial_compression_ratio") or int(vae.get("patch_size") or 4) * 2 ** scaling)
    temporal = int(vae.get("temporal_compression_ratio") or int(vae.get("patch_size_t") or 1) * 2 ** scaling)
    spatial *= int(tr.get("patch_size") or 1)
    temporal *= int(tr.get("patch_size_t") or 1)
    size_multiple = math.lcm(32, spatial)  # the pipelines refuse sizes that are not multiples of 32
    limits = _limits((704, 512), 161, 25, size_multiple, temporal, max_frames or 257)
    # The three LTX pipelines share one set of components: every LTX model serves all three modes.
    entries = [("t2v", "LTXPipeline", TEXT), *_image_modes("LTXImageToVideoPipeline"),
               ("keyframes", "LTXConditionPipeline", CONDITIONS)]
    return FamilyPlan("ltx", cfg.pipeline_class, _modes(limits, entries, keyframes="first_or_last"),
                      takes_frame_rate=True)


def _cogvideox(cfg: ModelConfigs, max_frames: int | None) -> FamilyPlan:
    vae, tr = cfg.vae, cfg.transformer
    vae_spatial = 2 ** (len(vae.get("block_out_channels") or (128, 256, 256, 512)) - 1)
    temporal = int(vae.get("temporal_compression_ratio") or 4)
    native = (int(tr.get("sample_width", 90)) * vae_spatial, int(tr.get("sample_height", 60)) * vae_spatial)
    frames = int(tr.get("sample_frames", 49))
    fps = 16 if tr.get("patch_size_t") else 8  # CogVideoX 1.5 (temporal patches) runs at 16 fps, 1.0 at 8
    # learned positional embeddings (CogVideoX-5b-I2V) exist for the trained size only: diffusers refuses others
    fixed = bool(tr.get("use_learned_positional_embeddings"))
    limits = _limits(native, frames, fps, vae_spatial * int(tr.get("patch_size") or 2), temporal,
                     max_frames or frames, fixed_size=fixed)
    if cfg.pipeline_class == "CogVideoXImageToVideoPipeline":
        entries = _image_modes("CogVideoXImageToVideoPipeline")
    else:
        entries = [("t2v", "CogVideoXPipeline", TEXT)]
    return FamilyPlan("cogvideox", cfg.pipeline_class, _modes(limits, entries))


def _hunyuan(cfg: ModelConfigs, max_frames: int | None) -> FamilyPlan:
    vae, tr = cfg.vae, cfg.transformer
    spatial = int(vae.get("spatial_compression_ratio") or 8) * int(tr.get("patch_size") or 2)
    temporal = int(vae.get("temporal_compression_ratio") or 4)
    limits = _limits((1280, 720), 129, 24, max(16, spatial), temporal, max_frames or 129)
    if cfg.pipeline_class == "HunyuanVideoImageToVideoPipeline":
        entries = _image_modes("HunyuanVideoImageToVideoPipeline")
    else:
        entries = [("t2v", "HunyuanVideoPipeline", TEXT)]
    return FamilyPlan("hunyuanvideo", cfg.pipeline_class, _modes(limits, entries))


def _generic(cfg: ModelConfigs, max_frames: int | None) -> FamilyPlan:
    # frame rate unknown, so `max_frames` (a count) cannot become a duration here; the backend checks it per request
    vae = cfg.vae
    temporal = int(vae.get("temporal_compression_ratio") or vae.get("scale_factor_temporal") or 1)
    limits = ModeCapabilities(size_multiple=16,
                              frame_multiple=temporal, frame_remainder=1 if temporal > 1 else 0, max_images=0)
    note = (f"{cfg.pipeline_class or 'an unnamed pipeline'} is not a pipeline family the diffusers backend knows: "
            "run as text-to-video (prompt, num_frames, height, width, generator) with the pipeline's own default "
            "steps and guidance; sizes fitted to multiples of 16"
            + (f", frame counts to {temporal}k+1 (the VAE's temporal compression)" if temporal > 1 else ""))
    return FamilyPlan("generic", cfg.pipeline_class, (ModePlan("t2v", cfg.pipeline_class, TEXT, limits, None, None),),
                      note=note)


FAMILIES = {"Wan": _wan, "LTX": _ltx, "CogVideoX": _cogvideox, "HunyuanVideo": _hunyuan}
"""Class-name prefix -> plan builder. Only the listed pipeline classes of each family are claimed."""
KNOWN_CLASSES = ("WanPipeline", "WanImageToVideoPipeline", "LTXPipeline", "LTXImageToVideoPipeline",
                 "LTXConditionPipeline", "CogVideoXPipeline", "CogVideoXImageToVideoPipeline", "HunyuanVideoPipeline",
                 "HunyuanVideoImageToVideoPipeline")


def plan_family(cfg: ModelConfigs, max_frames: int | None = None) -> FamilyPlan:
    """The family plan of a saved pipeline; classes outside `KNOWN_CLASSES` get the generic text-to-video plan.
    `max_frames` replaces the family's longest clip (native frame count, 257 for LTX)."""
    cls = cfg.pipeline_class
    if cls in KNOWN_CLASSES:
        for prefix, build in FAMILIES.items():
            if cls.startswith(prefix):
                return build(cfg, max_frames)
    return _generic(cfg, max_frames)
