"""The fake vendor server itself: protocol shapes, fault injection, counting, and the `fake-vendors` command."""
from __future__ import annotations

import argparse

import httpx
import pytest

from vbench_suite.cli import fake_vendors as cli
from vbench_suite.errors import ConfigError
from vbench_suite.fake_vendors import FAULTS, FakeConfig, FakeVendors
from vbench_suite.fake_vendors.state import FakeState

CFG = FakeConfig(queue_s=1.0, run_s=0.05, throttle_s=0.05, retry_after_s=0.5)
RUNWAY_HEADERS = {"Authorization": "Bearer key_x", "X-Runway-Version": "2024-11-06", "X-Stainless-Lang": "python"}
T2V = {"model": "gen4.5", "promptText": "a fox", "ratio": "1280:720", "duration": 5}


@pytest.fixture(scope="module")
def fake():
    with FakeVendors(CFG) as f:
        yield f


def test_auth_errors_use_each_vendors_shape(fake):
    r = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json=T2V)
    assert r.status_code == 401 and "error" in r.json()
    r = httpx.get(f"{fake.base_url('synthesia')}/v2/videos/x")
    assert r.status_code == 403  # Synthesia answers a bad key with 403
    r = httpx.get(f"{fake.base_url('veo')}/v1beta/models/m/operations/x")
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_runway_lifecycle_and_counting(fake):
    body = {**T2V, "promptText": "count me"}
    first = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json=body, headers=RUNWAY_HEADERS)
    assert first.status_code == 200 and set(first.json()) == {"id"}
    task = httpx.get(f"{fake.base_url('runway')}/v1/tasks/{first.json()['id']}", headers=RUNWAY_HEADERS).json()
    assert task["status"] == "PENDING" and task["createdAt"].endswith("Z") and "estimatedCost" in task
    httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json=body, headers=RUNWAY_HEADERS)
    fp = FakeState(CFG).fingerprint("runway", "/v1/text_to_video", body)
    assert fake.created_per_request()[fp] == 2  # the fake counts duplicates: that is what tests assert against
    bad = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json={"model": "gen4.5"}, headers=RUNWAY_HEADERS)
    assert bad.status_code == 400 and bad.json()["issues"]


def test_rate_limit_sends_retry_after_and_creates_nothing(fake):
    body = {**T2V, "promptText": "busy [fault:rate_limit]"}
    url = f"{fake.base_url('runway')}/v1/text_to_video"
    answers = [httpx.post(url, json=body, headers=RUNWAY_HEADERS) for _ in range(CFG.rate_limit_answers + 1)]
    assert [a.status_code for a in answers] == [429] * CFG.rate_limit_answers + [200]
    assert answers[0].headers["Retry-After"] == "0" or answers[0].headers["retry-after-ms"] == "500"
    fp = FakeState(CFG).fingerprint("runway", "/v1/text_to_video", body)
    assert fake.created_per_request()[fp] == 1


def test_dropped_create_still_creates_the_job(fake):
    body = {**T2V, "promptText": "lost [fault:drop_after_create]"}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json=body, headers=RUNWAY_HEADERS)
    assert fake.created_per_request()[FakeState(CFG).fingerprint("runway", "/v1/text_to_video", body)] == 1


def test_fal_queue_shapes():
    headers = {"Authorization": "Key k"}
    with FakeVendors(FakeConfig(queue_s=60.0, run_s=0.05)) as fake:  # stays queued however slow the machine is
        _fal_queue_shapes(fake, headers)


def _fal_queue_shapes(fake, headers: dict[str, str]) -> None:
    sub = httpx.post(f"{fake.base_url('fal')}/fal-ai/pika/v2.2/text-to-video", json={"prompt": "p"},
                     headers=headers).json()
    assert sub["status_url"].startswith(fake.api_origin) and "/fal-ai/pika/requests/" in sub["status_url"]
    status = httpx.get(sub["status_url"], headers=headers).json()
    assert status["status"] == "IN_QUEUE" and "queue_position" in status
    early = httpx.get(sub["response_url"], headers=headers)
    assert early.status_code == 400
    cancel = httpx.put(sub["cancel_url"], headers=headers)
    assert cancel.status_code == 202 and cancel.json()["status"] == "CANCELLATION_REQUESTED"


