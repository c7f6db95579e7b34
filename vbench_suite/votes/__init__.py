"""Pairwise human preference: blind side-by-side votes on a run's videos, stored in the run folder, and the
Bradley-Terry ratings the report derives from them.

    store.py    votes.jsonl in the run folder: the record format, locked appends, reading
    pairs.py    which video pairs can be voted on, and which one to show next (balanced)
    ratings.py  Davidson-Bradley-Terry fit with bootstrap intervals; agreement of votes with per-video metrics
    page.py     the voting page (one HTML document, inline CSS and JS)
    server.py   the local HTTP server behind `vbench-suite vote`

Nothing here imports torch; `ratings` needs numpy only.
"""
