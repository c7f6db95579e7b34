"""One bad file is an error row for that file only (issue 19, item 6), and frames are streamed (item 8).

The bad inputs are built here: a PNG whose header claims 240 megapixels (a few hundred bytes on disk), a 2x2 video and
a 16x1024 video. Each must end as its own 'error' record with a clear reason while every other item keeps the value
it gets when scored alone. Streaming must not change a number: streamed LPIPS equals the whole-array computation,
and the streamed FVD clip equals the one preprocessed from the whole decoded video.
"""
from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest_metrics import moving_video, save_npy
from vbench_suite.errors import MetricUnavailable, VideoError
from vbench_suite.metrics import score_items
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.metrics.fvd import FVDProfile, clip_indices, make_profile, preprocess_clip, stream_clip
from vbench_suite.metrics.lpips import LPIPSDiversity, LPIPSReference, LPIPSTemporal, load_lpips, min_side
from vbench_suite.types import ScoreRecord
from vbench_suite.video.read import MAX_FRAME_PIXELS, open_video, read_video


def bomb_png(path: Path, width: int = 20_000, height: int = 12_000) -> Path:
    """A valid-looking PNG whose IHDR claims width x height RGB pixels, with almost no image data."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)      # 8-bit RGB, no interlace
    idat = zlib.compress(b"\x00" * (1 + 3 * 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def mp4(path: Path, frames: np.ndarray, fps: int = 8, faststart: bool = False) -> Path:
    """H.264 (yuv420p) file of uint8 frames (T, H, W, 3); `faststart` puts the sample table first."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def _noise(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _lpips_ready() -> None:
    try:
        load_lpips("alex")
    except MetricUnavailable as exc:
        pytest.skip(f"LPIPS weights not installed: {exc}")


def _by_name(records: list[ScoreRecord], metric: str) -> dict[str, ScoreRecord]:
    return {Path(r.prompt_id).name: r for r in records if r.metric == metric and r.scope == "video"}


# ---------------------------------------------------------------------------------------------------------- reader

def test_png_claiming_240_megapixels_is_a_video_error_not_a_crash(tmp_path: Path) -> None:
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1000
    with pytest.raises(VideoError, match="decompression bomb") as info:
        read_video(bomb)
    assert str(bomb) in str(info.value) and "\n" not in str(info.value)
    # Under Pillow's own refusal threshold but over ours: refused from the header, before decoding.
    big = bomb_png(tmp_path / "big.png", 10_000, 8_000)
    assert 10_000 * 8_000 > MAX_FRAME_PIXELS
    with pytest.raises(VideoError, match="megapixels"):
        read_video(big)


def test_npy_over_the_frame_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    # A header claiming one 12000x6000 frame; the data is never read (mmap), so the file can stay sparse.
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(1, 6000, 12000, 3))
    del arr
    with pytest.raises(VideoError, match="megapixels"):
        open_video(path)


def test_stream_chunks_equal_the_whole_video_and_count_frames(tmp_path: Path) -> None:
    frames = moving_video(11, h=32, w=48)
    path = mp4(tmp_path / "v.mp4", frames)
    whole = read_video(path)
    with open_video(path) as stream:
        assert (stream.width, stream.height, stream.length) == (48, 32, None)
        chunks = list(stream.chunks(4))
        assert [len(c) for c in chunks] == [4, 4, 3] and stream.num_frames == 11
        assert stream.describe() == whole.describe()
    assert np.array_equal(np.concatenate(chunks), whole.frames)
    with open_video(path, max_frames=5) as stream:
        assert stream.count_remaining() == 5


