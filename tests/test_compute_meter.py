"""`CpuMeter`: local compute is the CPU time of the generating thread and the process's native worker threads,
never wall time and never the CPU of other Python threads (other backends running in the same run)."""
from __future__ import annotations

import threading
import time

from vbench_suite.backends.compute import CpuMeter


def _spin_for(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(1000))


def test_waiting_is_not_compute_and_other_python_threads_are_not_charged() -> None:
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(1000))

    other = threading.Thread(target=burn)
    other.start()
    try:
        meter = CpuMeter().start()
        time.sleep(0.3)
        idle = meter.stop()
    finally:
        stop.set()
        other.join()
    assert meter.method == "thread+native_workers"
    assert idle < 0.1


def test_own_work_is_counted() -> None:
    meter = CpuMeter().start()
    _spin_for(0.2)
    assert meter.stop() >= 0.18


def test_native_worker_threads_are_counted() -> None:
    """torch's intra-op pool is native threads Python never started: their CPU belongs to the generation."""
    import numpy as np

    torch = __import__("pytest").importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = torch.from_numpy(np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32))
        meter = CpuMeter().start()
        process0, thread0 = time.process_time(), time.thread_time()
        for _ in range(40):
            a = torch.tanh(a @ a / 512)
        process, own = time.process_time() - process0, time.thread_time() - thread0
        cpu = meter.stop()
    finally:
        torch.set_num_threads(threads)
    # No other thread of this process works meanwhile, so the whole process's CPU time is the generation's: the
    # meter must see it all, including what torch's pool did beyond the calling thread. (Compared with CPU time,
    # not wall time: wall time on a loaded machine says nothing about what ran.)
    assert cpu >= own
    assert cpu >= 0.9 * process - 0.02
