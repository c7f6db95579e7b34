"""The run-level budget cap: stop submitting before a request could push spending over the cap."""
from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any


def possibly_billed_by_key(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """key -> USD its creates of unknown outcome may have billed: the latest record line of the key that carries
    `may_have_billed_usd` (the field is cumulative per key, see `runner.generate.possible_bill`; lines without it,
    such as copies or damage notes, leave it as it was)."""
    out: dict[str, float] = {}
    for r in records:
        if "key" in r and r.get("may_have_billed_usd") is not None:
            out[str(r["key"])] = float(r["may_have_billed_usd"])
    return out


class BudgetGate:
    """Reserve an upper cost estimate before submitting; settle with the actual cost after.

    `cap_usd=None` means no cap. `spent_usd` starts at what earlier invocations of the same run already spent, so
    a resumed run honours the cap across restarts; it includes what creates of unknown outcome may have billed (their
    upper estimate): a lost answer does not mean the vendor did not charge, so the cap treats that money as spent.
    """

    def __init__(self, cap_usd: float | None, spent_usd: float = 0.0) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def try_reserve(self, estimate_usd: float) -> bool:
        """True (and the estimate reserved) if submitting cannot exceed the cap; False otherwise.

        A request estimated at nothing (a local backend) is always admitted, even when earlier invocations already
        spent more than a lowered cap: it cannot add to the spending."""
        if estimate_usd <= 0:
            return True
        with self._lock:
            if self.cap_usd is not None and self.spent_usd + self.reserved_usd + estimate_usd > self.cap_usd + 1e-9:
                self.refused += 1
                return False
            self.reserved_usd += estimate_usd
            return True

    def settle(self, estimate_usd: float, actual_usd: float, possible_usd: float = 0.0) -> None:
        """Replace a reservation by the cost actually billed plus `possible_usd`, what the request may have billed
        without our knowing (a create whose answer was lost: its estimate stays counted, never released)."""
        with self._lock:
            self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
            self.spent_usd += actual_usd + possible_usd
