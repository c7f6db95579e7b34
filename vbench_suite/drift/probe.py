"""The reproducibility probe: send the same request with the same seed again and see how far the two outputs are.

For each backend, `n` prompts of the run whose video is ok, spread evenly over the suite's order (sample 0 first), are
generated a second time through the runner's own generation stage (budget cap, job records before polling, resume), under a
replay key (`keys.replay_key`) and role `probe`, so a replay never answers from the cache, never counts as benchmark
output, and is paid for like any request (its record line counts towards the run's spend). Each (original, replay)
pair is measured with `drift.distance` and the backend is classified:

- **bit-exact**: every pair has the same size and frame count and not one decoded pixel differs. Any difference
  between two runs' same-seed outputs then means the output changed.
- **seed-faithful within noise**: sizes match and every pair's LPIPS is at most `SEED_FAITHFUL_MAX_LPIPS`. Same
  seed, same video up to small noise (GPU non-determinism, re-encoding): two runs' same-seed outputs can be compared
  pair by pair against this replay noise floor.
- **non-deterministic**: anything else (the seed does not fix the video). Only distribution tests apply.

Why 0.1: measured with this profile on fake-vendor clips (1280x720, 2 s): re-encoding a clip with x264 (crf 23)
moves it by LPIPS 0.000-0.002, fresh pixel noise of sigma 2 or 10 levels on the same content by 0.0001-0.006 and
0.013-0.061, while the same prompt under another seed (a different layout) is 0.12-0.46 away. 0.1 sits above what
noise on the same content gives and below the smallest distance between different samples we measured. A probe of
few pairs cannot prove a backend seed-faithful; it can show it is not (one pair above the threshold suffices).

The summary goes into run.json (`probe.<backend>`): class, reason, the pairs with their distances, the replay LPIPS
values (the noise floor of the drift test), the profile and threshold, and what the replays billed.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from vbench_suite.backends.base import Backend
from vbench_suite.drift.distance import DRIFT_LPIPS_PROFILE, PairMeter
from vbench_suite.keys import replay_key
from vbench_suite.runner.budget import BudgetGate
from vbench_suite.runner.generate import run_generation
from vbench_suite.runner.plan import WorkItem
from vbench_suite.store.run_folder import RunFolder, utc_now

log = logging.getLogger(__name__)

PROBE_ROLE = "probe"
"""`role` of replay records in generations.jsonl (not benchmark output: scores, tables and reports leave them out)."""
DEFAULT_PROBE_PROMPTS = 3
"""Prompts replayed per backend by `--probe` without a number (3 replays: enough for the drift test's floor to allow
p below 0.003 against 12 canary pairs)."""
SEED_FAITHFUL_MAX_LPIPS = 0.1
"""Largest replay LPIPS (drift profile) of a seed-faithful backend; see the module docstring for why."""
BIT_EXACT, SEED_FAITHFUL, NON_DETERMINISTIC, UNKNOWN = ("bit-exact", "seed-faithful within noise",
                                                       "non-deterministic", "unknown")
REPRODUCIBLE_CLASSES: frozenset[str] = frozenset({BIT_EXACT, SEED_FAITHFUL})
"""Classes for which two runs' same-seed outputs are compared pair by pair."""


def probe_targets(folder: RunFolder, work: Sequence[WorkItem], n: int) -> dict[str, list[WorkItem]]:
    """backend -> up to `n` benchmark work items to replay: among the prompts whose current record is ok with its
    video on disk (lowest sample of each), `n` spread evenly over the suite's order (first, ..., last), so the replay
    noise floor is not drawn from one corner of the suite (the drift test assumes the probed prompts' replay noise is
    typical of all prompts)."""
    records = folder.generations()
    prompt_order: dict[str, int] = {}
    for w in work:
        prompt_order.setdefault(w.item.id, len(prompt_order))
    eligible: dict[str, list[WorkItem]] = {}
    benchmark = [w for w in work if w.role == "benchmark"]
    for w in sorted(benchmark, key=lambda w: (w.backend, prompt_order[w.item.id], w.sample)):
        chosen = eligible.setdefault(w.backend, [])
        if any(c.item.id == w.item.id for c in chosen):
            continue
        result = (records.get(w.key) or {}).get("result") or {}
        video = folder.resolve(result.get("video_path"))
        if result.get("status") == "ok" and video is not None and video.is_file():
            chosen.append(w)
    return {b: [items[i] for i in spread(len(items), n)] for b, items in eligible.items()}


def spread(total: int, n: int) -> list[int]:
    """`min(n, total)` distinct indices spread evenly over range(total), first and last included (n >= 2)."""
    if total <= n:
        return list(range(total))
    if n == 1:
        return [0]
    return sorted({round(i * (total - 1) / (n - 1)) for i in range(n)})


