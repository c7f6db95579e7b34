"""Which prompts of a suite a run uses: `--category`, `--tag`, `--prompt-id` (intersected), then `--limit`."""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vbench_suite.errors import ConfigError
from vbench_suite.suites import PromptItem, PromptSet


@dataclass(frozen=True)
class Selection:
    """A subset of a suite's prompts. Empty criteria select everything; given kinds are intersected."""

    categories: tuple[str, ...] = ()
    """Keep prompts in any of these categories."""
    tags: tuple[str, ...] = ()
    """Keep prompts carrying any of these tags."""
    prompt_ids: tuple[str, ...] = ()
    """Keep prompts with these ids."""
    limit: int | None = None
    """After the filters: keep only the first N prompts (suite order)."""

    def is_subset(self) -> bool:
        """True when any criterion is given (the run may not cover the whole suite)."""
        return bool(self.categories or self.tags or self.prompt_ids or self.limit is not None)

    def describe(self) -> str:
        """The criteria as command-line options, e.g. '--category motion --limit 6' ('' for the whole suite)."""
        parts = [f"--category {c}" for c in self.categories] + [f"--tag {t}" for t in self.tags]
        parts += [f"--prompt-id {p}" for p in self.prompt_ids]
        if self.limit is not None:
            parts.append(f"--limit {self.limit}")
        return " ".join(parts)


def select_prompts(suite: PromptSet, selection: Selection) -> PromptSet:
    """The suite restricted to the selected prompts, in suite order.

    Unknown categories, tags or prompt ids, and a selection that matches nothing, raise `ConfigError` listing
    the valid values.
    """
    items = suite.items
    _check_known("category", selection.categories, (it.category for it in items), suite)
    _check_known("tag", selection.tags, (t for it in items for t in it.tags), suite)
    _check_known("prompt id", selection.prompt_ids, (it.id for it in items), suite)
    kept = [it for it in items if _matches(it, selection)]
    if selection.limit is not None:
        kept = kept[:selection.limit]
    if not kept:
        raise ConfigError(f"no prompt of suite {suite.name} matches {selection.describe()} (the criteria are "
                          "intersected); widen the selection")
    return dataclasses.replace(suite, items=tuple(kept))


def _matches(item: PromptItem, s: Selection) -> bool:
    return ((not s.categories or item.category in s.categories)
            and (not s.tags or any(t in s.tags for t in item.tags))
            and (not s.prompt_ids or item.id in s.prompt_ids))


def _check_known(kind: str, wanted: Sequence[str], valid: Iterable[str], suite: PromptSet) -> None:
    known = list(dict.fromkeys(valid))
    for value in wanted:
        if value not in known:
            close = difflib.get_close_matches(value, known, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            shown = ", ".join(known) if len(known) <= 40 else ", ".join(known[:40]) + f", ... ({len(known)} in all)"
            raise ConfigError(f"suite {suite.name} has no {kind} '{value}'.{hint} Valid: {shown or '(none)'}")


def selection_record(suite_before: PromptSet, selected: PromptSet, selection: Selection) -> dict[str, Any]:
    """What run.json keeps about a selection: the criteria, the chosen prompt ids and the suite's size."""
    return {"categories": list(selection.categories), "tags": list(selection.tags),
            "prompt_ids": list(selection.prompt_ids), "limit": selection.limit,
            "prompts": [it.id for it in selected.items], "n_suite_prompts": len(suite_before.items)}
