"""False-alarm rate of regression verdicts over null comparisons, through the real command line.

    python benchmarks/bench_false_alarms.py [--comparisons 40] [--work DIR] [--scenario FILE] [--short-side 96]
                                            [--samples 2] [--alpha 0.05] [--drift] [--local]

Each comparison is two `vbench-suite run` invocations (subprocesses) of the same suite against the fake vendors
serving the same scenario, differing only in `--seed` (so video content, noise, outcome draws and latency draws
all differ, while nothing about the vendors changed), then `vbench-suite report NEW --compare OLD --alpha A
--no-gallery` (a subprocess), whose `regression.csv` is read back (with `--drift`, the drift test's rows too; each
backend's drift tests are their own Holm family). Pairs are independent: comparison k uses runs with seeds 2k and
2k+1. Nothing changed, so every `regressed`, `improved` or `changed` row is a false alarm; with Holm's correction
within each family, the share of comparisons with a flag in the regression family should stay near or below alpha
(and that of any flag at all near or below alpha times the number of families).

Default: Runway and Pika on `tests/scenarios/vendor_shapes.yaml` (6 shapes-world prompts, 1280x720 requested, 5 s),
scenario `tests/scenarios/known_truth.yaml` (failure 10 % / 25 %, refusal 5 % / 10 %, lognormal latencies, noise,
blur and frozen frames), metrics shapes adherence, LPIPS temporal and FVD. `--short-side 96` makes the fake serve
files 96 px on the short side (duration and fps kept) so 80 runs finish in an hour or two on 2 CPUs; 0 serves the
requested size. `--local` uses the local `reference-shapes` backend on the smoke suite instead of the fake vendors.
Run folders go under `--work` (kept, and reused when the benchmark is started again: a finished run is not redone);
a summary is written to WORK/summary.json. Nothing here is asserted.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "tests" / "scenarios"
FLAGS = ("regressed", "improved", "changed")
"""Verdicts that say something changed: a regression row's, or the drift test's (`report/drift.py`)."""
TESTED = FLAGS + ("no significant change", "no change detected")


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "vbench_suite", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"vbench-suite {' '.join(args[:2])} exited {proc.returncode}: "
                         f"{proc.stderr.strip().splitlines()[-1:] or proc.stdout[-300:]}")
    return proc


def vendor_suite(work: Path, metrics: str) -> Path:
    """The vendor suite; without FVD among the metrics, a copy without `fvd_reference` (the runner would otherwise
    render the 24-video shapes-world FVD reference at 1280x720 for every run, minutes each, and never use it)."""
    source = SCENARIOS / "vendor_shapes.yaml"
    if "fvd" in metrics.split(","):
        return source
    copy = work / "vendor_shapes_no_fvd.yaml"
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if not line.startswith("fvd_reference")]
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return copy


def run_args(out: Path, seed: int, args: argparse.Namespace) -> list[str]:
    argv = ["run", "--out", str(out), "--seed", str(seed), "--no-progress", "--no-report", "--metrics", args.metrics,
            "--samples", str(args.samples)]
    if args.local:
        return argv + ["--suite", "smoke", "--backend", "reference-shapes"]
    return argv + ["--suite", str(vendor_suite(out.parent, args.metrics)), "--backend", "runway", "--backend", "pika",
                   "--option", "runway.poll_interval_s=0.02", "--option", "pika.poll_interval_s=0.02"]


DONE = ".bench-null-done"
"""Marker the benchmark writes into a run folder once its `run` exited 0 (a restarted benchmark skips that run)."""


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comparisons", type=int, default=40)
    p.add_argument("--scenario", type=Path, default=SCENARIOS / "known_truth.yaml")
    p.add_argument("--short-side", type=int, default=96, help="short side of served files (0: the requested size)")
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--metrics", default="shapes_adherence,lpips_temporal")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary folder)")
    p.add_argument("--drift", action="store_true", help="include the drift test's rows (slow: I3D features)")
    p.add_argument("--local", action="store_true", help="reference-shapes on the smoke suite, no fake vendors")
    args = p.parse_args()

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="vbench-null-")
    work = (args.work or Path(tmp.name)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    fake = None
    if not args.local:
        from vbench_suite.fake_vendors import FakeConfig, FakeVendors
        from vbench_suite.fake_vendors.scenario import load_scenario

        fake = FakeVendors(FakeConfig(scenario=load_scenario(args.scenario), prebuild_videos=True,
                                      retry_after_s=0.02, max_video_short_side=args.short_side or None)).start()
        env.update(fake.env(), RUNWAYML_API_SECRET="fake-key", FAL_KEY="fake-key")
    t0 = time.perf_counter()
    family_hits = 0
    per_metric: dict[str, list[int]] = {}  # metric -> [comparisons with a flag, flagged rows, tested rows]
    per_kind: dict[str, list[int]] = {}
    alarms: list[str] = []
    try:
        for k in range(args.comparisons):
            runs = []
            for seed in (2 * k, 2 * k + 1):
                out = work / f"seed{seed:03d}"
                if not (out / DONE).is_file():
                    cli(run_args(out, seed, args), env, work)
                    (out / DONE).write_text("", encoding="utf-8")
                runs.append(out)
            report = work / f"report{k:03d}"
            # The gallery has no verdict in it; leaving it out saves re-encoding every video for every report. The
            # drift test (I3D features of every video, about 2 min per comparison here) is in only with --drift:
            # its own false-alarm rate over 200 nulls is benchmarks/bench_drift.py's.
            cli(["report", str(runs[1]), "--compare", str(runs[0]), "--out", str(report), "--alpha", str(args.alpha),
                 "--no-gallery"] + ([] if args.drift else ["--no-drift"]), env, work)
            rows = [r for r in read_rows(report / "regression.csv") if r["verdict"] in TESTED]
            hits = [r for r in rows if r["verdict"] in FLAGS]
            family_hits += bool(hits)
            for table, field in ((per_metric, "metric"), (per_kind, "kind")):
                for name in {r[field] for r in rows}:
                    mine = [r for r in rows if r[field] == name]
                    flagged = sum(r["verdict"] in FLAGS for r in mine)
                    counts = table.setdefault(name, [0, 0, 0])
                    counts[0] += bool(flagged)
                    counts[1] += flagged
                    counts[2] += len(mine)
            for r in hits:
                alarms.append(f"comparison {k}: {r['backend']} {r['metric']} [{r['category']}] {r['verdict']} "
                              f"(delta {float(r['delta']):.4g}, p {float(r['p_value']):.3g}, "
                              f"Holm p {float(r['p_adjusted']):.3g})")
            print(f"comparison {k + 1}/{args.comparisons}: {len(hits)} flagged of {len(rows)} tested rows "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        if fake is not None:
            fake.stop()
    n = args.comparisons
    source = "reference-shapes, smoke suite" if args.local else (
        f"fake vendors (runway, pika), scenario {args.scenario.name}, vendor_shapes suite, "
        f"{'served at ' + str(args.short_side) + ' px short side' if args.short_side else 'full size'}")
    drift_family = " and within each backend's drift tests" if args.drift else ""
    print(f"\nnull comparisons: {n} independent pairs ({source}; metrics {args.metrics}; --samples {args.samples}; "
          f"alpha {args.alpha}, Holm within the regression rows{drift_family})")
    print(f"comparisons with any flagged row (family-wise false alarms): {family_hits}/{n} = {family_hits / n:.3f}")
    for title, table in (("by kind", per_kind), ("by metric", per_metric)):
        print(title + ":")
        for name, (comparisons, flagged, tested) in sorted(table.items()):
            print(f"  {name}: comparisons flagged {comparisons}/{n}; rows flagged {flagged}/{tested}")
    for line in alarms:
        print("  false alarm in " + line)
    print(f"wall time: {time.perf_counter() - t0:.0f} s")
    summary = {"comparisons": n, "drift_included": args.drift, "family_wise_false_alarms": family_hits,
               "alpha": args.alpha, "source": source,
               "metrics": args.metrics, "samples": args.samples, "by_kind": per_kind, "by_metric": per_metric,
               "alarms": alarms, "wall_s": round(time.perf_counter() - t0)}
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
