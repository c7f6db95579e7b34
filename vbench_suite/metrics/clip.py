"""CLIPSIM: mean over frames of the cosine between CLIP image and text embeddings (open_clip, ViT-B/32 OpenAI).

Convention (profile id says all of it):
- model `ViT-B-32` with the `openai` weights by default (configurable: any open_clip name + pretrained tag);
- frames: 16 spread uniformly over the video (indices round(linspace(0, T-1, 16)); all frames when T <= 16), or
  `frames='all'`;
- OpenAI preprocessing: short side to 224 with antialiased bicubic (PIL's filter, done on the whole frame batch at
  once; values rounded to 8 bits as PIL does), centre crop 224, /255, OpenAI mean/std;
- text: the CLIP BPE tokenizer shipped in the open_clip wheel, 77-token context. Longer prompts are truncated (the
  end token kept) and the record says so (`truncated`, `n_tokens`);
- value: **raw cosine** mean (about 0.2-0.35 for real CLIP on matching text); `scale=100` reports the x100
  convention instead, tagged in the profile. CLIP-S = 2.5 * max(cos, 0) is in `extra` for reference.

No registry ships CLIP weights. They are used when present: the `weights` option (a local file), $VBENCH_CLIP_WEIGHTS,
or open_clip's own caches (Hugging Face hub cache, ~/.cache/clip). Otherwise the metric is 'unavailable' with the
exact file to download and how to point at it; nothing is ever downloaded here.
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vbench_suite.errors import ConfigError, MetricUnavailable
from vbench_suite.metrics.base import Metric, MetricInfo, ScoringContext, ScoringItem
from vbench_suite.metrics.common import bound_heap_growth, record, score_one, unavailable
from vbench_suite.metrics.weights import sha256_file
from vbench_suite.types import ScoreRecord
from vbench_suite.video.read import open_video

CLIP_WEIGHTS_ENV = "VBENCH_CLIP_WEIGHTS"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_FRAMES = 16


def uniform_frame_indices(num_frames: int, count: int | None) -> np.ndarray:
    """`count` indices spread over [0, num_frames-1] (all frames when count is None or >= num_frames)."""
    if count is None or num_frames <= count:
        return np.arange(num_frames)
    return np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64)


def preprocess_openai(frames: np.ndarray, size: int = 224, mean: Sequence[float] = OPENAI_MEAN,
                      std: Sequence[float] = OPENAI_STD) -> "torch.Tensor":  # noqa: F821
    """uint8 (T, H, W, 3) -> float32 (T, 3, size, size): OpenAI CLIP preprocessing on the whole batch.

    Resize so the short side is `size` (long side int(size * long / short), as torchvision's Resize computes it),
    bicubic with antialias (PIL-equivalent kernel), round to 8 bits, centre crop, scale to [0, 1], normalise.
    """
    import torch
    import torch.nn.functional as F

    t, h, w, _ = frames.shape
    x = torch.from_numpy(np.ascontiguousarray(frames) if frames.flags.writeable else np.array(frames))
    x = x.permute(0, 3, 1, 2).float()                                        # (T, 3, H, W), 0..255
    if h <= w:
        nh, nw = size, int(size * w / h)
    else:
        nh, nw = int(size * h / w), size
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
        x = x.round_().clamp_(0, 255)                                        # PIL hands back uint8
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    x = x[:, :, top:top + size, left:left + size] / 255.0                    # (T, 3, size, size)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def find_clip_weights(model_name: str, pretrained: str, explicit: str | None = None) -> tuple[Path | None, list[str]]:
    """(path of usable weights or None, the places looked at). Never downloads."""
    looked: list[str] = []
    for label, value in (("weights option", explicit), (CLIP_WEIGHTS_ENV, os.environ.get(CLIP_WEIGHTS_ENV))):
        if value:
            p = Path(value).expanduser()
            if p.is_file():
                return p, looked
            raise MetricUnavailable(f"CLIP weights file {p} (from {label}) does not exist")
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    hub = (cfg.get("hf_hub") or "").rstrip("/")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            for fname in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
                looked.append(f"Hugging Face cache: {hub}/{fname}")
                hit = try_to_load_from_cache(hub, fname)
                if isinstance(hit, str) and Path(hit).is_file():
                    return Path(hit), looked
        except ImportError:
            pass
    url = cfg.get("url") or ""
    if url:
        p = Path("~/.cache/clip").expanduser() / url.rsplit("/", 1)[-1]
        looked.append(str(p))
        if p.is_file():
            return p, looked
    return None, looked


def missing_weights_message(model_name: str, pretrained: str, looked: Sequence[str]) -> str:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    hub = (cfg.get("hf_hub") or "").rstrip("/")
    sources = []
    if hub:
        sources.append(f"https://huggingface.co/{hub}/resolve/main/open_clip_model.safetensors "
                       f"(`huggingface-cli download {hub} open_clip_model.safetensors`)")
    if cfg.get("url"):
        sources.append(f"{cfg['url']} (the path holds the file's sha256)")
    where = " or ".join(sources) or f"the open_clip release for {model_name}/{pretrained}"
    return (f"CLIP weights for open_clip {model_name}/{pretrained} are not on this machine and are never downloaded "
            f"during a run. Download {where}, then set {CLIP_WEIGHTS_ENV}=/path/to/that/file (or the clipsim "
            f"'weights' option, CLI --clip-weights). Looked in: {'; '.join(looked) or 'nowhere'}.")


def _is_torchscript(path: Path) -> bool:
    """OpenAI's original .pt files are TorchScript archives (zip with code/ and constants.pkl)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist()[:200])


def load_clip(model_name: str, pretrained: str, path: Path, device: str) -> Any:
    """Build the open_clip model and load `path` into it (TorchScript OpenAI archive, safetensors or state dict)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    if _is_torchscript(path):
        from open_clip.openai import load_openai_model

        model = load_openai_model(str(path), precision="fp32", device=device)
    else:
        # The tag's activation must be forced: OpenAI's weights were trained with QuickGELU.
        model = open_clip.create_model(model_name, pretrained=None, device=device,
                                       force_quick_gelu=bool(cfg.get("quick_gelu", False)))
        open_clip.load_checkpoint(model, str(path))
    return model.eval()


class CLIPSim(Metric):
    """Per-video CLIPSIM between sampled frames and the item's prompt."""

    info = MetricInfo(
        name="clipsim", display_name="CLIPSIM (CLIP ViT-B/32)", higher_is_better=True, unit="", scope="video",
        description="Mean over frames of cos(CLIP image embedding, CLIP text embedding), raw cosine unless the "
                    "profile says x100; OpenAI preprocessing; prompts cut at 77 tokens (recorded).")

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str = "openai", *, weights: str | None = None,
                 frames: int | str = DEFAULT_FRAMES, scale: float = 1.0, batch_size: int = 32,
                 device: str | None = None, model: Any = None, tokenizer: Any = None,
                 injected_label: str = "") -> None:
        """`model`/`tokenizer` inject an already-built open_clip model (tests): records then carry
        `injected_label` in the profile instead of a weight hash, so they can never pass for CLIP scores."""
        if frames != "all" and not (isinstance(frames, int) and frames > 0):
            raise ConfigError(f"clipsim frames must be a positive integer or 'all', got {frames!r}")
        if scale not in (1, 1.0, 100, 100.0):
            raise ConfigError(f"clipsim scale must be 1 (raw cosine) or 100, got {scale!r}")
        if model is not None and not injected_label:
            raise ConfigError("an injected CLIP model needs an injected_label (e.g. 'random-init-test')")
        self.model_name, self.pretrained, self.weights = model_name, pretrained, weights
        self.frames = None if frames == "all" else int(frames)
        self.scale, self.batch_size, self.device = float(scale), max(1, int(batch_size)), device
        self._model, self._tokenizer, self._label = model, tokenizer, injected_label
        self._weights_id = f"injected:{injected_label}" if model is not None else ""
        self._dev = device or "cpu"

    @property
    def profile(self) -> str:
        frames = "all" if self.frames is None else f"{self.frames}u"
        scale = "x100" if self.scale == 100 else "raw-cos"
        wid = self._weights_id or f"{self.pretrained}=?"
        return f"clipsim-{self.model_name}-{wid}:{frames},openai-bicubic224-crop,ctx77,{scale}"

    def _ensure_model(self, device: str) -> None:
        if self._model is None:
            path, looked = find_clip_weights(self.model_name, self.pretrained, self.weights)
            if path is None:
                raise MetricUnavailable(missing_weights_message(self.model_name, self.pretrained, looked))
            self._model = load_clip(self.model_name, self.pretrained, path, device)
            self._weights_id = f"{self.pretrained}={sha256_file(path)[:8]}"
        if self._tokenizer is None:
            import open_clip

            self._tokenizer = open_clip.get_tokenizer(self.model_name)

    def encode_text(self, prompts: Sequence[str]) -> tuple["torch.Tensor", list[int]]:  # noqa: F821
        """Unit-norm text embeddings (P, D) and each prompt's token count (start/end tokens included)."""
        import torch

        ctx_len = int(getattr(self._tokenizer, "context_length", 77) or 77)
        counts = [len(self._tokenizer.encode(p)) + 2 for p in prompts]
        tokens = self._tokenizer(list(prompts), context_length=ctx_len)       # (P, 77): truncation keeps the end token
        emb = self._model.encode_text(tokens.to(self._dev)).float()
        return torch.nn.functional.normalize(emb, dim=-1), counts

    def encode_frames(self, frames: np.ndarray, *, normalise: bool = True) -> "torch.Tensor":  # noqa: F821
        """uint8 (T, H, W, 3) -> image embeddings (T, D), unit-norm unless `normalise` is False."""
        import torch

        size = _image_size(self._model)
        out = []
        for s in range(0, len(frames), self.batch_size):
            x = preprocess_openai(frames[s:s + self.batch_size], size).to(self._dev)
            out.append(self._model.encode_image(x).float())
        emb = torch.cat(out)
        return torch.nn.functional.normalize(emb, dim=-1) if normalise else emb

    def score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        import torch

        bound_heap_growth()                 # frame-sized buffers come and go per batch: keep RSS flat

        self._dev = self.device or ctx.device
        try:
            self._ensure_model(self._dev)
        except MetricUnavailable as exc:
            return [unavailable(self.info, str(exc), self.profile)]
        prompts = sorted({it.prompt for it in items if it.prompt})
        records: list[ScoreRecord] = []
        with torch.inference_mode():
            text, counts = self.encode_text(prompts) if prompts else (None, [])
            row = {p: i for i, p in enumerate(prompts)}
            ctx_len = int(getattr(self._tokenizer, "context_length", 77) or 77)
            for it in items:
                if not it.prompt:
                    records.append(record(self.info, "error", profile=self.profile, item=it,
                                          reason=f"{it.video_path}: no prompt text to compare with"))
                    continue
                records.append(score_one(self.info, self.profile, it,
                                         lambda it=it: self._one(it, text[row[it.prompt]], counts[row[it.prompt]],
                                                                 ctx_len)))
        return records

    def _one(self, it: ScoringItem, text: "torch.Tensor", n_tok: int, ctx_len: int) -> ScoreRecord:  # noqa: F821
        img, facts = self.encode_video(it.video_path)                      # (F, D)
        cos = (img @ text).double().cpu().numpy()                          # (F,)
        extra: dict[str, Any] = {
            **facts, "frames_scored": len(cos), "cos_mean": float(cos.mean()),
            "cos_std": float(cos.std()), "clip_s": float((2.5 * np.clip(cos, 0, None)).mean()),
            "scale": "x100" if self.scale == 100 else "raw cosine", "n_tokens": n_tok,
            "truncated": n_tok > ctx_len, "weights": self._weights_id}
        if self._label:
            extra["not_a_clip_score"] = f"injected model '{self._label}': numbers exercise code only"
        return record(self.info, "ok", value=float(cos.mean()) * self.scale, profile=self.profile,
                      item=it, n=len(cos), extra=extra)

    def encode_video(self, path: str) -> tuple["torch.Tensor", dict[str, Any]]:  # noqa: F821
        """Unit-norm embeddings (F, D) of the video's sampled frames, and its decode facts, streaming the file.

        Equal to `encode_frames(read_video(path).frames[idx])`: the same frames in the same batches of
        `batch_size`, but only one batch of full-size frames is held. When the frame count is not known without
        decoding, a first pass counts the frames.
        """
        import torch

        with open_video(path) as stream:
            total = stream.length if stream.length is not None or self.frames is None else stream.count_remaining()
            facts = stream.describe()
        wanted = None if total is None else {int(i) for i in uniform_frame_indices(total, self.frames)}
        out: list[torch.Tensor] = []
        batch: list[np.ndarray] = []
        with open_video(path) as stream:
            for k, frame in enumerate(stream.frames()):
                if wanted is None or k in wanted:
                    batch.append(frame)
                if len(batch) == self.batch_size:
                    out.append(self.encode_frames(np.stack(batch), normalise=False))
                    batch = []
            if batch:
                out.append(self.encode_frames(np.stack(batch), normalise=False))
            facts = stream.describe()
        return torch.nn.functional.normalize(torch.cat(out), dim=-1), facts
        return records


def _image_size(model: Any) -> int:
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)
