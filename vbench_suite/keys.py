"""The one place that builds cache keys and derived seeds. Never build a key or a seed anywhere else."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vbench_suite.types import Fingerprint, GenerationRequest

KEY_VERSION = 1
"""Bump when the key recipe changes (invalidates every cache)."""


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _content_ref(path: str | None) -> str | None:
    """Conditioning files enter keys by content, so moving a file does not invalidate, and editing one does."""
    if path is None:
        return None
    p = Path(path)
    return f"sha256:{file_sha256(p)}" if p.is_file() else f"missing:{path}"


def generation_key(fingerprint: Fingerprint, request: GenerationRequest) -> str:
    """Content address of one generation: backend fingerprint + full request (seed included) + conditioning contents.

    Returns a 64-hex-digit sha256. Two calls agree iff the output would be the same.
    """
    req = request.to_dict()
    req["images"] = [_content_ref(p) for p in request.images]
    req["first_frame"] = _content_ref(request.first_frame)
    req["last_frame"] = _content_ref(request.last_frame)
    payload = {"v": KEY_VERSION, "fingerprint": fingerprint.to_dict(), "request": req}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def video_filename(key: str, suffix: str = ".mp4") -> str:
    """File name of a generated video inside a run folder: the key, never the prompt text."""
    return f"{key[:24]}{suffix}"


def derive_seed(run_seed: int, prompt_id: str, sample_index: int) -> int:
    """Per-sample seed from (run seed, prompt id, sample index): independent of batch size and worker count.

    Returns an int in [0, 2**31).
    """
    digest = hashlib.sha256(f"{run_seed}\x1f{prompt_id}\x1f{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31)


def gallery_filename(source_sha256: str, recipe: str, suffix: str) -> str:
    """File name of a report gallery's copy of a video (re-encoded for browsers, or copied as is), or of a still
    made from it: the source's content plus the recipe that made it, so a changed source or recipe never reuses an
    old file and identical videos share one."""
    digest = hashlib.sha256(f"{source_sha256}\x1f{recipe}".encode()).hexdigest()
    return f"{digest[:24]}{suffix}"


def replay_key(key: str, replay: int = 1) -> str:
    """Key of the `replay`-th repetition of generation `key` by the reproducibility probe (same request and seed,
    sent again on purpose): distinct from `key`, so the repetition never answers from, or overwrites, the original."""
    return hashlib.sha256(f"replay\x1f{KEY_VERSION}\x1f{key}\x1f{replay}".encode()).hexdigest()
