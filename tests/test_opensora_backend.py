"""The `opensora` backend against a stand-in Open-Sora 2.0 checkout (tests/fake_opensora: its CLI, config inheritance,
seed rule and output layout, with a torchrun stand-in that starts one process per GPU): the command it runs, both
modes, GPU-second accounting, failures, readiness messages, and a whole `vbench-suite run` followed by
`vbench-suite breakeven --from-run`."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from test_command_backend import _alive
from vbench_suite.backends.base import GenerationContext
from vbench_suite.backends.opensora import DOCUMENTED_RATIOS, OpenSoraBackend, opensora_size
from vbench_suite.cli import main
from vbench_suite.errors import ConfigError
from vbench_suite.tempfiles import TEMP_PREFIX
from vbench_suite.types import GenerationRequest
from vbench_suite.video.read import read_video

REPO = Path(__file__).resolve().parent / "fake_opensora"
LAUNCHER = f"{shlex.quote(sys.executable)} {REPO / 'torchrun.py'}"
PROMPT = 'raining, sea; "storm" $(id)'


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("FAKE_OPENSORA_BEHAVIOUR", "FAKE_OPENSORA_RECORD", "FAKE_OPENSORA_PIDFILE"):
        monkeypatch.delenv(name, raising=False)


def _backend(**options: object) -> OpenSoraBackend:
    options = {"repo": str(REPO), "torchrun": LAUNCHER, "device": "cpu", **options}
    return OpenSoraBackend(**options)  # type: ignore[arg-type]


def _request(mode: str = "t2v", seed: int = 0, **kw: object) -> GenerationRequest:
    return GenerationRequest(prompt_id="p", prompt=PROMPT, mode=mode, seed=seed,  # type: ignore[arg-type]
                             duration_s=9 / 24, fps=24, resolution=(256, 256), **kw)  # type: ignore[arg-type]


def _generate(backend: OpenSoraBackend, request: GenerationRequest, out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    return backend.generate(request, GenerationContext(out_path=out))


def test_sizes_are_open_soras() -> None:
    # Open-Sora 2.0's get_image_size(resolution, ratio, training=False), evaluated on its own code (the stand-in
    # keeps these numbers as a table)
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_inference", REPO / "scripts" / "diffusion" / "inference.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    SIZES = module.SIZES

    for resolution, table in SIZES.items():
        for ratio in DOCUMENTED_RATIOS:
            assert opensora_size(resolution, ratio) == table[ratio], (resolution, ratio)
    assert opensora_size("768px", "1.85:1") == (1040, 560) and opensora_size("768px", "3:4") == (656, 880)


def test_capabilities_follow_the_config_and_its_base() -> None:
    small = _backend().capabilities().for_mode("t2v")
    assert small.resolutions == ((336, 192), (192, 336), (256, 256), (384, 160))
    assert (small.fps, small.frame_multiple, small.frame_remainder) == ((24,), 4, 1)
    assert small.max_duration_s == pytest.approx(129 / 24) and small.defaults()[0] == pytest.approx(129 / 24)
    big = _backend(config="configs/diffusion/inference/768px.py")
    assert big.resolution == "768px" and big.fps == 24  # resolution from the file, fps_save from its _base_
    assert big.capabilities().for_mode("i2v").min_images == 1
    assert _backend(resolution="768px").sizes()[(1024, 576)] == "16:9"


def test_readiness_says_what_is_missing(tmp_path: Path) -> None:
    assert "opensora.repo" in (OpenSoraBackend().readiness() or "")
    assert "not an Open-Sora 2.0 checkout" in (_backend(repo=str(tmp_path)).readiness() or "")
    copy = tmp_path / "os"
    shutil.copytree(REPO, copy)
    shutil.rmtree(copy / "ckpts")
    reason = _backend(repo=str(copy)).readiness() or ""
    assert "huggingface-cli download hpcai-tech/Open-Sora-v2" in reason and "nothing is downloaded" in reason
    assert "opensora.torchrun" in (_backend(torchrun="no-such-torchrun").readiness() or "")
    assert "config" in (_backend(config="configs/nope.py").readiness() or "")
    assert _backend().readiness() is None
    with pytest.raises(ConfigError, match="args may not set --num_frames"):
        _backend(args="--num_steps 30 --num_frames 9")
    with pytest.raises(ConfigError, match="aspect_ratios"):
        _backend(aspect_ratios="7:5")


def test_t2v_command_csv_video_and_gpu_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_OPENSORA_RECORD", str(record))
    b = _backend(gpus=2, device="cuda", usd_per_gpu_hour=3.0, args="--num_steps 30")
    out = tmp_path / "videos" / "opensora" / "k.mp4"
    result = _generate(b, _request(seed=7), out)
    assert result.status == "ok", result.error
    seen = json.loads(record.read_text())
    argv = seen["argv"][1:]  # after the script: what torchrun passed on
    config, flags = argv[0], dict(zip(argv[1::2], argv[2::2]))
    assert config == str(REPO / "configs/diffusion/inference/256px.py") and seen["cwd"] == str(REPO)
    assert {k: flags[k] for k in ("--resolution", "--aspect_ratio", "--num_frames", "--seed", "--sampling_option.seed",
                                  "--num_steps")} == {"--resolution": "256px", "--aspect_ratio": "1:1",
                                                      "--num_frames": "9", "--seed": "8",
                                                      "--sampling_option.seed": "8", "--num_steps": "30"}
    assert "--prompt" not in flags and "--cond_type" not in flags
    assert seen["env"]["WORLD_SIZE"] == "2"  # the launcher was told --nproc_per_node 2
    video = read_video(out)
    assert (video.num_frames, video.width, video.height, video.fps) == (9, 256, 256, 24.0)
    assert os.listdir(out.parent) == ["k.mp4"]  # samples/, prompts.csv and the rest went with the temporary folder
    info = dict(result.info)
    assert (info["opensora_seed"], info["aspect_ratio"], info["device_count"], info["rate_source"]) == (8, "1:1", 2,
                                                                                                      "option")
    assert result.hardware_s == pytest.approx(result.latency.generating_s * 2)  # GPU-seconds = wall x GPUs
    assert result.cost_usd == pytest.approx(result.hardware_s / 3600 * 3.0)
    assert result.video_seconds == pytest.approx(9 / 24)
    fp = b.fingerprint().to_dict()
    assert fp["model"] == "open-sora-2.0:256px" and fp["settings"]["gpus"] == 2
    assert fp["settings"]["args"] == ["--num_steps", "30"] and fp["settings"]["device"] == "cuda"


def test_the_prompt_reaches_open_sora_intact_through_the_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen.csv"
    real = REPO / "scripts" / "diffusion" / "inference.py"
    repo = tmp_path / "os"
    shutil.copytree(REPO, repo)
    # a copy of the stand-in that also keeps the CSV it was given
    (repo / "scripts" / "diffusion" / "inference.py").write_text(real.read_text().replace(
        "    stem, items = rows(cfg)\n",
        f"    stem, items = rows(cfg)\n    Path({str(seen)!r}).write_text(json.dumps(items))\n"))
    result = _generate(_backend(repo=str(repo)), _request(), tmp_path / "v.mp4")
    assert result.status == "ok", result.error
    assert json.loads(seen.read_text()) == [{"text": PROMPT}]


def test_i2v_starts_on_the_reference_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_OPENSORA_RECORD", str(record))
    image = tmp_path / "ref;odd name.png"
    Image.new("RGB", (64, 64), (0, 240, 0)).save(image)
    result = _generate(_backend(), _request(mode="i2v", images=(str(image),)), tmp_path / "v.mp4")
    assert result.status == "ok", result.error
    argv = json.loads(record.read_text())["argv"]
    assert argv[argv.index("--cond_type") + 1] == "i2v_head"
    first = read_video(tmp_path / "v.mp4").frames[0].reshape(-1, 3).mean(0)
    assert first[1] > 200 and first[0] < 40


def test_same_request_same_video_even_at_seed_0(tmp_path: Path) -> None:
    b = _backend()
    a, again, other = (_generate(b, _request(seed=s), tmp_path / f"{n}.mp4") for n, s in (("a", 0), ("b", 0),
                                                                                         ("c", 1)))
    assert a.video_sha256 == again.video_sha256 != other.video_sha256


@pytest.mark.parametrize("behaviour, message, retriable", [
    ("fail", "exited with status 3; its last output: Traceback (most recent call last): | torch.OutOfMemoryError",
     False),
    ("nothing", "wrote no video (expected the file {output}); its folder holds only prompts.csv", False),
    ("garbage", "not a usable video", False),
])
def test_failures_are_clean_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: str, message: str,
                                    retriable: bool) -> None:
    monkeypatch.setenv("FAKE_OPENSORA_BEHAVIOUR", behaviour)
    out = tmp_path / "videos" / "v.mp4"
    result = _generate(_backend(), _request(), out)
    assert result.status == "failed" and result.retriable is retriable
    assert message in (result.error or ""), result.error
    assert os.listdir(out.parent) == []


def test_a_hang_on_two_gpus_is_killed_with_all_its_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("FAKE_OPENSORA_BEHAVIOUR", "hang")
    monkeypatch.setenv("FAKE_OPENSORA_PIDFILE", str(pidfile))
    start = time.monotonic()
    result = _generate(_backend(gpus=2, timeout_s=4), _request(), tmp_path / "videos" / "v.mp4")
    assert time.monotonic() - start < 60
    assert result.status == "failed" and result.retriable and "timeout_s=4" in (result.error or "")
    assert not _alive(int(pidfile.read_text()))
    assert os.listdir(tmp_path / "videos") == []


def test_vbench_suite_run_then_breakeven_from_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text("\n".join([
        "name: os-suite", 'version: "1"', "description: opensora end to end", "defaults:", "  duration_s: 0.375",
        "  fps: 24", "  resolution: [336, 192]", "prompts:",
        "  - id: t1", "    text: raining, sea", "    category: weather",
        "  - id: i1", "    text: a blue square stays still", "    category: identity", "    mode: i2v",
        '    image: "shapes:a blue square stays still on a white background#frame=0"']) + "\n", encoding="utf-8")
    out = tmp_path / "runs" / "os"
    assert main(["run", "--suite", str(suite), "--backend", "opensora", "--out", str(out), "--no-score",
                 "--no-progress", "--option", f"opensora.repo={REPO}", "--option", f"opensora.torchrun={LAUNCHER}",
                 "--option", "opensora.gpus=2", "--option", "opensora.device=cuda", "--option",
                 "opensora.usd_per_gpu_hour=3"]) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert {r["prompt_id"]: r["result"]["status"] for r in records} == {"t1": "ok", "i1": "ok"}
    with open(out / "generations.jsonl") as f:
        assert all(r["request"]["resolution"] == [336, 192] for r in map(json.loads, f))
    assert (tmp_path / "reports" / "os" / "report.html").is_file()
    assert not [p for p in out.rglob("*") if TEMP_PREFIX in p.name]
    capsys.readouterr()
    assert main(["breakeven", "--from-run", str(out), "--api-usd-per-10s", "1.5", "--api-resolution", "336x192",
                 "--api-video-seconds", "0.375"]) == 0
    text = capsys.readouterr().out
    hw = [r["result"]["hardware_s"] for r in records]
    per_10s = sum(hw) / sum(r["result"]["video_seconds"] for r in records) * 10
    assert f"opensora used {per_10s:.4g} GPU-seconds per 10 s of video of 336x192 (wall time × 2 GPU(s)" in text
    assert "Cluster size: 2 GPU(s)" in text and "× 2 machine(s) × 730.0 h = $4,380.00 per month" in text
    assert "GPU (cuda" in text and "source: opensora's usd_per_gpu_hour option, set for this run" in text
    assert text.startswith("Self-hosting ")  # like for like (336x192, same length): a plain verdict
