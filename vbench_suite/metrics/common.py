"""Helpers shared by the metric modules: the cache directory, record construction, per-item failure isolation.

No torch here: the registry and the CLI import this module.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vbench_suite.errors import MetricUnavailable, VideoError
from vbench_suite.metrics.base import MetricInfo, ScoringItem
from vbench_suite.types import ScoreRecord, make_extra

log = logging.getLogger(__name__)
LARGE_ALLOCATION_BYTES = 1 << 20
"""Allocations at least this large get their own mapping, returned to the OS when freed (see `bound_heap_growth`)."""
MAX_REASON_CHARS = 500
"""A reason is one line of at most this many characters (an exception text can be megabytes)."""


class ItemError(Exception):
    """This item cannot be scored by this metric; the message is the reason shown in its 'error' record."""


def default_cache_dir() -> Path:
    """$VBENCH_CACHE_DIR, else the per-user cache dir (one definition: `vbench_suite.paths.cache_dir`)."""
    from vbench_suite.paths import cache_dir

    return cache_dir()


def record(info: MetricInfo, status: str, *, value: float | None = None, reason: str | None = None,
           profile: str = "", item: ScoringItem | None = None, scope: str | None = None,
           extra: Mapping[str, Any] | None = None, **fields: Any) -> ScoreRecord:
    """A ScoreRecord carrying `info`'s name, direction and unit; video fields come from `item` when given."""
    base: dict[str, Any] = {}
    if item is not None:
        base = {"backend": item.backend, "prompt_id": item.prompt_id, "category": item.category,
                "sample": item.sample, "key": item.key, "simulated": item.simulated}
    base.update(fields)
    return ScoreRecord(metric=info.name, status=status, value=None if value is None else float(value),  # type: ignore
                       reason=reason, profile=profile, unit=info.unit, higher_is_better=info.higher_is_better,
                       scope=scope or ("video" if item is not None else "set"),  # type: ignore[arg-type]
                       extra=make_extra(_jsonable(dict(extra or {}))), **base)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars and tuples -> plain JSON values (records are written as JSON)."""
    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def video_label(item: ScoringItem) -> str:
    return item.key[:12] or item.prompt_id or Path(item.video_path).name


@functools.cache
def bound_heap_growth() -> bool:
    """Make glibc give freed frame-sized buffers back to the OS at once; True when the setting took (Linux, glibc).

    Streaming frees and allocates tens-of-MB tensors for every frame. glibc's default raises its mmap threshold
    each time such a block is freed, after which they come from the heap, where fragmentation keeps them: scoring one
    240-frame 1080p video grew RSS by 3 GB that way although each step needs a few frames. A fixed threshold
    (`M_MMAP_THRESHOLD`) keeps them mapped and unmapped on free. Process-wide and idempotent; costs a page fault per
    fresh page, small next to the convolutions. Elsewhere (macOS, musl) it is a no-op.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_threshold = -3                                    # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, LARGE_ALLOCATION_BYTES))
    except (OSError, AttributeError):                            # not glibc
        return False


def failure_reason(path: str, exc: BaseException) -> str:
    """One bounded line naming `path` and what went wrong (the exception type too when it is not a known kind)."""
    if isinstance(exc, (VideoError, ItemError)):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "too large to score in memory"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    if not text.startswith(str(path)):
        text = f"{path}: {text}"
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 3] + "..."


def score_one(info: MetricInfo, profile: str, item: ScoringItem, compute: Callable[[], ScoreRecord]) -> ScoreRecord:
    """`compute()` for one item; any failure becomes this item's 'error' record, so the other items are still scored.

    `MetricUnavailable` propagates: it concerns the metric, not the item. An unexpected exception (not a bad file or
    an `ItemError`) is also logged with its traceback, since it may be a bug.
    """
    try:
        return compute()
    except MetricUnavailable:
        raise
    except (VideoError, ItemError, MemoryError) as exc:
        return record(info, "error", reason=failure_reason(item.video_path, exc), profile=profile, item=item)
    except Exception as exc:  # one item must never blank the metric for the others
        log.exception("%s failed on %s", info.name, item.video_path)
        return record(info, "error", reason=failure_reason(item.video_path, exc), profile=profile, item=item)


def unavailable(info: MetricInfo, reason: str, profile: str = "") -> ScoreRecord:
    """The one record a metric returns when it cannot run here at all."""
    return record(info, "unavailable", reason=reason, profile=profile, scope="set")
