"""`vbench-suite breakeven`: the monthly volume above which self-hosting beats an API, with the arithmetic.

Prices and throughput come from flags, or are measured from a run (`--from-run`); flags given explicitly win over
measured values. Every rate is printed with its source, and a verdict is given only when the API's clips and the
self-hosted clips are like for like (same resolution and duration class); otherwise the comparison is normalised per
megapixel-second and says 'No verdict'. Heavy imports happen in `run` only.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from vbench_suite.cli.options import non_negative_float, positive_int
from vbench_suite.errors import UserError

if TYPE_CHECKING:  # the report package imports pandas; the CLI imports it only when the command runs
    from vbench_suite.report.economics import RunEconomics, VideoFormat


def _volumes(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--volumes takes comma-separated numbers, got '{text}'") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"--volumes takes non-negative numbers, got '{text}'")
    return values


def _resolution(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got '{text}'")
    return int(width), int(height)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `breakeven`."""
    p = subparsers.add_parser(
        "breakeven", help="monthly volume above which self-hosting is cheaper than an API",
        description="Volume unit: 10-second units of video per month. Self-hosting cost is either a flat "
                    "--selfhost-usd-per-month or --gpu-usd-per-hour × --gpus × --hours-per-month.")
    p.add_argument("--api-usd-per-10s", type=non_negative_float, default=None, metavar="USD",
                   help="API price per 10 s of video (default with --from-run: the run's measured cost per 10 s)")
    p.add_argument("--selfhost-usd-per-month", type=non_negative_float, default=None, metavar="USD",
                   help="flat monthly self-hosting cost")
    p.add_argument("--gpu-usd-per-hour", type=non_negative_float, default=None, metavar="USD",
                   help="price of one hour of the machine the throughput is for, a GPU unless --from-run says "
                        "otherwise (monthly cost = this × --gpus × --hours-per-month; default with --from-run: the "
                        "rate in the local backend's records, printed with its source)")
    p.add_argument("--gpus", type=positive_int, default=None,
                   help="machines (GPUs unless --from-run says otherwise) in the self-hosted cluster (default with "
                        "--from-run: the GPUs one generation of the self-hosted backend held, else 1)")
    p.add_argument("--hours-per-month", type=non_negative_float, default=730.0,
                   help="paid hours per month (default 730)")
    p.add_argument("--selfhost-usd-per-10s", type=non_negative_float, default=0.0, metavar="USD",
                   help="variable self-hosting cost per 10 s of video (default 0)")
    p.add_argument("--videos-per-gpu-hour", type=non_negative_float, default=None,
                   help="self-hosted throughput (default with --from-run: measured on the run's local backend)")
    p.add_argument("--video-seconds", type=non_negative_float, default=None,
                   help="length of the videos the throughput counts (default: the run's, else 10)")
    p.add_argument("--from-run", type=Path, default=None, metavar="RUN_DIR",
                   help="take the API price and throughput measured in this run folder")
    p.add_argument("--api-backend", default=None, help="with --from-run: which remote backend's price to use")
    p.add_argument("--selfhost-backend", default=None, help="with --from-run: which local backend's throughput to use")
    p.add_argument("--api-resolution", type=_resolution, default=None, metavar="WxH",
                   help="resolution the API price is for (default with --from-run: the run's)")
    p.add_argument("--api-video-seconds", type=non_negative_float, default=None, metavar="S",
                   help="clip length the API price is for (default with --from-run: the run's)")
    p.add_argument("--selfhost-resolution", type=_resolution, default=None, metavar="WxH",
                   help="resolution of the self-hosted clips the throughput counts "
                        "(default with --from-run: the run's)")
    p.add_argument("--volumes", type=_volumes, default=None, metavar="V1,V2,...",
                   help="monthly volumes (10-s units) for the cost table (default: 0 to twice the break-even)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="also write breakeven.md/.html/.csv and the plot into DIR")
    return p


def _format(resolution: tuple[int, int] | None, seconds: float | None,
            measured: VideoFormat | None) -> VideoFormat | None:
    """A VideoFormat from flags, falling back on the run's measured format field by field; None if unknown."""
    from vbench_suite.report.economics import VideoFormat

    width, height = resolution or ((measured.width, measured.height) if measured is not None else (0, 0))
    secs = seconds if seconds is not None else (measured.seconds if measured is not None else None)
    return VideoFormat(width, height, secs) if width and secs else None


def _measured_lines(args: argparse.Namespace, econ: RunEconomics, api_label: str) -> list[str]:
    """What else `--from-run` took from the run, and the assumptions left (each with the flag that changes it)."""
    lines = []
    if api_label in econ.api_notes:
        lines.append(econ.api_notes[api_label])
    if econ.selfhost_backend is not None and econ.hardware_s_per_10s is not None and args.videos_per_gpu_hour is None:
        unit = "GPU-seconds" if econ.gpus else "hardware seconds" if econ.device != "cpu" else "CPU-seconds"
        made = f" of {econ.selfhost_format.width}x{econ.selfhost_format.height}" if econ.selfhost_format else ""
        held = f" (wall time × {econ.gpus} GPU(s) per generation)" if econ.gpus else ""
        lines.append(f"Measured in run {args.from_run}: {econ.selfhost_backend} used {econ.hardware_s_per_10s:.4g} "
                     f"{unit} per 10 s of video{made}{held}")
    if args.gpus is None and econ.gpus:
        lines.append(f"Cluster size: {econ.gpus} GPU(s), what one generation of {econ.selfhost_backend} held in run "
                     f"{args.from_run} (change with --gpus)")
    if econ.selfhost_backend is not None:
        lines.append(f"Assumed: the self-hosted machines are paid for {args.hours_per_month:g} h a month "
                     "(--hours-per-month) and cost nothing per video beyond their hourly price "
                     f"(--selfhost-usd-per-10s {args.selfhost_usd_per_10s:g}); throughput is as measured on the run's "
                     "hardware, per-video overheads included")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the verdict, the arithmetic and the cost table; write files when --out is given."""
    import numpy as np

    from vbench_suite.report.build import breakeven_cost_table, write_breakeven
    from vbench_suite.report.economics import BreakEvenInputs, RunEconomics, compute_breakeven, economics_from_run
    from vbench_suite.report.load import load_run
    from vbench_suite.report.render import table_markdown

    api, api_label = args.api_usd_per_10s, "API"
    vph, video_s, rate = args.videos_per_gpu_hour, args.video_seconds, args.gpu_usd_per_hour
    sources: list[str] = []
    econ = RunEconomics({}, None, None, None, None)
    machine, api_measured = "GPU", None
    if args.from_run is not None:
        econ = economics_from_run(load_run(args.from_run), args.api_backend, args.selfhost_backend)
        if api is None:
            if not econ.api_usd_per_10s:
                raise UserError(f"Run '{args.from_run}' has no paid remote backend to take a price from; "
                                "give --api-usd-per-10s.")
            if len(econ.api_usd_per_10s) > 1:
                raise UserError("Run has several paid remote backends (" + ", ".join(
                    f"{k}: ${v:.4g}/10 s" for k, v in sorted(econ.api_usd_per_10s.items()))
                                + "); choose one with --api-backend NAME.")
            api_label, api = next(iter(econ.api_usd_per_10s.items()))
            api_measured = econ.api_formats.get(api_label)
            sources.append(f"API price measured in run {args.from_run}: {api_label} = ${api:.4g} per 10 s")
        if econ.selfhost_backend is not None:
            machine = econ.machine
        if vph is None and econ.videos_per_gpu_hour is not None:
            vph = econ.videos_per_gpu_hour
            sources.append(f"Throughput measured in run {args.from_run} on {econ.selfhost_backend}: "
                           f"{vph:.4g} videos per hour of {machine}")
            if video_s is None:
                video_s = econ.video_seconds
        if rate is None and args.selfhost_usd_per_month is None and econ.gpu_usd_per_hour is not None:
            rate = econ.gpu_usd_per_hour
            sources.append(f"Self-hosting rate: {machine} at ${rate:.4g}/h ({econ.rate_source})")
        sources += _measured_lines(args, econ, api_label)
    if api is None:
        raise UserError("Give the API price: --api-usd-per-10s USD, or --from-run RUN_DIR with a paid remote backend.")
    if rate is not None and rate == args.gpu_usd_per_hour:
        sources.append(f"Self-hosting rate: ${rate:.4g} per hour of one {machine} (given by --gpu-usd-per-hour)")
    own_measured = econ.selfhost_format if args.from_run is not None and vph == econ.videos_per_gpu_hour else None
    gpus = args.gpus or (econ.gpus if args.from_run is not None and vph == econ.videos_per_gpu_hour else None) or 1
    inputs = BreakEvenInputs(
        api_usd_per_10s=api, selfhost_usd_per_month=args.selfhost_usd_per_month,
        gpu_usd_per_hour=rate, gpus=gpus, hours_per_month=args.hours_per_month,
        selfhost_usd_per_10s=args.selfhost_usd_per_10s, videos_per_gpu_hour=vph,
        video_seconds=video_s if video_s else 10.0, api_label=api_label, sources=tuple(sources), machine=machine,
        selfhost_label=econ.selfhost_backend or "self-host",
        api_format=_format(args.api_resolution, args.api_video_seconds, api_measured),
        selfhost_format=_format(args.selfhost_resolution, video_s, own_measured))
    volumes = np.asarray(args.volumes, dtype=np.float64) if args.volumes else None
    result = compute_breakeven(inputs, volumes)
    print(result.verdict)
    print()
    print("\n".join(result.arithmetic))
    print()
    print(table_markdown(breakeven_cost_table(result)))
    if args.out is not None:
        print()
        print(write_breakeven(result, args.out))
    return 0
