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
    p.add_argument("--scenario", default=None, metavar="FILE",
                   help="YAML scenario: per-vendor true failure/refusal rates, latencies, prices and output quality "
                        "(see docs/vendors.md); overrides --queue-s/--run-s for the vendors it names")
    p.add_argument("--audit", default=None, metavar="FILE",
                   help="write the fake's audit (accepted creates per request, outcomes, what was billed) as JSON "
                        "to FILE every --audit-every-s seconds and on exit; also served at GET /_fake/audit")
    p.add_argument("--audit-every-s", type=float, default=1.0, help="seconds between audit writes (default 1)")
    p.add_argument("--max-video-short-side", type=int, default=None, metavar="PX",
                   help="serve files at most PX pixels on their short side (duration, fps and aspect kept), for quick "
                        "trials and tests; default: the size each request asks for")
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
    if args.audit_every_s <= 0:
        raise ConfigError("--audit-every-s must be > 0")
    if args.max_video_short_side is not None and args.max_video_short_side < 16:
        raise ConfigError(f"--max-video-short-side {args.max_video_short_side}: must be at least 16 pixels")
    scenario = None
    if args.scenario is not None:
        from vbench_suite.fake_vendors.scenario import load_scenario

        scenario = load_scenario(args.scenario)
    config = FakeConfig(queue_s=args.queue_s, run_s=args.run_s, throttle_s=args.throttle_s,
                        fault_rate=args.fault_rate, fault_seed=args.fault_seed, scenario=scenario,
                        prebuild_videos=True, max_video_short_side=args.max_video_short_side)
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
        if scenario is not None:
            print(f"Scenario: {scenario.source} (seed {scenario.seed}); audit at {fake.api_origin}/_fake/audit")
        print("Results produced against these URLs are labelled simulated. Ctrl-C stops the server.", flush=True)
        restore = _stop_on_sigterm()
        try:
            _serve(fake, args.serve_s, args.audit, args.audit_every_s)
        finally:
            restore()
    except KeyboardInterrupt:
        print("fake vendors stopped", file=sys.stderr)
    finally:
        fake.stop()
        if args.audit is not None:
            fake.write_audit(args.audit)
    return 0


def _stop_on_sigterm() -> Any:
    """SIGTERM (a supervisor, `kill`) stops the server like Ctrl-C, so the final audit is still written. Returns a
    function that puts the previous handler back."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _serve(fake: Any, serve_s: float | None, audit: str | None, audit_every_s: float) -> None:
    """Sleep until `serve_s` passes (forever if None), writing the audit file every `audit_every_s` seconds."""
    deadline = None if serve_s is None else time.monotonic() + serve_s
    next_audit = time.monotonic() + audit_every_s
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.1)
        if audit is not None and time.monotonic() >= next_audit:
            fake.write_audit(audit)
            next_audit = time.monotonic() + audit_every_s
