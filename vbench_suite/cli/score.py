"""`vbench-suite score VIDEOS [--reference REF] [--metrics fvd,lpips,clip] [--json PATH]`: score videos made anywhere.

VIDEOS and REF are folders (searched recursively) or single files. Layout conventions:
- a sub-folder of VIDEOS is a backend (videos directly in VIDEOS belong to backend ''); FVD is computed against REF,
  or, without REF, between each pair of backends;
- a video is paired with the REF file of the same stem (same relative folder first) for `lpips_ref`;
- `NAME-<i>.ext` (VBench's naming) is sample i of prompt NAME, so `lpips_diversity` can group samples;
- prompt text for `clipsim`: `--prompts FILE.json` ({stem or prompt id: text}), else a `<stem>.txt` beside the
  video, else (with `--prompt-from-filename`) the prompt id itself.

Output: one row per metric and group (sub-folder; FVD: each compared pair), never values pooled across groups; then
every file a metric skipped, with its reason. Exit 0 when anything was scored; 2 when nothing was because no video
file could be used (a user error naming the folder); 1 when nothing was for other reasons (each metric's reason is
printed). Items' `key` is the file's path relative to VIDEOS, so each record names its file.
Importing this module does not import torch.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vbench_suite.device import DEVICE_CHOICES
from vbench_suite.errors import UserError

DEFAULT_METRICS = "fvd,lpips,clip"
TOP_GROUP = "(top folder)"
"""Group label of videos lying directly in VIDEOS (backend '')."""
MAX_REASON_CHARS = 200
"""A skipped file's reason is cut to this length in the terminal (the JSON keeps it whole)."""
_SAMPLE_RE = re.compile(r"^(?P<prompt>.+)-(?P<i>\d+)$")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score", help="score a folder of existing videos (FVD, LPIPS, CLIPSIM)",
        description="Score videos made anywhere against a reference folder. Sub-folders of VIDEOS are backends.")
    p.add_argument("videos", metavar="VIDEOS", help="folder of videos (or one video file)")
    p.add_argument("--reference", metavar="REF", default=None,
                   help="folder of reference/real videos (or one file): FVD reference set and lpips_ref pairs")
    p.add_argument("--metrics", default=DEFAULT_METRICS,
                   help=f"comma-separated metric names or groups (default {DEFAULT_METRICS}; groups: lpips, clip)")
    p.add_argument("--json", metavar="PATH", default=None, help="write all results as one JSON object to PATH")
    p.add_argument("--prompts", metavar="FILE", default=None, help="JSON object {video stem or prompt id: prompt text}")
    p.add_argument("--prompt-from-filename", action="store_true",
                   help="use the prompt id from the file name as the prompt text when no other text is found")
    p.add_argument("--clip-weights", metavar="FILE", default=None,
                   help="local CLIP weights file (else $VBENCH_CLIP_WEIGHTS or open_clip's cache)")
    p.add_argument("--fvd-profile", default="tf", choices=("tf", "crop"),
                   help="FVD preprocessing profile (tf: original TF FVD, default)")
    p.add_argument("--lpips-net", default="alex", choices=("alex", "vgg"), help="LPIPS trunk (default alex)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where scoring runs: auto (CUDA when present, default), cpu or cuda")
    p.add_argument("--cache-dir", default=None, help="feature cache (default $VBENCH_CACHE_DIR or the user cache dir)")
    return p


def _video_files(root: Path) -> list[Path]:
    from vbench_suite.video.read import READABLE_SUFFIXES

    if root.is_file():
        return [root]
    if not root.is_dir():
        raise UserError(f"{root}: no such file or folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES
                  and not p.name.startswith("."))


def _find_reference(video: Path, rel: Path, ref_root: Path | None, ref_files: Sequence[Path]) -> str | None:
    if ref_root is None:
        return None
    if ref_root.is_file():
        return str(ref_root)
    same_dir = [f for f in ref_files if f.stem == video.stem and f.parent == ref_root / rel.parent]
    anywhere = [f for f in ref_files if f.stem == video.stem]
    hit = same_dir or anywhere
    return str(hit[0]) if hit else None


def build_items(videos: Path, reference: Path | None, prompts: dict[str, str], prompt_from_filename: bool) -> list[Any]:
    """One ScoringItem per video file under `videos` (see the module docstring for the conventions)."""
    from vbench_suite.metrics.base import ScoringItem

    files = _video_files(videos)
    if not files:
        raise UserError(f"{videos}: no video files found (looked for mp4/webm/mov/gif/npy/...)")
    ref_files = _video_files(reference) if reference is not None and reference.is_dir() else []
    items = []
    for f in files:
        rel = f.relative_to(videos) if videos.is_dir() else Path(f.name)
        backend = rel.parts[0] if len(rel.parts) > 1 else ""
        m = _SAMPLE_RE.match(f.stem)
        prompt_id, sample = (m["prompt"], int(m["i"])) if m else (f.stem, 0)
        text = prompts.get(f.stem) or prompts.get(prompt_id)
        sidecar = f.with_suffix(".txt")
        if text is None and sidecar.is_file():
            text = sidecar.read_text(encoding="utf-8").strip()
        if text is None and prompt_from_filename:
            text = prompt_id
        items.append(ScoringItem(video_path=str(f), key=rel.as_posix(), backend=backend, prompt_id=prompt_id,
                                 prompt=text or "", sample=sample,
                                 reference_path=_find_reference(f, rel, reference, ref_files)))
    return items


