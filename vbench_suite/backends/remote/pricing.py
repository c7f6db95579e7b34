"""Dated price tables kept as data (`prices/<vendor>_<date>.csv`) and the arithmetic on them.

Columns: vendor, model, resolution ('*' matches any), unit, price (USD), source, date (ISO). Units:
`usd_per_second` (price x seconds), `usd_per_5s` (price per started 5 s block), `usd_per_video` (flat).
When a vendor has several tables the newest file (by the date in its name) is used; every result records which.
"""
from __future__ import annotations

import csv
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from vbench_suite.errors import ConfigError

PRICES_DIR = Path(__file__).parent / "prices"
"""Where the shipped price tables live."""
NORMALISED_SECONDS = 10.0
"""Costs are compared per this many seconds of output."""
UNITS: tuple[str, ...] = ("usd_per_second", "usd_per_5s", "usd_per_video")
_BLOCK_S = 5.0
_BLOCK_EPS = 1e-6
_FILE_RE = re.compile(r"^(?P<vendor>[a-z0-9_]+)_(?P<date>\d{4}(-\d{2}){0,2})\.csv$")
_COLUMNS = ("vendor", "model", "resolution", "unit", "price", "source", "date")


@dataclass(frozen=True)
class PriceRow:
    """One priced (vendor, model, resolution)."""

    vendor: str
    model: str
    resolution: str
    """E.g. '720p', or '*' for any resolution."""
    unit: str
    """One of UNITS."""
    price: float
    """US dollars per unit."""
    source: str
    date: str

    def cost_usd(self, video_seconds: float) -> float:
        """Price of one video of `video_seconds` seconds under this row."""
        if self.unit == "usd_per_second":
            return self.price * video_seconds
        if self.unit == "usd_per_5s":
            return self.price * max(1, math.ceil(video_seconds / _BLOCK_S - _BLOCK_EPS))
        return self.price


@dataclass(frozen=True)
class PriceTable:
    """All rows of one dated price file."""

    name: str
    """File name, e.g. 'runway_2026-04.csv' (recorded in every result's info)."""
    date: str
    rows: tuple[PriceRow, ...]

    def lookup(self, model: str, resolution: str) -> PriceRow | None:
        """The row for (model, resolution), falling back to the model's '*' row; None if the model is not priced."""
        wildcard = None
        for row in self.rows:
            if row.model == model and row.resolution == resolution:
                return row
            if row.model == model and row.resolution == "*":
                wildcard = row
        return wildcard


def load_table(path: Path) -> PriceTable:
    """Parse and validate one price file; a bad file raises ConfigError naming the file and line."""
    match = _FILE_RE.match(path.name)
    if not match:
        raise ConfigError(f"price table {path}: name must be <vendor>_<YYYY[-MM[-DD]]>.csv")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise ConfigError(f"price table {path}: columns must be {','.join(_COLUMNS)}")
        for line, rec in enumerate(reader, start=2):
            if rec["unit"] not in UNITS:
                raise ConfigError(f"price table {path}:{line}: unit '{rec['unit']}' is not one of {', '.join(UNITS)}")
            try:
                price = float(rec["price"])
            except ValueError:
                raise ConfigError(f"price table {path}:{line}: price '{rec['price']}' is not a number") from None
            rows.append(PriceRow(rec["vendor"], rec["model"], rec["resolution"], rec["unit"], price,
                                 rec["source"], rec["date"]))
    return PriceTable(name=path.name, date=match["date"], rows=tuple(rows))


_CACHE: dict[tuple[str, str], PriceTable | None] = {}
_LOCK = threading.Lock()


def table_for(vendor: str, prices_dir: Path = PRICES_DIR) -> PriceTable | None:
    """Newest price table of `vendor` in `prices_dir` (None if there is none). Loaded once per process."""
    cache_key = (vendor, str(prices_dir))
    with _LOCK:
        if cache_key not in _CACHE:
            dated = [(m["date"], p) for p in prices_dir.glob(f"{vendor}_*.csv")
                     if (m := _FILE_RE.match(p.name)) and m["vendor"] == vendor]
            _CACHE[cache_key] = load_table(max(dated)[1]) if dated else None
        return _CACHE[cache_key]


def per_10s(cost_usd: float, video_seconds: float) -> float | None:
    """Cost normalised to NORMALISED_SECONDS of output (None for a zero-length video)."""
    if video_seconds <= 0:
        return None
    return cost_usd * NORMALISED_SECONDS / video_seconds
