"""Break-even from a self-hosted backend's measured GPU-seconds, known by construction: run folders written by hand
whose GPU-seconds, GPU count, GPU price (and its source) and API prices at two resolutions give a break-even that
is computed here by hand."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vbench_suite.backends.hardware import ASSUMED_USD_PER_GPU_HOUR
from vbench_suite.cli import breakeven as cli_breakeven
from vbench_suite.report.build import breakeven_from_run
from vbench_suite.report.economics import economics_from_run, local_rate_source
from vbench_suite.report.load import load_run
from vbench_suite.report.tables import operations_table
from vbench_suite.types import Fingerprint, GenerationRequest, GenerationResult, Latency

GPU_S = 120.0
"""GPU-seconds per self-hosted video: 60 s of wall time on 2 GPUs."""
CLIP_S = 5.0
RATE = 3.0
"""USD per GPU-hour the self-hosted records were priced at."""


def _record(backend: str, index: int, result: GenerationResult, size: tuple[int, int]) -> dict:
    request = GenerationRequest(prompt_id=f"p{index}", prompt=f"prompt {index}", duration_s=CLIP_S, fps=24,
                                resolution=size, seed=index)
    return {"key": f"{backend}-{index}", "backend": backend, "prompt_id": f"p{index}", "category": "c", "sample": 0,
            "suite": "s", "suite_version": "1", "request": request.to_dict(), "result": result.to_dict(),
            "finished_at": "2026-12-01T00:00:00Z"}


def _selfhosted(index: int, rate: float, rate_source: str, device: str = "cuda", gpus: int = 2) -> GenerationResult:
    fp = Fingerprint("opensora", "open-sora-2.0:256px", "v1", (("device", device), ("gpus", gpus)))
    hw = GPU_S if device == "cuda" else 36.0
    info = (("device", device), ("device_count", gpus if device == "cuda" else 1),
            ("device_name", "NVIDIA H200" if device == "cuda" else "AMD EPYC"), ("hardware_usd_per_hour", rate),
            ("rate_option", "usd_per_gpu_hour" if device == "cuda" else "usd_per_cpu_hour"),
            ("rate_source", rate_source))
    lat = Latency(generating_s=hw / gpus, total_s=hw / gpus, stages=(("command", hw / gpus),))
    return GenerationResult("ok", fp, video_path=f"videos/opensora/{index}.mp4", latency=lat,
                            cost_usd=hw / 3600 * rate, hardware_s=hw, video_seconds=CLIP_S, info=info)


def _api(index: int, usd: float) -> GenerationResult:
    fp = Fingerprint("runway", "gen4_turbo", "2026-09")
    return GenerationResult("ok", fp, video_path=f"videos/runway/{index}.mp4", cost_usd=usd, video_seconds=CLIP_S,
                            latency=Latency(generating_s=20.0, total_s=21.0), job_id=f"task-{index}")


def _run(tmp_path: Path, rate: float = RATE, rate_source: str = "option", device: str = "cuda") -> Path:
    """4 self-hosted 336x192 5 s clips at GPU_S GPU-seconds each; runway: two 336x192 clips at $0.50 ($1.00 per
    10 s) and two 1280x720 clips at $1.25 ($2.50 per 10 s; $1.75 per 10 s over all four)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "run_id": "r1", "created": "2026-12-01T00:00:00Z", "name": "selfhost", "schema_version": 1,
        "suite": {"name": "s", "version": "1"}, "seed": 0, "samples": 1,
        "harness": {"version": "0.1.0", "git_commit": "x"}}))
    records = [_record("opensora", i, _selfhosted(i, rate, rate_source, device), (336, 192)) for i in range(4)]
    records += [_record("runway", 10 + i, _api(i, 0.50), (336, 192)) for i in range(2)]
    records += [_record("runway", 20 + i, _api(2 + i, 1.25), (1280, 720)) for i in range(2)]
    (run_dir / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser()
    cli_breakeven.add_parser(parser.add_subparsers())
    assert cli_breakeven.run(parser.parse_args(["breakeven", *argv])) == 0
    return capsys.readouterr().out


def test_measured_inputs(tmp_path: Path) -> None:
    econ = economics_from_run(load_run(_run(tmp_path)))
    assert econ.selfhost_backend == "opensora" and econ.gpus == 2 and econ.device == "cuda"
    assert econ.videos_per_gpu_hour == pytest.approx(3600 / GPU_S)                 # 30 videos per GPU-hour
    assert econ.hardware_s_per_10s == pytest.approx(GPU_S / CLIP_S * 10)            # 240 GPU-seconds per 10 s
    assert econ.gpu_usd_per_hour == pytest.approx(RATE)
    # runway priced at the self-hosted clips' resolution only: 2 x $0.50 / 10 s of video x 10 = $1.00 per 10 s
    assert econ.api_usd_per_10s == pytest.approx({"runway": 1.00})
    assert econ.api_formats["runway"].width == 336 and "(2 of its 4 requests)" in econ.api_notes["runway"]
    assert "all its clips: $1.75" in econ.api_notes["runway"]
    assert econ.machine == "GPU (cuda, NVIDIA H200)"
    assert econ.rate_source == "source: opensora's usd_per_gpu_hour option, set for this run"


def test_breakeven_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # F = $3/GPU-h x 2 GPUs x 730 h = $4,380 a month; A = $1.00 per 10 s -> V* = 4,380 ten-second units.
    # T = 30 videos per GPU-hour x 5 s / 10 s = 15 units per GPU-hour; C = 15 x 2 x 730 = 21,900 -> 20 % busy.
    out = _cli(["--from-run", str(_run(tmp_path))], capsys)
    assert out.splitlines()[0] == ("Self-hosting is cheaper above 4,380.0 ten-second units per month, which keeps "
                                   "the cluster 20.0% busy.")
    for line in ("opensora used 240 GPU-seconds per 10 s of video of 336x192 (wall time × 2 GPU(s) per generation)",
                 "Cluster size: 2 GPU(s), what one generation of opensora held",
                 "GPU (cuda, NVIDIA H200) at $3/h (source: opensora's usd_per_gpu_hour option, set for this run)",
                 "runway's price is from its 336x192 clips only (2 of its 4 requests)",
                 "Like for like: opensora makes 336x192 5 s clips, runway 336x192 5 s clips",
                 "× 2 machine(s) × 730.0 h = $4,380.00 per month",
                 "Capacity C = T × 2 machine(s) × 730.0 h = 21,900.0",
                 "Assumed: the self-hosted machines are paid for 730 h a month"):
        assert line in out, line
    # the cluster size is the user's to change: twice the GPUs, twice the fixed cost and capacity, same utilisation
    out = _cli(["--from-run", str(_run(tmp_path / "b")), "--gpus", "4"], capsys)
    assert out.splitlines()[0] == ("Self-hosting is cheaper above 8,760.0 ten-second units per month, which keeps "
                                   "the cluster 20.0% busy.")
    assert "Cluster size" not in out


def test_the_report_uses_the_same_numbers(tmp_path: Path) -> None:
    run = load_run(_run(tmp_path))
    results, notes = breakeven_from_run(run, operations_table(run))
    [r] = results
    assert (r.fixed_usd_per_month, r.breakeven_volume, r.capacity_per_month) == pytest.approx((4380.0, 4380.0,
                                                                                              21900.0))
    assert r.utilisation_at_breakeven == pytest.approx(0.2) and r.comparison.like_for_like is True
    text = " ".join(notes)
    assert "2 such machines (the GPUs one generation of opensora held)" in text
    assert "240 hardware seconds per 10 s of video" in text and "336x192 clips only" in text


def test_a_default_price_is_named_as_an_assumption(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli(["--from-run", str(_run(tmp_path, rate=ASSUMED_USD_PER_GPU_HOUR, rate_source="default"))], capsys)
    assert (f"GPU (cuda, NVIDIA H200) at ${ASSUMED_USD_PER_GPU_HOUR:g}/h (assumed, source: opensora's default "
            "usd_per_gpu_hour") in out
    assert "`--option opensora.usd_per_gpu_hour=USD`" in out
    # F = $2 x 2 x 730 = $2,920 -> V* = 2,920; the given price replaces the recorded one and says so
    assert out.startswith("Self-hosting is cheaper above 2,920.0 ten-second units")
    out = _cli(["--from-run", str(_run(tmp_path / "b", rate=2.0, rate_source="default")), "--gpu-usd-per-hour", "5"],
               capsys)
    assert "(given by --gpu-usd-per-hour)" in out and out.startswith("Self-hosting is cheaper above 7,300.0")


def test_a_cpu_backend_is_priced_per_vcpu_and_has_no_gpu_count(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    econ = economics_from_run(load_run(_run(tmp_path, rate=0.0425, rate_source="default", device="cpu")))
    assert econ.gpus is None and econ.machine == "CPU: 1 vCPU"
    assert econ.rate_source.startswith("assumed, source: opensora's default usd_per_cpu_hour")
    out = _cli(["--from-run", str(tmp_path / "run")], capsys)
    assert "Cluster size" not in out and "× 1 machine(s)" in out and "CPU-seconds per 10 s" in out


def test_rate_source_is_general_and_dit_local_keeps_its_own() -> None:
    assert local_rate_source("diffusers", 2.5, "cuda", {"rate_source": "option", "rate_option": "usd_per_gpu_hour",
                                                        "device_name": "NVIDIA L4"}) == (
        "GPU (cuda, NVIDIA L4)", "source: diffusers's usd_per_gpu_hour option, set for this run")
    machine, source = local_rate_source("dit-local", 0.0425, "cpu")
    assert machine == "CPU: 1 vCPU" and source.startswith("assumed, source: dit-local's default price_per_hour")
    assert local_rate_source("plugin", 1.0, "cuda")[1] == "source: plugin's own cost records (cost_usd / hardware_s)"
