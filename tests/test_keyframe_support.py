"""Which keyframes (first / last) and how many conditioning images each backend needs is data in its per-mode
capabilities, checked before sending: a request the payload builder cannot send is recorded as unsupported (never
created, never billed), and every request the declaration admits is one the payload builder sends.

The reproduction (issue 19, item 7): `keyframe-008` of the standard suite carries a first frame only. Pika's
pikaframes takes two to five keyframes, so it is unsupported there and the fake sees no create for it; Veo takes
`image` with an optional `lastFrame`, so it is sent as `image` alone."""
from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest

from vbench_suite.backends.remote.fal import FalQueueBackend, PikaBackend
from vbench_suite.backends.remote.runway import MODELS as RUNWAY_MODELS
from vbench_suite.backends.remote.runway import RunwayBackend
from vbench_suite.backends.remote.veo import MODELS as VEO_MODELS
from vbench_suite.backends.remote.veo import VeoBackend
from vbench_suite.cli import main
from vbench_suite.fake_vendors import FakeConfig, FakeVendors
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.types import KEYFRAME_RULES, GenerationRequest, ModeCapabilities

PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
                           "AABJRU5ErkJggg==")
FAST = FakeConfig(queue_s=0.01, run_s=0.02, throttle_s=0.05, retry_after_s=0.01)
FAST_OPTIONS = ("poll_interval_s=0.005", "retry_base_delay_s=0.005", "max_retry_after_s=0.02")
KEYFRAME_SETS = (("first",), ("last",), ("first", "last"), ())
"""Every combination of keyframes a request can carry."""


def remote_backends() -> list:
    """Every remote adapter and model that offers an image or keyframes mode."""
    out: list = [RunwayBackend(model=m) for m in RUNWAY_MODELS]
    out += [VeoBackend(model=m) for m in VEO_MODELS]
    out += [PikaBackend(), FalQueueBackend(endpoint="fal-ai/x/text-to-video", image_endpoint="fal-ai/x/image-to-video",
                                           keyframes_endpoint="fal-ai/x/keyframes", durations=[5, 10])]
    return out


def _image(tmp_path: Path) -> str:
    path = tmp_path / "frame.png"
    path.write_bytes(PNG_1PX)
    return str(path)


def _keyframe_request(frames: tuple[str, ...], image: str) -> GenerationRequest:
    return GenerationRequest("p", "a red circle moves left", mode="keyframes",
                             first_frame=image if "first" in frames else None,
                             last_frame=image if "last" in frames else None)


def _builds(backend, request: GenerationRequest) -> bool:
    """Whether the adapter's payload builder turns `request` into a create call."""
    try:
        backend.build_create(request)
    except (ValueError, IndexError, OSError):
        return False
    return True


@pytest.mark.parametrize("backend", [b for b in remote_backends() if "keyframes" in b.capabilities().modes],
                         ids=lambda b: f"{b.name}:{b.model_id()}")
def test_declared_keyframe_needs_match_the_payload_builder(backend, tmp_path: Path) -> None:
    image = _image(tmp_path)
    caps = backend.capabilities()
    for frames in KEYFRAME_SETS:
        request, _ = caps.fit(_keyframe_request(frames, image))
        reason = backend.unsupported_reason(request)
        assert (reason is None) == _builds(backend, request), (frames, reason)
        if reason is not None:
            assert "mode 'keyframes' needs" in reason and "\n" not in reason, reason


@pytest.mark.parametrize("backend", remote_backends(), ids=lambda b: f"{b.name}:{b.model_id()}")
def test_declared_image_counts_match_the_payload_builder(backend, tmp_path: Path) -> None:
    image = _image(tmp_path)
    caps = backend.capabilities()
    for mode, count in itertools.product(("i2v", "hybrid"), (0, 1, 2)):
        if mode not in caps.modes:
            continue
        request, _ = caps.fit(GenerationRequest("p", "a red circle", mode=mode, images=(image,) * count))
        reason = backend.unsupported_reason(request)
        assert (reason is None) == _builds(backend, request), (mode, count, reason)
        assert (reason is None) == (count == 1), (mode, count, reason)


def test_each_vendor_declares_what_its_docs_say() -> None:
    """docs/vendors.md: pikaframes takes 2-5 images; Veo's `lastFrame` only with `image`; Runway's veo3.1 takes
    positions first and last, not last alone."""
    assert PikaBackend().capabilities().for_mode("keyframes").keyframes == "first_and_last"
    assert VeoBackend().capabilities().for_mode("keyframes").keyframes == "first"
    assert RunwayBackend(model="veo3.1").capabilities().for_mode("keyframes").keyframes == "first"


def _payload(backend, frames: tuple[str, ...], image: str) -> dict:
    request, _ = backend.capabilities().fit(_keyframe_request(frames, image))
    return backend.build_create(request).json


