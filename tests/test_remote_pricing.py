"""Dated price tables: every shipped file is valid, lookups fall back to '*', units compute as documented."""
from __future__ import annotations

from pathlib import Path

import pytest

from vbench_suite.backends.remote import pricing
from vbench_suite.errors import ConfigError


def test_shipped_tables_load_and_are_dated():
    files = sorted(pricing.PRICES_DIR.glob("*.csv"))
    assert {f.name.split("_")[0] for f in files} == {"runway", "fal", "synthesia", "heygen", "veo"}
    for f in files:
        table = pricing.load_table(f)
        assert table.rows and all(r.source and r.date[:4] == "2026" and r.price > 0 for r in table.rows)


def test_units_and_normalisation():
    row = pricing.PriceRow("fal", "m", "720p", "usd_per_5s", 0.20, "s", "2026-10-01")
    assert row.cost_usd(5) == pytest.approx(0.20)
    assert row.cost_usd(10) == pytest.approx(0.40)
    assert row.cost_usd(6) == pytest.approx(0.40)  # a started block is billed
    assert pricing.PriceRow("x", "m", "*", "usd_per_second", 0.12, "s", "d").cost_usd(5) == pytest.approx(0.6)
    assert pricing.PriceRow("x", "m", "*", "usd_per_video", 0.4, "s", "d").cost_usd(9) == pytest.approx(0.4)
    assert pricing.per_10s(0.6, 5) == pytest.approx(1.2)
    assert pricing.per_10s(1.0, 0) is None


def test_lookup_falls_back_to_wildcard_and_newest_table_wins(tmp_path: Path):
    header = "vendor,model,resolution,unit,price,source,date\n"
    (tmp_path / "acme_2025-01.csv").write_text(header + "acme,m,*,usd_per_second,1.0,old,2025-01-01\n")
    (tmp_path / "acme_2026-03.csv").write_text(header + "acme,m,*,usd_per_second,0.5,new,2026-03-01\n"
                                                        "acme,m,1080p,usd_per_second,0.7,new,2026-03-01\n")
    table = pricing.table_for("acme", tmp_path)
    assert table is not None and table.name == "acme_2026-03.csv"
    assert table.lookup("m", "1080p").price == 0.7
    assert table.lookup("m", "720p").price == 0.5
    assert table.lookup("other", "720p") is None


def test_bad_tables_name_the_problem(tmp_path: Path):
    bad = tmp_path / "acme_2026.csv"
    bad.write_text("vendor,model,resolution,unit,price,source,date\nacme,m,*,usd_per_hour,1,s,2026\n")
    with pytest.raises(ConfigError, match="usd_per_hour"):
        pricing.load_table(bad)
    with pytest.raises(ConfigError, match="name"):
        pricing.load_table(tmp_path / "prices.csv")


def test_backends_name_their_price_table():
    from vbench_suite.backends import create_backend

    assert create_backend("runway").price_table() == "runway_2026-04.csv"
    assert create_backend("veo", price_usd_per_second=0.2).price_table() == "config:price_usd_per_second"
