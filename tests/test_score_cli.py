"""`vbench-suite score` and `score_items`: the registry, JSON shape, per-video error rows, metric isolation."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from conftest_metrics import moving_video, save_npy
from vbench_suite.errors import UnknownNameError
from vbench_suite.metrics import (METRICS, available_metrics, create_metric, resolve_metric_names, score_items)
from vbench_suite.metrics.base import Metric, MetricInfo, ScoringContext, ScoringItem
from vbench_suite.types import ScoreRecord


def run_score(argv: Sequence[str]) -> int:
    from vbench_suite.cli import score

    parser = argparse.ArgumentParser()
    score.add_parser(parser.add_subparsers())
    return score.run(parser.parse_args(["score", *argv]))


def test_importing_registry_and_command_does_not_import_torch() -> None:
    code = ("import sys, vbench_suite.metrics, vbench_suite.cli.score, vbench_suite.metrics.common; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_names_groups_and_unknown() -> None:
    assert {"fvd", "lpips_ref", "lpips_temporal", "lpips_diversity", "clipsim", "shapes_adherence"} <= set(METRICS)
    assert available_metrics() == sorted(METRICS)
    assert resolve_metric_names(["fvd", "lpips", "clip", "fvd"]) == [
        "fvd", "lpips_ref", "lpips_temporal", "lpips_diversity", "clipsim"]
    with pytest.raises(UnknownNameError, match="Did you mean 'lpips_ref'"):
        resolve_metric_names(["lpips_reff"])
    assert create_metric("lpips_temporal", net="vgg").net == "vgg"


class Boom(Metric):
    info = MetricInfo(name="boom", display_name="always fails", higher_is_better=True)

    def score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        raise RuntimeError("kaput")


def test_one_failing_metric_never_stops_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METRICS, "boom", "test_score_cli:Boom")
    v = save_npy(tmp_path / "v.npy", moving_video(4))
    recs = score_items([ScoringItem(video_path=v, prompt_id="v")], ["boom", "lpips_temporal"],
                       ScoringContext(cache_dir=tmp_path))
    assert [(r.metric, r.status) for r in recs] == [("boom", "error"), ("lpips_temporal", "ok")]
    assert "kaput" in recs[0].reason


def test_score_folder_with_reference_writes_json(tmp_path: Path) -> None:
    vids, ref = tmp_path / "videos", tmp_path / "ref"
    for i in range(2):
        save_npy(vids / f"clip{i}.npy", moving_video(6, seed=i, speed=2))
        save_npy(ref / f"clip{i}.npy", moving_video(6, seed=i, speed=1))
    (vids / "broken.mp4").write_bytes(b"not a video" * 10)
    (vids / "clip0.txt").write_text("a yellow square moving right")
    out = tmp_path / "out.json"
    rc = run_score([str(vids), "--reference", str(ref), "--metrics", "lpips,clip", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["metrics"] == ["lpips_ref", "lpips_temporal", "lpips_diversity", "clipsim"]
    lp = data["lpips_ref"]
    assert lp["status"] == "ok" and lp["n"] == 2 and lp["value"] > 0 and lp["profile"].startswith("lpips-v0.1-alex")
    rows = {Path(r["prompt_id"]).name: r for r in lp["rows"]}
    assert rows["broken"]["status"] == "error" and rows["clip0"]["extra"]["frames_compared"] == 6
    assert data["lpips_temporal"]["n"] == 2 and data["lpips_temporal"]["n_error"] == 1
    assert data["lpips_diversity"]["status"] == "unavailable"
    # No CLIP weights offline: recorded as unavailable, the command still succeeds.
    if data["clipsim"]["status"] == "unavailable":
        assert "VBENCH_CLIP_WEIGHTS" in data["clipsim"]["reason"]


def test_score_fvd_between_backend_folders(tmp_path: Path) -> None:
    vids = tmp_path / "videos"
    for b, speed in (("backend_a", 1), ("backend_b", 4)):
        for i in range(2):
            save_npy(vids / b / f"p{i}-0.npy", moving_video(16, seed=i, speed=speed))
    out = tmp_path / "fvd.json"
    assert run_score([str(vids), "--metrics", "fvd", "--json", str(out)]) == 0
    fvd = json.loads(out.read_text())["fvd"]
    assert fvd["status"] == "ok" and fvd["n_fake"] == 2 and fvd["n_real"] == 2 and fvd["value"] > 0
    assert fvd["profile"].startswith("fvd-tf-v1") and fvd["records"][0]["scope"] == "pair"
    assert {fvd["records"][0]["backend"], fvd["records"][0]["other"]} == {"backend_a", "backend_b"}


def test_sample_naming_groups_for_diversity(tmp_path: Path) -> None:
    from vbench_suite.cli.score import build_items

    vids = tmp_path / "v"
    for i in range(3):
        save_npy(vids / f"a cat-{i}.npy", moving_video(3, seed=i))
    items = build_items(vids, None, {}, prompt_from_filename=True)
    assert {(it.prompt_id, it.prompt) for it in items} == {("a cat", "a cat")}
    assert sorted(it.sample for it in items) == [0, 1, 2]


def test_missing_videos_folder_is_a_user_error(tmp_path: Path) -> None:
    from vbench_suite.errors import UserError

    with pytest.raises(UserError, match="no such file"):
        run_score([str(tmp_path / "nothing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no video files"):
        run_score([str(tmp_path / "empty")])


# --- what the terminal shows: per-group values, every skipped file, exit codes -----------------------------------

def _bad_tree(root: Path) -> Path:
    """Two backend folders of good mp4s plus the four kinds of bad file users hand in: a truncated real mp4, an
    empty file, a text file renamed .mp4, and a 3-frame video (too short for FVD's 16 frames, fine for LPIPS)."""
    from vbench_suite.video.write import write_video

    for b, speed in (("backend_a", 1), ("backend_b", 4)):
        for i in range(2):
            write_video(root / b / f"p{i}-0.mp4", moving_video(16, seed=i, speed=speed), 8)
    good = (root / "backend_a" / "p0-0.mp4").read_bytes()
    (root / "backend_a" / "trunc.mp4").write_bytes(good[: len(good) // 2])
    (root / "backend_a" / "empty.mp4").write_bytes(b"")
    (root / "backend_b" / "notes.mp4").write_text("meeting notes, not a video\n" * 8)
    write_video(root / "backend_b" / "short.mp4", moving_video(3, seed=5), 8)
    return root


def test_score_shows_each_group_and_lists_every_skipped_file(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    vids, ref = _bad_tree(tmp_path / "videos"), tmp_path / "ref"
    for i in range(2):
        save_npy(ref / f"r{i}.npy", moving_video(16, seed=10 + i, speed=2))
    out = tmp_path / "s.json"
    rc = run_score([str(vids), "--reference", str(ref), "--metrics", "fvd,lpips_temporal", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert "None" not in text
    # FVD: one row per backend against the reference, with the value the JSON holds (it used to print None/None)
    fvd_groups = {g["group"]: g for g in data["fvd"]["groups"]}
    assert set(fvd_groups) == {"backend_a", "backend_b"}
    for name, g in fvd_groups.items():
        assert g["status"] == "ok" and g["n"] == 2 and g["n_ref"] == 2 and g["other"] == str(ref)
        assert f"{name} vs {ref}" in text and f"{g['value']:.4f}" in text
    # LPIPS: per-backend means of that backend's own rows, not a pool of both
    rows = data["lpips_temporal"]["rows"]
    for name, n in (("backend_a", 2), ("backend_b", 3)):  # backend_b's 3-frame video is fine for LPIPS
        mine = [r["value"] for r in rows if r["backend"] == name and r["status"] == "ok"]
        g = next(g for g in data["lpips_temporal"]["groups"] if g["group"] == name)
        assert len(mine) == n and g["n"] == n and g["value"] == pytest.approx(sum(mine) / n)
        line = next(ln for ln in text.splitlines() if ln.startswith("lpips_temporal") and f" {name} " in ln)
        assert f"{g['value']:.4f}" in line and f" {n} " in line
    assert data["lpips_temporal"]["value"] is None  # two groups: no pooled value
    # every bad file, with its reason and the metrics that left it out
    assert "skipped 4 of 8 file(s)" in text
    skipped = {s["file"]: s for s in data["skipped"]}
    assert set(skipped) == {"backend_a/trunc.mp4", "backend_a/empty.mp4", "backend_b/notes.mp4",
                            "backend_b/short.mp4"}
    assert "empty file" in skipped["backend_a/empty.mp4"]["reason"]
    assert "cannot open" in skipped["backend_a/trunc.mp4"]["reason"]
    assert "cannot open" in skipped["backend_b/notes.mp4"]["reason"]
    assert "3 frames" in skipped["backend_b/short.mp4"]["reason"]
    assert skipped["backend_b/short.mp4"]["metrics"] == ["fvd"]
    assert skipped["backend_a/empty.mp4"]["metrics"] == ["fvd", "lpips_temporal"]
    for name, s in skipped.items():
        assert any(ln.startswith(f"  {name}: ") and f"[{', '.join(s['metrics'])}]" in ln for ln in text.splitlines())


def test_score_exits_2_when_no_file_is_usable(tmp_path: Path) -> None:
    from vbench_suite.cli import main

    vids = tmp_path / "v"
    vids.mkdir()
    (vids / "empty.mp4").write_bytes(b"")
    (vids / "notes.mp4").write_text("not a video\n")
    res = subprocess.run([sys.executable, "-m", "vbench_suite", "score", str(vids), "--metrics", "lpips_temporal"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "nothing scored: none of its 2 video file(s) could be used" in res.stderr
    assert "empty.mp4: empty file" in res.stdout and "notes.mp4: cannot open" in res.stdout
    assert main(["score", str(vids), "--metrics", "lpips_temporal"]) == 2


def test_score_exits_1_when_nothing_scored_for_another_reason(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    vids = tmp_path / "v"
    save_npy(vids / "a.npy", moving_video(4))
    assert run_score([str(vids), "--metrics", "lpips_diversity"]) == 1  # one sample per prompt: unavailable
    captured = capsys.readouterr()
    assert "unavailable: no prompt has two or more samples" in captured.out and "nothing scored" in captured.err
