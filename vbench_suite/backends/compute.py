"""Compute a local generation used, measured as CPU (or GPU) seconds rather than wall time.

Wall time on a loaded machine grows with whatever else runs (other backends of the same run, other processes), so
it is no measure of what a generation costs. CPU time is: the calling thread's own time plus the time of the
process's native worker threads (torch's intra-op/OpenMP pools, which Python does not start). Threads Python
started (other backends' workers, HTTP polling, the single-threaded video encoder of `reference-shapes`) are left
out, so concurrent backends in one run do not charge each other.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TASK_DIR = Path("/proc/self/task")
"""Linux per-thread accounting; elsewhere the meter falls back to process CPU time (which includes other threads)."""
_UTIME_INDEX, _STIME_INDEX = 11, 12
"""Positions of utime and stime in /proc/.../stat after the ')' that ends the command name (fields 14 and 15)."""


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


def _native_thread_cpu() -> dict[int, float] | None:
    """CPU seconds per thread id of this process's threads that Python did not start; None without /proc."""
    if not TASK_DIR.is_dir():
        return None
    python_ids = {t.native_id for t in threading.enumerate()}
    ticks = _clock_ticks()
    out: dict[int, float] = {}
    for task in TASK_DIR.iterdir():
        try:
            tid = int(task.name)
            if tid in python_ids:
                continue
            stat = (task / "stat").read_text()
        except (ValueError, OSError):
            continue  # the thread ended while we looked
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (int(fields[_UTIME_INDEX]) + int(fields[_STIME_INDEX])) / ticks
    return out


@dataclass
class CpuMeter:
    """Measures CPU seconds from `start()` to `stop()` for work run from the calling thread.

    `method` says what was measured: 'thread+native_workers' (Linux) or 'process' (fallback, includes every thread).
    """

    method: str = ""
    _thread0: float = 0.0
    _native0: dict[int, float] | None = None
    _process0: float = 0.0

    def start(self) -> "CpuMeter":
        self._native0 = _native_thread_cpu()
        self._thread0 = time.thread_time()
        self._process0 = time.process_time()
        self.method = "process" if self._native0 is None else "thread+native_workers"
        return self

    def stop(self) -> float:
        """CPU seconds used since `start()` (never negative)."""
        thread = time.thread_time() - self._thread0
        if self._native0 is None:
            return max(0.0, time.process_time() - self._process0)
        after = _native_thread_cpu() or {}
        native = sum(max(0.0, cpu - self._native0.get(tid, 0.0)) for tid, cpu in after.items())
        return max(0.0, thread) + native
