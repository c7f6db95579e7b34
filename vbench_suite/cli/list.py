"""`vbench-suite list backends|suites|metrics`.

`list backends` must answer in well under 2 s: it asks each backend only for its declared capabilities and its
cheap `readiness()` (no model loading, no torch import).
"""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="list backends, suites or metrics")
    p.add_argument("what", choices=("backends", "suites", "metrics"))
    return p


def describe_modes(caps: object) -> str:
    """'t2v,i2v' for a Capabilities object."""
    return ",".join(getattr(caps, "modes", ()))


def run(args: argparse.Namespace) -> int:
    if args.what == "backends":
        from vbench_suite.backends import available_backends, create_backend

        for name in available_backends():
            try:
                backend = create_backend(name)
                reason = backend.readiness()
                modes = describe_modes(backend.capabilities())
                backend.close()
            except Exception as exc:  # noqa: BLE001 - listing must show every backend, even a broken one
                reason, modes = f"cannot load: {type(exc).__name__}: {exc}", "?"
            state = "ready" if reason is None else f"not configured: {reason}"
            print(f"{name:20s} modes={modes:28s} {state}")
    elif args.what == "suites":
        from vbench_suite.suites import available_suites, load_suite

        for name in available_suites():
            suite = load_suite(name)
            print(f"{name:12s} version={suite.version:10s} prompts={len(suite.items):4d}  {suite.description}")
    else:
        from vbench_suite.metrics import available_metrics, create_metric

        for name in available_metrics():
            info = create_metric(name).info
            direction = "higher is better" if info.higher_is_better else "lower is better"
            print(f"{name:18s} {info.scope:6s} {direction:17s} {info.display_name}")
    return 0