def _finite(v: Any) -> Any:
    """NaN / inf -> None, recursively: the JSON file must be standard JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _group(backend: str) -> str:
    return backend or TOP_GROUP


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def group_rows(recs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per group of one metric's records: per backend for per-video records (mean of its ok videos), and
    one per set or pair record (FVD: 'backend vs reference' / 'a vs b')."""
    rows: list[dict[str, Any]] = []
    videos = [r for r in recs if r.scope == "video"]
    # a set metric (FVD) has per-video records only for the files it skipped: its groups are its set records
    per_video = not any(r.scope != "video" and (r.backend or r.other) for r in recs)
    for backend in sorted({r.backend for r in videos}) if per_video else []:
        mine = [r for r in videos if r.backend == backend]
        ok = [r.value for r in mine if r.status == "ok" and r.value is not None]
        rows.append({"group": _group(backend), "other": None, "value": _mean(ok), "n": len(ok), "n_ref": None,
                     "n_error": sum(r.status == "error" for r in mine), "ci_low": None, "ci_high": None,
                     "status": "ok" if ok else "error",
                     "reason": None if ok else "no video of this group could be scored (see skipped files)"})
    for r in recs:
        if r.scope == "video" or (r.status != "ok" and not r.backend and not r.other and videos):
            continue  # a metric-wide note beside per-video rows adds nothing to them
        rows.append({"group": _group(r.backend) if r.backend or r.other else "(all)", "other": r.other or None,
                     "value": r.value if r.status == "ok" else None, "n": r.n,
                     "n_ref": r.n_ref if r.status == "ok" else None, "n_error": None,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "status": r.status, "reason": r.reason})
    return rows


def summarize(records: Sequence[Any], metric_names: Sequence[str]) -> dict[str, Any]:
    """One JSON-ready object per metric: `groups` (one row per sub-folder or compared pair), `value` (only when there
    is a single group: never a pool of several), profile, counts, set records and per-video rows."""
    out: dict[str, Any] = {}
    for name in metric_names:
        recs = [r for r in records if r.metric == name]
        rows = [r.to_dict() for r in recs if r.scope == "video"]
        sets = [r for r in recs if r.scope != "video"]
        ok_rows = [r for r in recs if r.scope == "video" and r.status == "ok"]
        ok_sets = [r for r in sets if r.status == "ok"]
        groups = group_rows(recs)
        entry: dict[str, Any] = {"value": None, "profile": next((r.profile for r in recs if r.profile), ""),
                                 "status": "ok", "reason": None, "groups": groups}
        if name == "fvd":
            main = ok_sets[0] if len(ok_sets) == 1 and len(sets) == 1 else (sets[0] if len(sets) == 1 else None)
            extra = main.to_dict()["extra"] if main else {}
            entry.update(value=main.value if main and main.status == "ok" else None,
                         status=main.status if main else ("ok" if ok_sets else "error"),
                         reason=main.reason if main else (None if ok_sets else "no FVD could be computed"),
                         n_fake=main.n if main else None, n_real=main.n_ref if main else None,
                         ci_low=main.ci_low if main else None, ci_high=main.ci_high if main else None,
                         fd_inf=extra.get("fd_inf"), records=[r.to_dict() for r in sets])
        elif ok_rows or ok_sets:
            vals = [r.value for r in (ok_rows or ok_sets) if r.value is not None]
            single = len([g for g in groups if g["status"] == "ok"]) <= 1
            entry.update(value=sum(vals) / len(vals) if single else None, n=len(vals),
                         n_error=sum(r.status == "error" for r in recs))
            if sets:
                entry["records"] = [r.to_dict() for r in sets]
        else:
            first = next((r for r in recs if r.scope != "video"), recs[0] if recs else None)
            entry.update(status=first.status if first else "error",
                         reason=first.reason if first else "no records", n=0,
                         n_error=sum(r.status == "error" for r in recs))
            if sets:
                entry["records"] = [r.to_dict() for r in sets]
        entry["rows"] = rows
        out[name] = _finite(entry)
    return out


