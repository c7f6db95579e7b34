"""`vbench-suite generate`: one generation with one backend, to try it out.

Settings the user leaves out (duration, fps, resolution) come from the backend's own defaults for the request's
mode; settings the user gives are fitted to what the backend accepts, the way `run` fits a suite (each change is
printed on stderr), or refused with `--strict-capabilities`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vbench_suite.cli.options import parse_backend_options, positive_float


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("generate", help="generate one video with one backend",
                       description="Generate one video from a prompt (and optionally an image) with one backend. "
                                   "Unset duration/fps/resolution take the backend's defaults for the mode; given "
                                   "ones are fitted to what the backend accepts (each change printed).")
    p.add_argument("backend", help="backend name (see `list backends`)")
    p.add_argument("prompt", help="text prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image", type=Path, default=None, help="conditioning image (image-to-video)")
    p.add_argument("--mode", choices=("t2v", "i2v", "hybrid", "keyframes"), default=None,
                   help="default: i2v with --image, else t2v")
    p.add_argument("--first-frame", type=Path, default=None, help="required first frame (keyframes mode)")
    p.add_argument("--last-frame", type=Path, default=None, help="required last frame (keyframes mode)")
    p.add_argument("--duration", type=positive_float, default=None,
                   help="seconds (default: the backend's own for the mode)")
    p.add_argument("--fps", type=int, default=None, help="frames per second (default: the backend's own)")
    p.add_argument("--resolution", default=None, help="WIDTHxHEIGHT (default: the backend's own for the mode)")
    p.add_argument("--strict-capabilities", dest="fit_request", action="store_false",
                   help="refuse a setting the backend does not accept instead of adjusting it to the nearest one")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="video file to write (.mp4)")
    return p


def parse_resolution(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720); ConfigError naming the flag otherwise."""
    from vbench_suite.errors import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--resolution {text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < 1 or h < 1:
        raise ConfigError(f"--resolution {text!r} must have positive width and height")
    return w, h


def check_out_path(out: Path) -> None:
    """--out must name a file we can create: not a folder, and not inside something that is a file."""
    from vbench_suite.errors import UserError

    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a video file path such as {out / 'video.mp4'}")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"--out {out}: {parent} is a file, not a folder; choose another path")


def build_request(args: argparse.Namespace, backend: Any) -> tuple[Any, tuple[str, ...]]:
    """The request to send and the adjustments made to the user's settings (UserError when refused)."""
    from vbench_suite.errors import UserError
    from vbench_suite.types import GenerationRequest

    mode = args.mode or ("keyframes" if (args.first_frame or args.last_frame) else "i2v" if args.image else "t2v")
    caps = backend.capabilities()
    limits = caps.for_mode(mode)
    if limits is None:
        raise UserError(f"backend '{args.backend}' does not support mode '{mode}' (it supports "
                        f"{', '.join(caps.modes)}); choose another --mode or backend")
    duration, resolution, fps = limits.defaults()
    request = GenerationRequest(
        prompt_id="cli", prompt=args.prompt, mode=mode, images=(str(args.image),) if args.image else (),
        first_frame=str(args.first_frame) if args.first_frame else None,
        last_frame=str(args.last_frame) if args.last_frame else None,
        duration_s=args.duration if args.duration is not None else duration,
        fps=args.fps if args.fps is not None else fps,
        resolution=parse_resolution(args.resolution) if args.resolution is not None else resolution,
        seed=args.seed)
    notes: tuple[str, ...] = ()
    if args.fit_request:
        request, notes = limits.fit(request)
    unsupported = backend.unsupported_reason(request)
    if unsupported:
        hint = "" if args.fit_request else " (drop --strict-capabilities to fit it to the nearest accepted setting)"
        raise UserError(f"backend '{args.backend}' cannot do this request: {unsupported}{hint}")
    return request, notes


def run(args: argparse.Namespace) -> int:
    import json

    from vbench_suite.backends import GenerationContext, create_backend
    from vbench_suite.errors import BackendNotConfigured, ConfigError, UserError
    from vbench_suite.runner import check_backend_options

    for path in (args.image, args.first_frame, args.last_frame):
        if path is not None and not path.is_file():
            raise UserError(f"image {path} does not exist")
    check_out_path(args.out)
    options = parse_backend_options([f"{args.backend}.{o}" for o in args.option]).get(args.backend, {})
    check_backend_options(args.backend, options)  # a typo names the valid options, like `run`
    try:
        backend = create_backend(args.backend, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"backend '{args.backend}' rejected options {sorted(options)}: {exc}") from None
    try:
        request, notes = build_request(args, backend)
        for note in notes:
            print(f"vbench-suite: adjusted for {args.backend}: {note}", file=sys.stderr)
        reason = backend.not_configured_reason()
        if reason:
            raise BackendNotConfigured(f"backend '{args.backend}' is not configured: {reason}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = backend.generate(request, GenerationContext(out_path=args.out.resolve()))
    finally:
        backend.close()
    summary = {k: v for k, v in result.to_dict().items() if k in ("status", "video_path", "error", "cost_usd",
                                                                   "hardware_s", "latency", "job_id")}
    summary["request"] = {"mode": request.mode, "duration_s": request.duration_s, "fps": request.fps,
                          "resolution": list(request.resolution)}
    print(json.dumps(summary, indent=2))
    if result.status != "ok":
        print(f"vbench-suite: generation {result.status}: {result.error}")
        return 1
    return 0
