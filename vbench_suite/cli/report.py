"""`vbench-suite report RUN_DIR [--out DIR] [--compare BASELINE_RUN_DIR]`: comparison report, optionally with a
regression check against a baseline run, and a video gallery (`--no-gallery`, `--embed-max-kb`, `--large-videos`).
Heavy imports (pandas, matplotlib, scipy) happen in `run` only."""
from __future__ import annotations

import argparse
from pathlib import Path

from vbench_suite.cli.options import non_negative_float, significance_level
from vbench_suite.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `report`."""
    p = subparsers.add_parser(
        "report", help="write the comparison report of a run (Markdown, CSV, self-contained HTML)",
        description="Per-backend quality by prompt category with confidence intervals, refusal/failure rates, latency, "
                    "cost per 10 s, hardware seconds, plots and break-even. With --compare: per-metric deltas with "
                    "intervals, Holm-corrected regression verdicts read off those intervals, silent changes called "
                    "out first; runs of different prompt sets are not compared.")
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                   help="run folder written by `vbench-suite run` (or a run name/id in the index)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default: reports/<run name>/)")
    p.add_argument("--compare", type=Path, default=None, metavar="BASELINE_RUN_DIR",
                   help="baseline run folder to check for regressions against")
    p.add_argument("--index", type=Path, default=None, metavar="PATH",
                   help="SQLite index to read runs from when RUN_DIR / BASELINE_RUN_DIR are run names or ids, not "
                        "folders (default: index.sqlite beside them)")
    p.add_argument("--alpha", type=significance_level, default=0.05,
                   help="family-wise error rate of the regression verdicts of one comparison, Holm-corrected "
                        "across rows (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals of the quality tables (default 0)")
    g = p.add_argument_group("gallery", "the report's video gallery (posters and contact sheets are always embedded)")
    g.add_argument("--no-gallery", dest="gallery", action="store_false", help="leave the video gallery out")
    g.add_argument("--embed-max-kb", type=non_negative_float, default=512.0, metavar="KIB",
                   help="embed a video in report.html when the file the browser plays is at most this many KiB "
                        "(default 512; 0 links every video; at most 32 MiB are embedded in all)")
    g.add_argument("--large-videos", choices=("copy", "link"), default="copy",
                   help="videos not embedded: copy them under <report>/gallery/videos/ so the report folder zips "
                        "whole (default), or link the run folder's files by relative path (share the report "
                        "together with the run folder); videos re-encoded for browsers are always under gallery/")
    p.add_argument("--no-drift", dest="drift", action="store_false",
                   help="with --compare: skip the drift tests (I3D features and same-seed LPIPS of both runs' videos, "
                        "cached per video; docs/drift.md)")
    return p


def run(args: argparse.Namespace) -> int:
    """Write the report and print the path of report.html (report.md and the CSVs sit beside it)."""
    from vbench_suite.report.build import write_report

    if args.compare is not None and Path(args.compare).resolve() == Path(args.run_dir).resolve():
        raise UserError(f"--compare '{args.compare}' is the run itself; pass the baseline run's folder.")
    from vbench_suite.report.gallery_media import GalleryOptions

    gallery = GalleryOptions(enabled=args.gallery, embed_max_bytes=int(args.embed_max_kb * 1024),
                             large_videos=args.large_videos)
    drift = None
    if args.compare is not None and args.drift:
        from vbench_suite.drift.check import gather

        drift = gather
    path = write_report(args.run_dir, args.out, compare=args.compare, alpha=args.alpha, seed=args.seed,
                        index_path=args.index, gallery=gallery, drift=drift)
    print(path)
    return 0
