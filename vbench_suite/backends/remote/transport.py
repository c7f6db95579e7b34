"""HTTP for remote backends: one synchronous `httpx.Client` per backend, per-phase timeouts, the retry loop
(decisions come from `retry.py`), base-URL validation, and streamed downloads with a size cap and container check.

Nothing here ever puts a secret into a URL, an exception text or a log line: keys travel only in headers that
the caller passes per request, and errors name the method, host and path (never the query or headers).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from vbench_suite.backends.remote.retry import (RetryPolicy, is_retriable_exception, is_retriable_status,
                                                retry_after_s)
from vbench_suite.errors import ConfigError
from vbench_suite.tempfiles import make_temp

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
"""Seconds to open a connection (every phase)."""
API_READ_TIMEOUT_S = 30.0
"""Seconds to wait for a create/poll response."""
DOWNLOAD_READ_TIMEOUT_S = 60.0
"""Seconds to wait for the next chunk of a download."""
WRITE_TIMEOUT_S = 30.0
"""Seconds to send a request body (image data URIs can be several MB)."""
POOL_TIMEOUT_S = 60.0
"""Seconds to wait for a free pooled connection."""
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
"""Default cap on one downloaded video."""
DOWNLOAD_CHUNK_BYTES = 1 << 16
EXPIRED_URL_STATUSES: frozenset[int] = frozenset({401, 403, 404, 410})
"""Answers of a presigned output URL that mean 'expired or revoked': refresh the URL from the job."""
LOOPBACK_HOSTS: frozenset[str] = frozenset({"localhost", "localhost.localdomain"})

_MP4_BOX_TYPES: frozenset[bytes] = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def api_timeout(connect_s: float = CONNECT_TIMEOUT_S, read_s: float = API_READ_TIMEOUT_S) -> httpx.Timeout:
    """Timeouts for create and poll calls."""
    return httpx.Timeout(connect=connect_s, read=read_s, write=WRITE_TIMEOUT_S, pool=POOL_TIMEOUT_S)


def download_timeout(connect_s: float = CONNECT_TIMEOUT_S, read_s: float = DOWNLOAD_READ_TIMEOUT_S) -> httpx.Timeout:
    """Timeouts for streaming an output file (per chunk, not for the whole file)."""
    return httpx.Timeout(connect=connect_s, read=read_s, write=WRITE_TIMEOUT_S, pool=POOL_TIMEOUT_S)


def is_loopback_host(host: str) -> bool:
    """True for 'localhost', 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str, *, what: str) -> str:
    """Return `url` without a trailing slash; raise ConfigError unless it is https, or http on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what}: base URL '{url}' must look like https://host[/path]")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{what}: base URL '{url}' uses plain http; only loopback addresses (127.0.0.1, ::1, "
                          "localhost) may use http, anything else must be https")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{what}: base URL must not contain credentials, a query or a fragment")
    return url.rstrip("/")


def describe_url(url: str) -> str:
    """host/path of `url`, for messages (presigned query strings are left out)."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def same_origin(a: str, b: str) -> bool:
    """True when both URLs share scheme, host and port (auth headers are only ever sent to the API's origin)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


class CallError(Exception):
    """A remote call that failed for good (retries spent or not retriable). The message never holds secrets.

    `outcome_unknown` is True when a non-idempotent request may have reached the vendor (its answer was lost).
    """

    def __init__(self, message: str, *, retriable: bool, status_code: int | None = None,
                 outcome_unknown: bool = False, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status_code = status_code
        self.outcome_unknown = outcome_unknown
        self.response = response


class ExpiredURLError(CallError):
    """An output URL answered 401/403/404/410: it expired; ask the job for a fresh one."""


class BadContainerError(CallError):
    """The downloaded bytes are not an MP4 or WebM file, or exceed the size cap."""


@dataclass
class CallStats:
    """Counters for one generation (thread-confined: one object per `generate` call)."""

    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    """Seconds spent sleeping between retries."""


@dataclass(frozen=True)
class Downloaded:
    """A finished download, still under its temporary name."""

    tmp_path: Path
    size: int
    sha256: str
    container: str
    """'mp4' or 'webm'."""


@dataclass
class Transport:
    """One backend's HTTP client (thread-safe) plus the retry loop.

    `base_url` has no trailing slash; `call` takes paths relative to it, `download` takes absolute URLs.
    """

    base_url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    api_timeout: httpx.Timeout = field(default_factory=api_timeout)
    download_timeout: httpx.Timeout = field(default_factory=download_timeout)
    max_connections: int = 20
    sleep: Callable[[float], None] = time.sleep
    _client: httpx.Client | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                limits = httpx.Limits(max_connections=self.max_connections,
                                      max_keepalive_connections=self.max_connections)
                self._client = httpx.Client(timeout=self.api_timeout, limits=limits, follow_redirects=False,
                                            trust_env=False)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path ('/v1/tasks/x') or an absolute URL passed through."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def call(self, method: str, path: str, *, headers: Mapping[str, str], json: Any = None,
             params: Mapping[str, Any] | None = None, idempotent: bool, stats: CallStats,
             deadline: float | None = None) -> httpx.Response:
        """Send one API request with the retry policy; return the final response (any status).

        Raises CallError when a transport error ends the call. For `idempotent=False` (creates) a transport error
        after the request may have been sent is not retried and sets `outcome_unknown`.
        """
        url = self.url(path)
        attempt = 0
        while True:
            attempt += 1
            stats.requests += 1
            try:
                response = self.client.request(method, url, headers=dict(headers), json=json, params=params,
                                               timeout=self.api_timeout)
            except httpx.TransportError as exc:
                may_retry = is_retriable_exception(exc, sent_may_have_landed=not idempotent)
                if may_retry and self._wait(attempt, None, stats, deadline):
                    continue
                unknown = not idempotent and not is_retriable_exception(exc, sent_may_have_landed=True)
                raise CallError(f"{method} {describe_url(url)}: {type(exc).__name__} after {attempt} attempt(s)",
                                retriable=True, outcome_unknown=unknown) from None
            if is_retriable_status(response.status_code) and self._wait(
                    attempt, retry_after_s(response.headers), stats, deadline):
                response.close()
                continue
            return response

    def download(self, url: str, *, headers: Mapping[str, str], dest_dir: Path, max_bytes: int,
                 stats: CallStats, deadline: float | None = None) -> Downloaded:
        """Stream `url` into a temporary file in `dest_dir` (same filesystem as the final path, so the caller can
        rename it atomically), hashing as it goes. Retries transport errors, truncated bodies and retriable
        statuses. Raises ExpiredURLError (401/403/404/410), BadContainerError, or CallError.
        """
        attempt = 0
        while True:
            attempt += 1
            stats.requests += 1
            fd, tmp = make_temp(dest_dir, "download", ".partial")
            try:
                with os.fdopen(fd, "wb") as out:
                    result = self._stream_once(url, headers, out, tmp, max_bytes)
            except _RetryableDownload as exc:
                tmp.unlink(missing_ok=True)
                if self._wait(attempt, exc.hint_s, stats, deadline):
                    continue
                raise CallError(f"download {describe_url(url)}: {exc} after {attempt} attempt(s)",
                                retriable=True, status_code=exc.status_code) from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return result

    def _stream_once(self, url: str, headers: Mapping[str, str], out: Any, tmp: Path, max_bytes: int) -> Downloaded:
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with self.client.stream("GET", url, headers=dict(headers), timeout=self.download_timeout) as response:
                if response.status_code in EXPIRED_URL_STATUSES:
                    raise ExpiredURLError(f"download {describe_url(url)}: HTTP {response.status_code} (expired link)",
                                          retriable=True, status_code=response.status_code)
                if is_retriable_status(response.status_code):
                    raise _RetryableDownload(f"HTTP {response.status_code}", response.status_code,
                                             retry_after_s(response.headers))
                if response.status_code != 200:
                    raise CallError(f"download {describe_url(url)}: HTTP {response.status_code}",
                                    retriable=False, status_code=response.status_code)
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise BadContainerError(f"download {describe_url(url)}: {declared} bytes exceeds the cap of "
                                            f"{max_bytes} bytes", retriable=False)
                for chunk in response.iter_raw(DOWNLOAD_CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BadContainerError(f"download {describe_url(url)}: more than {max_bytes} bytes "
                                                "(size cap)", retriable=False)
                    if len(head) < 16:
                        head += chunk[:16 - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                if declared is not None and declared.isdigit() and int(declared) != size:
                    raise _RetryableDownload(f"truncated body ({size} of {declared} bytes)", None, None)
        except httpx.TransportError as exc:
            raise _RetryableDownload(type(exc).__name__, None, None) from None
        container = sniff_container(head)
        if container is None:
            raise BadContainerError(f"download {describe_url(url)}: not an MP4 or WebM file "
                                    f"({size} bytes, starts with {head[:8].hex()})", retriable=True)
        out.flush()
        os.fsync(out.fileno())
        return Downloaded(tmp_path=tmp, size=size, sha256=digest.hexdigest(), container=container)

    def _wait(self, attempt: int, hint_s: float | None, stats: CallStats, deadline: float | None) -> bool:
        """Sleep before the next attempt; False when attempts are spent or the wait would pass the deadline."""
        if attempt >= self.policy.max_attempts:
            return False
        delay = self.policy.delay_s(attempt, hint_s)
        if deadline is not None and time.monotonic() + delay > deadline:
            return False
        stats.retries += 1
        stats.waited_s += delay
        self.sleep(delay)
        return True


class _RetryableDownload(Exception):
    def __init__(self, message: str, status_code: int | None, hint_s: float | None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.hint_s = hint_s


def sniff_container(head: bytes) -> str | None:
    """'mp4' for an ISO-BMFF box header, 'webm' for an EBML header, else None."""
    if len(head) >= 8 and head[4:8] in _MP4_BOX_TYPES:
        return "mp4"
    if head.startswith(_EBML_MAGIC):
        return "webm"
    return None
