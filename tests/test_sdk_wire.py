"""Wire fidelity: the vendors' official SDKs, pointed at the fake, submit, poll and parse end to end.

If an SDK can parse what the fake sends (discriminated unions, required keys, datetime formats), the fake speaks
the real protocol closely enough for our own client's tests against it to mean something. Skipped per SDK when it
is not installed (they are test extras).
"""
from __future__ import annotations

import time

import httpx
import pytest

from vbench_suite.fake_vendors import FakeConfig, FakeVendors

FAST = FakeConfig(queue_s=0.02, run_s=0.05, throttle_s=0.05, max_video_short_side=72)  # protocol only: small files
POLL_S = 0.01
WAIT_S = 10.0


@pytest.fixture(scope="module")
def fake():
    with FakeVendors(FAST) as f:
        yield f


def _is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


def test_runwayml_sdk(fake):
    runwayml = pytest.importorskip("runwayml", reason="runwayml SDK not installed (test extra)")
    client = runwayml.RunwayML(api_key="key_" + "0" * 128, base_url=fake.base_url("runway"), max_retries=0)
    created = client.text_to_video.create(model="gen4.5", prompt_text="a red square", ratio="1280:720", duration=5)
    deadline = time.monotonic() + WAIT_S
    seen = set()
    while True:
        task = client.tasks.retrieve(created.id)
        seen.add(task.status)
        if task.status in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    assert task.status == "SUCCEEDED" and task.created_at.year >= 2026
    assert _is_mp4(httpx.get(task.output[0]).content)
    refused = client.text_to_video.create(model="gen4.5", prompt_text="x [fault:moderation]", ratio="1280:720",
                                          duration=5)
    while (t := client.tasks.retrieve(refused.id)).status not in ("SUCCEEDED", "FAILED"):
        time.sleep(POLL_S)
    assert t.status == "FAILED" and t.failure_code == "SAFETY.INPUT.TEXT" and t.failure
    throttled = client.text_to_video.create(model="gen4.5", prompt_text="y [fault:throttled]", ratio="1280:720",
                                            duration=5)
    assert client.tasks.retrieve(throttled.id).status == "THROTTLED"
    client.tasks.delete(throttled.id)
    assert client.tasks.retrieve(throttled.id).status == "CANCELLED"


def test_fal_client_sdk(fake, monkeypatch):
    fal_client = pytest.importorskip("fal_client", reason="fal-client SDK not installed (test extra)")
    # The SDK hard-codes https for the submit URL; after submit it follows the URLs the server returned.
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", fake.base_url("fal") + "/")
    client = fal_client.SyncClient(key="fal-test-key")
    handle = client.submit("fal-ai/pika/v2.2/text-to-video",
                           arguments={"prompt": "a poodle", "resolution": "720p", "duration": 5})
    status = handle.status()
    assert isinstance(status, (fal_client.Queued, fal_client.InProgress, fal_client.Completed))
    result = handle.get(interval=POLL_S)
    assert _is_mp4(httpx.get(result["video"]["url"]).content)
    bad = client.submit("fal-ai/pika/v2.2/text-to-video", arguments={"prompt": "x [fault:fal_422]"})
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        bad.get(interval=POLL_S)
    assert info.value.status_code == 422
    slow = client.submit("fal-ai/pika/v2.2/text-to-video", arguments={"prompt": "z [fault:throttled]"})
    queued = slow.status()
    assert isinstance(queued, fal_client.Queued) and queued.position >= 0


def _veo_create(fake, prompt: str) -> str:
    """Create through the documented REST call. google-genai >= 3.6 raises 'only supported in Gemini Enterprise
    Agent Platform' for generate_videos on an API key, so the create cannot go through the SDK any more."""
    body = {"instances": [{"prompt": prompt}], "parameters": {"aspectRatio": "16:9", "durationSeconds": 8,
                                                             "sampleCount": 1}}
    r = httpx.post(f"{fake.base_url('veo')}/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning",
                   json=body, headers={"x-goog-api-key": "gemini-test-key"})
    r.raise_for_status()
    return r.json()["name"]


def test_google_genai_sdk(fake):
    genai = pytest.importorskip("google.genai", reason="google-genai SDK not installed (test extra)")
    types = genai.types
    client = genai.Client(api_key="gemini-test-key", http_options=types.HttpOptions(base_url=fake.base_url("veo")))
    op = client.operations.get(types.GenerateVideosOperation(name=_veo_create(fake, "a lighthouse at dusk")))
    deadline = time.monotonic() + WAIT_S
    while not op.done and time.monotonic() < deadline:
        time.sleep(POLL_S)
        op = client.operations.get(op)
    assert op.done and op.error is None
    uri = op.response.generated_videos[0].video.uri
    # The SDK extracts the file name only from https URIs; the fake is http, so name the file as the SDK would.
    name = uri.split("files/")[1].split(":")[0]
    assert _is_mp4(client.files.download(file=f"files/{name}"))
    filtered = types.GenerateVideosOperation(name=_veo_create(fake, "x [fault:moderation]"))
    while not filtered.done:
        time.sleep(POLL_S)
        filtered = client.operations.get(filtered)
    assert filtered.response.rai_media_filtered_count == 1 and filtered.response.rai_media_filtered_reasons
    failed = types.GenerateVideosOperation(name=_veo_create(fake, "y [fault:fail]"))
    while not failed.done:
        time.sleep(POLL_S)
        failed = client.operations.get(failed)
    assert failed.error["code"] == 3
