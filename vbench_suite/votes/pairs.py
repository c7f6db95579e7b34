"""Which videos of a run can be voted on, and which pair to show next.

A pair is two videos of the same prompt and sample index (so the same derived seed) from two backends, both with
status ok under their backend's current fingerprint, both files present and matching their records. FVD reference
renders (role 'reference') are not benchmark output and are never shown.

The next pair is the least-voted one (votes plus pairs handed out and not yet answered), then the one this rater
voted on least, then the pair of backends and the prompt with the fewest votes, then a seeded random choice; the
side each video is shown on is drawn at random. So votes spread evenly over pairs, backend pairs and prompts,
whichever order raters come and go in.
"""
from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vbench_suite.store.run_folder import RunFolder
from vbench_suite.votes.store import Vote, VoteError

REFERENCE_ROLE = "reference"
"""`role` of the FVD reference renders (the same value as `report.load.REFERENCE_ROLE`)."""


@dataclass(frozen=True)
class Video:
    """One votable video: an ok generation of the run, with what identifies its bytes."""

    backend: str
    key: str
    prompt_id: str
    category: str
    sample: int
    prompt: str
    path: Path
    sha256: str
    size: int | None
    """`video_bytes` of the record (None for records of releases that did not store it)."""


@dataclass(frozen=True)
class Pair:
    """Two videos of one prompt and sample; `a.backend` < `b.backend` (display order is chosen separately)."""

    a: Video
    b: Video

    @property
    def prompt_id(self) -> str:
        return self.a.prompt_id

    @property
    def sample(self) -> int:
        return self.a.sample

    @property
    def keys(self) -> frozenset[str]:
        return frozenset((self.a.key, self.b.key))

    @property
    def backends(self) -> tuple[str, str]:
        return self.a.backend, self.b.backend


def votable_videos(run_dir: str | Path) -> list[Video]:
    """Every current ok benchmark video of the run whose file exists (content is checked later, see `VideoCheck`)."""
    folder = RunFolder(run_dir)
    out: list[Video] = []
    for rec in folder.current_generations():
        res = rec.get("result") or {}
        if rec.get("role", "benchmark") == REFERENCE_ROLE or res.get("status") != "ok":
            continue
        path = folder.resolve(res.get("video_path"))
        if path is None or not path.is_file() or not res.get("video_sha256"):
            continue
        request = rec.get("request") or {}
        size = rec.get("video_bytes")
        out.append(Video(str(rec.get("backend", "")), str(rec["key"]), str(rec.get("prompt_id", "")),
                         str(rec.get("category", "")), int(rec.get("sample", 0)), str(request.get("prompt", "")),
                         path, str(res["video_sha256"]), int(size) if size is not None else None))
    return out


def pairs_of(videos: Iterable[Video]) -> list[Pair]:
    """All pairs of videos sharing prompt and sample index, from two different backends, in a stable order."""
    groups: dict[tuple[str, int], dict[str, Video]] = {}
    for v in videos:
        groups.setdefault((v.prompt_id, v.sample), {})[v.backend] = v
    out: list[Pair] = []
    for key in sorted(groups):
        group = groups[key]
        names = sorted(group)
        out += [Pair(group[x], group[y]) for i, x in enumerate(names) for y in names[i + 1:]]
    return out


def votable_pairs(run_dir: str | Path) -> list[Pair]:
    """The pairs of the run (see `pairs_of`); raises VoteError when there are none, saying why."""
    folder = RunFolder(run_dir)
    folder.read_meta()  # a UserError naming the folder when it is not a run folder
    videos = votable_videos(run_dir)
    pairs = pairs_of(videos)
    if pairs:
        return pairs
    backends = sorted({v.backend for v in videos})
    if len(backends) < 2:
        have = f"only from {backends[0]}" if backends else "from no backend"
        raise VoteError(f"run folder {run_dir} has ok videos {have}; a vote compares two backends on the same prompt, "
                        "so run a second backend into it first (vbench-suite run --out FOLDER --backend NAME ...)")
    raise VoteError(f"run folder {run_dir} has ok videos from {', '.join(backends)} but no prompt and sample with ok "
                    "videos from two of them; resume the run so the failed generations are retried")


class VideoCheck:
    """Whether a video file still holds the bytes its record names (size, then sha256), cached per file state."""

    def __init__(self) -> None:
        self._seen: dict[tuple[Path, int, int], str] = {}

    def ok(self, video: Video) -> bool:
        try:
            st = os.stat(video.path)
        except OSError:
            return False
        if video.size is not None and st.st_size != video.size:
            return False
        state = (video.path, st.st_size, st.st_mtime_ns)
        if state not in self._seen:
            h = hashlib.sha256()
            with open(video.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._seen[state] = h.hexdigest()
        return self._seen[state] == video.sha256


@dataclass(frozen=True)
class Shown:
    """A pair as displayed: `left` and `right` are the pair's videos in screen order."""

    pair: Pair
    left: Video
    right: Video

    def vote(self, choice: str, rater: str, run_id: str, shown_at: str, voted_at: str, vote_id: str) -> Vote:
        return Vote(run_id=run_id, prompt_id=self.pair.prompt_id, category=self.left.category,
                    sample=self.pair.sample, left_backend=self.left.backend, right_backend=self.right.backend,
                    left_key=self.left.key, right_key=self.right.key, left_sha256=self.left.sha256,
                    right_sha256=self.right.sha256, choice=choice, rater=rater, shown_at=shown_at,
                    voted_at=voted_at, vote_id=vote_id)


class PairPicker:
    """Chooses the next pair to show (order described in the module docstring); seeded, so the same votes and the
    same seed give the same sequence."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def pick(self, pairs: list[Pair], votes: Iterable[Vote], pending: Iterable[Pair], rater: str) -> Shown | None:
        """The next pair for `rater` (None when `pairs` is empty). Votes count towards the pair they judged only
        while both its videos are the ones voted on (same keys); `pending`: pairs shown and not yet answered."""
        if not pairs:
            return None
        current = {p.keys: p for p in pairs}
        by_pair: Counter[frozenset[str]] = Counter()
        by_rater: Counter[frozenset[str]] = Counter()
        by_backends: Counter[tuple[str, str]] = Counter()
        by_prompt: Counter[str] = Counter()

        def count(p: Pair, mine: bool) -> None:
            by_pair[p.keys] += 1
            by_rater[p.keys] += mine
            by_backends[p.backends] += 1
            by_prompt[p.prompt_id] += 1

        for v in votes:
            p = current.get(frozenset((v.left_key, v.right_key)))
            if p is not None:
                count(p, v.rater == rater)
        for p in pending:
            if p.keys in current:
                count(p, False)
        order = list(pairs)
        self._rng.shuffle(order)  # min() keeps the first of equals: a random one
        best = min(order, key=lambda p: (by_pair[p.keys], by_rater[p.keys], by_backends[p.backends],
                                         by_prompt[p.prompt_id]))
        if self._rng.random() < 0.5:
            return Shown(best, best.a, best.b)
        return Shown(best, best.b, best.a)
