"""Capabilities are declared per mode and per model, fitting respects them, and a fitted request is never rejected
by the backend's own payload builder (no harness-side size or duration failures presented as vendor failures)."""
from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest

from vbench_suite.backends.remote.fal import FalQueueBackend, PikaBackend
from vbench_suite.backends.remote.heygen import HeyGenBackend
from vbench_suite.backends.remote.runway import MODELS as RUNWAY_MODELS
from vbench_suite.backends.remote.runway import RunwayBackend
from vbench_suite.backends.remote.synthesia import SynthesiaBackend
from vbench_suite.backends.remote.veo import MODELS as VEO_MODELS
from vbench_suite.backends.remote.veo import VeoBackend
from vbench_suite.backends.reference_shapes import ReferenceShapesBackend
from vbench_suite.types import Capabilities, GenerationRequest, ModeCapabilities

PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
                           "AABJRU5ErkJggg==")
SIZES = ((64, 64), (1280, 720), (720, 1280), (1920, 1080), (1000, 1000), (333, 777), (4000, 500), (832, 1104))
DURATIONS = (0.5, 2.0, 3.0, 5.0, 7.0, 9.5, 12.0, 100.0)
FPS = (8, 24, 30)
SHAPES_PROMPT = "a red circle moves left on a black background"


def remote_backends() -> list:
    """Every remote adapter, every model it offers (keys are not needed to build payloads)."""
    out: list = [RunwayBackend(model=m) for m in RUNWAY_MODELS]
    out += [VeoBackend(model=m) for m in VEO_MODELS]
    out += [PikaBackend(), SynthesiaBackend(), HeyGenBackend(),
            FalQueueBackend(endpoint="fal-ai/x/text-to-video", image_endpoint="fal-ai/x/image-to-video",
                            keyframes_endpoint="fal-ai/x/keyframes", durations=[5, 10]),
            FalQueueBackend(endpoint="fal-ai/y/text-to-video")]
    return out


def _request(mode: str, size: tuple[int, int], duration: float, fps: int, image: Path) -> GenerationRequest:
    inputs: dict = {}
    if mode in ("i2v", "hybrid"):
        inputs["images"] = (str(image),)
    elif mode == "keyframes":
        inputs.update(first_frame=str(image), last_frame=str(image))
    return GenerationRequest("p", SHAPES_PROMPT, mode=mode, resolution=size, duration_s=duration, fps=fps,  # type: ignore[arg-type]
                             **inputs)


@pytest.mark.parametrize("backend", remote_backends(), ids=lambda b: f"{b.name}:{b.model_id()}")
def test_every_fitted_request_is_accepted_by_the_adapter(backend, tmp_path: Path) -> None:
    image = tmp_path / "f.png"
    image.write_bytes(PNG_1PX)
    caps = backend.capabilities()
    assert caps.modes, backend.name
    for mode in caps.modes:
        for size, duration, fps in itertools.product(SIZES, DURATIONS, FPS):
            fitted, notes = caps.fit(_request(mode, size, duration, fps, image))
            assert fitted.mode == mode
            assert backend.unsupported_reason(fitted) is None, (mode, size, duration, fitted)
            assert caps.fit(fitted) == (fitted, ())  # fitting is idempotent
            call = backend.build_create(fitted)  # the payload builder takes it without raising
            assert call.method == "POST"
            if (tuple(size), duration, fps) != (tuple(fitted.resolution), fitted.duration_s, fitted.fps):
                assert notes  # every change is recorded


def test_local_backends_accept_what_they_fit(tmp_path: Path) -> None:
    backend = ReferenceShapesBackend()
    caps = backend.capabilities()
    for size, duration, fps in itertools.product(((64, 64), (128, 72), (1000, 1000)), DURATIONS, FPS):
        fitted, _ = caps.fit(_request("t2v", size, duration, fps, tmp_path / "unused.png"))
        assert backend.unsupported_reason(fitted) is None, fitted


