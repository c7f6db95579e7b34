"""The reproducibility probe: a toy vendor whose reproducibility is known by construction (bit-exact, seed-faithful
within noise, non-deterministic) must be classified as such; replays are paid, budgeted, resumable and kept out of
the benchmark tables; the class is recorded in run.json and shown in the report."""
from __future__ import annotations

from pathlib import Path

import pytest

from vbench_suite.drift.probe import (BIT_EXACT, NON_DETERMINISTIC, PROBE_ROLE, SEED_FAITHFUL, UNKNOWN, classify)
from vbench_suite.keys import replay_key
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.store.run_folder import RunFolder

from drift_toys import COST_USD, write_shapes_suite


@pytest.fixture(autouse=True)
def _toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "drift-toy=drift_toys:DriftToy")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("DRIFT_TOY_CALLS", str(calls))
    return calls


def _probe_run(tmp_path: Path, name: str, probe: int = 2, **kw) -> RunFolder:  # type: ignore[no-untyped-def]
    suite = write_shapes_suite(tmp_path / "suite.yaml", n=3)
    kw.setdefault("score", False)
    run_benchmark(RunConfig(suite=str(suite), backends=("drift-toy",), out=tmp_path / "runs" / name, probe=probe,
                            **kw))
    return RunFolder(tmp_path / "runs" / name)


@pytest.mark.parametrize("mode, sigma, want", [("exact", "4", BIT_EXACT), ("noise", "4", SEED_FAITHFUL),
                                               ("random", "4", NON_DETERMINISTIC)])
def test_probe_recovers_the_true_reproducibility_class(tmp_path, monkeypatch, mode, sigma, want):
    monkeypatch.setenv("DRIFT_TOY_REPLAY", mode)
    monkeypatch.setenv("DRIFT_TOY_NOISE", sigma)
    folder = _probe_run(tmp_path, mode)
    probe = folder.read_meta()["probe"]["drift-toy"]
    assert probe["class"] == want, probe["reason"]
    ok = [p for p in probe["pairs"] if p["status"] == "ok"]
    assert len(ok) == 2 and [p["prompt_id"] for p in ok] == ["p0", "p2"]  # spread over the suite
    assert probe["replay_lpips"] == [p["lpips"] for p in ok]
    if want == BIT_EXACT:
        assert all(p["max_abs_diff"] == 0 and p["lpips"] == 0 for p in ok)
    else:
        assert all(p["max_abs_diff"] > 0 for p in ok)


def test_replays_are_paid_budgeted_and_kept_out_of_the_benchmark(tmp_path, _toy):
    folder = _probe_run(tmp_path, "paid")
    meta = folder.read_meta()
    # 3 benchmark requests + 2 replays, each billed
    assert meta["billed_usd"]["drift-toy"] == pytest.approx(5 * COST_USD)
    assert meta["probe"]["drift-toy"]["billed_usd"] == pytest.approx(2 * COST_USD)
    roles = [g.get("role") for g in folder.generations().values()]
    assert roles.count(PROBE_ROLE) == 2 and roles.count("benchmark") == 3
    replay = folder.generations()[replay_key(next(k for k, g in folder.generations().items()
                                                  if g["prompt_id"] == "p0" and g["role"] == "benchmark"))]
    assert replay["request"]["seed"] == next(g["request"]["seed"] for g in folder.generations().values()
                                             if g["prompt_id"] == "p0" and g["role"] == "benchmark")

    from vbench_suite.report.build import build_sections
    from vbench_suite.report.load import load_run

    run = load_run(folder.path)
    assert len(run.generations) == 3  # the replays are not benchmark output
    sections, _ = build_sections(run)
    repro = next(s for s in sections if s.title == "Reproducibility")
    row = [c.text for c in repro.tables[0].rows[0]]
    assert row[1] == BIT_EXACT and row[3] == "2 / 2"

    # resuming sends nothing again, replays included
    before = _toy.read_text().count("\n")
    _probe_run(tmp_path, "paid")
    assert _toy.read_text().count("\n") == before == 5


def test_budget_cap_stops_replays_and_the_class_says_why(tmp_path):
    folder = _probe_run(tmp_path, "capped", budget_usd=3 * COST_USD + 1e-6)
    probe = folder.read_meta()["probe"]["drift-toy"]
    assert probe["class"] == UNKNOWN and "budget cap" in probe["reason"]
    assert folder.read_meta()["billed_usd"]["drift-toy"] == pytest.approx(3 * COST_USD)


def test_classify_rules():
    same = {"status": "ok", "same_size": True, "max_abs_diff": 0, "lpips": 0.0, "prompt_id": "a", "frames_a": 9,
            "frames_b": 9}
    near = same | {"max_abs_diff": 3, "lpips": 0.02}
    far = same | {"max_abs_diff": 200, "lpips": 0.3}
    longer = same | {"same_size": False, "max_abs_diff": -1, "frames_b": 12, "lpips": 0.01}
    assert classify([same, same])[0] == BIT_EXACT
    assert classify([same, near])[0] == SEED_FAITHFUL
    assert classify([near, far])[0] == NON_DETERMINISTIC
    assert classify([same, longer])[0] == NON_DETERMINISTIC and "length" in classify([same, longer])[1]
    assert classify([{"status": "replay failed: x", "prompt_id": "a"}])[0] == UNKNOWN
    assert classify([])[0] == UNKNOWN


def test_canary_suite_is_small_versioned_cheap_and_spread_over_categories():
    from vbench_suite.suites import available_suites, load_suite

    assert "canary" in available_suites()
    suite = load_suite("canary")
    assert suite.version == "1.0" and 8 <= len(suite.items) <= 12
    assert len({it.category for it in suite.items}) >= 6
    assert all(it.mode == "t2v" and it.duration_s <= 2 for it in suite.items)
    assert sum(it.shapes is not None and bool(it.shapes) for it in suite.items) == 7  # known content