def test_random_faults_are_deterministic_per_request():
    state = FakeState(FakeConfig(fault_rate=0.5, fault_seed=1))
    draws = [state.fault_for(state.fingerprint("fal", "/x", {"i": i}), {"i": i}) for i in range(400)]
    assert draws == [state.fault_for(state.fingerprint("fal", "/x", {"i": i}), {"i": i}) for i in range(400)]
    faulted = [d for d in draws if d != "none"]
    assert 150 < len(faulted) < 250 and set(faulted) <= set(FAULTS)
    assert state.fault_for("whatever", {"prompt": "x [fault:hang]"}) == "hang"


def test_truncated_and_expired_downloads(fake):
    import time

    body = {**T2V, "promptText": "cut [fault:truncated]"}
    job = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json=body, headers=RUNWAY_HEADERS).json()
    deadline = time.monotonic() + 5
    while (task := httpx.get(f"{fake.base_url('runway')}/v1/tasks/{job['id']}", headers=RUNWAY_HEADERS).json()
           )["status"] != "SUCCEEDED" and time.monotonic() < deadline:
        time.sleep(0.02)
    url = task["output"][0]
    assert url.startswith(fake.cdn_origin)  # files come from another host than the API
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, timeout=120)
    assert httpx.get(url, timeout=120).content[4:8] == b"ftyp"  # a 720p 5 s file: encoding may take seconds
    assert httpx.get(f"{fake.cdn_origin}/files/nope.mp4").status_code == 403


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    argv = ["fake-vendors"] + [x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    return parser.parse_args(argv)


def test_command_prints_exports_and_stops(capsys):
    assert cli.run(_args(port=0, serve_s=0.2, fault_rate=0.2)) == 0
    out = capsys.readouterr().out
    for vendor in ("RUNWAY", "FAL", "SYNTHESIA", "HEYGEN", "VEO"):
        assert f"export VBENCH_{vendor}_BASE_URL=http://127.0.0.1:" in out
    assert "simulated" in out


def test_command_refuses_non_loopback_and_bad_rates():
    with pytest.raises(ConfigError, match="loopback"):
        cli.run(_args(host="0.0.0.0", serve_s=0.1))
    with pytest.raises(ConfigError, match="fault-rate"):
        cli.run(_args(port=0, fault_rate=2, serve_s=0.1))


# ---- videos of the requested size and duration, scenarios, audit ---------------------------------------------
def _wait_runway(fake, job_id: str, timeout_s: float = 10.0) -> dict:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        task = httpx.get(f"{fake.base_url('runway')}/v1/tasks/{job_id}", headers=RUNWAY_HEADERS).json()
        if task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            return task
        time.sleep(0.02)


def _decode(data: bytes, tmp_path, name: str = "v.mp4"):
    from vbench_suite.video.read import read_video

    path = tmp_path / name
    path.write_bytes(data)
    return read_video(path)


def test_runway_serves_the_requested_ratio_duration_and_24_fps(fake, tmp_path):
    body = {"model": "gen4.5", "promptText": "a red circle moves left on a black background", "ratio": "720:1280",
            "duration": 2, "seed": 5}
    job = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video", json=body, headers=RUNWAY_HEADERS).json()
    task = _wait_runway(fake, job["id"])
    assert task["status"] == "SUCCEEDED"
    video = _decode(httpx.get(task["output"][0]).content, tmp_path)
    assert video.frames.shape == (48, 1280, 720, 3)  # 2 s x 24 fps, W:H = 720:1280 (item 10: was always 8 frames)
    assert round(video.fps) == 24
    # content is the shapes-world render of the prompt: a red object on a black background
    frame = video.frames[0].astype(int)
    assert frame[:20, :20].mean() < 30 and (frame[..., 0] - frame[..., 2] > 120).sum() > 1000


def test_runway_rejects_a_ratio_its_documentation_does_not_allow_for_the_mode(fake):
    bad = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video",
                     json={**T2V, "ratio": "960:960"}, headers=RUNWAY_HEADERS)
    assert bad.status_code == 400 and bad.json()["issues"][0]["path"] == ["ratio"]  # 960:960 is i2v-only
    ok = httpx.post(f"{fake.base_url('runway')}/v1/image_to_video",
                    json={"model": "gen4.5", "promptImage": "https://x.test/a.png", "promptText": "p",
                          "ratio": "960:960", "duration": 5}, headers=RUNWAY_HEADERS)
    assert ok.status_code == 200
    veo = httpx.post(f"{fake.base_url('runway')}/v1/text_to_video",
                     json={**T2V, "model": "veo3.1", "duration": 5}, headers=RUNWAY_HEADERS)
    assert veo.status_code == 400 and veo.json()["issues"][0]["path"] == ["duration"]


