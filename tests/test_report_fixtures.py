"""Synthetic but structurally real run folders for the report tests (written with the real dataclasses' to_dict).

`make_run` writes run.json, generations.jsonl and scores.jsonl the way the runner does (docs/architecture.md):
three backends (a local DiT with latency stages and hardware seconds, a paid remote vendor, a simulated remote vendor),
two prompt categories, LPIPS per video, CLIP unavailable, shapes adherence for the local backend, and FVD set records.
Every number is a simple function of the arguments so tests can compute the expected values by hand.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vbench_suite.types import Fingerprint, GenerationRequest, GenerationResult, Latency, ScoreRecord

CATEGORIES = ("motion", "objects")
PROMPTS_PER_CATEGORY = 8
LOCAL, REMOTE, SIM = "dit-local", "runway", "pika"
GPU_USD_PER_HOUR = 2.0
LOCAL_HW_S = 36.0          # per video → 100 videos per hardware-hour
LOCAL_VIDEO_S = 2.0        # → cost per video 0.02 USD, per 10 s 0.10 USD
REMOTE_USD_PER_VIDEO = 0.5
REMOTE_VIDEO_S = 5.0       # → 1.00 USD per 10 s
SIM_USD_PER_VIDEO = 0.3    # → 0.60 USD per 10 s
CLIP_REASON = "CLIP weights not found offline: download ViT-B-32 openai weights and pass --clip-weights PATH"


@dataclass
class RunSpec:
    """Knobs the regression tests turn. Defaults give the 'baseline' run."""

    name: str = "q1"
    suite_version: str = "1.0"
    remote_version: str = "2026-01-01"
    lpips_shift: dict[str, float] = field(default_factory=dict)
    """Added to every LPIPS value of a backend (LPIPS: lower is better, so + is a regression)."""
    lpips_profile: str = "lpips-alex-v0.1"
    fvd_n: int = 16
    fvd_value: dict[str, float] = field(default_factory=lambda: {LOCAL: 300.0, REMOTE: 150.0, SIM: 200.0})
    refused_remote: tuple[int, ...] = (3,)
    """Prompt indexes (0..15) the remote vendor refuses."""
    failed_sim: tuple[int, ...] = (5, 6)
    lpips_jitter: float = 0.0
    """Added to even-indexed prompts' LPIPS and subtracted from odd ones: noise with no net change."""
    lpips_higher_is_better: bool = False
    """What the LPIPS records declare (flip it to check that reports follow the records, not a built-in list)."""
    prompt_suffix: str = ""
    """Appended to every prompt id (a non-empty suffix makes prompts unmatched across runs)."""
    fvd_profile: str = "fvd-i3d-tf-224-16f"
    backends: tuple[str, ...] = (LOCAL, REMOTE, SIM)
    suite_name: str = "smoke"
    hardware: dict | None = field(default_factory=lambda: {"cpu": "2 cores"})
    """run.json "hardware" (None: not recorded)."""
    meta_extra: dict = field(default_factory=dict)
    """Merged into run.json (e.g. skipped_backends, over_budget, requested_backends, budget_usd)."""
    diversity: bool = False
    """Write per-prompt `lpips_diversity` set records (one per backend and prompt, plus reference-shapes ones)."""
    reused_from: dict[str, str] = field(default_factory=dict)
    """backend -> run folder its generation records say they were copied from."""


def prompt_ids(suffix: str = "") -> list[tuple[str, str]]:
    return [(f"{c}-{i:03d}{suffix}", c) for c in CATEGORIES for i in range(PROMPTS_PER_CATEGORY)]


def lpips_value(backend: str, index: int, shift: float = 0.0) -> float:
    base = {LOCAL: 0.40, REMOTE: 0.20, SIM: 0.30}[backend]
    return round(base + 0.01 * (index % 5) + shift, 6)


def diversity_value(backend: str, index: int) -> float:
    """lpips_diversity of one prompt: the mean over prompts of a category is known by hand."""
    base = {LOCAL: 0.20, REMOTE: 0.30, SIM: 0.25}[backend]
    return round(base + 0.01 * index, 6)


