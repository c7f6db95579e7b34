"""votes.jsonl: one line per human vote, appended to the run folder (format in docs/votes.md).

Writers do not take the run-folder lock (`store.lock`), which belongs to `vbench-suite run`: a voting session may
stay open for hours, and a run resuming into the folder must not be refused meanwhile. Votes are safe without it:
`run` never writes, rewrites or deletes votes.jsonl, and every append here is one `write` of a whole line to a
descriptor opened with O_APPEND, under an exclusive `flock` on votes.jsonl itself (held for the append only), then
fsynced. Several vote servers on one folder therefore interleave whole lines, and a writer killed mid-line leaves a
torn last line that readers skip and the next writer isolates with a newline.
"""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vbench_suite.errors import UserError

VOTES = "votes.jsonl"
"""File name of the votes inside a run folder."""
VOTE_SCHEMA = 1
"""Version of the vote record format (`schema` field of every line)."""
CHOICES: tuple[str, ...] = ("left", "right", "tie", "both_bad")
"""What a rater can answer: the left video is better, the right one is, they are as good, both are bad."""
MAX_RATER_CHARS = 64


class VoteError(UserError):
    """A vote or a rater name that cannot be stored (the message says what is wrong)."""


def check_rater(name: str) -> str:
    """The rater name, stripped; raises VoteError when empty, longer than `MAX_RATER_CHARS` or not printable."""
    name = (name or "").strip()
    if not name:
        raise VoteError("the rater name is empty; give one with --rater NAME (or type it on the page)")
    if len(name) > MAX_RATER_CHARS:
        raise VoteError(f"the rater name is {len(name)} characters long; use at most {MAX_RATER_CHARS}")
    if not name.isprintable():
        raise VoteError("the rater name holds control characters; use letters, digits and punctuation")
    return name


@dataclass(frozen=True)
class Vote:
    """One vote on one displayed pair. `left_*` / `right_*` describe the video shown on that side; keys and sha256s
    pin the exact videos judged, so a vote on a video that was later replaced can be recognised and left out."""

    run_id: str
    """run.json `run_id` of the run voted on."""
    prompt_id: str
    category: str
    sample: int
    """Sample index: both videos are that sample of the prompt (same derived seed)."""
    left_backend: str
    right_backend: str
    left_key: str
    right_key: str
    left_sha256: str
    right_sha256: str
    choice: str
    """One of `CHOICES`."""
    rater: str
    shown_at: str
    """ISO-8601 UTC time the pair was handed to the page."""
    voted_at: str
    """ISO-8601 UTC time the vote was received."""
    vote_id: str
    """Random hex id, unique per vote."""
    schema: int = VOTE_SCHEMA

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise VoteError(f"vote choice {self.choice!r} is not one of {', '.join(CHOICES)}")
        if self.left_backend == self.right_backend:
            raise VoteError(f"a vote compares two backends, got {self.left_backend!r} on both sides")

    @property
    def winner(self) -> str | None:
        """The backend whose video was preferred; None for a tie or both bad."""
        return {"left": self.left_backend, "right": self.right_backend}.get(self.choice)

    @property
    def loser(self) -> str | None:
        return {"left": self.right_backend, "right": self.left_backend}.get(self.choice)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vote:
        """Parse one line; raises KeyError/TypeError/ValueError (VoteError) on a malformed record."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["sample"] = int(kw["sample"])
        for k in names - {"sample", "schema"}:
            if not isinstance(kw[k], str):
                raise TypeError(f"vote field {k} must be a string")
        return cls(**kw)


def votes_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / VOTES


def append_vote(run_dir: str | Path, vote: Vote) -> None:
    """Append `vote` as one line to `<run_dir>/votes.jsonl` (created if missing), locked and fsynced (see module)."""
    line = (json.dumps(vote.to_dict(), sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(votes_path(run_dir), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # other vote writers only; held for microseconds
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a writer was killed mid-line: keep its fragment on a line of its own
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the flock


def read_votes(run_dir: str | Path) -> tuple[list[Vote], int]:
    """(every vote in file order, number of lines that are not a valid vote). A missing file gives ([], 0)."""
    path = votes_path(run_dir)
    if not path.is_file():
        return [], 0
    votes: list[Vote] = []
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                votes.append(Vote.from_dict(json.loads(line)))
            except (KeyError, TypeError, ValueError, AttributeError, UserError):
                bad += 1  # a torn last line (writer killed), or not a vote
    return votes, bad
