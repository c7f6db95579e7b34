"""A faithful local fake of the video vendors (Runway, fal queue/Pika, Synthesia, HeyGen, Veo/Gemini API).

Start it in tests with `FakeVendors(FakeConfig(...))` as a context manager, or from the command line with
`vbench-suite fake-vendors`. Faults: random at `fault_rate`, or forced per request with `[fault:<name>]` in the
prompt (names in `FAULTS`), or a scenario (`FakeConfig(scenario=load_scenario(FILE))`) declaring each vendor's
true failure/refusal rates, latencies, prices and output quality; `FakeVendors.audit()` is the ground truth. Videos
have the requested size, duration and 24 fps. Every backend pointed at it (loopback base URL) labels its results
simulated.
"""
from __future__ import annotations

from vbench_suite.fake_vendors.server import VENDORS, FakeVendors
from vbench_suite.fake_vendors.scenario import Scenario, load_scenario, scenario_from_dict
from vbench_suite.fake_vendors.state import EXPECTED_STATUS, FAULTS, FakeConfig

__all__ = ["EXPECTED_STATUS", "FAULTS", "FakeConfig", "FakeVendors", "Scenario", "VENDORS", "load_scenario",
           "scenario_from_dict"]