def _result(backend: str, index: int, spec: RunSpec) -> GenerationResult:
    if backend == LOCAL:
        fp = Fingerprint(LOCAL, "vdit-small", "ckpt-abc123", (("steps", 20),))
        stages = (("text_encoding", 0.5), ("denoising", 30.0 + index), ("decoding", 2.0))
        lat = Latency(generating_s=32.5 + index, total_s=32.5 + index, stages=stages)
        return GenerationResult("ok", fp, video_path=f"videos/{LOCAL}/{index}.mp4", latency=lat,
                                cost_usd=LOCAL_HW_S / 3600.0 * GPU_USD_PER_HOUR, hardware_s=LOCAL_HW_S,
                                video_seconds=LOCAL_VIDEO_S)
    if backend == REMOTE:
        fp = Fingerprint(REMOTE, "gen4_turbo", spec.remote_version)
        if index in spec.refused_remote:
            return GenerationResult("refused", fp, error="moderation: unsafe content", latency=Latency(total_s=1.0))
        lat = Latency(queued_s=float(index), generating_s=20.0, downloading_s=1.0, total_s=21.0 + index)
        return GenerationResult("ok", fp, video_path=f"videos/{REMOTE}/{index}.mp4", latency=lat,
                                billed_units=25.0, billing_unit="credits", cost_usd=REMOTE_USD_PER_VIDEO,
                                video_seconds=REMOTE_VIDEO_S, job_id=f"task-{index}")
    fp = Fingerprint(SIM, "pika-2.2", "v1", simulated=True)
    if index in spec.failed_sim:
        return GenerationResult("failed", fp, error="HTTP 500", retriable=True, latency=Latency(total_s=2.0))
    lat = Latency(queued_s=2.0, generating_s=10.0 + index, downloading_s=0.5, total_s=12.5 + index)
    return GenerationResult("ok", fp, video_path=f"videos/{SIM}/{index}.mp4", latency=lat,
                            cost_usd=SIM_USD_PER_VIDEO, video_seconds=REMOTE_VIDEO_S, job_id=f"req-{index}")


def make_run(run_dir: Path, spec: RunSpec | None = None) -> Path:
    """Write a run folder for `spec` into `run_dir` and return it."""
    spec = spec or RunSpec()
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"run_id": f"id-{spec.name}-{run_dir.name}", "created": "2026-01-01T00:00:00Z", "name": spec.name,
            "schema_version": 1, "suite": {"name": spec.suite_name, "version": spec.suite_version}, "seed": 0,
            "samples": 1, "harness": {"version": "0.1.0", "git_commit": "deadbeef"}}
    if spec.hardware is not None:
        meta["hardware"] = spec.hardware
    meta.update(spec.meta_extra)
    (run_dir / "run.json").write_text(json.dumps(meta))
    gens, scores = [], []
    for backend in spec.backends:
        simulated = backend == SIM
        for index, (pid, cat) in enumerate(prompt_ids(spec.prompt_suffix)):
            req = GenerationRequest(prompt_id=pid, prompt=f"prompt {pid}", duration_s=2.0, seed=index)
            res = _result(backend, index, spec)
            key = f"{backend}-{pid}-{spec.remote_version}"
            gens.append({"key": key, "backend": backend, "prompt_id": pid, "category": cat, "sample": 0,
                         "suite": spec.suite_name, "suite_version": spec.suite_version, "request": req.to_dict(),
                         "result": res.to_dict(), "finished_at": "2026-01-01T00:00:00Z"})
            if backend in spec.reused_from:
                gens[-1]["reused_from"] = spec.reused_from[backend]
            if res.status != "ok":
                continue
            common = dict(backend=backend, prompt_id=pid, category=cat, key=key, simulated=simulated)
            shift = spec.lpips_shift.get(backend, 0.0) + spec.lpips_jitter * (1 if index % 2 == 0 else -1)
            scores.append(ScoreRecord("lpips_ref", "ok", lpips_value(backend, index, shift),
                                      profile=spec.lpips_profile, higher_is_better=spec.lpips_higher_is_better,
                                      n=16, **common))
            scores.append(ScoreRecord("clipsim", "unavailable", reason=CLIP_REASON, profile="clip-vit-b32-openai",
                                      higher_is_better=True, **common))
            if spec.diversity:
                scores.append(ScoreRecord("lpips_diversity", "ok", diversity_value(backend, index), scope="set",
                                          profile="lpips-alex-v0.1-pairwise-samples", higher_is_better=True, n=2,
                                          backend=backend, prompt_id=pid, category=cat, simulated=simulated))
            if backend == LOCAL:
                scores.append(ScoreRecord("shapes_adherence", "ok", 0.5 + 0.05 * (index % 4), profile="shapes-v1",
                                          higher_is_better=True, **common))
        for cat in ("",) + CATEGORIES:
            n = spec.fvd_n if cat == "" else spec.fvd_n // 2
            v = spec.fvd_value[backend] + (10.0 if cat == "objects" else 0.0)
            scores.append(ScoreRecord("fvd", "ok", v, profile=spec.fvd_profile, unit="", higher_is_better=False,
                                      scope="set", backend=backend, other="shapes-world", category=cat, n=n,
                                      n_ref=16, ci_low=v - 20.0, ci_high=v + 20.0, simulated=simulated))
    if spec.diversity:  # the reference renders' own diversity: identical in every run of this spec
        for index, (pid, cat) in enumerate(prompt_ids(spec.prompt_suffix)):
            scores.append(ScoreRecord("lpips_diversity", "ok", 0.05 + 0.001 * index, scope="set",
                                      profile="lpips-alex-v0.1-pairwise-samples", higher_is_better=True, n=2,
                                      backend="reference-shapes", prompt_id=pid, category=cat))
    for i in range(2):  # FVD reference renders: role 'reference', never a benchmarked backend's output
        fp = Fingerprint("reference-shapes", "shapes-renderer", "1")
        res = GenerationResult("ok", fp, video_path=f"videos/reference-shapes/{i}.mp4", video_seconds=2.0,
                               latency=Latency(total_s=0.1))
        req = GenerationRequest(prompt_id=f"ref-{i}", prompt="ref", seed=i)
        gens.append({"key": f"ref-{i}", "backend": "reference-shapes", "role": "reference", "prompt_id": f"ref-{i}",
                     "category": "motion", "sample": 0, "suite": spec.suite_name, "suite_version": spec.suite_version,
                     "request": req.to_dict(), "result": res.to_dict(), "finished_at": "2026-01-01T00:00:00Z"})
    with open(run_dir / "generations.jsonl", "w") as f:
        for g in gens:
            f.write(json.dumps(g) + "\n")
    with open(run_dir / "scores.jsonl", "w") as f:
        for s in scores:
            f.write(json.dumps(s.to_dict() | {"scored_at": "2026-01-01T00:00:00Z"}) + "\n")
    return run_dir


