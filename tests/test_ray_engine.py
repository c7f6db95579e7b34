"""`run --engine ray`: the same videos and scores as the local engine, placement by declared resources, and faults
(an actor killed mid-item, the driver killed and resumed, a node lost) that lose, repeat and duplicate nothing.

All tests share one simulated two-node Ray cluster (a session fixture, started once): a head node with 1 CPU and
a node with 1 CPU and a fake GPU, 100 MB of object store each: 2 CPUs in all, like this project's machine.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from toy_backends import write_suite
from vbench_suite.cli import main
from vbench_suite.keys import file_sha256
from vbench_suite.metrics import METRICS
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.store.run_folder import GENERATIONS, RunFolder, read_jsonl

ray = pytest.importorskip("ray", reason="the Ray engine needs the `ray` extra (pip install -e '.[ray]')")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
OBJECT_STORE_BYTES = 100 * 2**20
FVD_ROUNDOFF = 1e-5
"""Relative tolerance for FVD between engines: I3D's float32 logits change at round-off with the number of CPU
threads a process uses (measured: 2e-5 absolute on logits of ~12, 2.5e-7 relative on FVD), and a Ray actor's
threads follow its CPU reservation. Everything else must be identical."""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Ray cluster for every test here: head (1 CPU) + a 'GPU node' (1 CPU, 1 fake GPU). Workers import this
    worktree's package and the tests' toys (PYTHONPATH), and find the crash markers' folder."""
    from ray.cluster_utils import Cluster

    from ray_toys import CRASH_DIR_ENV

    from vbench_suite.runner.engines.ray_engine import WORKER_NICENESS_ENV

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", CRASH_DIR_ENV, "VBENCH_CACHE_DIR", WORKER_NICENESS_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")])
    os.environ[WORKER_NICENESS_ENV] = "0"        # as `--engine ray` starts its own instance
    os.environ[CRASH_DIR_ENV] = str(tmp_path_factory.mktemp("crash-markers"))
    os.environ["VBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("worker-cache"))
    c = Cluster(initialize_head=True, connect=True,
                head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES, "include_dashboard": False})
    c.gpu_node = c.add_node(num_cpus=1, num_gpus=1, object_store_memory=OBJECT_STORE_BYTES)
    c.wait_for_nodes()
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def ray_toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "ray-toy=ray_toys:RayToy,toy=toy_backends:ToyBackend")
    return tmp_path / "calls.txt"


def _lines_per_key(run_dir: Path) -> Counter[str]:
    return Counter(r["key"] for r in read_jsonl(run_dir / GENERATIONS))


def _calls(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in path.read_text().splitlines()] if path.exists() else []  # type: ignore


def _videos(run_dir: Path) -> dict[str, str]:
    folder = RunFolder(run_dir)
    return {k: file_sha256(folder.resolve(r["result"]["video_path"])) for k, r in folder.generations().items()
            if r["result"]["status"] == "ok"}


def _scores(run_dir: Path) -> dict[tuple[Any, ...], dict[str, Any]]:
    from vbench_suite.store.run_folder import SCORE_IDENTITY

    out = {}
    for s in RunFolder(run_dir).latest_scores():
        s = {k: v for k, v in s.items() if k != "scored_at"}
        out[tuple(s.get(k) for k in SCORE_IDENTITY)] = s
    return out


# ------------------------------------------------------------------------------------ same records as locally

