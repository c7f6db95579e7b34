"""False-alarm rate of regression verdicts over null comparisons (nothing changed but the run seed).

    python benchmarks/bench_false_alarms.py [--comparisons 40] [--work DIR] [--vendors]

Makes N+1 runs of the same suite that differ only in `--seed`, compares run k+1 against run k with the same code
path as `vbench-suite report NEW --compare OLD` (`compare_runs`), and prints how many comparisons flagged anything
(family-wise false alarms) and the share of flagged rows. With nothing changed, the family-wise rate must stay near
or below the stated alpha (default 0.05) if the report's multiple-testing correction works.

Default path (minutes on 2 CPUs): the local `reference-shapes` backend on the smoke suite, scored with
shapes adherence and LPIPS temporal. `--vendors`: Runway and Pika served by the fake vendors with
`tests/scenarios/regression_base.yaml` on the 1280x720 vendor suite (real HTTP, real decoding; much slower).
Adjacent comparisons share a run, so they are not independent; the count of comparisons is what the issue asks for.
Nothing here is asserted.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "tests" / "scenarios" / "regression_base.yaml"
VENDOR_SUITE = REPO / "tests" / "scenarios" / "vendor_shapes.yaml"
FLAGS = ("regressed", "improved")


def make_run(out: Path, seed: int, args: argparse.Namespace) -> None:
    from vbench_suite.cli import main

    argv = ["run", "--out", str(out), "--seed", str(seed), "--no-progress", "--no-report", "--metrics", args.metrics]
    if args.vendors:
        argv += ["--suite", str(VENDOR_SUITE), "--backend", "runway", "--backend", "pika",
                 "--option", "runway.poll_interval_s=0.02", "--option", "pika.poll_interval_s=0.02"]
    else:
        argv += ["--suite", args.suite, "--backend", "reference-shapes"]
    code = main(argv)
    if code != 0:
        raise SystemExit(f"run {out} exited {code}")


def fake_vendors(enabled: bool):
    """The fake vendors with the regression baseline scenario, their URLs and dummy keys in the environment."""
    if not enabled:
        return nullcontext()
    from vbench_suite.fake_vendors import FakeConfig, FakeVendors
    from vbench_suite.fake_vendors.scenario import load_scenario

    fake = FakeVendors(FakeConfig(scenario=load_scenario(SCENARIO), prebuild_videos=True)).start()
    os.environ.update(fake.env())
    os.environ.setdefault("RUNWAYML_API_SECRET", "fake-key")
    os.environ.setdefault("FAL_KEY", "fake-key")
    return _Stopping(fake)


class _Stopping:
    def __init__(self, fake) -> None:
        self.fake = fake

    def __enter__(self):
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.fake.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comparisons", type=int, default=40)
    p.add_argument("--suite", default="smoke")
    p.add_argument("--metrics", default="shapes_adherence,lpips_temporal")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary folder)")
    p.add_argument("--vendors", action="store_true", help="use the fake vendors instead of reference-shapes")
    args = p.parse_args()

    from vbench_suite.report.load import load_run
    from vbench_suite.report.regression import compare_runs

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="vbench-null-")
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    flagged_comparisons, flagged_rows, tested_rows = 0, 0, 0
    by_kind: dict[str, list[int]] = {}  # kind -> [flagged comparisons, flagged rows, tested rows]
    with fake_vendors(args.vendors):
        runs = []
        for seed in range(args.comparisons + 1):
            out = work / f"seed{seed:03d}"
            make_run(out, seed, args)
            runs.append(out)
        for k in range(args.comparisons):
            rows = compare_runs(load_run(runs[k + 1]), load_run(runs[k]), alpha=args.alpha).rows
            tested = rows[rows["verdict"].isin(FLAGS + ("no significant change",))]
            hits = rows[rows["verdict"].isin(FLAGS)]
            tested_rows += len(tested)
            flagged_rows += len(hits)
            flagged_comparisons += bool(len(hits))
            for kind in set(tested["kind"]):
                counts = by_kind.setdefault(str(kind), [0, 0, 0])
                kind_hits = int((hits["kind"] == kind).sum())
                counts[0] += bool(kind_hits)
                counts[1] += kind_hits
                counts[2] += int((tested["kind"] == kind).sum())
            for r in hits.itertuples():
                print(f"  false alarm in comparison {k}: {r.backend} {r.metric} [{r.category}] {r.verdict} "
                      f"(delta {r.delta:.4g}, p {r.p_value:.3g})")
    n = args.comparisons
    print(f"null comparisons: {n} ({'fake vendors' if args.vendors else 'reference-shapes'}, suite "
          f"{'vendor-shapes' if args.vendors else args.suite}, metrics {args.metrics}, alpha {args.alpha})")
    print(f"comparisons with any flag (family-wise false alarms): {flagged_comparisons}/{n} = "
          f"{flagged_comparisons / n:.3f}")
    print(f"flagged rows: {flagged_rows}/{tested_rows} = {flagged_rows / max(tested_rows, 1):.4f}")
    for kind, (comparisons, hit_rows, rows_tested) in sorted(by_kind.items()):
        print(f"  {kind}: comparisons flagged {comparisons}/{n} = {comparisons / n:.3f}; rows {hit_rows}/{rows_tested}")
    print(f"wall time: {time.perf_counter() - t0:.0f} s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