def test_keyframe_payloads_send_only_the_frames_given(tmp_path: Path) -> None:
    image = _image(tmp_path)
    veo, runway = VeoBackend(), RunwayBackend(model="veo3.1")
    first_only = _payload(veo, ("first",), image)["instances"][0]
    assert "image" in first_only and "lastFrame" not in first_only
    assert [p["position"] for p in _payload(runway, ("first",), image)["promptImage"]] == ["first"]
    assert [p["position"] for p in _payload(runway, ("first", "last"), image)["promptImage"]] == ["first", "last"]
    assert "lastFrame" in _payload(veo, ("first", "last"), image)["instances"][0]
    assert len(_payload(PikaBackend(), ("first", "last"), image)["image_urls"]) == 2


@pytest.mark.parametrize("rule", list(KEYFRAME_RULES))
def test_the_check_applies_each_rule(rule: str, tmp_path: Path) -> None:
    limits = ModeCapabilities(keyframes=rule)  # type: ignore[arg-type]
    image = _image(tmp_path)
    accepted = {frames for frames in KEYFRAME_SETS
                if limits.check(_keyframe_request(frames, image)) is None}
    assert accepted == {tuple(sorted(s, key=("first", "last").index)) for s in KEYFRAME_RULES[rule]}
    # Outside keyframes mode the rule does not apply.
    assert limits.check(GenerationRequest("p", "x")) is None


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(ValueError, match="keyframes must be one of"):
        ModeCapabilities(keyframes="last_only")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_images"):
        ModeCapabilities(min_images=2, max_images=1)


def test_dit_local_declaration_matches_to_spec(tmp_path: Path) -> None:
    """dit-local holds whichever keyframes it is given; its declaration must say so (any but none)."""
    torch = pytest.importorskip("torch")
    from vbench_suite.backends.dit.config import tiny_config
    from vbench_suite.backends.dit.pipeline import DiTPipeline
    from vbench_suite.backends.dit_local import DiTLocalBackend, RequestError

    torch.set_num_threads(1)
    backend = DiTLocalBackend(weights=tmp_path, device="cpu")
    # A tiny random model in place of a loaded checkpoint: `to_spec` reads only its config (loading the text
    # encoder would take seconds and change nothing here).
    backend._pipeline = DiTPipeline.random(tiny_config(), seed=0)
    image = _image(tmp_path)
    caps = backend.capabilities()
    requests = [_keyframe_request(frames, image) for frames in KEYFRAME_SETS]
    requests += [GenerationRequest("p", "x", mode=m, images=(image,) * n)  # type: ignore[arg-type]
                 for m, n in itertools.product(("i2v", "hybrid"), (0, 1, 2))]
    for request in requests:
        request, _ = caps.fit(request)
        try:
            backend.to_spec(request)
            built = True
        except RequestError:
            built = False
        assert (backend.unsupported_reason(request) is None) == built, request


@pytest.fixture
def fake(monkeypatch):
    with FakeVendors(FAST) as f:
        monkeypatch.setenv("FAL_KEY", "sk-TESTSECRET-fal")
        monkeypatch.setenv("GEMINI_API_KEY", "sk-TESTSECRET-veo")
        monkeypatch.setenv("VBENCH_FAL_BASE_URL", f.base_url("fal"))
        monkeypatch.setenv("VBENCH_VEO_BASE_URL", f.base_url("veo"))
        monkeypatch.delenv("VBENCH_SIMULATED", raising=False)
        yield f


def test_first_frame_only_item_is_unsupported_on_pika_and_sent_to_veo(fake, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["run", "--suite", "standard", "--prompt-id", "keyframe-008", "--backend", "pika", "--backend", "veo",
            "--out", str(out), "--no-score", "--no-report", "--no-progress"]
    for backend, option in itertools.product(("pika", "veo"), FAST_OPTIONS):
        args += ["--option", f"{backend}.{option}"]
    assert main(args) == 0
    gens = {g["backend"]: g for g in RunFolder(out).generations().values()}
    assert gens["pika"]["request"]["first_frame"] and gens["pika"]["request"]["last_frame"] is None
    pika = gens["pika"]["result"]
    assert pika["status"] == "failed" and pika["info"].get("unsupported") is True
    assert "needs both a first_frame and a last_frame" in pika["error"]
    assert gens["veo"]["result"]["status"] == "ok", gens["veo"]["result"]["error"]
    jobs = fake.jobs()
    assert [j.vendor for j in jobs] == ["veo"]  # pika saw no create at all: nothing billed
    assert "image" in jobs[0].body["instances"][0] and "lastFrame" not in jobs[0].body["instances"][0]
    summary = (out / "summary.md").read_text()
    lines = summary.splitlines()
    header = [c.strip() for c in next(line for line in lines if line.startswith("| backend")).strip("|").split("|")]
    pika_row = next(line for line in lines if line.startswith("| pika"))
    cells = dict(zip(header, (c.strip() for c in pika_row.strip("|").split("|"))))
    assert (cells["ok"], cells["refused"], cells["failed"], cells["unsupported"]) == ("0", "0", "0", "1"), pika_row
    assert "sk-TESTSECRET" not in "".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())
