"""Damaged videos are not trusted (issue 19 item 2): on resume each finished video is checked against its record
(size, then sha256); a local one is generated again, a remote one downloaded again from its recorded job (no new
create), or marked damaged when the vendor no longer serves it; never paid for twice; scores follow the video."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from toy_backends import write_suite
from vbench_suite.fake_vendors import FakeConfig, FakeVendors
from vbench_suite.keys import file_sha256
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.runner.generate import video_damage
from vbench_suite.runner.score import run_scoring
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.video.write import write_video

FAST = FakeConfig(queue_s=0.01, run_s=0.03, throttle_s=0.15, retry_after_s=0.01)
RUNWAY_OPTIONS = dict(poll_interval_s=0.005, job_deadline_s=10.0, retry_base_delay_s=0.005, max_retry_after_s=0.02)



@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend")
    monkeypatch.setenv("TOY_CALLS_FILE", str(tmp_path / "calls.txt"))
    monkeypatch.setenv("RUNWAYML_API_SECRET", "sk-TESTSECRET-runway")
    monkeypatch.delenv("VBENCH_RUNWAY_BASE_URL", raising=False)


def _by_prompt(folder: RunFolder) -> dict[str, dict]:
    return {g["prompt_id"]: g for g in folder.generations().values()}


def _video(folder: RunFolder, record: dict) -> Path:
    path = folder.resolve(record["result"]["video_path"])
    assert path is not None
    return path


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _append_garbage(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\xde\xad" * 200)


def test_damaged_local_videos_are_generated_again_and_rescored(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=3)
    config = RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / "local",
                       metrics=("lpips_temporal",))
    folder = RunFolder(run_benchmark(config).run_dir)
    gens = _by_prompt(folder)
    assert all(g["video_bytes"] == _video(folder, g).stat().st_size for g in gens.values())  # size is recorded
    _truncate(_video(folder, gens["p0"]))
    _append_garbage(_video(folder, gens["p1"]))
    assert video_damage(gens["p0"], folder) and video_damage(gens["p1"], folder)
    assert video_damage(gens["p2"], folder) is None

    outcome = run_benchmark(replace(config, score=False))
    calls = (tmp_path / "calls.txt").read_text().split()
    assert len(calls) == 5 and outcome.stats.regenerated == {"toy": 2}  # p0 and p1 generated again, p2 not
    after = _by_prompt(folder)
    for p in ("p0", "p1", "p2"):
        assert after[p]["result"]["status"] == "ok" and video_damage(after[p], folder) is None
        assert file_sha256(_video(folder, after[p])) == after[p]["result"]["video_sha256"]
    # The damaged videos' old scores no longer count, even before scoring again.
    current = {s["key"]: s for s in folder.current_scores() if s["metric"] == "lpips_temporal"}
    assert [current[after[p]["key"]]["status"] for p in ("p0", "p1", "p2")] == ["error", "error", "ok"]
    assert "does not match" in current[after["p1"]["key"]]["reason"] or "bytes" in current[after["p1"]["key"]]["reason"]

    outcome = run_benchmark(config)
    assert outcome.scored == {"lpips_temporal": 2}  # the replaced videos were scored again, only they
    latest = {s["key"]: s for s in folder.latest_scores() if s["metric"] == "lpips_temporal"}
    assert all(latest[g["key"]]["status"] == "ok" for g in after.values())


def test_a_replaced_video_with_another_sha256_is_rescored(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=2)
    config = RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / "sha",
                       metrics=("lpips_temporal",))
    folder = RunFolder(run_benchmark(config).run_dir)
    record = _by_prompt(folder)["p0"]
    path = _video(folder, record)
    frames = np.zeros((8, 32, 32, 3), dtype=np.uint8)
    frames[:, :, :16] = 255
    write_video(path, frames, 8)  # another valid video under the same key, recorded as the current one
    folder.append_generation({**record, "finished_at": None, "video_bytes": path.stat().st_size,
                              "result": {**record["result"], "video_sha256": file_sha256(path)}})
    from vbench_suite.metrics.base import ScoringContext

    written = run_scoring(folder, ["lpips_temporal"], ScoringContext(cache_dir=tmp_path / "cache"))
    assert written == {"lpips_temporal": 1}
    latest = [s for s in folder.latest_scores() if s["key"] == record["key"]]
    assert len(latest) == 1 and latest[0]["video_sha256"] == file_sha256(path)


def _runway_config(tmp_path: Path, fake: FakeVendors, out: str) -> RunConfig:
    suite = write_suite(tmp_path / "suite.yaml", n=2, resolution="[1280, 720]", duration=5.0)
    return RunConfig(suite=str(suite), backends=("runway",), out=tmp_path / "runs" / out, score=False,
                     backend_options={"runway": {"base_url": fake.base_url("runway"), **RUNWAY_OPTIONS}})


def test_a_damaged_remote_video_is_downloaded_again_not_paid_again(tmp_path: Path) -> None:
    with FakeVendors(FAST) as fake:
        config = _runway_config(tmp_path, fake, "remote")
        folder = RunFolder(run_benchmark(config).run_dir)
        gens = _by_prompt(folder)
        assert [g["result"]["status"] for g in gens.values()] == ["ok", "ok"]
        _truncate(_video(folder, gens["p0"]))
        _append_garbage(_video(folder, gens["p1"]))
        billed = folder.billed_usd()

        outcome = run_benchmark(config)
        assert outcome.stats.redownloaded == {"runway": 2} and outcome.stats.generated == {}
        assert len(fake.jobs()) == 2 and set(fake.created_per_request().values()) == {1}  # no second create
        assert sorted(job.downloads for job in fake.jobs()) == [2, 2]  # each served a second download
        after = _by_prompt(folder)
        for p in ("p0", "p1"):
            assert after[p]["result"]["status"] == "ok" and after[p]["recovered"] == "redownloaded"
            assert after[p]["result"]["job_id"] == gens[p]["result"]["job_id"]
            assert video_damage(after[p], folder) is None
        assert folder.billed_usd() == billed  # nothing billed again
        assert folder.read_meta()["billed_usd"] == billed


def test_a_damaged_remote_video_the_vendor_no_longer_serves_is_marked_damaged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with FakeVendors(FAST) as fake:
        first = _runway_config(tmp_path, fake, "gone")
        folder = RunFolder(run_benchmark(first).run_dir)
        gens = _by_prompt(folder)
    _truncate(_video(folder, gens["p0"]))
    with FakeVendors(FAST) as fresh:  # another vendor instance: it does not know the earlier jobs
        config = _runway_config(tmp_path, fresh, "gone")
        outcome = run_benchmark(config)
        assert outcome.stats.damaged == {"runway": 1} and outcome.stats.generated == {}
        assert fresh.created_per_request() == {}  # never re-paid
        rec = _by_prompt(folder)["p0"]["result"]
        assert rec["status"] == "failed" and rec["error"].startswith("damaged: ") and rec["retriable"] is False
        assert rec["info"]["damaged"] is True and rec["video_path"] is None
        assert any("marked damaged" in r.getMessage() for r in caplog.records)
        assert folder.read_meta()["damaged"] == {"runway": 1}
        again = run_benchmark(config)  # a further resume keeps it as it is
        assert again.stats.generated == {} and fresh.created_per_request() == {}
    assert _by_prompt(folder)["p1"]["result"]["status"] == "ok"


def test_the_run_summary_says_how_many_videos_are_damaged() -> None:
    from vbench_suite.cli.run import run_outcome_lines

    lines = run_outcome_lines({"damaged": {"runway": 2, "veo": 0}})
    assert len(lines) == 1 and lines[0].startswith("2 runway video(s) found damaged") and "not paid" in lines[0]
