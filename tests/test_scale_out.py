"""Scale-out pieces that need no Ray: placement arithmetic, FVD split into features and records, decode workers,
`--device`, and the engine flags' user errors. (The Ray engine itself: test_ray_engine.py.)"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conftest_metrics import moving_video, save_npy
from vbench_suite.backends.base import Resources, split_placement_options
from vbench_suite.cli import main
from vbench_suite.errors import ConfigError, UserError
from vbench_suite.metrics import score_with
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.runner.engines.placement import PoolPlan, fits, plan_pools, pool_spec

TWO_NODES = [{"CPU": 1.0}, {"CPU": 1.0, "GPU": 1.0}]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# ---------------------------------------------------------------------------------------------------- placement

def test_placement_options_are_split_from_constructor_options_and_checked() -> None:
    assert split_placement_options({"steps": 2, "actors": 2, "num_gpus": 1}) == ({"steps": 2},
                                                                                {"actors": 2, "num_gpus": 1})
    spec = pool_spec("dit-local", Resources(num_cpus=1.0), {"num_gpus": 1, "actors": 3})
    assert spec.resources == Resources(num_cpus=1.0, num_gpus=1.0) and spec.actors == 3
    assert spec.explicit == {"num_gpus", "actors"}
    for bad in ({"actors": 0}, {"actors": 1.5}, {"num_cpus": 0}, {"num_gpus": -1}, {"memory_mb": "lots"}):
        with pytest.raises(ConfigError, match="--option dit-local."):
            pool_spec("dit-local", Resources(), bad)


def test_default_actors_one_per_gpu_share_else_one() -> None:
    gpu = pool_spec("diffusers", Resources(num_cpus=1.0, num_gpus=1.0), {})
    other = pool_spec("opensora", Resources(num_cpus=1.0, num_gpus=1.0), {})
    cpu = pool_spec("reference-shapes", Resources(num_cpus=0.25), {})
    plans, notes = plan_pools([gpu, other, cpu], [{"CPU": 32.0, "GPU": 8.0}], strict=True)
    assert [(p.name, p.actors) for p in plans] == [("diffusers", 4), ("opensora", 4), ("reference-shapes", 1)]
    assert notes == []


def test_pools_that_would_take_every_cpu_are_given_smaller_shares_that_fit_each_node() -> None:
    # 2 dit-local actors of 1 CPU plus the renderer on two 1-CPU nodes: as declared, the renderer could never be
    # placed while the model's actors hold both cores, and the run would wait for it forever.
    specs = [pool_spec("dit-local", Resources(num_cpus=1.0), {"actors": 2}),
             pool_spec("reference-shapes", Resources(num_cpus=0.25), {})]
    asked = [PoolPlan(s.name, s.resources, s.actors or 1) for s in specs]
    assert not fits(asked, TWO_NODES)
    plans, notes = plan_pools(specs, TWO_NODES, strict=True)
    assert fits(plans, TWO_NODES) and [p.actors for p in plans] == [2, 1]
    assert all(p.resources.num_cpus < s.resources.num_cpus for p, s in zip(plans, specs))
    assert "lowered the CPU share" in notes[0][1]
    # the sum alone would have passed (0.88 + 0.88 + 0.22 <= 2), but no node holds 0.88 + 0.22
    assert not fits([PoolPlan("d", Resources(0.88), 2), PoolPlan("r", Resources(0.22), 1)], TWO_NODES)


def test_what_the_user_set_is_never_shrunk_and_an_impossible_plan_is_refused_or_noted() -> None:
    specs = [pool_spec("toy", Resources(num_cpus=1.0), {"actors": 3, "num_gpus": 0.5})]
    with pytest.raises(ConfigError, match="cannot all be placed at once.*toy: 3 x"):
        plan_pools(specs, TWO_NODES, strict=True)
    plans, notes = plan_pools(specs, TWO_NODES, strict=False)      # a cluster that may grow: start anyway
    assert plans[0].actors == 3 and "starting anyway" in notes[0][1]
    pinned = [pool_spec("dit-local", Resources(), {"actors": 2, "num_cpus": 1}),
              pool_spec("reference-shapes", Resources(num_cpus=0.25), {"num_cpus": 0.25})]
    with pytest.raises(ConfigError, match="lower --option NAME.actors"):
        plan_pools(pinned, TWO_NODES, strict=True)


def test_gpu_instances_go_only_where_gpus_are() -> None:
    gpu = PoolPlan("toy", Resources(num_cpus=0.5, num_gpus=0.5), 2)
    assert fits([gpu], TWO_NODES)
    assert not fits([gpu], [{"CPU": 4.0}, {"CPU": 4.0}])
    assert not fits([PoolPlan("toy", Resources(num_cpus=0.5, num_gpus=0.5), 3)], TWO_NODES)


def test_placement_option_errors_and_ray_address_without_ray_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"), "--limit", "1",
            "--no-score", "--no-report", "--no-progress"]
    assert main([*base, "--option", "reference-shapes.actors=0"]) == 2
    assert "--option reference-shapes.actors must be a whole number >= 1, got 0" in _error(capsys)
    assert main([*base, "--ray-address", "auto"]) == 2
    assert "--ray-address is only used with --engine ray" in _error(capsys)
    assert main([*base, "--option", "reference-shapes.num_gpu=1"]) == 2
    assert "Did you mean 'num_gpus'?" in _error(capsys)
    assert not (tmp_path / "r").exists()


def test_placement_options_are_accepted_and_ignored_by_the_local_engine(tmp_path: Path) -> None:
    assert main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"),
                 "--limit", "1", "--no-score", "--no-report", "--no-progress",
                 "--option", "reference-shapes.actors=2", "--option", "reference-shapes.num_cpus=0.5"]) == 0


# ------------------------------------------------------------------------------------------------------ device

def test_device_auto_cpu_and_an_unavailable_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    from vbench_suite.device import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="--device must be one of auto, cpu, cuda"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: the refusal below cannot be shown here")
    video = save_npy(tmp_path / "v" / "a.npy", moving_video(4))
    assert main(["score", str(Path(video).parent), "--metrics", "lpips_temporal", "--device", "cuda"]) == 2
    assert "--device cuda: no CUDA device is visible" in _error(capsys)


# ----------------------------------------------------------------------------- FVD as features + records

@pytest.fixture(scope="module")
def fvd_videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ScoringItem], list[str]]:
    """Five usable videos of two backends, one too short, two references (tiny: I3D is the slow part here)."""
    root = tmp_path_factory.mktemp("fvd-shards")
    items = [ScoringItem(video_path=save_npy(root / f"g{i}.npy", moving_video(9, 16, 16, seed=i, speed=1 + i % 3)),
                         key=f"k{i}", backend="a" if i < 3 else "b", prompt_id=f"p{i}") for i in range(5)]
    items.append(ScoringItem(video_path=save_npy(root / "short.npy", moving_video(4, 16, 16)), key="short",
                             backend="a", prompt_id="p9"))
    refs = [save_npy(root / "ref" / f"r{i}.npy", moving_video(9, 16, 16, seed=100 + i)) for i in range(2)]
    return items, refs


def test_fvd_from_features_of_slices_equals_one_call(tmp_path: Path,
                                                     fvd_videos: tuple[list[ScoringItem], list[str]]) -> None:
    """What the Ray engine does (features of slices on several workers, records built once) gives the records of
    one `score` call bit for bit: same I3D batches, same stacking order; a bad file keeps its reason and index.
    (A bad file before the last slice shifts later I3D batches: then the features agree to float32 round-off.)"""
    from vbench_suite.metrics.fvd import FVD, FeatureShard

    items, refs = fvd_videos
    ctx = ScoringContext(cache_dir=tmp_path, reference_videos=refs, reference_id="ref")
    fvd = FVD(num_frames=9, batch_size=2, bootstrap=20, decode_workers=0)
    whole = fvd.score(items, ctx)
    paths = [it.video_path for it in items]
    slices = [paths[i:i + 2] for i in range(0, len(paths), 2)]
    shards = [fvd.features(s, ctx) for s in reversed(slices)][::-1]    # computed in another order
    merged = FeatureShard.concat(shards, [len(s) for s in slices])
    assert merged.bad and merged.bad[0][0] == 5 and "too short" in merged.bad[0][1] and merged.ok == [0, 1, 2, 3, 4]

    def reference(c: ScoringContext):  # type: ignore[no-untyped-def]
        return dataclasses.replace(fvd.reference_features(c), cached=False)    # as computed afresh

    split = fvd.records_from_features(items, merged, ctx, reference)
    assert [r.to_dict() for r in split] == [r.to_dict() for r in whole]
    assert [r.status for r in whole] == ["error", "ok", "ok"]


def test_decode_workers_do_not_change_features(tmp_path: Path,
                                               fvd_videos: tuple[list[ScoringItem], list[str]]) -> None:
    from vbench_suite.metrics.fvd import FVD

    items, _ = fvd_videos
    ctx = ScoringContext(cache_dir=tmp_path)
    paths = [it.video_path for it in items[-4:]]     # the last one is too short
    inline = FVD(num_frames=9, decode_workers=0).features(paths, ctx)
    ahead = FVD(num_frames=9, decode_workers=2).features(paths, ctx)
    assert np.array_equal(inline.features, ahead.features) and inline.ok == ahead.ok and inline.bad == ahead.bad
    assert len(inline.ok) == 3
    with pytest.raises(ConfigError, match="decode_workers must be >= 0"):
        FVD(decode_workers=-1)


def test_lpips_diversity_groups_scored_apart_give_the_records_of_one_call(tmp_path: Path) -> None:
    from vbench_suite.metrics.lpips import LPIPSDiversity

    items = [ScoringItem(video_path=save_npy(tmp_path / f"{b}{p}{s}.npy", moving_video(6, 32, 32, seed=s + 3 * p)),
                         backend=b, prompt_id=f"p{p}", sample=s) for b in "ab" for p in range(2) for s in range(2)]
    items.append(ScoringItem(video_path=items[0].video_path, backend="c", prompt_id="alone"))
    metric, ctx = LPIPSDiversity(), ScoringContext(cache_dir=tmp_path)
    groups = metric.independent_groups(list(reversed(items)))
    assert [(g[0].backend, g[0].prompt_id, len(g)) for g in groups] == [("a", "p0", 2), ("a", "p1", 2),
                                                                        ("b", "p0", 2), ("b", "p1", 2)]
    apart = [r for g in groups for r in LPIPSDiversity().score(g, ctx)]
    assert [r.to_dict() for r in apart] == [r.to_dict() for r in metric.score(items, ctx)]


def test_score_with_turns_a_failing_metric_into_one_record(tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("kaput")

    records = score_with("lpips_temporal", broken, [], ScoringContext(cache_dir=tmp_path))  # type: ignore[arg-type]
    assert [(r.metric, r.status, r.reason) for r in records] == [("lpips_temporal", "error", "RuntimeError: kaput")]


# ---------------------------------------------------------------------------------------------------- engine

def test_engine_ray_without_ray_installed_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)          # `import ray` fails as if it were not installed
    assert main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"),
                 "--limit", "1", "--no-score", "--no-report", "--no-progress", "--engine", "ray"]) == 2
    assert "--engine ray needs Ray, which is not installed here: pip install 'vbench_suite[ray]'" in _error(capsys)


def test_an_actor_whose_fingerprint_differs_from_the_others_is_refused() -> None:
    from vbench_suite.runner.engines.ray_engine import RayBackend
    from vbench_suite.types import Fingerprint

    import threading

    proxy = RayBackend.__new__(RayBackend)      # only the vetting of `ready()` answers, no actors
    proxy._first, proxy._vetting = None, threading.Lock()
    cpu = Fingerprint(backend="dit-local", model="m", version="1", settings=(("device", "cpu"),))
    cuda = Fingerprint(backend="dit-local", model="m", version="1", settings=(("device", "cuda"),))
    assert proxy._accept({"fingerprint": cpu, "node_ip": "10.0.0.1"}) is None
    assert proxy._accept({"fingerprint": cpu, "node_ip": "10.0.0.2"}) is None
    reason = proxy._accept({"fingerprint": cuda, "node_ip": "10.0.0.3"})
    assert reason is not None and "node 10.0.0.3 has fingerprint" in reason


def test_a_ray_address_nothing_answers_at_is_refused_at_once(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:       # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", "nonsense"):
        assert main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"),
                     "--limit", "1", "--no-score", "--no-report", "--no-progress", "--engine", "ray",
                     "--ray-address", address]) == 2
        err = _error(capsys)
        assert f"--ray-address {address}: " in err and ("nothing answers there" in err or "expected auto" in err)
    assert not (tmp_path / "r").exists()
