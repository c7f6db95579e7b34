"""`vbench-suite fake-vendors`: run the local fake of every video vendor so the harness can be tried without keys.

Prints the `VBENCH_<VENDOR>_BASE_URL` exports to use, then serves until interrupted (or for --serve-s seconds).
Every result produced against it is labelled simulated.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from vbench_suite.errors import ConfigError

DUMMY_KEY_ENVS: tuple[str, ...] = ("RUNWAYML_API_SECRET", "FAL_KEY", "GEMINI_API_KEY", "SYNTHESIA_API_KEY",
                                   "HEYGEN_API_KEY")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fake-vendors", help="serve a local fake of Runway, fal/Pika, Synthesia, HeyGen and Veo (for trying the "
                             "harness without keys; results are labelled simulated)",
        description="Serve a local fake of every vendor API on loopback ports, with scaled-down latencies and "
                    "optional fault injection.")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="API port (0 = any free port; default 8765)")
    p.add_argument("--cdn-port", type=int, default=0, help="port serving output files (default: any free port)")
    p.add_argument("--queue-s", type=float, default=1.0, help="seconds a job waits in the queue (default 1)")
    p.add_argument("--run-s", type=float, default=3.0, help="seconds a job generates (default 3)")
    p.add_argument("--throttle-s", type=float, default=2.0, help="extra queueing for throttled jobs (default 2)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random fault per request")
    p.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draw")
    p.add_argument("--serve-s", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    return p


def run(args: argparse.Namespace) -> int:
    from vbench_suite.backends.remote.transport import is_loopback_host
    from vbench_suite.fake_vendors import FakeConfig, FakeVendors

    if not is_loopback_host(args.host):
        raise ConfigError(f"--host {args.host}: the fake only binds loopback addresses (127.0.0.1, ::1, localhost)")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise ConfigError(f"--fault-rate {args.fault_rate}: must be between 0 and 1")
    for name in ("queue_s", "run_s", "throttle_s"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")
    config = FakeConfig(queue_s=args.queue_s, run_s=args.run_s, throttle_s=args.throttle_s,
                        fault_rate=args.fault_rate, fault_seed=args.fault_seed)
    try:
        fake = FakeVendors(config, host=args.host, port=args.port, cdn_port=args.cdn_port).start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); try --port 0") from None
    try:
        print("Fake vendors are running. In another shell:")
        for name, value in fake.env().items():
            print(f"  export {name}={value}")
        print("  # any non-empty key works against the fake, e.g.:")
        for env in DUMMY_KEY_ENVS:
            print(f"  export {env}=fake-key")
        print("Results produced against these URLs are labelled simulated. Ctrl-C stops the server.", flush=True)
        deadline = None if args.serve_s is None else time.monotonic() + args.serve_s
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("fake vendors stopped", file=sys.stderr)
    finally:
        fake.stop()
    return 0
