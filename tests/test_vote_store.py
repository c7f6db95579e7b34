"""votes.jsonl appends (concurrent writers, torn lines) and the balance of pair selection, without a real run."""
from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from vbench_suite.votes.pairs import Pair, PairPicker, Video, pairs_of
from vbench_suite.votes.store import Vote, VoteError, append_vote, check_rater, read_votes


def _video(backend: str, prompt: str, sample: int = 0) -> Video:
    return Video(backend, f"{backend}-{prompt}-{sample}", prompt, "cat", sample, f"text of {prompt}",
                 Path(f"/nowhere/{backend}/{prompt}.mp4"), "0" * 64, None)


def _vote(shown_left: Video, shown_right: Video, choice: str = "left", rater: str = "r") -> Vote:
    return Vote("run", shown_left.prompt_id, "cat", shown_left.sample, shown_left.backend, shown_right.backend,
                shown_left.key, shown_right.key, "a" * 64, "b" * 64, choice, rater, "t0", "t1", "id")


def test_concurrent_appends_keep_every_vote_whole(tmp_path: Path) -> None:
    a, b = _video("x", "p"), _video("y", "p")
    per_thread, threads = 150, 4

    def write(i: int) -> None:
        for k in range(per_thread):
            append_vote(tmp_path, _vote(a, b, rater=f"w{i}-{k}"))

    workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    votes, bad = read_votes(tmp_path)
    assert bad == 0 and len(votes) == per_thread * threads
    assert len({v.rater for v in votes}) == per_thread * threads


def test_torn_last_line_is_skipped_and_isolated(tmp_path: Path) -> None:
    a, b = _video("x", "p"), _video("y", "p")
    append_vote(tmp_path, _vote(a, b))
    with open(tmp_path / "votes.jsonl", "a", encoding="utf-8") as f:
        f.write('{"choice": "left", "rater": "kil')  # a writer killed mid-line
    assert read_votes(tmp_path) == ([_vote(a, b)], 1)
    append_vote(tmp_path, _vote(a, b, "tie"))
    votes, bad = read_votes(tmp_path)
    assert [v.choice for v in votes] == ["left", "tie"] and bad == 1
    lines = (tmp_path / "votes.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["choice"] == "tie"


def test_vote_record_is_validated() -> None:
    a, b = _video("x", "p"), _video("y", "p")
    with pytest.raises(VoteError, match="not one of left, right, tie, both_bad"):
        _vote(a, b, "maybe")
    with pytest.raises(VoteError, match="two backends"):
        _vote(a, _video("x", "p", 1))
    v = _vote(a, b, "right")
    assert (v.winner, v.loser) == ("y", "x") and _vote(a, b, "both_bad").winner is None
    assert Vote.from_dict(json.loads(json.dumps(v.to_dict()))) == v


def test_rater_names() -> None:
    assert check_rater("  ana ") == "ana"
    for bad, why in (("", "empty"), ("x" * 65, "at most 64"), ("a\x1bb", "control characters")):
        with pytest.raises(VoteError, match=why):
            check_rater(bad)


def _world(backends: int = 3, prompts: int = 4, samples: int = 2) -> list[Pair]:
    names = [f"be{k}" for k in range(backends)]
    return pairs_of(_video(b, f"p{p}", s) for b in names for p in range(prompts) for s in range(samples))


def test_pairs_are_same_prompt_and_sample_from_two_backends() -> None:
    pairs = _world()
    assert len(pairs) == 4 * 2 * 3  # prompts x samples x backend pairs
    for p in pairs:
        assert p.a.prompt_id == p.b.prompt_id and p.a.sample == p.b.sample and p.a.backend < p.b.backend
    # a backend missing a sample leaves that sample's pairs out only
    lone = pairs_of([_video("x", "p", 0), _video("y", "p", 0), _video("x", "p", 1)])
    assert [(p.sample, p.backends) for p in lone] == [(0, ("x", "y"))]


def _session(picker: PairPicker, pairs: list[Pair], n: int, raters: list[str]) -> list[Vote]:
    votes: list[Vote] = []
    for k in range(n):
        rater = raters[k % len(raters)]
        shown = picker.pick(pairs, votes, [], rater)
        votes.append(_vote(shown.left, shown.right, rater=rater))
    return votes


def test_selection_balances_pairs_backends_prompts_and_sides() -> None:
    pairs = _world()
    votes = _session(PairPicker(seed=1), pairs, 24 * 3 + 5, ["ana", "bo"])
    per_pair = Counter(frozenset((v.left_key, v.right_key)) for v in votes)
    assert len(per_pair) == 24 and max(per_pair.values()) - min(per_pair.values()) <= 1  # least-voted first
    per_backends = Counter(tuple(sorted((v.left_backend, v.right_backend))) for v in votes)
    assert max(per_backends.values()) - min(per_backends.values()) <= 1
    per_prompt = Counter(v.prompt_id for v in votes)
    assert max(per_prompt.values()) - min(per_prompt.values()) <= 1
    left = Counter(v.left_backend for v in votes)  # sides drawn at random: no backend always on one side
    for b in ("be0", "be1", "be2"):
        shown = sum(b in (v.left_backend, v.right_backend) for v in votes)
        assert 0.25 < left[b] / shown < 0.75


def test_selection_prefers_pairs_the_rater_has_not_seen_and_pending_ones_last() -> None:
    pairs = _world(backends=2, prompts=2, samples=1)
    p0, p1 = pairs
    votes = [_vote(p0.a, p0.b, rater="ana"), _vote(p1.a, p1.b, rater="bo")]  # one vote on each pair
    for seed in range(10):  # not by chance: every seed gives each rater the pair they have not judged
        picker = PairPicker(seed)
        assert picker.pick(pairs, votes, [], "ana").pair == p1 and picker.pick(pairs, votes, [], "bo").pair == p0
        assert picker.pick(pairs, votes[:1], [], "bo").pair == p1  # least-voted first
        assert picker.pick(pairs, [], [p0], "bo").pair == p1  # a pair on someone's screen counts as voted on


def test_selection_is_reproducible_with_its_seed() -> None:
    pairs = _world()

    def seq(seed: int) -> list[tuple[str, str, str]]:
        return [(v.prompt_id, v.left_backend, v.right_backend) for v in _session(PairPicker(seed), pairs, 30, ["a"])]

    assert seq(5) == seq(5) and seq(5) != seq(6)
