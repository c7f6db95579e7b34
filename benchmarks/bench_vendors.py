"""Harness overhead of the remote backends against the fake vendors, and throughput with 50 concurrent jobs.

Overhead per job = measured wall time - the fake's configured latency (queue_s + run_s). Polling adds up to one
poll interval by construction, so the same run also measures a bare-httpx baseline client (create, poll at the
same interval, download; no retries, records or hashing) and prints our numbers as ratios against it. The fake
runs in its own process (a real vendor does not share our GIL).

    .venv/bin/python benchmarks/bench_vendors.py [--jobs 200] [--concurrency 50] [--queue-s 0.2] [--run-s 0.5]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from vbench_suite.backends import create_backend
from vbench_suite.backends.base import GenerationContext
from vbench_suite.fake_vendors import FakeConfig, FakeVendors
from vbench_suite.fake_vendors.driver import Work, run_jobs
from vbench_suite.types import GenerationRequest

VENDOR_OF = {"runway": "runway", "pika": "fal", "synthesia": "synthesia", "heygen": "heygen", "veo": "veo"}
KEY_ENVS = ("RUNWAYML_API_SECRET", "FAL_KEY", "GEMINI_API_KEY", "SYNTHESIA_API_KEY", "HEYGEN_API_KEY")
RUNWAY_HEADERS = {"Authorization": "Bearer bench", "X-Runway-Version": "2024-11-06"}


def request(name: str, i: int) -> GenerationRequest:
    return GenerationRequest(f"b{i}", f"bench square {i}", resolution=(1280, 720),
                             duration_s=8.0 if name == "veo" else 5.0, seed=i)


def baseline_job(client: httpx.Client, base: str, i: int, poll_s: float, out: Path) -> float:
    """The least a client can do for one Runway job: create, poll, download, write."""
    t0 = time.perf_counter()
    body = {"model": "gen4.5", "promptText": f"baseline {i}", "ratio": "1280:720", "duration": 5, "seed": i}
    job_id = client.post(f"{base}/v1/text_to_video", json=body, headers=RUNWAY_HEADERS).json()["id"]
    while (task := client.get(f"{base}/v1/tasks/{job_id}", headers=RUNWAY_HEADERS).json())["status"] != "SUCCEEDED":
        time.sleep(poll_s)
    out.write_bytes(client.get(task["output"][0]).content)
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(config: FakeConfig, port: int, cdn_port: int) -> None:
    with FakeVendors(config, port=port, cdn_port=cdn_port):
        while True:
            time.sleep(3600)


class RemoteFake:
    """The fake in its own process, so client and server threads do not share one GIL (as with a real vendor)."""

    def __init__(self, config: FakeConfig) -> None:
        self.port, cdn = _free_port(), _free_port()
        self.proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(config, self.port, cdn),
                                                                 daemon=True)
        self.api_origin = f"http://127.0.0.1:{self.port}"

    def base_url(self, vendor: str) -> str:
        return f"{self.api_origin}/{vendor}"

    def __enter__(self) -> "RemoteFake":
        self.proc.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.api_origin}/runway/v1/tasks/none", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("fake vendors did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200, help="jobs in the concurrent throughput run")
    ap.add_argument("--sequential", type=int, default=10, help="jobs per backend in the one-at-a-time run")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--queue-s", type=float, default=0.2)
    ap.add_argument("--run-s", type=float, default=0.5)
    ap.add_argument("--poll-s", type=float, default=0.05)
    args = ap.parse_args()
    for env in KEY_ENVS:
        os.environ.setdefault(env, "bench-key")
    latency = args.queue_s + args.run_s
    options = dict(poll_interval_s=args.poll_s, max_concurrency=args.concurrency, job_deadline_s=60.0)
    config = FakeConfig(queue_s=args.queue_s, run_s=args.run_s)
    print(f"fake latency per job: {latency:.3f} s (queue {args.queue_s} + run {args.run_s}); poll interval "
          f"{args.poll_s} s; {os.cpu_count()} CPUs")
    with RemoteFake(config) as fake, tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # 1. one job at a time: overhead per job, per backend, against the bare baseline
        with httpx.Client() as client:
            base_times = [baseline_job(client, fake.base_url("runway"), i, args.poll_s, tmp_path / f"b{i}.mp4")
                          for i in range(args.sequential)]
        base_over = statistics.median(base_times) - latency
        print(f"\n{'client':<12}{'median wall s':>14}{'overhead ms':>13}{'vs baseline':>13}")
        print(f"{'baseline':<12}{statistics.median(base_times):>14.3f}{base_over * 1000:>13.1f}{'1.00x':>13}")
        for name in VENDOR_OF:
            backend = create_backend(name, base_url=fake.base_url(VENDOR_OF[name]), **options)
            walls = []
            for i in range(args.sequential):
                t0 = time.perf_counter()
                r = backend.generate(request(name, 1000 + i), GenerationContext(out_path=tmp_path / f"{name}{i}.mp4"))
                walls.append(time.perf_counter() - t0)
                assert r.status == "ok", r.error
            over = statistics.median(walls) - latency
            ratio = statistics.median(walls) / statistics.median(base_times)
            print(f"{name:<12}{statistics.median(walls):>14.3f}{over * 1000:>13.1f}{ratio:>12.2f}x")
            backend.close()
        # 2. throughput: N jobs, `concurrency` in flight, through the runner-like driver (records fsync'd)
        backends = [create_backend(n, base_url=fake.base_url(v), **options) for n, v in VENDOR_OF.items()]
        work = [Work(backends[i % len(backends)], request(backends[i % len(backends)].name, 5000 + i))
                for i in range(args.jobs)]
        t0 = time.perf_counter()
        records = run_jobs(work, tmp_path / "run", concurrency=args.concurrency)
        wall = time.perf_counter() - t0
        ok = sum(r["result"]["status"] == "ok" for r in records.values())
        ideal = args.concurrency / latency
        totals = [r["result"]["latency"]["total_s"] for r in records.values()]
        print(f"\nthroughput, {args.jobs} jobs, {args.concurrency} concurrent: {args.jobs / wall:.1f} jobs/s "
              f"({ok} ok) in {wall:.2f} s; ideal {ideal:.1f} jobs/s -> {args.jobs / wall / ideal:.0%} of ideal")
        print(f"per-job total under load: median {statistics.median(totals):.3f} s, "
              f"overhead {1000 * (statistics.median(totals) - latency):.1f} ms")
        with httpx.Client(limits=httpx.Limits(max_connections=args.concurrency)) as client, \
                ThreadPoolExecutor(args.concurrency) as pool:
            t0 = time.perf_counter()
            list(pool.map(lambda i: baseline_job(client, fake.base_url("runway"), 9000 + i, args.poll_s,
                                                 tmp_path / f"c{i}.mp4"), range(args.jobs)))
            bwall = time.perf_counter() - t0
        print(f"baseline client, same load: {args.jobs / bwall:.1f} jobs/s -> ours/baseline "
              f"{(args.jobs / wall) / (args.jobs / bwall):.2f}x")


if __name__ == "__main__":
    main()