def test_runway_text_to_video_fits_to_its_own_ratios_not_image_ratios() -> None:
    caps = RunwayBackend().capabilities()  # gen4.5
    square = GenerationRequest("p", "x", mode="t2v", resolution=(64, 64), duration_s=2)
    fitted, notes = caps.fit(square)
    assert fitted.resolution in ((1280, 720), (720, 1280))  # not 960x960, which only image-to-video takes
    assert notes == (f"resolution 64x64 -> {fitted.resolution[0]}x{fitted.resolution[1]}",)
    i2v, _ = caps.fit(GenerationRequest("p", "x", mode="i2v", images=("a.png",), resolution=(64, 64), duration_s=2))
    assert i2v.resolution == (960, 960)
    assert caps.for_mode("t2v").resolutions == ((1280, 720), (720, 1280))
    assert caps.for_mode("keyframes") is None  # gen4.5 takes no first+last keyframes


def test_each_model_declares_its_own_modes_and_limits() -> None:
    assert RunwayBackend(model="gen4_turbo").capabilities().modes == ("i2v", "hybrid")
    assert RunwayBackend(model="veo3.1").capabilities().for_mode("t2v").durations_s == (4.0, 6.0, 8.0)
    assert (3840, 2160) in VeoBackend(model="veo-3.1-generate-preview").capabilities().for_mode("t2v").resolutions
    assert (3840, 2160) not in VeoBackend(model="veo-3.0-generate-001").capabilities().for_mode("t2v").resolutions


def test_a_mode_the_backend_lacks_is_never_changed() -> None:
    caps = RunwayBackend(model="gen4_turbo").capabilities()
    t2v = GenerationRequest("p", "x", mode="t2v", resolution=(64, 64), duration_s=3)
    assert caps.fit(t2v) == (t2v, ())
    assert "mode 't2v' not supported" in caps.check(t2v)


def test_veo_large_sizes_fit_only_at_their_duration() -> None:
    caps = VeoBackend().capabilities()
    hd_short, notes = caps.fit(GenerationRequest("p", "x", resolution=(1920, 1080), duration_s=5))
    assert (hd_short.duration_s, hd_short.resolution) == (6.0, (1280, 720))
    assert notes == ("duration 5s -> 6s", "resolution 1920x1080 -> 1280x720")
    full, notes = caps.fit(GenerationRequest("p", "x", resolution=(1920, 1080), duration_s=8))
    assert full.resolution == (1920, 1080) and notes == ()
    refused = caps.check(GenerationRequest("p", "x", resolution=(1920, 1080), duration_s=6))
    assert refused and "at 6s" in refused and "(supports 1280x720, 720x1280)" in refused


def test_capabilities_are_hashable_values_with_defaults() -> None:
    limits = ModeCapabilities(durations_s=(4.0, 8.0), resolutions=((1280, 720),), default_duration_s=8.0)
    caps = Capabilities.of({"t2v": limits, "i2v": limits})
    assert hash(caps) == hash(Capabilities.same(("t2v", "i2v"), limits))
    assert caps.modes == ("t2v", "i2v") and caps.for_mode("hybrid") is None
    assert limits.defaults() == (8.0, (1280, 720), 8)  # undeclared fps: the request default, fitted
    assert RunwayBackend().capabilities().for_mode("t2v").defaults()[:2] == (5.0, (1280, 720))
    with pytest.raises(ValueError, match="unknown mode"):
        Capabilities.of({"v2v": limits})


def test_frame_count_and_size_multiple_rules() -> None:
    """Room for diffusers-style models: frame counts 4k+1 and sizes in multiples of 16."""
    limits = ModeCapabilities(max_duration_s=5.0, size_multiple=16, frame_multiple=4, frame_remainder=1)
    request = GenerationRequest("p", "x", duration_s=2.0, fps=8, resolution=(100, 60))
    assert limits.check(request)
    fitted, notes = limits.fit(request)
    assert (fitted.num_frames, fitted.duration_s, fitted.resolution) == (17, 2.125, (96, 64))
    assert notes == ("resolution 100x60 -> 96x64 (multiples of 16)",
                     "duration 2s -> 2.125s (17 frames at 8 fps: counts of the form 4k+1)")
    assert limits.check(fitted) is None and limits.fit(fitted) == (fitted, ())
    at_limit, _ = limits.fit(GenerationRequest("p", "x", duration_s=5.0, fps=24, resolution=(64, 64)))
    assert at_limit.num_frames == 117 and at_limit.duration_s <= 5.0  # 120 frames -> 117 (121 is over 5 s)
    with pytest.raises(ValueError):
        ModeCapabilities(durations_s=(5.0,), frame_multiple=4)