def test_ray_engine_with_two_actors_gives_the_local_engines_videos_and_scores(
        cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["run", "--suite", "smoke", "--prompt-id", "motion-left", "--samples", "2", "--backend", "dit-local",
              "--backend", "reference-shapes", "--option", "dit-local.steps=2", "--option", "dit-local.batch_size=1",
              "--metrics", "fvd,lpips_temporal,lpips_diversity,shapes_adherence", "--reuse", "never",
              "--device", "cpu", "--no-report", "--no-progress"]
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "cache-local"))
    assert main([*common, "--out", str(tmp_path / "local" / "run")]) == 0
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "cache-ray"))   # the reference features are computed anew
    assert main([*common, "--out", str(tmp_path / "ray" / "run"), "--engine", "ray",
                 "--option", "dit-local.actors=2", "--score-actors", "2"]) == 0
    local, remote = tmp_path / "local" / "run", tmp_path / "ray" / "run"

    videos = _videos(local)
    assert len(videos) == 8 and _videos(remote) == videos          # 2 dit-local + 2 renders + 4 FVD references
    ray_records = RunFolder(remote).generations().values()
    assert all((r["result"]["info"] or {}).get("ray_node_id") for r in ray_records)
    assert sum(_lines_per_key(remote).values()) == 8

    a, b = _scores(local), _scores(remote)
    assert a.keys() == b.keys() and len(a) == 12      # fvd 2, lpips_temporal 4, shapes_adherence 4, diversity 2
    fvd = [k for k in a if k[0] == "fvd"]
    assert len(fvd) == 2 and all(a[k]["status"] == "ok" for k in fvd)
    for key in a:
        if key[0] != "fvd":
            assert a[key] == b[key], key
            continue
        for field in ("value", "ci_low", "ci_high"):
            assert b[key][field] == (None if a[key][field] is None else pytest.approx(a[key][field], rel=FVD_ROUNDOFF))
        same = {k: v for k, v in a[key].items() if k not in ("value", "ci_low", "ci_high", "extra")}
        assert same == {k: v for k, v in b[key].items() if k not in ("value", "ci_low", "ci_high", "extra")}
        assert b[key]["extra"]["reference_cached"] is False and b[key]["extra"]["n_real"] == 4


def test_progress_counts_every_item_per_backend_across_actors(cluster: Any, tmp_path: Path, ray_toy: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=5)
    events: list[tuple[str, int, int]] = []
    config = RunConfig(suite=str(suite), backends=("ray-toy",), out=tmp_path / "run", score=False, engine="ray",
                       backend_options={"ray-toy": {"actors": 2, "batch_size": 1}})
    outcome = run_benchmark(config, on_progress=lambda b, n, total: events.append((b, n, total)))
    assert outcome.stats.generated == {"ray-toy": 5}
    assert sum(n for _, n, _ in events) == 5 and {(b, t) for b, _, t in events} == {("ray-toy", 5)}
    again: list[tuple[str, int, int]] = []
    run_benchmark(config, on_progress=lambda b, n, total: again.append((b, n, total)))
    assert sum(n for _, n, _ in again) == 5                            # cached items count too


