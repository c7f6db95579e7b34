"""The one retry policy for every remote backend (and nothing else decides when to retry).

Retry only what the server did not (or cannot have) processed, or what is safe to repeat:
- HTTP 408, 409, 429 and 5xx, honouring `Retry-After` / `retry-after-ms` / `RateLimit-Reset` up to a cap;
- transport errors (connection refused, reset, timeouts, truncated bodies) for *idempotent* calls only.

A create (POST) is never retried after its request may have reached the server without us seeing the reply: no
vendor supports idempotency keys, so a blind retry can create, and bill, a second job. `is_retriable_exception`
takes `sent_may_have_landed` into account for that reason.
"""
from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses that may succeed when repeated (any other 5xx is also retried; see `is_retriable_status`)."""
MAX_ATTEMPTS = 6
"""Attempts per call, the first included."""
BASE_DELAY_S = 0.5
"""Backoff before the second attempt; doubles each time."""
MAX_BACKOFF_S = 8.0
"""Largest computed backoff (without a server hint)."""
MAX_RETRY_AFTER_S = 60.0
"""Largest server-requested wait we honour; a longer hint is clipped to this."""
JITTER_FRACTION = 0.5
"""Computed backoff is multiplied by a uniform factor in [1 - JITTER_FRACTION, 1]."""

_SAFE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Errors raised before a single byte of the request reached the server: safe to retry even for a create."""


def is_retriable_status(status_code: int) -> bool:
    """True for HTTP statuses worth repeating (408/409/429/5xx)."""
    return status_code in RETRY_STATUSES or 500 <= status_code <= 599


def is_retriable_exception(exc: BaseException, *, sent_may_have_landed: bool) -> bool:
    """Whether a transport error may be retried.

    `sent_may_have_landed` is True for non-idempotent calls (creates): then only errors raised before the request
    left this machine (connect errors, pool timeouts) are retriable.
    """
    if not isinstance(exc, httpx.TransportError):
        return False
    if sent_may_have_landed:
        return isinstance(exc, _SAFE_TRANSPORT_ERRORS)
    return True


def retry_after_s(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's requested wait in seconds (capped at MAX_RETRY_AFTER_S), or None when it gave no usable hint.

    Reads `retry-after-ms`, then `Retry-After` (seconds or an HTTP date), then `RateLimit-Reset` (seconds).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    value: float | None = None
    if "retry-after-ms" in lower:
        value = _as_float(lower["retry-after-ms"])
        value = value / 1000.0 if value is not None else None
    if value is None and "retry-after" in lower:
        raw = lower["retry-after"].strip()
        value = _as_float(raw)
        if value is None:
            try:
                when = email.utils.parsedate_to_datetime(raw).timestamp()
                value = when - (time.time() if now is None else now)
            except (TypeError, ValueError):
                value = None
    if value is None and "ratelimit-reset" in lower:
        value = _as_float(lower["ratelimit-reset"])
    if value is None or value < 0:
        return None
    return min(value, MAX_RETRY_AFTER_S)


@dataclass(frozen=True)
class RetryPolicy:
    """Numbers of the retry policy. The defaults are the module constants; tests shrink the delays."""

    max_attempts: int = MAX_ATTEMPTS
    """Attempts per call, the first included."""
    base_delay_s: float = BASE_DELAY_S
    """Backoff before the second attempt; doubles each time."""
    max_backoff_s: float = MAX_BACKOFF_S
    """Largest computed backoff."""
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    """Largest server-requested wait honoured."""
    jitter_fraction: float = JITTER_FRACTION
    """Backoff is multiplied by a uniform factor in [1 - jitter_fraction, 1]."""

    def delay_s(self, attempt: int, hint_s: float | None = None, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

        A server hint wins (clipped to `max_retry_after_s`); otherwise exponential backoff with jitter.
        """
        if hint_s is not None:
            return min(hint_s, self.max_retry_after_s)
        r = rng.random() if rng is not None else random.random()
        delay = min(self.base_delay_s * (2 ** (attempt - 1)), self.max_backoff_s)
        return delay * (1.0 - self.jitter_fraction * r)


def _as_float(raw: str) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None
