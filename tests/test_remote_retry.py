"""The one retry policy: which answers are retried, how long to wait, and that creates are never re-sent blindly."""
from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from vbench_suite.backends.remote.retry import (MAX_RETRY_AFTER_S, RetryPolicy, is_retriable_exception,
                                                is_retriable_status, retry_after_s)
from vbench_suite.backends.remote.transport import (BadContainerError, CallError, CallStats, ExpiredURLError,
                                                    Transport, sniff_container)


@pytest.mark.parametrize("status,expected", [(408, True), (409, True), (429, True), (500, True), (502, True),
                                             (503, True), (504, True), (599, True), (400, False), (401, False),
                                             (403, False), (404, False), (422, False), (200, False)])
def test_retriable_statuses(status, expected):
    assert is_retriable_status(status) is expected


def test_retry_after_forms_and_cap():
    assert retry_after_s({"Retry-After": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_s({"RateLimit-Reset": "7"}) == 7.0
    assert retry_after_s({"Retry-After": "100000"}) == MAX_RETRY_AFTER_S
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(base_delay_s=0.5, max_backoff_s=4.0, jitter_fraction=0.5)
    rng = random.Random(0)
    delays = [policy.delay_s(a, rng=rng) for a in range(1, 8)]
    for attempt, d in enumerate(delays, start=1):
        nominal = min(0.5 * 2 ** (attempt - 1), 4.0)
        assert nominal * 0.5 <= d <= nominal
    assert policy.delay_s(1, hint_s=100.0) == policy.max_retry_after_s
    assert RetryPolicy(max_retry_after_s=2.0).delay_s(1, hint_s=5.0) == 2.0


def test_transport_errors_on_creates_only_retry_before_sending():
    request = httpx.Request("POST", "https://example.test/v1/create")
    assert is_retriable_exception(httpx.ConnectError("refused", request=request), sent_may_have_landed=True)
    for exc in (httpx.ReadTimeout("slow", request=request), httpx.RemoteProtocolError("dropped", request=request),
                httpx.ReadError("reset", request=request), httpx.WriteTimeout("w", request=request)):
        assert not is_retriable_exception(exc, sent_may_have_landed=True)
        assert is_retriable_exception(exc, sent_may_have_landed=False)
    assert not is_retriable_exception(ValueError("x"), sent_may_have_landed=False)


def _transport(handler) -> tuple[Transport, list[float]]:
    slept: list[float] = []
    t = Transport(base_url="https://api.example.test", policy=RetryPolicy(base_delay_s=0.01, max_attempts=4),
                  sleep=slept.append)
    t._client = httpx.Client(transport=httpx.MockTransport(handler))
    return t, slept


def test_call_retries_5xx_and_429_honouring_retry_after():
    answers = iter([httpx.Response(503), httpx.Response(429, headers={"Retry-After": "2"}),
                    httpx.Response(200, json={"ok": True})])
    t, slept = _transport(lambda req: next(answers))
    stats = CallStats()
    r = t.call("POST", "/v1/x", headers={}, json={}, idempotent=False, stats=stats)
    assert r.status_code == 200 and stats.requests == 3 and stats.retries == 2
    assert slept[1] == 2.0


def test_lost_create_answer_is_not_retried_and_is_flagged_unknown():
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ReadTimeout("no answer", request=request)

    t, _ = _transport(handler)
    with pytest.raises(CallError) as info:
        t.call("POST", "/v1/x", headers={"Authorization": "Bearer sk-TESTSECRET-x"}, json={}, idempotent=False,
               stats=CallStats())
    assert len(calls) == 1 and info.value.outcome_unknown and "TESTSECRET" not in str(info.value)


def test_poll_transport_errors_are_retried():
    answers = iter([httpx.ReadTimeout("slow"), httpx.Response(200, json={})])

    def handler(request):
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    t, _ = _transport(handler)
    assert t.call("GET", "/v1/x", headers={}, idempotent=True, stats=CallStats()).status_code == 200


def test_retries_stop_at_the_deadline():
    import time

    t, slept = _transport(lambda req: httpx.Response(503, headers={"Retry-After": "30"}))
    t.policy = RetryPolicy(max_retry_after_s=30.0)
    r = t.call("GET", "/x", headers={}, idempotent=True, stats=CallStats(), deadline=time.monotonic() + 1.0)
    assert r.status_code == 503 and slept == []


MP4_HEAD = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64


class _Body(httpx.SyncByteStream):
    """A streamed (not pre-read) body, as a real server sends it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self):
        yield self.data


def _streamed(status: int, data: bytes) -> httpx.Response:
    return httpx.Response(status, stream=_Body(data))


def test_download_checks_container_size_and_expiry(tmp_path: Path):
    t, _ = _transport(lambda req: _streamed(200, MP4_HEAD))
    got = t.download("https://cdn.test/v.mp4", headers={}, dest_dir=tmp_path, max_bytes=1000, stats=CallStats())
    assert got.container == "mp4" and got.tmp_path.read_bytes() == MP4_HEAD and got.size == len(MP4_HEAD)
    got.tmp_path.unlink()  # the caller renames it into place; here we just drop it

    t, _ = _transport(lambda req: _streamed(200, b"<html>not a video</html>"))
    with pytest.raises(BadContainerError):
        t.download("https://cdn.test/v.mp4", headers={}, dest_dir=tmp_path, max_bytes=1000, stats=CallStats())

    t, _ = _transport(lambda req: _streamed(200, MP4_HEAD * 100))
    with pytest.raises(BadContainerError, match="cap"):
        t.download("https://cdn.test/v.mp4", headers={}, dest_dir=tmp_path, max_bytes=1000, stats=CallStats())

    t, _ = _transport(lambda req: _streamed(403, b"expired"))
    with pytest.raises(ExpiredURLError):
        t.download("https://cdn.test/v.mp4", headers={}, dest_dir=tmp_path, max_bytes=1000, stats=CallStats())
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial files left behind


def test_sniff_container():
    assert sniff_container(MP4_HEAD[:16]) == "mp4"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x01\x00\x00\x00") == "webm"
    assert sniff_container(b"GIF89a..") is None
