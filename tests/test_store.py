"""Run folder records survive torn writes; the SQLite index mirrors run folders and finds finished work."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from vbench_suite.errors import UserError
from vbench_suite.store.index import connect, find_finished_generation, import_run, list_runs
from vbench_suite.store.run_folder import GENERATIONS, SCHEMA_VERSION, RunFolder
from vbench_suite.types import Fingerprint, GenerationResult, ScoreRecord


def _gen(key: str, status: str = "ok", video: str | None = "videos/toy/a.mp4") -> dict:
    result = GenerationResult(status=status, fingerprint=Fingerprint("toy", "m", "1"), video_path=video,  # type: ignore[arg-type]
                              cost_usd=0.5, video_seconds=2.0)
    return {"key": key, "backend": "toy", "prompt_id": "p1", "category": "c", "sample": 0,
            "request": {"prompt": "x"}, "result": result.to_dict()}


def test_torn_last_line_is_skipped_and_isolated(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.append_generation(_gen("k1"))
    # A kill in the middle of a write leaves a partial line without a newline.
    with open(folder.path / GENERATIONS, "a", encoding="utf-8") as f:
        f.write('{"key": "k2", "backend": "to')
    assert set(folder.generations()) == {"k1"}
    folder = RunFolder(folder.path)  # a resumed process
    folder.append_generation(_gen("k3"))
    assert set(folder.generations()) == {"k1", "k3"}


def test_concurrent_appends_keep_every_record(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    threads = [threading.Thread(target=lambda i=i: [folder.append_generation(_gen(f"k{i}-{j}")) for j in range(20)])
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(folder.generations()) == 80


def test_latest_record_per_key_wins(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.append_generation(_gen("k1", status="failed", video=None))
    folder.append_generation(_gen("k1", status="ok"))
    assert folder.generations()["k1"]["result"]["status"] == "ok"


def test_meta_schema_is_checked(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(UserError, match="not a run folder"):
        folder.read_meta()
    folder.write_meta({"run_id": "r1"})
    assert folder.read_meta()["schema_version"] == SCHEMA_VERSION
    folder.run_json.write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(UserError, match="schema version 99"):
        folder.read_meta()


def test_latest_scores_deduplicates_recomputed_set_metrics(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    old = ScoreRecord(metric="fvd", status="ok", value=90.0, scope="set", backend="toy", n=8)
    new = ScoreRecord(metric="fvd", status="ok", value=70.0, scope="set", backend="toy", n=16)
    per_video = ScoreRecord(metric="lpips_temporal", status="ok", value=0.1, key="k1", backend="toy")
    folder.append_scores([old.to_dict(), per_video.to_dict()])
    folder.append_scores([new.to_dict()])
    latest = folder.latest_scores()
    assert len(latest) == 2
    assert [s["value"] for s in latest if s["metric"] == "fvd"] == [70.0]


def test_index_import_is_idempotent_and_finds_finished_work(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "runs" / "q3")
    folder.write_meta({"run_id": "run-q3", "created": "2026-09-30T00:00:00Z", "suite": {"name": "smoke", "version": "1"},
                       "seed": 0, "harness": {"version": "0.1.0", "git_commit": "abc"}})
    video = folder.path / "videos" / "toy" / "a.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    folder.append_generation(_gen("k1"))
    folder.append_generation(_gen("k2", status="failed", video=None))
    folder.append_scores([ScoreRecord(metric="m", status="ok", value=1.0, key="k1").to_dict()])
    index = tmp_path / "runs" / "index.sqlite"
    import_run(index, folder.path)
    import_run(index, folder.path)
    with connect(index) as conn:
        assert conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 1
        assert conn.execute("SELECT cost_usd FROM generations WHERE key='k1'").fetchone()[0] == 0.5
    assert [r["run_id"] for r in list_runs(index)] == ["run-q3"]
    found = find_finished_generation(index, "k1")
    assert found is not None and found[0] == folder.path.resolve()
    assert find_finished_generation(index, "k2") is None  # failed work is not a cache hit
    video.unlink()
    assert find_finished_generation(index, "k1") is None  # nor is a record whose video is gone


def test_an_unavailable_note_gives_way_to_a_later_record_of_the_metric(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    note = ScoreRecord(metric="clipsim", status="unavailable", reason="no CLIP weights", scope="set")
    other = ScoreRecord(metric="fvd", status="unavailable", reason="not applicable", scope="set")
    folder.append_scores([note.to_dict(), other.to_dict()])
    assert {s["metric"] for s in folder.latest_scores()} == {"clipsim", "fvd"}
    folder.append_scores([ScoreRecord(metric="clipsim", status="ok", value=0.3, key="k1").to_dict()])
    assert [(s["metric"], s["status"]) for s in folder.latest_scores()] == [("fvd", "unavailable"), ("clipsim", "ok")]
    folder.append_scores([note.to_dict()])  # unavailable again later (weights removed): said again
    assert ("clipsim", "unavailable") in [(s["metric"], s["status"]) for s in folder.latest_scores()]


def test_finding_finished_work_can_leave_out_the_asking_run(tmp_path: Path) -> None:
    index = tmp_path / "runs" / "index.sqlite"
    for name, created in (("old", "2026-01-01T00:00:00Z"), ("new", "2026-06-01T00:00:00Z")):
        folder = RunFolder(tmp_path / "runs" / name)
        folder.write_meta({"run_id": name, "created": created, "suite": {"name": "s", "version": "1"}, "seed": 0})
        video = folder.path / "videos" / "toy" / "a.mp4"
        video.parent.mkdir(parents=True)
        video.write_bytes(b"\x00")
        folder.append_generation(_gen("k1"))
        import_run(index, folder.path)
    new = (tmp_path / "runs" / "new").resolve()
    assert find_finished_generation(index, "k1")[0] == new  # type: ignore[index]
    # Before, the asking run's own (newest) row hid every other run's copy.
    older = find_finished_generation(index, "k1", exclude=new)
    assert older is not None and older[0] == (tmp_path / "runs" / "old").resolve()
