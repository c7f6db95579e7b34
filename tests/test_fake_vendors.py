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


def test_fal_queue_shapes(fake):
    headers = {"Authorization": "Key k"}
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
        httpx.get(url)
    assert httpx.get(url).content[4:8] == b"ftyp"
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
