"""The fake vendors' shared state: configuration, fault plan, jobs on a wall-clock timeline, counters.

Jobs need no background threads: a job's status is computed from the time since its creation whenever it is
polled (queued for `queue_s` (+ `throttle_s` when throttled), running for `run_s`, then terminal).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FAULTS: tuple[str, ...] = ("rate_limit", "server_error", "drop_after_create", "throttled", "moderation", "fail",
                           "hang", "expired_url", "truncated", "fal_422")
"""Injectable faults. Force one for a request by putting `[fault:<name>]` in its prompt/script."""
EXPECTED_STATUS: dict[str, str] = {
    "none": "ok", "rate_limit": "ok", "server_error": "ok", "throttled": "ok", "expired_url": "ok",
    "truncated": "ok", "drop_after_create": "failed", "moderation": "refused", "fail": "failed", "hang": "failed",
    "fal_422": "refused"}
"""What a correct client ends with for each fault (fal_422 means moderation via COMPLETED-then-422)."""
FAULT_MARKER = re.compile(r"\[fault:([a-z_0-9]+)\]")


@dataclass(frozen=True)
class FakeConfig:
    """Latencies (seconds, scaled down from real vendors' minutes) and fault injection."""

    queue_s: float = 1.0
    """Time a job waits before running."""
    run_s: float = 3.0
    """Time a job runs before finishing."""
    throttle_s: float = 2.0
    """Extra waiting for throttled jobs (Runway THROTTLED, fal queue positions)."""
    fault_rate: float = 0.0
    """Probability of a random fault per request (drawn deterministically from the request body)."""
    fault_seed: int = 0
    faults: tuple[str, ...] = FAULTS
    """Faults drawn at random (markers can force any fault)."""
    retry_after_s: float = 1.0
    """Retry-After sent with 429 answers."""
    rate_limit_answers: int = 2
    """How many 429s a rate-limited create gets before it is accepted."""
    server_error_answers: int = 2
    """How many 5xx answers a server_error job's polls get."""
    url_ttl_s: float = 3600.0
    """Lifetime of an output URL."""
    require_key: bool = True
    """Answer 401/403 when the vendor's auth header is missing."""


@dataclass
class FakeJob:
    """One created job."""

    vendor: str
    job_id: str
    fingerprint: str
    """sha256 of vendor + create path + canonical body: identifies 'the same request'."""
    fault: str
    created: float
    body: dict[str, Any]
    model: str = ""
    variant: int = 0
    polls: int = 0
    cancelled: bool = False
    urls_issued: int = 0
    downloads: int = 0

    def phase(self, cfg: FakeConfig, now: float | None = None) -> str:
        """'throttled' | 'queued' | 'running' | 'succeeded' | 'failed' | 'refused' | 'cancelled'."""
        if self.cancelled:
            return "cancelled"
        t = (time.monotonic() if now is None else now) - self.created
        throttle = cfg.throttle_s if self.fault == "throttled" else 0.0
        if t < throttle:
            return "throttled"
        if t < throttle + cfg.queue_s:
            return "queued"
        if self.fault == "hang" or t < throttle + cfg.queue_s + cfg.run_s:
            return "running"
        if self.fault in ("moderation", "fal_422"):
            return "refused"
        if self.fault == "fail":
            return "failed"
        return "succeeded"

    def progress(self, cfg: FakeConfig) -> float:
        t = time.monotonic() - self.created - cfg.queue_s - (cfg.throttle_s if self.fault == "throttled" else 0)
        return 0.5 if self.fault == "hang" else max(0.0, min(0.99, t / max(cfg.run_s, 1e-9)))


@dataclass
class FileToken:
    job_id: str
    issued: float
    expired: bool


@dataclass
class FakeState:
    """Everything the fake knows. All access goes through `lock`."""

    config: FakeConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    creates: Counter = field(default_factory=Counter)
    """Accepted creates per request fingerprint (a correct client never makes this exceed 1)."""
    create_attempts: Counter = field(default_factory=Counter)
    """All create requests per fingerprint, 429'd ones included."""
    polls_answered_5xx: Counter = field(default_factory=Counter)
    tokens: dict[str, FileToken] = field(default_factory=dict)
    requests: int = 0
    auth_on_cdn: int = 0
    """Downloads from the CDN host that carried an auth header (a client should send none)."""

    def fingerprint(self, vendor: str, path: str, body: Any) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{vendor}\x1f{path}\x1f{canonical}".encode()).hexdigest()

    def fault_for(self, fingerprint: str, body: Any) -> str:
        """Marker in the body wins; otherwise a deterministic draw at `fault_rate`."""
        text = json.dumps(body)
        marker = FAULT_MARKER.search(text)
        if marker:
            return marker.group(1)
        cfg = self.config
        if cfg.fault_rate <= 0 or not cfg.faults:
            return "none"
        digest = hashlib.sha256(f"{cfg.fault_seed}\x1f{fingerprint}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u >= cfg.fault_rate:
            return "none"
        return cfg.faults[int.from_bytes(digest[8:16], "big") % len(cfg.faults)]

    def new_job(self, vendor: str, fingerprint: str, fault: str, body: dict[str, Any], *, job_id: str | None = None,
                model: str = "", variants: int = 8) -> FakeJob:
        job = FakeJob(vendor=vendor, job_id=job_id or str(uuid.uuid4()), fingerprint=fingerprint, fault=fault,
                      created=time.monotonic(), body=body, model=model,
                      variant=int(fingerprint[:8], 16) % variants)
        self.jobs[job.job_id] = job
        self.creates[fingerprint] += 1
        return job

    def issue_token(self, job: FakeJob) -> str:
        """A fresh output-URL token; the first one of an expired_url job is already expired."""
        token = uuid.uuid4().hex
        job.urls_issued += 1
        expired = job.fault == "expired_url" and job.urls_issued == 1
        self.tokens[token] = FileToken(job.job_id, time.monotonic(), expired)
        return token