def test_stream_reports_truncation_at_the_end(tmp_path: Path) -> None:
    data = mp4(tmp_path / "full.mp4", moving_video(40, h=64, w=64), faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    seen = 0
    with pytest.raises(VideoError, match="truncated"):
        with open_video(cut) as stream:
            for chunk in stream.chunks(8):
                seen += len(chunk)
    assert 0 < seen < 40                       # frames came out before the cut was noticed


# ----------------------------------------------------------------------------------------------------- LPIPS sizes

def test_min_side_is_what_the_trunk_really_accepts() -> None:
    _lpips_ready()
    for net in ("alex", "vgg"):
        model, need = load_lpips(net), min_side(net)
        with torch.inference_mode():
            model.features(torch.zeros(1, 3, need, need))
            with pytest.raises(RuntimeError):
                model.features(torch.zeros(1, 3, need - 1, need))


# ---------------------------------------------------------------------------- item 6: a bad item is its own error row

def test_tiny_and_thin_videos_are_their_own_error_rows_in_lpips(tmp_path: Path) -> None:
    _lpips_ready()
    good = [mp4(tmp_path / f"good{i}.mp4", moving_video(6, h=48, w=64, seed=i, speed=3)) for i in range(2)]
    bad = {"tiny": mp4(tmp_path / "tiny.mp4", _noise(6, 2, 2)),
           "thin": mp4(tmp_path / "thin.mp4", _noise(6, 1024, 16)),
           "bomb": bomb_png(tmp_path / "bomb.png")}
    items = [ScoringItem(video_path=str(p), prompt_id=p.name) for p in good + list(bad.values())]
    ctx = ScoringContext(cache_dir=tmp_path / "cache")
    recs = _by_name(score_items(items, ["lpips_temporal"], ctx), "lpips_temporal")
    alone = _by_name(score_items(items[:2], ["lpips_temporal"], ctx), "lpips_temporal")
    for p in good:
        assert recs[p.name].status == "ok" and recs[p.name].value == alone[p.name].value > 0
    assert recs["tiny.mp4"].status == "error" and "too small for LPIPS" in recs["tiny.mp4"].reason
    assert "2x2" in recs["tiny.mp4"].reason and "31 pixels" in recs["tiny.mp4"].reason
    assert recs["thin.mp4"].status == "error" and "16x1024" in recs["thin.mp4"].reason
    assert recs["bomb.png"].status == "error" and "decompression bomb" in recs["bomb.png"].reason
    for name in bad.values():
        assert str(name) in recs[name.name].reason and "\n" not in recs[name.name].reason


def test_lpips_ref_and_diversity_isolate_bad_members(tmp_path: Path) -> None:
    _lpips_ready()
    a, b = moving_video(5, h=40, w=40, seed=1), moving_video(5, h=40, w=40, seed=2)
    pa, pb = save_npy(tmp_path / "x" / "p-0.npy", a), save_npy(tmp_path / "x" / "p-1.npy", b)
    tiny = save_npy(tmp_path / "t.npy", _noise(5, 2, 2))
    truncated = tmp_path / "x" / "p-2.mp4"
    data = mp4(tmp_path / "full.mp4", moving_video(40, h=40, w=40), faststart=True).read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.8)])      # opens, decodes its first frames, then runs short
    ctx = ScoringContext(cache_dir=tmp_path)
    ref = LPIPSReference()
    recs = {r.prompt_id: r for r in ref.score([ScoringItem(video_path=pa, prompt_id="ok", reference_path=pb),
                                                ScoringItem(video_path=tiny, prompt_id="tiny", reference_path=tiny),
                                                ScoringItem(video_path=pa, prompt_id="bomb",
                                                            reference_path=str(bomb_png(tmp_path / "b.png")))],
                                               ctx)}
    assert recs["ok"].status == "ok" and recs["ok"].value > 0.05 and recs["ok"].n == 5
    assert recs["tiny"].status == "error" and "too small" in recs["tiny"].reason
    assert recs["bomb"].status == "error" and "reference: " in recs["bomb"].reason
    div = LPIPSDiversity()
    members = [ScoringItem(video_path=p, prompt_id="p", sample=i, backend="x")
               for i, p in enumerate([pa, pb, str(truncated)])]
    out = div.score(members, ctx)
    (group,) = [r for r in out if r.scope == "set"]
    (row,) = [r for r in out if r.scope == "video"]
    assert row.status == "error" and str(truncated) in row.reason
    assert group.status == "ok" and group.n == 2
    assert group.value == pytest.approx(float(div.pairwise([a, b], ctx).mean()), rel=1e-12)


def test_score_keeps_fvd_and_lpips_when_one_file_is_a_bomb(tmp_path: Path) -> None:
    """The issue's reproduction: before, both metrics ended as one 'error' row with n = 0."""
    _lpips_ready()
    gen = [save_npy(tmp_path / "gen" / f"g{i}.npy", moving_video(16, seed=i, speed=2)) for i in range(3)]
    real = [save_npy(tmp_path / "ref" / f"r{i}.npy", moving_video(16, seed=10 + i)) for i in range(3)]
    bomb = str(bomb_png(tmp_path / "gen" / "bomb.png"))
    ctx = ScoringContext(cache_dir=tmp_path / "cache", reference_videos=real, reference_id="ref",
                         options={"fvd": {"bootstrap": 10}})
    items = [ScoringItem(video_path=p, prompt_id=Path(p).name) for p in gen + [bomb]]
    try:
        recs = score_items(items, ["fvd", "lpips_temporal"], ctx)
    except MetricUnavailable as exc:  # pragma: no cover - weights missing
        pytest.skip(str(exc))
    fvd = [r for r in recs if r.metric == "fvd"]
    if any(r.status == "unavailable" for r in fvd):
        pytest.skip("I3D weights not installed")
    (fvd_bomb,) = [r for r in fvd if r.scope == "video"]
    assert fvd_bomb.status == "error" and "decompression bomb" in fvd_bomb.reason
    (fvd_set,) = [r for r in fvd if r.scope == "set"]
    clean = [r for r in score_items(items[:3], ["fvd"], ctx) if r.scope == "set"][0]
    assert fvd_set.status == "ok" and fvd_set.n == 3 and fvd_set.n_ref == 3 and fvd_set.value == clean.value
    lp = _by_name(recs, "lpips_temporal")
    assert lp["bomb.png"].status == "error"
    assert all(lp[Path(p).name].status == "ok" and lp[Path(p).name].n == 15 for p in gen)


