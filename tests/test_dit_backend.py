"""The dit-local backend on a tiny random checkpoint: registry, per-request determinism across batches, latency
stages, cost, request validation. Offline, CPU, seconds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vbench_suite.backends import backend_class, create_backend
from vbench_suite.backends.base import GenerationContext
from vbench_suite.backends.dit.config import PipelineConfig, tiny_config
from vbench_suite.backends.dit.pipeline import DiTPipeline
from vbench_suite.backends.dit.train import save_weights
from vbench_suite.backends.dit_local import DiTLocalBackend
from vbench_suite.types import GenerationRequest, make_extra


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny-dit")
    pipe = DiTPipeline.random(tiny_config(), seed=0)
    save_weights(folder, pipe.cfg, pipe.vae, pipe.dit)
    return folder


@pytest.fixture(scope="module")
def backend(tiny_weights: Path) -> DiTLocalBackend:
    return DiTLocalBackend(weights=tiny_weights, device="cpu", batch_size=3, price_per_hour=3.6)


def request(prompt: str = "a red circle moves left on a black background", seed: int = 1, **kw: object) -> GenerationRequest:
    options = {"steps": 2, "guidance": 2.0, **kw.pop("options", {})}  # type: ignore[dict-item]
    fields = {"duration_s": 1.0, "fps": 8, "resolution": (16, 16), **kw}
    return GenerationRequest(prompt_id="p", prompt=prompt, seed=seed, extra=make_extra(options),
                             **fields)  # type: ignore[arg-type]


def ctx(tmp_path: Path, name: str) -> GenerationContext:
    return GenerationContext(out_path=tmp_path / f"{name}.npy")


def test_registered() -> None:
    assert backend_class("dit-local") is DiTLocalBackend
    assert isinstance(create_backend("dit-local", weights="unused"), DiTLocalBackend)


def test_result_fields(backend: DiTLocalBackend, tmp_path: Path) -> None:
    r = backend.generate(request(), ctx(tmp_path, "a"))
    assert r.status == "ok", r.error
    video = np.load(r.video_path)
    assert video.shape == (8, 16, 16, 3) and video.dtype == np.uint8
    stages = dict(r.latency.stages)
    assert {"text_encoding", "denoising", "decoding"} <= set(stages) and all(v >= 0 for v in stages.values())
    assert r.hardware_s > 0 and r.peak_memory_mb > 0
    # CPU seconds are charged at the machine's price per vCPU (3.6 USD/h over 2 vCPUs).
    assert r.cost_usd == pytest.approx(r.hardware_s / 3600 * 3.6 / 2)
    info = dict(r.info)
    assert info["hardware_measure"] == "thread+native_workers" and info["hardware_usd_per_hour"] == pytest.approx(1.8)
    assert r.fingerprint.backend == "dit-local" and r.video_seconds == pytest.approx(1.0)


def test_same_request_same_video_in_any_batch(backend: DiTLocalBackend, tmp_path: Path) -> None:
    alone = np.load(backend.generate(request(), ctx(tmp_path, "alone")).video_path)
    reqs = [request("two blue squares move up on a white background", seed=4), request(), request(seed=7),
            request("a green diamond shrinks on a gray background", seed=2)]
    results = backend.generate_batch(reqs, [ctx(tmp_path, f"b{i}") for i in range(4)])
    assert [r.status for r in results] == ["ok"] * 4
    batched = np.load(results[1].video_path)
    assert np.abs(alone.astype(int) - batched.astype(int)).max() <= 1
    assert dict(results[0].info)["batch_size"] == 3 and dict(results[3].info)["batch_size"] == 1


def test_bad_requests_fail_with_a_reason(backend: DiTLocalBackend, tmp_path: Path) -> None:
    cases = {
        "resolution": request(resolution=(64, 32)),
        "frames": request(duration_s=4.0),
        "needs a conditioning image": request(mode="i2v"),
        "first_frame and/or last_frame": request(mode="keyframes"),
        "unknown option": request(options={"cfg": 3}),
    }
    results = backend.generate_batch(list(cases.values()), [ctx(tmp_path, f"bad{i}") for i in range(len(cases))])
    for (needle, _), r in zip(cases.items(), results):
        assert r.status == "failed" and needle in (r.error or ""), (needle, r.error)


def test_all_modes_run(backend: DiTLocalBackend, tmp_path: Path) -> None:
    from PIL import Image

    img = tmp_path / "img.png"
    Image.fromarray(np.full((32, 32, 3), 180, np.uint8)).save(img)  # resized to 16x16 by the backend
    reqs = [request(mode="i2v", images=(str(img),)), request(mode="hybrid", images=(str(img),)),
            request(mode="keyframes", first_frame=str(img), last_frame=str(img)),
            request(options={"segments": [[0, 4, "a red circle"], [5, 8, "a blue circle"]]}),
            request(options={"interpolate": {"prompt": "a blue square", "seed": 3, "alpha": 0.5, "method": "slerp"}}),
            request(options={"steps": 3})]
    results = backend.generate_batch(reqs, [ctx(tmp_path, f"m{i}") for i in range(len(reqs))])
    assert [r.status for r in results] == ["ok"] * len(reqs), [r.error for r in results]


def test_capabilities_follow_the_checkpoint(backend: DiTLocalBackend, tiny_weights: Path) -> None:
    caps = backend.capabilities()
    assert caps.for_mode("t2v").resolutions == ((16, 16),) and "keyframes" in caps.modes
    assert caps.for_mode("keyframes").defaults() == (9 / 8, (16, 16), 8)  # the whole clip the model makes
    assert PipelineConfig.load(tiny_weights).num_frames == 9
