"""The runner: cache, resume, determinism across workers, budget cap, failures kept as values."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vbench_suite.keys import file_sha256
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.store.run_folder import RunFolder

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def write_suite(path: Path, n: int = 3, name: str = "toy-suite", version: str = "1.0") -> Path:
    lines = [f"name: {name}", f"version: \"{version}\"", "description: runner test suite",
             "defaults:", "  duration_s: 1.0", "  fps: 8", "  resolution: [32, 32]", "prompts:"]
    for i in range(n):
        lines += [f"  - id: p{i}", f"    text: a red circle moves left number {i}", "    category: motion"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _toy_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS_FILE", str(calls))
    return calls


def _config(tmp_path: Path, out: str, **kw) -> RunConfig:  # type: ignore[no-untyped-def]
    suite = write_suite(tmp_path / "suite.yaml", n=kw.pop("n", 3))
    kw.setdefault("score", False)
    return RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / out, **kw)


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().split() if path.exists() else []


def _videos(run_dir: Path) -> dict[str, str]:
    folder = RunFolder(run_dir)
    return {k: file_sha256(folder.resolve(r["result"]["video_path"]))
            for k, r in folder.generations().items() if r["result"]["status"] == "ok"}


def test_run_writes_records_and_never_repeats_finished_work(tmp_path: Path) -> None:
    outcome = run_benchmark(_config(tmp_path, "a", samples=2))
    folder = RunFolder(outcome.run_dir)
    gens = folder.generations()
    assert len(gens) == 6 and all(g["result"]["status"] == "ok" for g in gens.values())
    assert {g["suite_version"] for g in gens.values()} == {"1.0"}
    meta = folder.read_meta()
    assert meta["suite"]["name"] == "toy-suite" and meta["harness"]["version"]
    assert "torch" in meta["libraries"] and meta["hardware"]["cpu_count"]
    assert len(_calls(tmp_path)) == 6
    again = run_benchmark(_config(tmp_path, "a", samples=2))
    assert len(_calls(tmp_path)) == 6  # nothing regenerated
    assert sum(again.stats.cached.values()) == 6
    assert (outcome.index_path).exists()


def test_worker_count_does_not_change_videos(tmp_path: Path) -> None:
    one = run_benchmark(_config(tmp_path, "w1", samples=2, concurrency=1, index_path=tmp_path / "i1.sqlite"))
    two = run_benchmark(_config(tmp_path, "w2", samples=2, concurrency=2, index_path=tmp_path / "i2.sqlite"))
    assert _videos(one.run_dir) == _videos(two.run_dir)
    assert len(_calls(tmp_path)) == 12  # separate indexes: really generated twice, and identical


def test_same_key_in_a_later_run_is_reused_not_regenerated(tmp_path: Path) -> None:
    first = run_benchmark(_config(tmp_path, "q3"))
    second = run_benchmark(_config(tmp_path, "q4"))  # same index (runs/index.sqlite)
    assert len(_calls(tmp_path)) == 3
    assert sum(second.stats.reused.values()) == 3
    assert _videos(first.run_dir) == _videos(second.run_dir)
    assert all(r.get("reused_from") for r in RunFolder(second.run_dir).generations().values())


def test_budget_cap_stops_submitting_before_it_is_exceeded(tmp_path: Path) -> None:
    config = _config(tmp_path, "b", n=5, budget_usd=2.5, concurrency=1,
                     backend_options={"toy": {"cost_usd": 1.0}})
    outcome = run_benchmark(config)
    gens = RunFolder(outcome.run_dir).generations()
    assert len(gens) == 2
    assert sum(g["result"]["cost_usd"] for g in gens.values()) <= 2.5
    assert outcome.stats.over_budget == {"toy": 3}
    # Resuming with the same cap does not spend more: earlier spending counts.
    run_benchmark(config)
    assert len(RunFolder(outcome.run_dir).generations()) == 2


def test_non_retriable_failures_are_recorded_once(tmp_path: Path) -> None:
    config = _config(tmp_path, "f", backend_options={"toy": {"fail_prompts": "p1"}})
    outcome = run_benchmark(config)
    gens = RunFolder(outcome.run_dir).generations()
    failed = [g for g in gens.values() if g["result"]["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["prompt_id"] == "p1" and failed[0]["result"]["error"] == "toy failure"
    run_benchmark(config)
    assert len(_calls(tmp_path)) == 3


def test_unsupported_mode_is_a_failed_record_not_a_crash(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    write_suite(suite, n=2)
    config = RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / "u", score=False,
                       backend_options={"toy": {"modes": "i2v"}})
    gens = RunFolder(run_benchmark(config).run_dir).generations()
    assert all("unsupported request: mode 't2v'" in g["result"]["error"] for g in gens.values())
    assert _calls(tmp_path) == []


def test_kill_during_generation_then_resume_finishes_without_repeats(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=8)
    out = tmp_path / "runs" / "killed"
    env = dict(os.environ, TOY_DELAY_S="0.4", PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cmd = [sys.executable, "-m", "vbench_suite", "run", "--suite", str(suite), "--backend", "toy", "--out", str(out),
           "--no-score", "--no-report", "--no-progress", "--concurrency", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    gens = out / "generations.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not gens.exists() or len(gens.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = set(RunFolder(out).generations())
    assert 3 <= len(finished_before) < 8
    done = subprocess.run(cmd, env=dict(env, TOY_DELAY_S="0"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = _calls(tmp_path)
    assert len(RunFolder(out).generations()) == 8
    assert len(calls) - len(set(calls)) <= 1  # at most the one request in flight at the kill is generated again
    assert len(set(calls)) == 8


def test_requests_are_fitted_to_capabilities_and_the_change_recorded(tmp_path: Path) -> None:
    options = {"toy": {"durations": "2,4", "resolutions": "64x32,32x64"}}
    outcome = run_benchmark(_config(tmp_path, "fit", backend_options=options))
    gens = list(RunFolder(outcome.run_dir).generations().values())
    assert all(g["result"]["status"] == "ok" for g in gens)
    assert {g["request"]["duration_s"] for g in gens} == {2.0}  # 1 s -> nearest allowed
    assert {tuple(g["request"]["resolution"]) for g in gens} == {(64, 32)}  # square: ties on aspect -> closer area
    assert gens[0]["adjustments"] == ["duration 1s -> 2s", "resolution 32x32 -> 64x32"]
    strict = run_benchmark(_config(tmp_path, "strict", backend_options=options, fit_requests=False))
    assert all("unsupported request" in g["result"]["error"] for g in RunFolder(strict.run_dir).generations().values())


def test_self_hosting_cost_is_recorded_but_not_spent_from_the_budget(tmp_path: Path) -> None:
    config = _config(tmp_path, "local", n=4, budget_usd=0.0,
                     backend_options={"toy": {"cost_usd": 0.25, "bills": False}})
    gens = RunFolder(run_benchmark(config).run_dir).generations().values()
    assert len(gens) == 4
    assert all(g["result"]["cost_usd"] == 0.25 and g["billed_usd"] == 0.0 for g in gens)


def test_a_new_fingerprint_in_the_same_folder_supersedes_the_old_records_in_reports(tmp_path: Path) -> None:
    from vbench_suite.report.load import load_run
    from vbench_suite.runner.summary import summarise

    first = run_benchmark(_config(tmp_path, "v", samples=2, score=True, metrics=("lpips_temporal",)))
    folder = RunFolder(first.run_dir)
    old_keys = set(folder.generations())
    # Same backend, new weights (fingerprint version 2): new keys, all generated, none pooled with version 1.
    second = run_benchmark(_config(tmp_path, "v", samples=2, score=True, metrics=("lpips_temporal",),
                                   backend_options={"toy": {"version": "2"}}))
    assert len(_calls(tmp_path)) == 12 and len(folder.generations()) == 12  # every record stays on disk
    current = folder.current_generations()
    assert len(current) == 6 and not {g["key"] for g in current} & old_keys
    assert {g["result"]["fingerprint"]["version"] for g in current} == {"2"}
    assert folder.superseded_generations() == {"toy": 6}
    header, rows = summarise(folder)
    assert rows[0][header.index("ok")] == "6"
    scored = [s for s in folder.current_scores() if s["metric"] == "lpips_temporal" and s.get("key")]
    assert len(scored) == 6 and {s["key"] for s in scored} <= {g["key"] for g in current}
    run = load_run(second.run_dir)
    assert len(run.generations) == 6 and run.superseded == {"toy": 6}
    assert set(run.scores.dropna(subset=["key"]).query("key != ''")["key"]) <= {g["key"] for g in current}
