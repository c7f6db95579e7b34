"""No API key ever reaches a file, a log line, a record, an exception text or a cache key.

A whole run (the real runner, then a fault-heavy run with the test driver) uses recognisable fake keys; every byte
written under the run folders, every log record (httpx's included, at DEBUG) and every result is searched for them.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from vbench_suite.backends import create_backend
from vbench_suite.backends.base import GenerationContext
from vbench_suite.backends.remote.runway import RunwayBackend
from vbench_suite.fake_vendors import FakeConfig, FakeVendors
from vbench_suite.fake_vendors.driver import Work, run_jobs
from vbench_suite.keys import canonical_json, generation_key
from vbench_suite.types import GenerationRequest

KEY_ENVS = ("RUNWAYML_API_SECRET", "FAL_KEY", "GEMINI_API_KEY", "SYNTHESIA_API_KEY", "HEYGEN_API_KEY")
MARK = "TESTSECRET"
BACKENDS = ("runway", "pika", "synthesia", "heygen", "veo")
FAST_OPTIONS = dict(poll_interval_s=0.005, job_deadline_s=0.5, retry_base_delay_s=0.005, max_retry_after_s=0.02)


def secret(env: str) -> str:
    return f"sk-{MARK}-{env}-0123456789abcdef"


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    for env in KEY_ENVS:
        monkeypatch.setenv(env, secret(env))


def assert_clean(text: str, where: str) -> None:
    for env in KEY_ENVS:
        assert secret(env) not in text, f"{env} leaked into {where}"
    assert MARK not in text, f"part of a key leaked into {where}"


def scan_tree(root: Path) -> int:
    n = 0
    for path in root.rglob("*"):
        if path.is_file():
            assert_clean(path.read_bytes().decode("latin-1"), str(path))
            n += 1
    return n


def test_whole_run_leaks_no_key(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)  # httpx/httpcore log every request at DEBUG: they must not show headers
    config = FakeConfig(queue_s=0.01, run_s=0.02, throttle_s=0.02, retry_after_s=0.01, fault_rate=0.5, fault_seed=3)
    with FakeVendors(config) as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        from vbench_suite.runner import RunConfig, run_benchmark

        outcome = run_benchmark(RunConfig(
            suite="standard", backends=BACKENDS, out=tmp_path / "run", score=False, limit=4, concurrency=8,
            backend_options={b: dict(FAST_OPTIONS) for b in BACKENDS}, index_path=tmp_path / "index.sqlite"))
        assert sum(outcome.stats.generated.values()) > 0
        # A fault-heavy run through every error path (lost creates, refusals, hangs, expired and cut downloads).
        backends = [create_backend(b, **FAST_OPTIONS) for b in BACKENDS]
        work = [Work(b, GenerationRequest(f"p{i}", f"square {i} [fault:{fault}]", resolution=(1280, 720),
                                          duration_s=8.0 if b.name == "veo" else 5.0, seed=i))
                for i, fault in enumerate(("rate_limit", "server_error", "drop_after_create", "moderation", "fail",
                                           "hang", "expired_url", "truncated", "fal_422", "throttled"))
                for b in backends]
        records = run_jobs(work, tmp_path / "driver", concurrency=10)
    assert {r["result"]["status"] for r in records.values()} == {"ok", "refused", "failed"}
    assert scan_tree(tmp_path) > 10
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record from {record.name}")
        if record.exc_text:
            assert_clean(record.exc_text, "logged traceback")
    for b in backends:
        assert_clean(canonical_json(b.fingerprint().to_dict()), f"{b.name} fingerprint")
        assert_clean(generation_key(b.fingerprint(), work[0].request), "cache key")
        assert_clean(repr(vars(b)), f"{b.name} attributes")  # keys are read per call, never stored


def test_a_vendor_echoing_the_key_does_not_leak_it(tmp_path):
    """Even if an error body repeats our Authorization header, the result's error text does not."""

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": f"bad header {request.headers['Authorization']}"})

    b = RunwayBackend(base_url="http://127.0.0.1:9/runway")
    b.transport._client = httpx.Client(transport=httpx.MockTransport(echo))
    r = b.generate(GenerationRequest("p", "x", resolution=(1280, 720), duration_s=5),
                   GenerationContext(out_path=tmp_path / "x.mp4"))
    assert r.status == "failed" and "bad header" in r.error
    assert_clean(json.dumps(r.to_dict()), "result")


def test_transport_errors_name_no_secret(tmp_path):
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect ({request.headers['Authorization']})", request=request)

    b = RunwayBackend(base_url="http://127.0.0.1:9/runway", retry_base_delay_s=0.0, retry_max_attempts=2)
    b.transport._client = httpx.Client(transport=httpx.MockTransport(boom))
    r = b.generate(GenerationRequest("p", "x", resolution=(1280, 720), duration_s=5),
                   GenerationContext(out_path=tmp_path / "x.mp4"))
    assert r.status == "failed" and r.retriable
    assert_clean(json.dumps(r.to_dict()), "result")