@pytest.mark.parametrize(("payload", "size", "seconds"), [
    ({"model": "gen4.5", "ratio": "1280:720", "duration": 7}, (1280, 720), 7.0),
])
def test_runway_payload_geometry(payload, size, seconds):
    from vbench_suite.fake_vendors.server import runway_output

    out = runway_output("text_to_video", {**payload, "promptText": "x"})
    assert (out.width, out.height, out.seconds, out.fps) == (*size, seconds, 24)


@pytest.mark.parametrize(("body", "size", "seconds"), [
    ({}, (1280, 720), 5.0),  # Pika's documented defaults: 16:9, 720p, 5 s
    ({"aspect_ratio": "9:16", "resolution": "1080p", "duration": 10}, (1080, 1920), 10.0),
    ({"aspect_ratio": "1:1"}, (720, 720), 5.0),
    ({"aspect_ratio": "4:5", "duration": "5"}, (720, 900), 5.0),
])
def test_fal_pika_payload_geometry(body, size, seconds):
    from vbench_suite.fake_vendors.server import fal_output

    out = fal_output("fal-ai/pika/v2.2/text-to-video", {"prompt": "p", **body})
    assert (out.width, out.height, out.seconds) == (*size, seconds)


def test_fal_pika_rejects_an_undocumented_duration(fake):
    r = httpx.post(f"{fake.base_url('fal')}/fal-ai/pika/v2.2/text-to-video", json={"prompt": "p", "duration": 3},
                   headers={"Authorization": "Key k"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "duration"]


def test_veo_payload_geometry():
    from vbench_suite.fake_vendors.server import BadPayload, veo_output

    out = veo_output({"instances": [{"prompt": "p"}], "parameters": {"aspectRatio": "9:16", "durationSeconds": 4}})
    assert (out.width, out.height, out.seconds) == (720, 1280, 4.0)
    assert (veo_output({"instances": [{"prompt": "p"}]}).seconds) == 8.0
    with pytest.raises(BadPayload):
        veo_output({"instances": [{"prompt": "p"}], "parameters": {"durationSeconds": 5}})


def test_corruption_is_the_declared_amount():
    import numpy as np

    from vbench_suite.fake_vendors.media import VideoSpec, clean_frames, corrupt
    from vbench_suite.fake_vendors.scenario import Quality

    clean = clean_frames(VideoSpec(prompt="a red circle moves left on a gray background", width=96, height=64,
                                   frames=40, seed=3))
    assert clean.shape == (40, 64, 96, 3)
    noisy = corrupt(clean, Quality(noise=12.0), noise_seed=1).astype(float) - clean
    assert abs(noisy.std() - 12.0) < 0.6  # gray background: little clipping
    assert np.array_equal(corrupt(clean, Quality(noise=12.0), 1), corrupt(clean, Quality(noise=12.0), 1))
    frozen = corrupt(clean, Quality(frozen_frames=0.5), noise_seed=2)
    repeats = sum(np.array_equal(frozen[t], frozen[t - 1]) for t in range(1, 40))
    assert 10 <= repeats <= 30 and frozen.shape == clean.shape
    dropped = corrupt(clean, Quality(dropped_frames=0.25), noise_seed=3)
    assert 20 <= len(dropped) <= 38
    blurred = corrupt(clean, Quality(blur=0.05), noise_seed=4)
    grad = lambda v: (np.diff(v.astype(float), axis=2) ** 2).mean()  # noqa: E731  (edge energy)
    assert grad(blurred) < 0.5 * grad(clean)
    assert corrupt(clean, Quality(), 0) is clean


def test_videos_are_cached_per_spec():
    import time

    from vbench_suite.fake_vendors.media import VideoSpec, video_bytes

    spec = VideoSpec(prompt="a blue square moves up on a white background", width=128, height=72, frames=24)
    t0 = time.perf_counter()
    first = video_bytes(spec)
    t1 = time.perf_counter()
    again = video_bytes(spec)
    t2 = time.perf_counter()
    assert first is again and first[4:8] == b"ftyp"
    assert (t2 - t1) < (t1 - t0)  # the second call builds nothing


SCENARIO = {
    "seed": 3,
    "vendors": {
        "runway": {"failure_rate": 0.2, "refusal_rate": 0.1, "queue_s": {"median": 0.01}, "run_s": 0.01,
                   "price": {"credits_per_s": 12}},
        "fal": {"price": {"usd_per_s": 0.04}, "quality": {"noise": 5},
                "models": {"fal-ai/pika/v2.2/text-to-video": {"quality": {"noise": 30}}}},
    },
}


def test_scenario_outcomes_costs_and_audit():
    from vbench_suite.fake_vendors.scenario import scenario_from_dict

    scenario = scenario_from_dict(SCENARIO)
    n = 40
    with FakeVendors(FakeConfig(scenario=scenario, queue_s=5, run_s=5)) as fake:
        ids = [httpx.post(f"{fake.base_url('runway')}/v1/text_to_video",
                          json={**T2V, "promptText": f"not a shape {i}", "duration": 2}, headers=RUNWAY_HEADERS
                          ).json()["id"] for i in range(n)]
        tasks = [_wait_runway(fake, i) for i in ids]
        audit = httpx.get(f"{fake.api_origin}/_fake/audit").json()  # no key needed
    statuses = [t["status"] for t in tasks]
    refused = sum(t.get("failureCode", "").startswith("SAFETY") for t in tasks)
    failed = statuses.count("FAILED") - refused
    ok = statuses.count("SUCCEEDED")
    assert ok + failed + refused == n and failed > 0 and refused > 0 and ok > n // 2
    # each outcome is the scenario's own draw for that request
    expected = [scenario.draw("runway", "gen4.5", j["fingerprint"]).outcome for j in audit["jobs"]]
    assert sorted(expected) == sorted(j["phase"] for j in audit["jobs"])
    assert {t["cost"]["credits"] for t in tasks if t["status"] == "SUCCEEDED"} == {24}  # 12 credits/s x 2 s
    assert {t["cost"]["credits"] for t in tasks if t["status"] == "FAILED"} == {0}  # refunded
    v = audit["vendors"]["runway"]
    assert v["accepted_creates"] == n and v["duplicate_creates"] == 0
    assert v["outcomes"] == {k: c for k, c in (("succeeded", ok), ("failed", failed), ("refused", refused)) if c}
    assert v["billed_usd"] == pytest.approx(ok * 2 * 12 * 0.01)
    assert audit["scenario"] == "<inline>"


def test_scenario_model_override_and_determinism():
    from vbench_suite.fake_vendors.scenario import scenario_from_dict

    scenario = scenario_from_dict(SCENARIO)
    assert scenario.truth("fal", "fal-ai/pika/v2.2/text-to-video").quality.noise == 30
    assert scenario.truth("fal", "fal-ai/other").quality.noise == 5
    assert scenario.truth("fal", "fal-ai/pika/v2.2/text-to-video").price.usd_per_s == 0.04  # inherited
    assert scenario.truth("veo").failure_rate == 0.0  # vendors not named behave perfectly
    draws = [scenario.draw("runway", "gen4.5", f"fp{i}") for i in range(4000)]
    assert draws == [scenario.draw("runway", "gen4.5", f"fp{i}") for i in range(4000)]
    failed = sum(d.outcome == "failed" for d in draws) / 4000
    refused = sum(d.outcome == "refused" for d in draws) / 4000
    assert abs(failed - 0.2) < 0.03 and abs(refused - 0.1) < 0.025  # > 4 binomial standard errors apart
    other_seed = scenario_from_dict({**SCENARIO, "seed": 4})
    assert [d.outcome for d in draws[:200]] != [other_seed.draw("runway", "gen4.5", f"fp{i}").outcome
                                                 for i in range(200)]


def test_lognormal_latency_has_the_declared_median_and_spread():
    import math
    import statistics

    from vbench_suite.fake_vendors.scenario import scenario_from_dict

    scenario = scenario_from_dict({"vendors": {"veo": {"queue_s": {"median": 2.0, "spread": 0.5}}}})
    logs = [math.log(scenario.draw("veo", "", f"r{i}").queue_s) for i in range(3000)]
    assert abs(statistics.median(logs) - math.log(2.0)) < 0.05
    assert abs(statistics.pstdev(logs) - 0.5) < 0.03


@pytest.mark.parametrize(("data", "message"), [
    ({"vendors": {"runway": {"failure_rat": 0.1}}}, "unknown key 'failure_rat'"),
    ({"vendors": {"pika": {}}}, "unknown key 'pika'"),
    ({"vendors": {"runway": {"failure_rate": 1.5}}}, "failure_rate: must be a number between 0 and 1"),
    ({"vendors": {"runway": {"failure_rate": 0.6, "refusal_rate": 0.6}}}, "at most 1"),
    ({"vendors": {"fal": {"price": {"credits_per_s": 3}}}}, "only Runway bills in credits"),
    ({"vendors": {"fal": {"quality": {"noise": "lots"}}}}, "quality.noise: must be a number"),
    ({"seed": "x", "vendors": {}}, "seed must be an integer"),
])
def test_bad_scenarios_name_the_key(data, message):
    from vbench_suite.fake_vendors.scenario import scenario_from_dict

    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(data, source="s.yaml")


def test_scenario_file_errors_are_one_line(tmp_path):
    from vbench_suite.fake_vendors.scenario import load_scenario

    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text('seed: 1\nvendors:\n  runway: {failure_rate: "0.1}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 3"):
        load_scenario(bad)


def test_command_serves_a_scenario_and_writes_the_audit(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("seed: 2\nvendors:\n  runway: {failure_rate: 0.5}\n", encoding="utf-8")
    audit = tmp_path / "audit.json"
    assert cli.run(_args(port=0, serve_s=0.3, scenario=scenario, audit=audit, audit_every_s=0.1)) == 0
    assert f"Scenario: {scenario} (seed 2)" in capsys.readouterr().out
    import json

    data = json.loads(audit.read_text(encoding="utf-8"))
    assert data["scenario"] == str(scenario) and data["vendors"] == {}
    with pytest.raises(ConfigError, match="does not exist"):
        cli.run(_args(port=0, serve_s=0.1, scenario=tmp_path / "nope.yaml"))


# ---- bounded memory and time (the fault-run test once reached 24 GB: full-size clips x unbounded encodes) -------
def test_frames_are_drawn_one_at_a_time():
    """A 20 s 1280x720 clip is 1.3 GB of frames; streaming it must hold a few frames, never the clip."""
    import itertools
    import tracemalloc

    from vbench_suite.fake_vendors.media import MAX_FRAMES, VideoSpec, corrupted_frames
    from vbench_suite.fake_vendors.scenario import Quality

    for prompt, quality in (("not a shape", Quality()), ("a red circle moves left on a gray background",
                                                          Quality(noise=5, frozen_frames=0.3, blur=0.01))):
        spec = VideoSpec(prompt=prompt, width=1280, height=720, frames=MAX_FRAMES, quality=quality, noise_seed=1)
        tracemalloc.start()
        first = list(itertools.islice(corrupted_frames(spec), 3))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert [f.shape for f in first] == [(720, 1280, 3)] * 3
        assert peak < 60 * 2**20, (prompt, peak)  # a frame is 2.8 MB; the clip would be 1,327 MB
    long = VideoSpec(prompt="not a shape", width=32, height=32, frames=10 * MAX_FRAMES)
    assert sum(1 for _ in corrupted_frames(long)) == MAX_FRAMES


def test_identical_content_shares_one_file():
    from vbench_suite.fake_vendors.media import VARIANTS, VideoSpec, cache_key, video_bytes
    from vbench_suite.fake_vendors.scenario import Quality

    a = VideoSpec(prompt="a paper boat", width=64, height=48, frames=12, seed=3, noise_seed=7)
    b = VideoSpec(prompt="another text entirely", width=64, height=48, frames=12, seed=3 + VARIANTS, noise_seed=9)
    assert cache_key(a) == cache_key(b) and video_bytes(a) is video_bytes(b)  # same look, same bytes
    shapes = VideoSpec(prompt="a red circle moves left on a gray background", width=64, height=48, frames=12)
    assert cache_key(shapes) != cache_key(VideoSpec(**{**shapes.__dict__, "seed": 1}))  # another layout
    noisy = VideoSpec(**{**shapes.__dict__, "quality": Quality(noise=3)})
    assert cache_key(noisy) != cache_key(VideoSpec(**{**noisy.__dict__, "noise_seed": 1}))  # other noise
    blurred = VideoSpec(**{**shapes.__dict__, "quality": Quality(blur=0.02)})
    assert cache_key(blurred) == cache_key(VideoSpec(**{**blurred.__dict__, "noise_seed": 1}))  # blur is not random


def test_concurrent_builds_are_capped(monkeypatch):
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from vbench_suite.fake_vendors import media

    active, peak, lock = [0], [0], threading.Lock()
    real_encode = media.encode

    def counting_encode(frames, width, height, fps):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)
            return real_encode(frames, width, height, fps)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(media, "encode", counting_encode)
    specs = [media.VideoSpec(prompt="a blue square moves up on a white background", width=34, height=18 + 2 * i,
                             frames=6, seed=i) for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        files = list(pool.map(media.video_bytes, specs))
    assert all(f[4:8] == b"ftyp" for f in files) and len(set(files)) == 12
    assert 1 <= peak[0] <= media.ENCODE_SLOTS


def test_small_videos_option_keeps_duration_and_aspect():
    from vbench_suite.fake_vendors.state import FakeState, RequestedOutput

    out = RequestedOutput(prompt="p", width=1280, height=720, seconds=5.0, fps=24)
    job = FakeState(FakeConfig(max_video_short_side=72)).new_job("runway", "ab" * 32, "none", {}, output=out)
    assert (job.video.width, job.video.height, job.video.frames) == (128, 72, 120)
    full = FakeState(FakeConfig()).new_job("runway", "ab" * 32, "none", {}, output=out)
    assert (full.video.width, full.video.height, full.video.frames) == (1280, 720, 120)  # the default: as asked


def test_a_prebuilt_job_succeeds_only_once_its_file_exists(monkeypatch):
    from vbench_suite.fake_vendors import media
    from vbench_suite.fake_vendors.state import FakeState, RequestedOutput

    cfg = FakeConfig(queue_s=0.0, run_s=0.0, prebuild_videos=True)
    out = RequestedOutput(prompt="a green circle moves right on a black background", width=40, height=24,
                          seconds=0.25, fps=24, seed=123)
    job = FakeState(cfg).new_job("runway", "cd" * 32, "none", {}, output=out)
    queued = []
    monkeypatch.setattr(media, "prebuild", queued.append)  # nothing builds: the job must keep running
    assert job.timed_phase(cfg) == "succeeded" and job.phase(cfg) == "running" and queued == [job.video]
    media.video_bytes(job.video)
    assert job.phase(cfg) == "succeeded" and job.file_ready


def test_command_refuses_a_tiny_video_cap():
    with pytest.raises(ConfigError, match="max-video-short-side 4: must be at least 16"):
        cli.run(_args(port=0, serve_s=0.1, max_video_short_side=4))