# --- Random runs with a known truth (null scenarios and planted regressions) ---------------------------------------

RANDOM_PROMPTS = 16
"""Prompts per random run (two categories of 8)."""


@dataclass
class Truth:
    """The distribution a random run is drawn from. Defaults: the 'unchanged' distribution of a null scenario."""

    lpips_shift: dict[str, float] = field(default_factory=dict)
    """Added to the true per-prompt LPIPS (lower is better) of a backend."""
    shapes_shift: float = 0.0
    """Added to the local backend's true shapes-adherence probability per prompt."""
    fail_rate: dict[str, float] = field(default_factory=lambda: {LOCAL: 0.0, REMOTE: 0.1})
    refuse_rate: dict[str, float] = field(default_factory=lambda: {LOCAL: 0.0, REMOTE: 0.05})
    fvd_true: dict[str, float] = field(default_factory=lambda: {LOCAL: 300.0, REMOTE: 150.0})


def make_random_run(run_dir: Path, name: str, seed: int, truth: Truth | None = None) -> Path:
    """A run of two backends (local DiT, paid remote) drawn at random from `truth` with `seed`.

    Prompt effects are the same in every run (they belong to the prompt); measurement noise, failures, refusals,
    latency and each shapes trial come from `seed`. FVD is recorded as a draw around its true value with a 95 %
    interval of the right width, as a bootstrap would give it. Two runs with the same `truth` and different seeds are
    a null scenario: any verdict other than 'no significant change' is a false alarm.
    """
    import numpy as np

    truth = truth or Truth()
    rng = np.random.default_rng(seed)
    prompt_rng = np.random.default_rng(12345)  # fixed: prompt difficulty does not change between runs
    prompt_effect = prompt_rng.normal(0.0, 0.05, size=RANDOM_PROMPTS)
    shapes_p = prompt_rng.uniform(0.3, 0.6, size=RANDOM_PROMPTS)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"run_id": f"id-{name}", "created": "2026-01-01T00:00:00Z", "name": name, "schema_version": 1,
            "suite": {"name": "smoke", "version": "1.0"}, "seed": seed, "samples": 1,
            "hardware": {"cpu_model": "test cpu", "cpu_count": 2}}
    (run_dir / "run.json").write_text(json.dumps(meta))
    gens, scores = [], []
    ids = [(f"{c}-{i:03d}", c) for c in CATEGORIES for i in range(RANDOM_PROMPTS // len(CATEGORIES))]
    for backend in (LOCAL, REMOTE):
        fp = (Fingerprint(LOCAL, "vdit-small", "ckpt-abc123", (("steps", 20),)) if backend == LOCAL
              else Fingerprint(REMOTE, "gen4_turbo", "2026-01-01"))
        for index, (pid, cat) in enumerate(ids):
            u = rng.uniform()
            if u < truth.fail_rate[backend]:
                res = GenerationResult("failed", fp, error="HTTP 500", latency=Latency(total_s=1.0))
            elif u < truth.fail_rate[backend] + truth.refuse_rate[backend]:
                res = GenerationResult("refused", fp, error="moderation", latency=Latency(total_s=1.0))
            elif backend == LOCAL:
                hw = float(rng.normal(36.0, 1.0))
                res = GenerationResult("ok", fp, video_path=f"videos/{index}.mp4", hardware_s=hw,
                                       latency=Latency(generating_s=hw, total_s=hw + float(rng.normal(1.0, 0.2)),
                                                       stages=(("denoising", hw),)),
                                       cost_usd=hw / 3600.0, video_seconds=LOCAL_VIDEO_S)
            else:
                total = float(rng.lognormal(3.0, 0.3))
                res = GenerationResult("ok", fp, video_path=f"videos/r{index}.mp4", cost_usd=REMOTE_USD_PER_VIDEO,
                                       latency=Latency(generating_s=total - 1.0, downloading_s=1.0, total_s=total),
                                       video_seconds=REMOTE_VIDEO_S, job_id=f"task-{index}")
            req = GenerationRequest(prompt_id=pid, prompt=f"prompt {pid}", duration_s=2.0, seed=index)
            key = f"{backend}-{pid}"
            gens.append({"key": key, "backend": backend, "prompt_id": pid, "category": cat, "sample": 0,
                         "suite": "smoke", "suite_version": "1.0", "request": req.to_dict(), "result": res.to_dict(),
                         "finished_at": "2026-01-01T00:00:00Z"})
            if res.status != "ok":
                continue
            common = dict(backend=backend, prompt_id=pid, category=cat, key=key)
            base = 0.3 + prompt_effect[index] + truth.lpips_shift.get(backend, 0.0)
            scores.append(ScoreRecord("lpips_ref", "ok", float(base + rng.normal(0.0, 0.03)),
                                      profile="lpips-alex-v0.1", higher_is_better=False, n=16, **common))
            scores.append(ScoreRecord("lpips_diversity", "ok", float(0.25 + prompt_effect[index]
                                                                     + rng.normal(0.0, 0.02)),
                                      scope="set", profile="lpips-alex-v0.1-pairwise-samples",
                                      higher_is_better=True, n=2, backend=backend, prompt_id=pid, category=cat))
            if backend == LOCAL:
                p = min(1.0, max(0.0, shapes_p[index] + truth.shapes_shift))
                scores.append(ScoreRecord("shapes_adherence", "ok", float(rng.binomial(4, p)) / 4.0,
                                          profile="shapes-v1", higher_is_better=True, **common))
        se = 15.0
        v = float(truth.fvd_true[backend] + rng.normal(0.0, se))
        scores.append(ScoreRecord("fvd", "ok", v, profile="fvd-i3d-tf-224-16f", higher_is_better=False, scope="set",
                                  backend=backend, other="shapes-world", n=16, n_ref=16, ci_low=v - 1.96 * se,
                                  ci_high=v + 1.96 * se))
    with open(run_dir / "generations.jsonl", "w") as f:
        f.writelines(json.dumps(g) + "\n" for g in gens)
    with open(run_dir / "scores.jsonl", "w") as f:
        f.writelines(json.dumps(s.to_dict() | {"scored_at": "2026-01-01T00:00:00Z"}) + "\n" for s in scores)
    return run_dir


def random_comparison(tmp_dir: Path, seed: int, current_truth: Truth | None = None, alpha: float = 0.05):
    """Draw a baseline (truth unchanged) and a current run (`current_truth`, default unchanged: a null scenario)
    with different seeds, and compare them with the report's `compare_runs`. Returns the Regression."""
    from vbench_suite.report.load import load_run
    from vbench_suite.report.regression import compare_runs

    base = load_run(make_random_run(tmp_dir / f"base-{seed}", "q1", 2 * seed))
    cur = load_run(make_random_run(tmp_dir / f"cur-{seed}", "q2", 2 * seed + 1, current_truth))
    return compare_runs(cur, base, alpha=alpha)


def false_alarm_rate(tmp_dir: Path, comparisons: int, alpha: float = 0.05) -> tuple[int, int]:
    """(comparisons with at least one 'regressed' or 'improved' row, comparisons) over null scenarios."""
    alarms = 0
    for seed in range(comparisons):
        reg = random_comparison(tmp_dir, seed, alpha=alpha)
        alarms += bool(reg.rows["verdict"].isin(["regressed", "improved"]).any())
    return alarms, comparisons
