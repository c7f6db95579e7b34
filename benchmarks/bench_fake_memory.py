"""Peak memory and time of the fake vendors serving full-size videos to many concurrent clients.

    python benchmarks/bench_fake_memory.py [--jobs 100] [--concurrency 50] [--code DIR]

In a fresh subprocess: starts the fake (default config: files of the requested size) and runs the workload of
`tests/test_remote_fault_run.py` at full size through the five vendor backends (`--jobs` requests for 1280x720,
5 s (Veo 8 s) at 24 fps, every 5th with an injected fault, hangs left out; `--concurrency` at once): each request
a distinct file (shapes-world prompts with distinct seeds; faulted ones are the fallback content). Prints the subprocess's peak resident
memory (`ru_maxrss`), wall time, distinct files and bytes served. `--code DIR` runs it against another checkout
(e.g. `git worktree add /tmp/old <commit>`) to compare before and after a change. Nothing is asserted; the
numbers are in docs/vendors.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, os, resource, sys, tempfile, time
from pathlib import Path
from vbench_suite.backends.remote.fal import PikaBackend
from vbench_suite.backends.remote.heygen import HeyGenBackend
from vbench_suite.backends.remote.runway import RunwayBackend
from vbench_suite.backends.remote.synthesia import SynthesiaBackend
from vbench_suite.backends.remote.veo import VeoBackend
from vbench_suite.fake_vendors import FAULTS, FakeConfig, FakeVendors
from vbench_suite.fake_vendors.driver import Work, run_jobs
from vbench_suite.types import GenerationRequest

jobs, concurrency = int(sys.argv[1]), int(sys.argv[2])
for env in ("RUNWAYML_API_SECRET", "FAL_KEY", "GEMINI_API_KEY", "SYNTHESIA_API_KEY", "HEYGEN_API_KEY"):
    os.environ[env] = "bench-key"
faults = [f for f in FAULTS if f != "hang"]
t0 = time.perf_counter()
with FakeVendors(FakeConfig(queue_s=0.02, run_s=0.04, throttle_s=0.3, retry_after_s=0.02, prebuild_videos=True)) as fake:
    o = fake.api_origin
    options = dict(poll_interval_s=0.01, job_deadline_s=600.0, max_concurrency=concurrency)
    backends = [RunwayBackend(base_url=f"{o}/runway", **options), PikaBackend(base_url=f"{o}/fal", **options),
                SynthesiaBackend(base_url=f"{o}/synthesia", **options),
                HeyGenBackend(base_url=f"{o}/heygen", **options), VeoBackend(base_url=f"{o}/veo", **options)]
    work = []
    for i in range(jobs):
        b = backends[i % len(backends)]
        marker = f" [fault:{faults[(i // 5) % len(faults)]}]" if i % 5 == 0 else ""
        work.append(Work(b, GenerationRequest(prompt_id=f"p{i:03d}", prompt=f"a red square moving {i}{marker}",
                                              resolution=(1280, 720), duration_s=8.0 if b.name == "veo" else 5.0,
                                              seed=i)))
    with tempfile.TemporaryDirectory() as tmp:
        records = run_jobs(work, Path(tmp), concurrency=concurrency)
        ok = sum(r["result"]["status"] == "ok" for r in records.values())
        served = sum(r["result"]["info"].get("bytes", 0) for r in records.values())
wall = time.perf_counter() - t0
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "wall_s": wall,
                  "jobs": jobs, "ok": ok, "bytes": served}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--code", type=Path, default=REPO, help="checkout of vbench_suite to measure (default: this one)")
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve()), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(args.jobs), str(args.concurrency)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"child exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
        return
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"code {args.code}: {r['jobs']} jobs ({r['ok']} ok) at 1280x720, {args.concurrency} concurrent: peak RSS "
          f"{r['peak_rss_mb']:.0f} MB, wall {r['wall_s']:.1f} s, {r['bytes'] / 2**20:.1f} MB served")


if __name__ == "__main__":
    main()
