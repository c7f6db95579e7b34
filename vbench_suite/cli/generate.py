"""`vbench-suite generate`: one generation with one backend, to try it out."""
from __future__ import annotations

import argparse
from pathlib import Path

from vbench_suite.cli.options import parse_backend_options, positive_float


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("generate", help="generate one video with one backend",
                       description="Generate one video from a prompt (and optionally an image) with one backend.")
    p.add_argument("backend", help="backend name (see `list backends`)")
    p.add_argument("prompt", help="text prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image", type=Path, default=None, help="conditioning image (image-to-video)")
    p.add_argument("--mode", choices=("t2v", "i2v", "hybrid", "keyframes"), default=None,
                   help="default: i2v with --image, else t2v")
    p.add_argument("--first-frame", type=Path, default=None, help="required first frame (keyframes mode)")
    p.add_argument("--last-frame", type=Path, default=None, help="required last frame (keyframes mode)")
    p.add_argument("--duration", type=positive_float, default=2.0, help="seconds (default 2)")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--resolution", default="64x64", help="WIDTHxHEIGHT (default 64x64)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="where to write the video (.mp4)")
    return p


def run(args: argparse.Namespace) -> int:
    import json

    from vbench_suite.backends import GenerationContext, create_backend
    from vbench_suite.errors import BackendNotConfigured, ConfigError, UserError
    from vbench_suite.types import GenerationRequest

    for path in (args.image, args.first_frame, args.last_frame):
        if path is not None and not path.is_file():
            raise UserError(f"image {path} does not exist")
    try:
        w, h = (int(v) for v in args.resolution.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--resolution {args.resolution!r} is not WIDTHxHEIGHT, e.g. 64x64") from None
    options = parse_backend_options([f"{args.backend}.{o}" for o in args.option]).get(args.backend, {})
    try:
        backend = create_backend(args.backend, **options)
    except TypeError as exc:
        raise ConfigError(f"backend '{args.backend}' rejected options {sorted(options)}: {exc}") from None
    reason = backend.not_configured_reason()
    if reason:
        raise BackendNotConfigured(f"backend '{args.backend}' is not configured: {reason}")
    mode = args.mode or ("keyframes" if (args.first_frame or args.last_frame) else "i2v" if args.image else "t2v")
    request = GenerationRequest(
        prompt_id="cli", prompt=args.prompt, mode=mode, images=(str(args.image),) if args.image else (),
        first_frame=str(args.first_frame) if args.first_frame else None,
        last_frame=str(args.last_frame) if args.last_frame else None,
        duration_s=args.duration, fps=args.fps, resolution=(w, h), seed=args.seed)
    unsupported = backend.capabilities().check(request)
    if unsupported:
        raise UserError(f"backend '{args.backend}' cannot do this request: {unsupported}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = backend.generate(request, GenerationContext(out_path=args.out.resolve()))
    finally:
        backend.close()
    summary = {k: v for k, v in result.to_dict().items() if k in ("status", "video_path", "error", "cost_usd",
                                                                   "latency", "job_id")}
    print(json.dumps(summary, indent=2))
    if result.status != "ok":
        print(f"vbench-suite: generation {result.status}: {result.error}")
        return 1
    return 0
