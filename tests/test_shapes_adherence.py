"""Metric 'shapes_adherence': 1/0 per shapes-world video, no record for other prompts, errors for bad files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vbench_suite.metrics import ScoringContext, ScoringItem, create_metric, score_items
from vbench_suite.shapes import parse_prompt, render
from vbench_suite.video.write import write_video

RED_LEFT = "a red circle moves left on a black background"


def _video(tmp_path: Path, prompt: str, name: str, suffix: str = ".mp4") -> str:
    frames = render(parse_prompt(prompt), num_frames=16, size=64, seed=2)
    return str(write_video(tmp_path / f"{name}{suffix}", frames, 8))


def test_scores_match_the_prompt(tmp_path: Path) -> None:
    red = _video(tmp_path, RED_LEFT, "red")
    blue_npy = _video(tmp_path, "two blue squares move up on a white background", "blue", ".npy")
    items = [
        ScoringItem(video_path=red, prompt=RED_LEFT, prompt_id="ok", backend="b", key="k1", category="motion"),
        ScoringItem(video_path=red, prompt="a green circle moves left on a black background", prompt_id="colour"),
        ScoringItem(video_path=red, prompt="a red square moves left on a black background", prompt_id="shape"),
        ScoringItem(video_path=red, prompt="a red circle moves up on a black background", prompt_id="motion"),
        ScoringItem(video_path=blue_npy, prompt="on a white background, two blue squares rise", prompt_id="npy"),
        ScoringItem(video_path=red, prompt="a cinematic shot of a lighthouse", prompt_id="not-shapes"),
    ]
    records = create_metric("shapes_adherence").score(items, ScoringContext(cache_dir=tmp_path))
    by_id = {r.prompt_id: r for r in records}
    assert set(by_id) == {"ok", "colour", "shape", "motion", "npy"}  # no record where the metric does not apply
    assert by_id["ok"].value == 1.0 and by_id["npy"].value == 1.0
    for wrong, flag in (("colour", "colour_ok"), ("shape", "shape_ok"), ("motion", "motion_ok")):
        assert by_id[wrong].value == 0.0 and dict(by_id[wrong].extra)[flag] is False
    ok = by_id["ok"]
    assert (ok.metric, ok.status, ok.scope, ok.higher_is_better, ok.unit) == ("shapes_adherence", "ok", "video", True,
                                                                             "")
    assert (ok.backend, ok.key, ok.category, ok.n) == ("b", "k1", "motion", 16)
    assert ok.profile.startswith("shapes-checker-")
    extra = dict(ok.extra)
    assert extra["measured"] == extra["expected"] == "1 red circle left"
    assert all(extra[k] is True for k in ("colour_ok", "shape_ok", "motion_ok", "count_ok", "background_ok"))


def test_bad_files_become_error_records(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"not a video at all")
    items = [ScoringItem(video_path=str(garbage), prompt=RED_LEFT, prompt_id="broken"),
             ScoringItem(video_path=str(tmp_path / "missing.mp4"), prompt=RED_LEFT, prompt_id="missing")]
    records = score_items(items, ["shapes_adherence"], ScoringContext(cache_dir=tmp_path))
    assert [(r.prompt_id, r.status) for r in records] == [("broken", "error"), ("missing", "error")]
    assert all(r.value is None and r.reason for r in records)


def test_blurred_video_still_scores(tmp_path: Path) -> None:
    from scipy import ndimage

    frames = render(parse_prompt("three yellow diamonds shrink on a gray background"), 16, 64, seed=9)
    blurred = np.clip(ndimage.gaussian_filter(frames.astype(float), sigma=(0, 1.0, 1.0, 0)), 0, 255).astype(np.uint8)
    path = write_video(tmp_path / "blur.mp4", blurred, 8, pix_fmt="yuv420p", crf=20)
    item = ScoringItem(video_path=str(path), prompt="three yellow diamonds shrink on a gray background")
    [rec] = create_metric("shapes_adherence").score([item], ScoringContext(cache_dir=tmp_path))
    assert rec.value == 1.0, dict(rec.extra)