def replay_items(targets: dict[str, list[WorkItem]]) -> list[WorkItem]:
    """The replays of `targets`: the same request (seed included) under the replay key, role `probe`."""
    return [dataclasses.replace(w, key=replay_key(w.key), role=PROBE_ROLE)
            for items in targets.values() for w in items]


def run_probe(folder: RunFolder, backends: dict[str, Backend], work: Sequence[WorkItem], n: int, *,
              budget: BudgetGate, concurrency: int | None, suite_name: str, suite_version: str,
              meter: PairMeter | None = None) -> dict[str, dict[str, Any]]:
    """Replay `n` prompts per backend (see the module docstring) and return {backend: probe summary}."""
    targets = probe_targets(folder, work, n)
    replays = replay_items(targets)
    if replays:
        # Never copied from another run: a replay must be a new request.
        run_generation(folder, backends, replays, suite_name=suite_name, suite_version=suite_version,
                       budget=budget, concurrency=concurrency, index_path=None, reuse="never")
    meter = meter or PairMeter()
    records = folder.generations()
    billed = _billed_by_key(folder)
    out: dict[str, dict[str, Any]] = {}
    for backend in backends:
        items = targets.get(backend, [])
        pairs = [_pair(folder, records, w, meter) for w in items]
        out[backend] = summarise(pairs, backend=backend, fingerprint=backends[backend].fingerprint().to_dict(),
                                 billed_usd=sum(billed.get(replay_key(w.key), 0.0) for w in items))
    return out


def _billed_by_key(folder: RunFolder) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in folder.all_generations():
        out[r["key"]] = out.get(r["key"], 0.0) + float(r.get("billed_usd") or 0.0)
    return out


def _pair(folder: RunFolder, records: dict[str, dict[str, Any]], w: WorkItem, meter: PairMeter) -> dict[str, Any]:
    from vbench_suite.errors import MetricUnavailable, VideoError

    key = replay_key(w.key)
    entry: dict[str, Any] = {"prompt_id": w.item.id, "sample": w.sample, "key": w.key, "replay_key": key}
    rep = records.get(key)
    if rep is None:
        return entry | {"status": "not sent (budget cap)"}
    result = rep.get("result") or {}
    if result.get("status") != "ok":
        return entry | {"status": f"replay {result.get('status')}: {result.get('error') or 'no reason given'}"}
    original = folder.resolve((records[w.key].get("result") or {}).get("video_path"))
    replay = folder.resolve(result.get("video_path"))
    try:
        d = meter.measure(str(original), str(replay))
    except MetricUnavailable as exc:
        return entry | {"status": f"not measured: {exc}"}
    except VideoError as exc:
        return entry | {"status": f"not measured: {exc}"}
    return entry | {"status": "ok", **d.to_dict()}


def classify(pairs: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(class, one-sentence reason) from measured pairs (entries of `_pair` with status 'ok')."""
    ok = [p for p in pairs if p.get("status") == "ok"]
    if not ok:
        why = "; ".join(sorted({str(p.get("status")) for p in pairs})) or "no ok output to replay"
        return UNKNOWN, f"no pair could be measured ({why})"
    if all(p["same_size"] and p["max_abs_diff"] == 0 for p in ok):
        return BIT_EXACT, f"{len(ok)} replay(s) decoded to identical pixels"
    resized = [p for p in ok if not p["same_size"]]
    if resized:
        return NON_DETERMINISTIC, (f"a replay of {resized[0]['prompt_id']} differs in size or length "
                                   f"({resized[0]['frames_a']} vs {resized[0]['frames_b']} frames)")
    worst = max(ok, key=lambda p: p["lpips"])
    if worst["lpips"] <= SEED_FAITHFUL_MAX_LPIPS:
        return SEED_FAITHFUL, (f"{len(ok)} replay(s) differ, by LPIPS at most {worst['lpips']:.4f} "
                               f"(threshold {SEED_FAITHFUL_MAX_LPIPS})")
    return NON_DETERMINISTIC, (f"a replay of {worst['prompt_id']} is LPIPS {worst['lpips']:.4f} away "
                               f"(threshold {SEED_FAITHFUL_MAX_LPIPS}): the seed does not fix the video")


def summarise(pairs: list[dict[str, Any]], *, backend: str, fingerprint: dict[str, Any],
              billed_usd: float) -> dict[str, Any]:
    """The run.json record of one backend's probe."""
    cls, reason = classify(pairs)
    return {"class": cls, "reason": reason, "pairs": pairs, "at": utc_now(), "fingerprint": fingerprint,
            "replay_lpips": [float(p["lpips"]) for p in pairs if p.get("status") == "ok"],
            "lpips_profile": DRIFT_LPIPS_PROFILE, "seed_faithful_max_lpips": SEED_FAITHFUL_MAX_LPIPS,
            "billed_usd": float(billed_usd), "backend": backend}