def test_an_unexpected_failure_is_the_items_row_not_the_metrics(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _lpips_ready()
    good = save_npy(tmp_path / "good.npy", moving_video(4))
    poison = save_npy(tmp_path / "poison.npy", moving_video(4, seed=5))
    metric = LPIPSTemporal()
    real = metric._one

    def flaky(it: ScoringItem, ctx: ScoringContext) -> ScoreRecord:  # a bug that shows up on one input only
        if it.prompt_id == "poison":
            raise RuntimeError("kernel size can't be greater than actual input size")
        return real(it, ctx)

    monkeypatch.setattr(metric, "_one", flaky)
    recs = {r.prompt_id: r for r in metric.score([ScoringItem(video_path=good, prompt_id="good"),
                                                  ScoringItem(video_path=poison, prompt_id="poison")],
                                                 ScoringContext(cache_dir=tmp_path))}
    assert recs["good"].status == "ok"
    assert recs["poison"].status == "error" and "RuntimeError: kernel size" in recs["poison"].reason


# --------------------------------------------------------------------------- item 8: streaming changes no number

def test_streamed_lpips_temporal_equals_whole_array(tmp_path: Path) -> None:
    _lpips_ready()
    frames = moving_video(10, h=48, w=64, speed=3)
    path = mp4(tmp_path / "m.mp4", frames)
    metric = LPIPSTemporal(pixels_per_batch=3 * 48 * 64)                 # chunks of 3 frames: 3 + 3 + 3 + 1
    ctx = ScoringContext(cache_dir=tmp_path)
    (rec,) = metric.score([ScoringItem(video_path=str(path), prompt_id="m")], ctx)
    whole = metric.consecutive_distances(read_video(path).frames, ctx)
    assert rec.status == "ok" and rec.n == 9 and rec.value == float(whole.mean())
    assert dict(rec.extra)["per_pair_max"] == float(whole.max())


@pytest.mark.parametrize("profile", [make_profile("tf"), make_profile("crop"),
                                     make_profile("tf", clip_policy="uniform"),
                                     make_profile("tf", clip_policy="middle", fps=5.0)])
def test_streamed_fvd_clip_is_identical_to_whole_video_preprocessing(tmp_path: Path, profile: FVDProfile) -> None:
    frames = moving_video(40, h=36, w=60, speed=2)
    path = mp4(tmp_path / "v.mp4", frames, fps=8)
    clip, facts = stream_clip(str(path), profile)
    whole = read_video(path)
    idx = clip_indices(whole.num_frames, whole.fps, profile)
    expected = preprocess_clip(whole.frames[idx], profile).permute(1, 2, 3, 0)
    assert clip.shape == expected.shape == (16, 224, 224, 3) and clip.is_contiguous()
    assert torch.equal(clip, expected)
    assert facts["fps"] == pytest.approx(8.0) and facts["width"] == 60


def test_streamed_clipsim_embeddings_equal_whole_video(tmp_path: Path) -> None:
    """Same sampled frames, same batches: the streamed embeddings are the whole-array ones exactly (mp4: counted
    in a first pass, since the container's frame count is not trusted)."""
    open_clip = pytest.importorskip("open_clip")
    from test_clip import tiny_clip
    from vbench_suite.metrics.clip import CLIPSim, uniform_frame_indices

    path = mp4(tmp_path / "c.mp4", moving_video(23, h=48, w=64, seed=4))
    metric = CLIPSim(model=tiny_clip(), tokenizer=open_clip.get_tokenizer("ViT-B-32"), frames=8, batch_size=3,
                     injected_label="random-init-test")
    whole = read_video(path)
    with torch.inference_mode():
        streamed, facts = metric.encode_video(str(path))
        expected = metric.encode_frames(whole.frames[uniform_frame_indices(whole.num_frames, 8)])
    assert streamed.shape == (8, 32) and torch.equal(streamed, expected)
    assert facts == whole.describe()


def test_lpips_temporal_holds_a_few_frames_not_the_video(tmp_path: Path) -> None:
    """Item 8: numpy memory while scoring is bounded by the chunk, not the length (tracemalloc sees numpy's
    allocations; whole-video decoding held all 120 frames, twice, while stacking them)."""
    import tracemalloc

    _lpips_ready()
    t, h, w = 120, 64, 96
    path = mp4(tmp_path / "long.mp4", moving_video(t, h=h, w=w, speed=1))
    metric = LPIPSTemporal(pixels_per_batch=2 * h * w)                  # chunks of two frames
    ctx = ScoringContext(cache_dir=tmp_path)
    metric.model(ctx)
    tracemalloc.start()
    try:
        (rec,) = metric.score([ScoringItem(video_path=str(path), prompt_id="long")], ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    frame_bytes = h * w * 3
    assert rec.status == "ok" and rec.n == t - 1
    assert peak < 12 * frame_bytes < t * frame_bytes, f"numpy peak {peak} bytes = {peak / frame_bytes:.1f} frames"


def test_heap_growth_is_bounded_on_linux() -> None:
    import sys

    from vbench_suite.metrics.common import bound_heap_growth

    assert bound_heap_growth() is sys.platform.startswith("linux")
