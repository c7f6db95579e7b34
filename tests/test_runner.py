"""The runner: cache, resume, determinism across workers, budget cap, failures kept as values."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
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


# ---------------------------------------------------------------------------------------------- selection (item 3)

SHAPES_SUITE = """name: mixed
version: "1.0"
fvd_reference: shapes-world
defaults: {duration_s: 1.0, fps: 8, resolution: [32, 32]}
prompts:
  - {id: talk-1, text: "A presenter explains the quarterly numbers", category: talking, tags: [speech]}
  - {id: talk-2, text: "A presenter waves goodbye", category: talking, tags: [speech, known_hard]}
  - {id: shape-1, text: "a red circle moves left on a black background", category: shapes, tags: [motion]}
  - {id: shape-2, text: "a blue square moves up on a black background", category: shapes, tags: [motion, known_hard]}
  - {id: shape-3, text: "a green triangle stays still on a white background", category: shapes}
"""


def _mixed(tmp_path: Path, out: str, **kw) -> RunConfig:  # type: ignore[no-untyped-def]
    suite = tmp_path / "mixed.yaml"
    suite.write_text(SHAPES_SUITE, encoding="utf-8")
    kw.setdefault("reference_samples", 2)
    return RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / out, **kw)


def test_selection_intersects_categories_tags_and_ids_then_limits(tmp_path: Path) -> None:
    from vbench_suite.errors import ConfigError
    from vbench_suite.runner.select import Selection, select_prompts
    from vbench_suite.suites import load_suite

    suite = load_suite(_mixed(tmp_path, "x").suite)
    ids = lambda s: [it.id for it in select_prompts(suite, s).items]  # noqa: E731
    assert ids(Selection(tags=("known_hard",))) == ["talk-2", "shape-2"]
    assert ids(Selection(categories=("shapes",), tags=("motion",))) == ["shape-1", "shape-2"]
    assert ids(Selection(categories=("shapes", "talking"), tags=("known_hard",), limit=1)) == ["talk-2"]
    assert ids(Selection(prompt_ids=("shape-3", "talk-1"))) == ["talk-1", "shape-3"]  # suite order
    with pytest.raises(ConfigError, match=r"no category 'shape'\. Did you mean 'shapes'\? Valid: talking, shapes"):
        select_prompts(suite, Selection(categories=("shape",)))
    with pytest.raises(ConfigError, match="no tag 'fast'.*Valid: speech, known_hard, motion"):
        select_prompts(suite, Selection(tags=("fast",)))
    with pytest.raises(ConfigError, match="no prompt id 'shape-9'"):
        select_prompts(suite, Selection(prompt_ids=("shape-9",)))
    with pytest.raises(ConfigError, match="matches --category talking --tag motion"):
        select_prompts(suite, Selection(categories=("talking",), tags=("motion",)))


def test_a_subset_without_shapes_prompts_scores_with_fvd_not_applicable(tmp_path: Path) -> None:
    # Before: the run generated, then failed with "FVD reference folder shapes-world does not exist".
    outcome = run_benchmark(_mixed(tmp_path, "lim", limit=2, metrics=("fvd", "lpips_temporal")))
    folder = RunFolder(outcome.run_dir)
    fvd = [s for s in folder.latest_scores() if s["metric"] == "fvd"]
    assert len(fvd) == 1 and fvd[0]["status"] == "unavailable"
    assert "not applicable" in fvd[0]["reason"] and "--limit 2" in fvd[0]["reason"]
    assert outcome.scored["lpips_temporal"] == 2  # the other metrics scored the subset
    assert all(g.get("role") != "reference" for g in folder.generations().values())
    meta = folder.read_meta()
    assert meta["selection"]["prompts"] == ["talk-1", "talk-2"] and meta["selection"]["limit"] == 2
    assert meta["selection"]["n_suite_prompts"] == 5


def test_the_shapes_reference_is_built_from_the_selected_shapes_prompts_only(tmp_path: Path) -> None:
    config = _mixed(tmp_path, "sel", prompt_ids=("talk-1", "shape-2"), metrics=("lpips_temporal",))
    folder = RunFolder(run_benchmark(config).run_dir)
    refs = [g for g in folder.generations().values() if g.get("role") == "reference"]
    assert sorted((g["prompt_id"], g["sample"]) for g in refs) == [("shape-2", 0), ("shape-2", 1)]
    # A resume may select more prompts: allowed, recorded per invocation, and the union kept.
    run_benchmark(_mixed(tmp_path, "sel", categories=("shapes",), metrics=("lpips_temporal",)))
    meta = folder.read_meta()
    assert meta["selection"]["prompts"] == ["talk-1", "shape-2", "shape-1", "shape-3"]
    assert [inv["selection"]["prompts"] for inv in meta["invocations"]] == [["talk-1", "shape-2"],
                                                                          ["shape-1", "shape-2", "shape-3"]]
    assert len([g for g in folder.generations().values() if g.get("role") != "reference"]) == 4


def test_a_later_record_of_a_metric_replaces_its_not_applicable_note(tmp_path: Path) -> None:
    from vbench_suite.types import ScoreRecord

    folder = RunFolder(run_benchmark(_mixed(tmp_path, "na", limit=1, metrics=("fvd",))).run_dir)
    assert [s["status"] for s in folder.latest_scores() if s["metric"] == "fvd"] == ["unavailable"]
    # Stand-in for the FVD a later invocation computes once shapes prompts are selected (I3D is too slow here).
    folder.append_scores([ScoreRecord(metric="fvd", status="ok", value=12.0, scope="set", backend="toy",
                                      other="shapes-world:mixed@1.0", n=4, n_ref=4).to_dict()])
    assert [s["status"] for s in folder.latest_scores() if s["metric"] == "fvd"] == ["ok"]


# -------------------------------------------------------------------------------------------- reuse (item 5)

@pytest.fixture()
def _remote_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend,toy-remote=toy_backends:RemoteToyBackend")


def test_a_remote_backend_is_measured_anew_in_every_run(tmp_path: Path, _remote_toy: None) -> None:
    config = replace(_config(tmp_path, "q3", backend_options={"toy-remote": {"cost_usd": 0.5}}),
                     backends=("toy-remote",))
    first = run_benchmark(config)
    second = run_benchmark(replace(config, out=tmp_path / "runs" / "q4"))
    assert len(_calls(tmp_path)) == 6  # generated (and paid) again, not copied from q3
    assert sum(second.stats.reused.values()) == 0 and second.stats.generated == {"toy-remote": 3}
    gens = RunFolder(second.run_dir).generations().values()
    assert not any(g.get("reused_from") for g in gens) and all(g["billed_usd"] == 0.5 for g in gens)
    meta = RunFolder(second.run_dir).read_meta()
    assert meta["reused"] == {} and meta["billed_usd"] == {"toy-remote": 1.5} and meta["reuse"] == "local"
    # Asked for explicitly, remote results are copied too; `never` copies nothing even from a local backend.
    third = run_benchmark(replace(config, out=tmp_path / "runs" / "q5", reuse="all"))
    assert third.stats.reused == {"toy-remote": 3} and len(_calls(tmp_path)) == 6
    assert first.run_dir != third.run_dir


def test_local_results_are_reused_counted_named_and_not_billed_again(tmp_path: Path) -> None:
    options = {"toy": {"cost_usd": 1.0}}
    first = run_benchmark(_config(tmp_path, "a", backend_options=options))
    # A cap of 0 USD: copies cost this run nothing, so all three still come through.
    second = run_benchmark(_config(tmp_path, "b", backend_options=options, budget_usd=0.0))
    assert len(_calls(tmp_path)) == 3 and second.stats.reused == {"toy": 3}
    assert second.stats.reused_from == {"toy": {str(first.run_dir.resolve()): 3}}
    gens = RunFolder(second.run_dir).generations().values()
    assert all(g["billed_usd"] == 0.0 and g["result"]["cost_usd"] == 1.0 for g in gens)  # price kept, not spent
    meta = RunFolder(second.run_dir).read_meta()
    assert meta["reused"] == {"toy": {str(first.run_dir.resolve()): 3}} and meta["billed_usd"] == {"toy": 0.0}
    assert meta["over_budget"] == {"toy": 0}
    assert RunFolder(first.run_dir).read_meta()["billed_usd"] == {"toy": 3.0}
    # A copy of a copy names the run that generated (and paid for) it.
    third = run_benchmark(_config(tmp_path, "c", backend_options=options))
    assert {g["reused_from"] for g in RunFolder(third.run_dir).generations().values()} == {str(first.run_dir.resolve())}
    never = run_benchmark(_config(tmp_path, "d", backend_options=options, reuse="never"))
    assert sum(never.stats.reused.values()) == 0 and len(_calls(tmp_path)) == 6


def test_may_reuse_follows_the_policy_and_the_backend_kind() -> None:
    import toy_backends

    from vbench_suite.runner.generate import may_reuse

    local, remote = toy_backends.ToyBackend(), toy_backends.RemoteToyBackend()
    assert [may_reuse(local, p) for p in ("never", "local", "all")] == [False, True, True]
    assert [may_reuse(remote, p) for p in ("never", "local", "all")] == [False, False, True]


def test_every_remote_vendor_backend_is_marked_remote() -> None:
    from vbench_suite.backends import BACKENDS, backend_class

    kinds = {name: backend_class(name).remote for name in BACKENDS}
    assert kinds == {n: n not in ("reference-shapes", "dit-local", "diffusers", "command", "opensora") for n in BACKENDS}


# ------------------------------------------------------------------------------------ run.json outcome (item 4)

def test_run_json_keeps_every_requested_backend_and_its_outcome(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    config = RunConfig(suite=str(write_suite(tmp_path / "suite.yaml", n=5)), backends=("toy", "runway"),
                       out=tmp_path / "runs" / "o", score=False, budget_usd=2.5, concurrency=1,
                       backend_options={"toy": {"cost_usd": 1.0}})
    run_benchmark(config)
    meta = RunFolder(config.out).read_meta()
    assert meta["requested_backends"] == ["toy", "runway"]  # the order asked, not sorted
    assert "RUNWAYML_API_SECRET" in meta["skipped_backends"]["runway"]
    assert meta["budget_usd"] == 2.5 and meta["over_budget"] == {"toy": 3}
    assert meta["unsupported"] == {"toy": 0}
    # Resuming under the same cap sends nothing more and still counts 3 (not 3 + 3) ...
    run_benchmark(config)
    assert RunFolder(config.out).read_meta()["over_budget"] == {"toy": 3}
    # ... a higher cap sends them, and the count drops to 0.
    run_benchmark(replace(config, budget_usd=10.0))
    meta = RunFolder(config.out).read_meta()
    assert meta["over_budget"] == {"toy": 0} and meta["budget_usd"] == 10.0 and meta["billed_usd"] == {"toy": 5.0}
    assert [inv["budget_usd"] for inv in meta["invocations"]] == [2.5, 2.5, 10.0]


def test_run_json_counts_unsupported_requests_per_backend(tmp_path: Path) -> None:
    config = _config(tmp_path, "u", backend_options={"toy": {"modes": "i2v"}})
    assert RunFolder(run_benchmark(config).run_dir).read_meta()["unsupported"] == {"toy": 3}


# -------------------------------------------------------------------------------------------- options (item 10)

def test_an_option_typo_names_the_close_match_and_the_valid_options(tmp_path: Path) -> None:
    from vbench_suite.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backend 'toy' has no option 'cost_us'\. Did you mean 'cost_usd'\? "
                                          r"Valid options: delay_s, cost_usd, fail_prompts"):
        run_benchmark(_config(tmp_path, "t", backend_options={"toy": {"cost_us": 1}}))
    with pytest.raises(ConfigError, match=r"--option for backend 'dit-local', which is not in this run "
                                          r"\(backends: toy\)"):
        run_benchmark(_config(tmp_path, "t", backend_options={"dit-local": {"steps": 4}}))
    assert not (tmp_path / "runs" / "t").exists() and _calls(tmp_path) == []


def test_backend_option_names_follow_options_up_to_the_remote_base() -> None:
    from vbench_suite.backends import backend_class
    from vbench_suite.runner import backend_option_names

    runway = backend_option_names(backend_class("runway"))
    assert runway is not None and {"model", "base_url", "poll_interval_s"} <= set(runway)
    assert backend_option_names(backend_class("reference-shapes")) == []

    class FreeForm(backend_class("reference-shapes")):  # type: ignore[misc]
        def __init__(self, **anything: object) -> None:
            self.anything = anything

    assert backend_option_names(FreeForm) is None  # takes any keyword: not second-guessed


# ------------------------------------------------------------------------------------ scoring progress (item 10)

def test_scoring_reports_progress_per_metric(tmp_path: Path) -> None:
    events: list[tuple[str, int, int]] = []
    outcome = run_benchmark(_config(tmp_path, "p", n=6, score=True, metrics=("lpips_temporal",)),
                            on_score_progress=lambda m, n, total: events.append((m, n, total)))
    assert outcome.scored == {"lpips_temporal": 6}
    assert [e for e in events if e[1]] == [("lpips_temporal", 4, 6), ("lpips_temporal", 2, 6)]


def test_chunked_scoring_gives_what_one_batch_gives(tmp_path: Path) -> None:
    # lpips_ref says "unavailable" for a batch without any paired item; chunks of only text-to-video items must not
    # leave such a note beside the value of the one image-to-video item.
    suite = write_suite(tmp_path / "suite.yaml", n=5)
    suite.write_text(suite.read_text() + "  - id: i2v\n    text: a red circle moves left\n    category: motion\n"
                     "    mode: i2v\n    image: shapes:a red circle moves left on a black background#frame=0\n")
    config = RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / "c", metrics=("lpips_ref",))
    folder = RunFolder(run_benchmark(config).run_dir)
    scores = [s for s in folder.latest_scores() if s["metric"] == "lpips_ref"]
    assert [(s["prompt_id"], s["status"]) for s in scores] == [("i2v", "ok")]


def test_a_lowered_cap_never_stops_a_backend_that_costs_nothing(tmp_path: Path,
                                                                _remote_toy: None) -> None:
    # A paid backend spent 2 USD; resuming with a cap of 1 USD must not refuse the free local backend's requests.
    paid = replace(_config(tmp_path, "cap", n=2, backend_options={"toy-remote": {"cost_usd": 1.0}}),
                   backends=("toy-remote",))
    run_benchmark(paid)
    both = replace(paid, backends=("toy-remote", "toy"), budget_usd=1.0,
                   backend_options={"toy-remote": {"cost_usd": 1.0}, "toy": {"bills": False}})
    outcome = run_benchmark(both)
    assert outcome.stats.generated == {"toy": 2} and outcome.stats.over_budget == {}
