"""`vbench-suite compare-videos RUN --prompt-id ID [--sample K] [--out FILE]`: one video with the same prompt's
output from every backend of a run side by side, each tile labelled; backends without a video are labelled grey
tiles saying why. Sizes, frame rates and durations are normalised (`video.side_by_side`) and each change is printed.
"""
from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path

from vbench_suite.errors import UserError, shown


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `compare-videos`."""
    p = subparsers.add_parser(
        "compare-videos", help="write a side-by-side video of one prompt across a run's backends",
        description="Tiles the videos every backend of RUN made for one prompt and sample into one labelled H.264 "
                    "video (plays in browsers), for sharing. Failed, refused, unsupported and not-configured "
                    "backends appear as grey tiles saying why. Different sizes, frame rates and durations are "
                    "normalised: same tile height (small videos scaled up by whole factors), the highest frame rate, "
                    "the longest duration (shorter videos hold their last frame); each change is printed.")
    p.add_argument("run_dir", metavar="RUN", type=Path,
                   help="run folder written by `vbench-suite run` (or a run name/id in the index)")
    p.add_argument("--prompt-id", required=True, metavar="ID", help="the prompt to compare (see the report's gallery)")
    p.add_argument("--sample", type=int, default=0, metavar="K", help="sample index (default 0)")
    p.add_argument("--backend", action="append", dest="backends", default=[], metavar="NAME",
                   help="only these backends, in this order (repeatable; default: every backend the run asked for)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="output .mp4 (default: reports/<run name>/compare/<prompt id>-sample<K>.mp4)")
    p.add_argument("--index", type=Path, default=None, metavar="PATH",
                   help="SQLite index to read the run from when RUN is a run name or id (default: beside it)")
    return p


def _did_you_mean(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def run(args: argparse.Namespace) -> int:
    """Write the video and print its path, size, and each normalisation applied."""
    from vbench_suite.report.build import default_out_dir
    from vbench_suite.report.gallery_cells import OK, gallery_grid
    from vbench_suite.report.load import load_run
    from vbench_suite.video.side_by_side import Tile, compose_side_by_side

    if args.out is not None and args.out.suffix.lower() != ".mp4":
        raise UserError(f"--out {shown(str(args.out))} must end in .mp4 (the side-by-side video is H.264 in MP4).")
    if args.out is not None and args.out.is_dir():
        raise UserError(f"--out {shown(str(args.out))} is a folder; give a file name ending in .mp4.")
    run_data = load_run(args.run_dir, args.index)  # RunFolderError (exit 2) for an unknown run
    grid = gallery_grid(run_data)
    prompts = list(dict.fromkeys(r.prompt_id for r in grid.rows))
    if args.prompt_id not in prompts:
        if not prompts:
            raise UserError(f"Run '{args.run_dir}' has no generation records: nothing to compare.")
        hint = _did_you_mean(args.prompt_id, prompts)
        raise UserError(f"Run '{run_data.name}' has no prompt id {shown(args.prompt_id)}.{hint} Prompt ids there: "
                        f"{', '.join(prompts)}.")
    samples = sorted(r.sample for r in grid.rows if r.prompt_id == args.prompt_id)
    if args.sample not in samples:
        raise UserError(f"Prompt {shown(args.prompt_id)} has no sample {args.sample} in run '{run_data.name}'; samples "
                        f"there: {', '.join(map(str, samples))}. Pass --sample with one of them.")
    backends = args.backends or grid.backends
    for b in backends:
        if b not in grid.backends:
            hint = _did_you_mean(b, grid.backends)
            raise UserError(f"Run '{run_data.name}' has no backend {shown(b)}.{hint} Backends there: "
                            f"{', '.join(grid.backends)}.")
    row = next(r for r in grid.rows if r.prompt_id == args.prompt_id and r.sample == args.sample)
    tiles = []
    for b in backends:
        cell = grid.cell(b, row)
        label = grid.labels[b]
        tiles.append(Tile(label, cell.video) if cell.state == OK else Tile(label, None, cell.text))
    out = args.out
    if out is None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", args.prompt_id).strip("._") or "prompt"
        out = default_out_dir(run_data) / "compare" / f"{safe}-sample{args.sample}.mp4"
    result = compose_side_by_side(tiles, out)
    print(result.path)
    print(f"{result.width}x{result.height}, {result.num_frames} frames at {result.fps:g} fps, "
          f"{len(tiles)} tile(s): {', '.join(t.label for t in tiles)}")
    for note in result.notes:
        print(f"  {note}")
    return 0
