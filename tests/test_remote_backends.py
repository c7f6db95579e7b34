"""Each vendor backend against the fake: every fault ends classified as a careful client would; payload builders
speak the documented wire format; configuration, resume and download rules hold."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from vbench_suite.backends import create_backend
from vbench_suite.backends.base import GenerationContext
from vbench_suite.backends.remote.base import STATE_FINISHED, STATE_NOT_CREATED, STATE_SUBMITTING
from vbench_suite.backends.remote.fal import FalQueueBackend, PikaBackend, app_id
from vbench_suite.backends.remote.heygen import HeyGenBackend
from vbench_suite.backends.remote.runway import RunwayBackend
from vbench_suite.backends.remote.synthesia import SynthesiaBackend, parse_duration
from vbench_suite.backends.remote.veo import VeoBackend
from vbench_suite.errors import BackendNotConfigured, ConfigError
from vbench_suite.fake_vendors import EXPECTED_STATUS, FAULTS, FakeConfig, FakeVendors
from vbench_suite.keys import file_sha256
from vbench_suite.types import GenerationRequest

KEYS = {"RUNWAYML_API_SECRET": "runway", "FAL_KEY": "fal", "GEMINI_API_KEY": "veo", "SYNTHESIA_API_KEY": "synthesia",
        "HEYGEN_API_KEY": "heygen"}
CLASSES = {"runway": RunwayBackend, "pika": PikaBackend, "synthesia": SynthesiaBackend, "heygen": HeyGenBackend,
           "veo": VeoBackend}
VENDOR_OF = {"runway": "runway", "pika": "fal", "synthesia": "synthesia", "heygen": "heygen", "veo": "veo"}
FAST = FakeConfig(queue_s=0.01, run_s=0.03, throttle_s=0.15, retry_after_s=0.01, server_error_answers=2)
OPTIONS = dict(poll_interval_s=0.005, job_deadline_s=10.0, retry_base_delay_s=0.005, max_retry_after_s=0.02)
HANG_DEADLINE_S = 0.4
"""Job deadline for the tests of a job that never finishes; every other test keeps a generous deadline, so a
loaded machine (a slow poll loop) cannot turn a finished job into a deadline failure."""
PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
                           "AABJRU5ErkJggg==")


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    for env in KEYS:
        monkeypatch.setenv(env, f"sk-TESTSECRET-{env}")
    for vendor in ("RUNWAY", "FAL", "SYNTHESIA", "HEYGEN", "VEO"):
        monkeypatch.delenv(f"VBENCH_{vendor}_BASE_URL", raising=False)
    monkeypatch.delenv("VBENCH_SIMULATED", raising=False)


@pytest.fixture(scope="module")
def fake():
    with FakeVendors(FAST) as f:
        yield f


def backend(name: str, fake: FakeVendors, **extra):
    return CLASSES[name](base_url=fake.base_url(VENDOR_OF[name]), **{**OPTIONS, **extra})


def request(name: str, prompt: str = "a red square", **kw) -> GenerationRequest:
    duration = 8.0 if name == "veo" else 5.0
    return GenerationRequest(prompt_id=kw.pop("prompt_id", "p1"), prompt=prompt, resolution=(1280, 720),
                             duration_s=duration, **kw)


class Recorder:
    """ctx.record_job target: keeps every record (what the runner's jobs.jsonl would hold)."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def __call__(self, job: dict) -> None:
        json.dumps(job)  # must be JSON-serialisable
        self.records.append(dict(job))


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("fault", ("none",) + FAULTS)
def test_each_fault_is_classified(name, fault, fake, tmp_path):
    b = backend(name, fake, **({"job_deadline_s": HANG_DEADLINE_S} if fault == "hang" else {}))
    marker = "" if fault == "none" else f" [fault:{fault}]"
    rec = Recorder()
    ctx = GenerationContext(out_path=tmp_path / "v.mp4", key="k", record_job=rec)
    seed = FAULTS.index(fault) + 1 if fault in FAULTS else 0
    result = b.generate(request(name, f"square {name}{marker}", seed=seed), ctx)
    assert result.status == EXPECTED_STATUS[fault], result
    assert result.fingerprint.simulated and result.fingerprint.backend == name
    assert rec.records[0]["state"] == STATE_SUBMITTING and rec.records[0]["job_id"] is None
    if result.status == "ok":
        assert Path(result.video_path) == ctx.out_path and file_sha256(ctx.out_path) == result.video_sha256
        assert rec.records[1]["state"] == "submitted" and rec.records[1]["job_id"] == result.job_id
        info = dict(result.info)
        assert result.cost_usd > 0 and info["price_table"].startswith(VENDOR_OF[name])
        if fault == "expired_url":
            assert info["url_refreshes"] == 1
        if fault in ("rate_limit", "server_error", "truncated"):
            assert info["http_retries"] >= 1
    else:
        assert result.error and not ctx.out_path.exists()
        assert [p for p in tmp_path.iterdir()] == []  # no partial files
    if fault == "drop_after_create":
        assert dict(result.info)["failure_code"] == "create_outcome_unknown" and result.retriable
    if fault == "hang":
        assert dict(result.info)["failure_code"] == "deadline" and result.retriable and result.job_id


def test_throttled_time_counts_as_queued(fake, tmp_path):
    for name in ("runway", "pika", "heygen"):
        r = backend(name, fake).generate(request(name, "wait [fault:throttled]", prompt_id=name),
                                         GenerationContext(out_path=tmp_path / f"{name}.mp4"))
        assert r.status == "ok" and r.latency.queued_s >= FAST.throttle_s * 0.9, (name, r.latency)
        if name == "pika":
            assert dict(r.info)["max_queue_position"] == 3  # fal's queue position is kept
        assert r.latency.total_s >= r.latency.queued_s + r.latency.generating_s + r.latency.downloading_s - 1e-6


# ---- resume -----------------------------------------------------------------------------------------------------

def test_resume_polls_the_recorded_job_instead_of_submitting(fake, tmp_path):
    b = backend("runway", fake)
    req = request("runway", "resume me", seed=4242)
    rec = Recorder()
    first = b.generate(req, GenerationContext(out_path=tmp_path / "a.mp4", record_job=rec))
    assert first.status == "ok"
    before = sum(fake.created_per_request().values())
    (tmp_path / "a.mp4").unlink()  # the video was lost (or the process died before the rename)
    again = b.generate(req, GenerationContext(out_path=tmp_path / "a.mp4", recorded_job=rec.records[-1]))
    assert again.status == "ok" and again.job_id == first.job_id and again.video_sha256 == first.video_sha256
    assert sum(fake.created_per_request().values()) == before  # no new job
    assert dict(again.info)["resumed"] is True


def test_interrupted_create_is_never_resubmitted(fake, tmp_path):
    b = backend("heygen", fake)
    before = sum(fake.created_per_request().values())
    job = {"backend": "heygen", "state": STATE_SUBMITTING, "job_id": None}
    r = b.generate(request("heygen", "unknown create"), GenerationContext(out_path=tmp_path / "x.mp4",
                                                                          recorded_job=job))
    assert r.status == "failed" and r.retriable and dict(r.info)["failure_code"] == "create_outcome_unknown"
    assert sum(fake.created_per_request().values()) == before


def test_unknown_creates_can_be_resubmitted_when_the_user_accepts_the_risk(fake, tmp_path):
    b = backend("heygen", fake, resubmit_unknown_creates=True)
    before = sum(fake.created_per_request().values())
    job = {"backend": "heygen", "state": STATE_SUBMITTING, "job_id": None}
    r = b.generate(request("heygen", "opt in"), GenerationContext(out_path=tmp_path / "x.mp4", recorded_job=job))
    assert r.status == "ok" and sum(fake.created_per_request().values()) == before + 1


def test_definitely_not_created_and_retriable_finished_jobs_are_submitted_again(fake, tmp_path):
    b = backend("veo", fake)
    for n, job in enumerate(({"state": STATE_NOT_CREATED, "job_id": None},
                             {"state": STATE_FINISHED, "job_id": "models/x/operations/old", "outcome": "failed",
                              "retriable": True})):
        before = sum(fake.created_per_request().values())
        r = b.generate(request("veo", f"again {n}"), GenerationContext(out_path=tmp_path / f"{n}.mp4",
                                                                       recorded_job=job))
        assert r.status == "ok" and sum(fake.created_per_request().values()) == before + 1


def test_a_finished_refusal_is_reported_again_not_resubmitted(fake, tmp_path):
    b = backend("pika", fake)
    rec = Recorder()
    req = request("pika", "nope [fault:moderation]")
    first = b.generate(req, GenerationContext(out_path=tmp_path / "r.mp4", record_job=rec))
    assert first.status == "refused" and rec.records[-1]["state"] == STATE_FINISHED
    before = sum(fake.created_per_request().values())
    again = b.generate(req, GenerationContext(out_path=tmp_path / "r.mp4", recorded_job=rec.records[-1]))
    assert again.status == "refused" and again.error == first.error
    assert sum(fake.created_per_request().values()) == before


def test_hung_job_is_polled_again_on_resume(fake, tmp_path):
    b = backend("synthesia", fake, job_deadline_s=HANG_DEADLINE_S)
    rec = Recorder()
    req = request("synthesia", "forever [fault:hang]")
    first = b.generate(req, GenerationContext(out_path=tmp_path / "h.mp4", record_job=rec))
    assert first.status == "failed" and rec.records[-1]["state"] == "submitted"
    before = sum(fake.created_per_request().values())
    again = b.generate(req, GenerationContext(out_path=tmp_path / "h.mp4", recorded_job=rec.records[-1]))
    assert again.job_id == first.job_id and sum(fake.created_per_request().values()) == before


# ---- payloads (pure) --------------------------------------------------------------------------------------------

def test_runway_payloads(tmp_path):
    img = tmp_path / "f.png"
    img.write_bytes(PNG_1PX)
    b = RunwayBackend(model="veo3.1_fast")
    t2v = b.build_create(GenerationRequest("p", "fox", resolution=(1280, 720), duration_s=8, seed=3))
    assert t2v.path == "/v1/text_to_video"
    assert t2v.json == {"model": "veo3.1_fast", "promptText": "fox", "ratio": "1280:720", "duration": 8, "seed": 3}
    kf = b.build_create(GenerationRequest("p", "bloom", mode="keyframes", first_frame=str(img), last_frame=str(img),
                                          resolution=(1280, 720), duration_s=8))
    assert kf.path == "/v1/image_to_video"
    assert [p["position"] for p in kf.json["promptImage"]] == ["first", "last"]
    assert kf.json["promptImage"][0]["uri"].startswith("data:image/png;base64,")
    assert b.auth_headers("k") == {"Authorization": "Bearer k", "X-Runway-Version": "2024-11-06"}
    assert RunwayBackend().unsupported_reason(GenerationRequest("p", "x", resolution=(960, 960), duration_s=5))


def test_runway_status_vocabulary():
    b = RunwayBackend()
    assert b.parse_poll({"status": "THROTTLED"}).phase == "queued"
    assert b.parse_poll({"status": "RUNNING", "progress": 0.3}).progress == 0.3
    refused = b.parse_poll({"status": "FAILED", "failure": "no", "failureCode": "SAFETY.INPUT.TEXT"})
    assert refused.phase == "refused" and "SAFETY.INPUT.TEXT" in refused.reason
    assert b.parse_poll({"status": "FAILED", "failure": "x", "failureCode": "INTERNAL.BAD_OUTPUT.CODE01"}).retriable
    with pytest.raises(ValueError):
        b.parse_poll({"status": "EXPLODED"})


def test_fal_and_pika_payloads(tmp_path):
    assert app_id("fal-ai/pika/v2.2/text-to-video") == "fal-ai/pika"
    assert app_id("workflows/me/flow/run") == "workflows/me/flow"
    pika = PikaBackend()
    call = pika.build_create(GenerationRequest("p", "poodle", resolution=(1280, 720), duration_s=5, seed=7))
    assert call.path == "/fal-ai/pika/v2.2/text-to-video"
    assert call.json == {"prompt": "poodle", "seed": 7, "resolution": "720p", "duration": 5, "aspect_ratio": "16:9"}
    assert pika.build_poll({"job_id": "r1", "model": "fal-ai/pika/v2.2/text-to-video"}).path == \
        "/fal-ai/pika/requests/r1/status"
    assert pika.auth_headers("k") == {"Authorization": "Key k"}
    kling = FalQueueBackend(endpoint="fal-ai/kling-video/v2.5-turbo/pro/text-to-video", duration_format="str",
                            arguments={"negative_prompt": "blur"})
    body = kling.build_create(GenerationRequest("p", "kite", resolution=(1280, 720), duration_s=5)).json
    assert body["duration"] == "5" and body["negative_prompt"] == "blur"
    assert kling.estimate_cost_usd(GenerationRequest("p", "k", duration_s=5)) == pytest.approx(0.35)


def test_fal_without_endpoint_is_not_configured():
    b = FalQueueBackend()
    assert "endpoint" in b.not_configured_reason()
    with pytest.raises(BackendNotConfigured):
        b.generate(GenerationRequest("p", "x"))


def test_veo_payload_has_no_seed_and_uses_inline_keyframes(tmp_path):
    img = tmp_path / "f.png"
    img.write_bytes(PNG_1PX)
    b = VeoBackend()
    call = b.build_create(GenerationRequest("p", "lighthouse", mode="keyframes", first_frame=str(img),
                                            last_frame=str(img), resolution=(1280, 720), duration_s=8, seed=9))
    assert call.path == "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"
    inst = call.json["instances"][0]
    assert inst["image"]["mimeType"] == "image/png" and "lastFrame" in inst
    assert call.json["parameters"] == {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8,
                                       "sampleCount": 1}
    assert "seed" not in json.dumps(call.json)
    assert b.auth_headers("k") == {"x-goog-api-key": "k"}


def test_talking_head_payloads():
    s = SynthesiaBackend(avatar="anna", background="white")
    body = s.build_create(GenerationRequest("p", "Hello there", resolution=(1280, 720))).json
    assert body["input"] == [{"scriptText": "Hello there", "avatar": "anna", "background": "white"}]
    assert body["aspectRatio"] == "16:9" and s.auth_headers("k") == {"Authorization": "k"}
    assert parse_duration("0:01:02.500000") == 62.5
    h = HeyGenBackend()
    hb = h.build_create(GenerationRequest("p", "Hi", resolution=(1920, 1080))).json
    assert hb["type"] == "avatar" and hb["resolution"] == "1080p" and hb["script"] == "Hi"
    assert h.parse_poll({"data": {"status": "failed", "failure_code": "content_moderation"}}).phase == "refused"
    long_script = GenerationRequest("p", " ".join(["word"] * 100), resolution=(1280, 720), duration_s=2)
    assert h.estimate_cost_usd(long_script) == pytest.approx(50 * 0.0667)  # 100 words at 2 words/s


# ---- configuration ----------------------------------------------------------------------------------------------

def test_base_url_rules(monkeypatch):
    with pytest.raises(ConfigError, match="plain http"):
        RunwayBackend(base_url="http://api.example.com")
    assert RunwayBackend().simulated is False and RunwayBackend().base_url == "https://api.dev.runwayml.com"
    assert RunwayBackend(base_url="http://[::1]:9/runway").simulated is True
    monkeypatch.setenv("VBENCH_RUNWAY_BASE_URL", "http://127.0.0.1:9999/runway")
    b = RunwayBackend()
    assert b.base_url == "http://127.0.0.1:9999/runway" and b.fingerprint().simulated
    assert "127.0.0.1" not in json.dumps(b.fingerprint().to_dict())  # the port changes every run
    monkeypatch.setenv("VBENCH_SIMULATED", "1")
    assert VeoBackend(base_url="https://staging.example.com").simulated is True


def test_unknown_options_and_bad_values_name_the_key():
    with pytest.raises(ConfigError, match="colour"):
        create_backend("heygen", colour="red")
    with pytest.raises(ConfigError, match="gen3a_turbo"):
        create_backend("runway", model="gen3a_turbo")
    with pytest.raises(ConfigError, match="poll_interval_s"):
        create_backend("veo", poll_interval_s=0)


def test_missing_key_is_a_one_line_reason(monkeypatch):
    monkeypatch.delenv("RUNWAYML_API_SECRET")
    b = create_backend("runway")
    reason = b.not_configured_reason()
    assert reason and "RUNWAYML_API_SECRET" in reason and "\n" not in reason
    with pytest.raises(BackendNotConfigured, match="RUNWAYML_API_SECRET"):
        b.generate(GenerationRequest("p", "x", resolution=(1280, 720), duration_s=5))


def test_registry_knows_every_remote_backend():
    for name in ("runway", "pika", "fal", "synthesia", "heygen", "veo"):
        assert create_backend(name).name == name


def test_unsupported_request_fails_without_a_network_call(tmp_path):
    b = RunwayBackend(base_url="http://127.0.0.1:9/runway")  # nothing listens there
    r = b.generate(GenerationRequest("p", "x", resolution=(64, 64), duration_s=5),
                   GenerationContext(out_path=tmp_path / "x.mp4"))
    assert r.status == "failed" and not r.retriable and "unsupported" in r.error