def test_a_driver_in_another_process_joins_the_cluster_by_address(cluster: Any, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=3)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]),
               VBENCH_EXTRA_BACKENDS="ray-toy=ray_toys:RayToy")
    done = subprocess.run([sys.executable, "-m", "vbench_suite", "run", "--suite", str(suite), "--backend", "ray-toy",
                           "--out", str(out), "--engine", "ray", "--ray-address", cluster.address, "--no-score",
                           "--no-report", "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    gens = RunFolder(out).generations().values()
    assert len(gens) == 3 and {r["result"]["info"]["ray_node_id"] for r in gens} <= {
        n["NodeID"] for n in ray.nodes()}                              # made on this cluster's nodes


# ------------------------------------------------------------------------------------------------ placement

def test_a_gpu_declared_backend_runs_only_on_the_gpu_node(cluster: Any, tmp_path: Path, ray_toy: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=4)
    config = RunConfig(suite=str(suite), backends=("ray-toy", "toy"), out=tmp_path / "run", score=False,
                       engine="ray", backend_options={"ray-toy": {"num_gpus": 0.5, "actors": 2, "batch_size": 1},
                                                      "toy": {"num_cpus": 0.25}})
    run_benchmark(config)
    gens = RunFolder(tmp_path / "run").generations().values()
    nodes = {r["backend"]: set() for r in gens}
    for r in gens:
        assert r["result"]["status"] == "ok"
        nodes[r["backend"]].add(r["result"]["info"]["ray_node_id"])
    assert nodes["ray-toy"] == {cluster.gpu_node.node_id}
    assert len(nodes["toy"]) == 1 and len([r for r in gens if r["backend"] == "ray-toy"]) == 4


def test_a_backend_whose_actors_cannot_start_is_skipped_with_the_cause(
        cluster: Any, tmp_path: Path, ray_toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The module exists for the driver only, as when a package is missing on the cluster's nodes.
    (tmp_path / "driver_only").mkdir()
    (tmp_path / "driver_only" / "driver_only_toy.py").write_text(
        "from toy_backends import ToyBackend\n\nclass DriverOnly(ToyBackend):\n    name = 'driver-only'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "driver_only"))
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "driver-only=driver_only_toy:DriverOnly,toy=toy_backends:ToyBackend")
    suite = write_suite(tmp_path / "suite.yaml", n=2)
    outcome = run_benchmark(RunConfig(suite=str(suite), backends=("driver-only", "toy"), out=tmp_path / "run",
                                      score=False, engine="ray"))
    assert outcome.skipped_backends == {"driver-only": "backend driver-only: no actor could start: its constructor "
                                                       "raised ModuleNotFoundError: No module named 'driver_only_toy'"}
    assert outcome.stats.generated == {"toy": 2}


def test_remote_api_backends_stay_in_the_driver(cluster: Any, tmp_path: Path, ray_toy: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Their job-id records and no-resend rules live in the driver's code path, unchanged by the engine.
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy-remote=toy_backends:RemoteToyBackend")
    suite = write_suite(tmp_path / "suite.yaml", n=2)
    run_benchmark(RunConfig(suite=str(suite), backends=("toy-remote",), out=tmp_path / "run", score=False,
                            engine="ray"))
    gens = RunFolder(tmp_path / "run").generations().values()
    assert len(gens) == 2 and all(r["result"]["status"] == "ok" for r in gens)
    assert not any("ray_node_id" in (r["result"]["info"] or {}) for r in gens)


# ---------------------------------------------------------------------------------------------------- faults

def test_an_actor_killed_mid_item_has_it_retried_on_another_without_duplicates(
        cluster: Any, tmp_path: Path, ray_toy: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=4)
    marker = tmp_path / "crashed-once"
    options = {"actors": 2, "batch_size": 1, "calls_file": str(ray_toy), "crash_marker": str(marker),
               "crash_prompt": "p1", "delay_s": 0.2}
    config = RunConfig(suite=str(suite), backends=("ray-toy",), out=tmp_path / "run", score=False, engine="ray",
                       backend_options={"ray-toy": options})
    outcome = run_benchmark(config)
    assert marker.exists()                                               # the actor really died on p1
    attempts = [pid for prompt, pid in _calls(ray_toy) if prompt == "p1"]
    assert len(attempts) == 2 and attempts[0] != attempts[1]             # retried in another process
    assert sorted(p for p, _ in _calls(ray_toy) if p != "p1") == ["p0", "p2", "p3"]
    lines = _lines_per_key(tmp_path / "run")
    assert len(lines) == 4 and set(lines.values()) == {1}                # one record per item, none lost
    assert all(r["result"]["status"] == "ok" for r in RunFolder(tmp_path / "run").generations().values())
    assert outcome.stats.generated == {"ray-toy": 4}


def test_an_actor_killed_mid_scoring_loses_repeats_and_duplicates_no_score(
        cluster: Any, tmp_path: Path, ray_toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray_toys import CRASH_DIR_ENV

    from vbench_suite.metrics.base import ScoringContext
    from vbench_suite.metrics.lpips import LPIPSTemporal
    from vbench_suite.runner.score import scoring_items

    monkeypatch.setitem(METRICS, "crashy_temporal", "ray_toys:CrashOnceTemporal")
    suite = write_suite(tmp_path / "suite.yaml", n=6)
    config = RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "run", engine="ray",
                       metrics=("crashy_temporal",), device="cpu", score_actors=2,
                       backend_options={"toy": {"bills": False}})
    outcome = run_benchmark(config)
    assert (Path(os.environ[CRASH_DIR_ENV]) / "scoring-p1").exists()     # a scoring actor died on p1's chunk
    folder = RunFolder(outcome.run_dir)
    lines = Counter(s["key"] for s in folder.scores() if s["metric"] == "crashy_temporal")
    assert len(lines) == 6 and set(lines.values()) == {1}
    items = scoring_items(folder)
    expected = {r.key: r.value for r in LPIPSTemporal().score(items, ScoringContext(cache_dir=tmp_path))}
    got = {s["key"]: s["value"] for s in folder.latest_scores() if s["metric"] == "crashy_temporal"}
    assert got == expected and all(s["status"] == "ok" for s in folder.latest_scores())


@pytest.mark.slow
def test_driver_killed_with_sigkill_resumes_without_repeating_finished_work(
        cluster: Any, tmp_path: Path, ray_toy: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", n=8)
    out = tmp_path / "runs" / "killed"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]),
               VBENCH_EXTRA_BACKENDS="ray-toy=ray_toys:RayToy", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "vbench_suite", "run", "--suite", str(suite), "--backend", "ray-toy", "--out",
           str(out), "--engine", "ray", "--option", "ray-toy.actors=2", "--option", "ray-toy.batch_size=1",
           "--option", f"ray-toy.calls_file={ray_toy}", "--option", "ray-toy.delay_s=0.7", "--no-score",
           "--no-report", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    gens = out / GENERATIONS
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not gens.exists() or len(gens.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = {r["prompt_id"] for r in RunFolder(out).generations().values()}
    assert 3 <= len(finished_before) < 8
    before = len(_calls(ray_toy))
    done = subprocess.run([*cmd, "--option", "ray-toy.delay_s=0"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = [p for p, _ in _calls(ray_toy)[before:]]
    assert not set(after) & finished_before                              # nothing finished is generated again
    assert len(after) == len(set(after)) == 8 - len(finished_before)
    lines = _lines_per_key(out)
    assert len(lines) == 8 and set(lines.values()) == {1}


@pytest.mark.slow
def test_a_node_that_never_comes_back_leaves_its_items_to_the_other_actors(
        cluster: Any, tmp_path: Path, ray_toy: Path) -> None:
    """Runs last: it leaves the shared cluster without the node it removes. Slow: Ray takes tens of seconds to
    declare a node dead. (The driver kill above is slow too: it starts two Ray instances of its own.)"""
    doomed = cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
    cluster.wait_for_nodes()
    suite = write_suite(tmp_path / "suite.yaml", n=9)
    config = RunConfig(suite=str(suite), backends=("ray-toy",), out=tmp_path / "run", score=False, engine="ray",
                       backend_options={"ray-toy": {"actors": 3, "num_cpus": 1, "batch_size": 1, "delay_s": 1.0,
                                                    "calls_file": str(ray_toy)}})
    gens = tmp_path / "run" / GENERATIONS

    def remove_when_started() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not gens.exists() or len(gens.read_text().splitlines()) < 2):
            time.sleep(0.05)
        cluster.remove_node(doomed)

    killer = threading.Thread(target=remove_when_started, daemon=True)
    killer.start()
    outcome = run_benchmark(config)
    killer.join()
    lines = _lines_per_key(tmp_path / "run")
    assert len(lines) == 9 and set(lines.values()) == {1}
    assert outcome.stats.generated == {"ray-toy": 9}
    assert all(r["result"]["status"] == "ok" for r in RunFolder(tmp_path / "run").generations().values())
    on_doomed = [r for r in RunFolder(tmp_path / "run").generations().values()
                 if r["result"]["info"]["ray_node_id"] == doomed.node_id]
    assert len(on_doomed) < 9                                            # the others finished its share
    attempts = Counter(p for p, _ in _calls(ray_toy))
    assert max(attempts.values()) == 2 and len(attempts) == 9            # the item in flight there ran again