def skipped_files(records: Sequence[Any], items: Sequence[Any]) -> list[dict[str, Any]]:
    """Every file some metric could not use: [{'file', 'reason', 'metrics'}], one per (file, reason), in file
    order. The reason drops a leading copy of the file's path."""
    paths = {it.key: it.video_path for it in items}
    found: dict[tuple[str, str], list[str]] = {}
    for r in records:
        if r.scope != "video" or r.status != "error" or r.key not in paths:
            continue
        reason = str(r.reason or "unknown problem")
        for prefix in (paths[r.key] + ": ", r.key + ": "):
            reason = reason.removeprefix(prefix)
        found.setdefault((r.key, reason), [])
        if r.metric not in found[(r.key, reason)]:
            found[(r.key, reason)].append(r.metric)
    order = {it.key: i for i, it in enumerate(items)}
    return [{"file": key, "reason": reason, "metrics": metrics}
            for (key, reason), metrics in sorted(found.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))]


def _clip_text(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _print_table(summary: dict[str, Any]) -> None:
    width = max([len("group")] + [len(_group_label(g)) for e in summary.values() for g in e["groups"]])
    print(f"{'metric':<16} {'group':<{width}} {'value':>12}  {'n':>9}  profile / note")
    for name, e in summary.items():
        groups = e["groups"] or [{"group": "(all)", "other": None, "value": None, "n": 0, "n_ref": None,
                                  "status": e["status"], "reason": e["reason"]}]
        for g in groups:
            value = "-" if g["value"] is None else f"{g['value']:.4f}"
            n = f"{g['n']}/{g['n_ref']}" if g.get("n_ref") is not None else str(g.get("n", ""))
            note = e["profile"] if g["status"] == "ok" else f"{g['status']}: {g['reason']}"
            print(f"{name:<16} {_group_label(g):<{width}} {value:>12}  {n:>9}  {_clip_text(note, 160)}")


def _group_label(g: dict[str, Any]) -> str:
    return f"{g['group']} vs {g['other']}" if g.get("other") else str(g["group"])


def _print_skipped(skipped: Sequence[dict[str, Any]], n_files: int) -> None:
    if not skipped:
        return
    n_skipped = len({s["file"] for s in skipped})
    print(f"\nskipped {n_skipped} of {n_files} file(s) (left out of n for the metrics named):")
    for s in skipped:
        print(f"  {s['file']}: {_clip_text(s['reason'], MAX_REASON_CHARS)} [{', '.join(s['metrics'])}]")


def _anything_scored(records: Sequence[Any]) -> bool:
    return any(r.status == "ok" for r in records)


def run(args: argparse.Namespace) -> int:
    from vbench_suite.device import resolve_device
    from vbench_suite.metrics import resolve_metric_names, score_items
    from vbench_suite.metrics.base import ScoringContext
    from vbench_suite.metrics.common import default_cache_dir

    names = resolve_metric_names(args.metrics.split(","))
    videos = Path(args.videos)
    reference = Path(args.reference) if args.reference else None
    if reference is not None and not reference.exists():
        raise UserError(f"--reference {reference}: no such file or folder")
    prompts: dict[str, str] = {}
    if args.prompts:
        try:
            prompts = {str(k): str(v) for k, v in json.loads(Path(args.prompts).read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise UserError(f"--prompts {args.prompts}: expected a JSON object {{stem: prompt}} ({exc})") from exc
    items = build_items(videos, reference, prompts, args.prompt_from_filename)
    ref_videos = [str(p) for p in _video_files(reference)] if reference is not None else []
    options: dict[str, dict[str, Any]] = {"fvd": {"profile": args.fvd_profile},
                                          "clipsim": {"weights": args.clip_weights} if args.clip_weights else {}}
    for n in ("lpips_ref", "lpips_temporal", "lpips_diversity"):
        options[n] = {"net": args.lpips_net}
    ctx = ScoringContext(cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
                         device=resolve_device(args.device),
                         reference_videos=ref_videos, reference_id=str(reference) if reference else "",
                         options=options)
    records = score_items(items, names, ctx)
    summary = summarize(records, names)
    skipped = skipped_files(records, items)
    _print_table(summary)
    _print_skipped(skipped, len(items))
    if args.json:
        payload = {"videos": str(videos), "reference": str(reference) if reference else None,
                   "n_videos": len(items), "metrics": names, "skipped": skipped, **summary}
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_finite(payload), indent=2, allow_nan=False, default=str) + "\n",
                        encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    if _anything_scored(records):
        return 0
    if len({s["file"] for s in skipped}) == len(items):
        raise UserError(f"{videos}: nothing scored: none of its {len(items)} video file(s) could be used (each is "
                        "listed above with its reason); give readable videos (mp4/webm/mov/gif/npy) of enough "
                        "frames.")
    print("vbench-suite: nothing scored: no metric produced a value (each metric's reason is in the table above).",
          file=sys.stderr)
    return 1
