"""Break-even economics: when does running our own GPUs beat paying an API per video?

Unit of volume throughout: **10-second units of video per month** (one unit = 10 s of delivered video), so API prices
quoted per 10 s apply directly. With API price A ($/10 s), self-hosting fixed cost F ($/month) and self-hosting
variable cost v ($/10 s):

    API(V) = A·V        self-host(V) = F + v·V        break-even V* = F / (A − v)   (only if A > v)

With a throughput T (10-s units per GPU-hour) and a cluster of G GPUs for H hours a month, capacity C = T·G·H and the
utilisation needed at break-even is V*/C. When F = price/hour × G × H this is (price/hour ÷ T) / (A − v), independent
of G: if it exceeds 100 %, no cluster size breaks even at that price.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vbench_suite.errors import UserError
from vbench_suite.report.load import RunData
from vbench_suite.report.render import fmt_usd
from vbench_suite.report.tables import operations_table

HOURS_PER_MONTH = 730.0
"""Average hours in a month (8760 h / 12), the default for GPU price/hour × GPUs × hours."""
ASSUMED_GPU_USD_PER_HOUR = 2.0
"""GPU price the comparison report assumes (and says so) when a run did not price its local hardware; the
`breakeven` command always takes the user's price instead."""
DEFAULT_TABLE_POINTS = 11
"""Volumes in the default break-even table (evenly spaced from 0)."""


class BreakEvenInputError(UserError):
    """Break-even inputs are missing, contradictory or negative. The message names the flag to set."""


@dataclass(frozen=True)
class BreakEvenInputs:
    """Everything the break-even needs; money in US dollars, volume in 10-s units of video."""

    api_usd_per_10s: float
    """API price per 10 s of delivered video."""
    selfhost_usd_per_month: float | None = None
    """Flat monthly self-hosting cost; give this or `gpu_usd_per_hour`, not both."""
    gpu_usd_per_hour: float | None = None
    """Price of one GPU-hour; monthly cost = this × `gpus` × `hours_per_month`."""
    gpus: int = 1
    """GPUs in the self-hosted cluster."""
    hours_per_month: float = HOURS_PER_MONTH
    """Hours per month the cluster is paid for."""
    selfhost_usd_per_10s: float = 0.0
    """Variable self-hosting cost per 10 s of video (storage, egress, ...)."""
    videos_per_gpu_hour: float | None = None
    """Self-hosted throughput in videos per GPU-hour (measured or given); None: utilisation is not computed."""
    video_seconds: float = 10.0
    """Length in seconds of the videos `videos_per_gpu_hour` counts."""
    api_label: str = "API"
    """Name of the API option in tables and plots (e.g. 'runway (simulated)')."""
    sources: tuple[str, ...] = ()
    """Where measured inputs came from (printed with the arithmetic)."""

    def validate(self) -> None:
        """Raise `BreakEvenInputError` naming the flag if an input is missing, negative or contradictory."""
        if (self.selfhost_usd_per_month is None) == (self.gpu_usd_per_hour is None):
            raise BreakEvenInputError(
                "Give the self-hosting cost either as --selfhost-usd-per-month or as --gpu-usd-per-hour "
                "(with --gpus and --hours-per-month), exactly one of them.")
        checks = {"--api-usd-per-10s": self.api_usd_per_10s, "--selfhost-usd-per-month": self.selfhost_usd_per_month,
                  "--gpu-usd-per-hour": self.gpu_usd_per_hour, "--selfhost-usd-per-10s": self.selfhost_usd_per_10s,
                  "--hours-per-month": self.hours_per_month, "--videos-per-gpu-hour": self.videos_per_gpu_hour,
                  "--video-seconds": self.video_seconds}
        for flag, value in checks.items():
            if value is not None and (not math.isfinite(value) or value < 0):
                raise BreakEvenInputError(f"{flag} must be a non-negative number, got {value}.")
        if self.gpus < 1:
            raise BreakEvenInputError(f"--gpus must be at least 1, got {self.gpus}.")
        if self.video_seconds == 0:
            raise BreakEvenInputError("--video-seconds must be greater than 0.")


@dataclass(frozen=True)
class BreakEven:
    """Result of `compute_breakeven`. Volumes are 10-s units per month; None means 'does not exist' (see `verdict`)."""

    inputs: BreakEvenInputs
    fixed_usd_per_month: float
    margin_usd_per_10s: float
    """API price minus self-host variable cost: what each 10 s saved contributes to the fixed cost."""
    units_per_gpu_hour: float | None
    capacity_per_month: float | None
    breakeven_volume: float | None
    utilisation_at_breakeven: float | None
    feasible: bool
    """True when self-hosting is cheaper above some volume the cluster can actually deliver (or capacity unknown)."""
    verdict: str
    arithmetic: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:,.4g}"


def cost_table(inputs: BreakEvenInputs, fixed: float, volumes: np.ndarray, capacity: float | None) -> pd.DataFrame:
    """Monthly cost of both options at each volume (10-s units/month), the cheaper one ('api', 'self-host', 'equal',
    or 'over capacity' where the cluster cannot make that volume) and the utilisation needed."""
    rows = []
    for v in volumes:
        api = inputs.api_usd_per_10s * v
        own = fixed + inputs.selfhost_usd_per_10s * v
        cheaper = "equal" if math.isclose(api, own, rel_tol=1e-9, abs_tol=1e-9) else (
            "self-host" if own < api else "api")
        util = v / capacity if capacity else np.nan
        over = bool(capacity is not None and v > capacity * (1 + 1e-12))
        if over:
            cheaper = "over capacity"  # this cluster cannot make that volume; its cost there means nothing
        rows.append({"volume_10s_units": float(v), "video_minutes": float(v) * 10.0 / 60.0, "api_usd": api,
                     "selfhost_usd": own, "cheaper": cheaper, "utilisation": util, "over_capacity": over})
    return pd.DataFrame(rows)


def compute_breakeven(inputs: BreakEvenInputs, volumes: np.ndarray | None = None) -> BreakEven:
    """Break-even volume, utilisation, verdict, the written-out arithmetic and a cost table.

    `volumes` (10-s units/month) defaults to 11 evenly spaced points from 0 to 2 × max(break-even, capacity).
    Raises `BreakEvenInputError` on invalid inputs.
    """
    inputs.validate()
    A, v = inputs.api_usd_per_10s, inputs.selfhost_usd_per_10s
    lines: list[str] = list(inputs.sources)
    if inputs.gpu_usd_per_hour is not None:
        fixed = inputs.gpu_usd_per_hour * inputs.gpus * inputs.hours_per_month
        lines.append(f"Self-hosting fixed cost F = {fmt_usd(inputs.gpu_usd_per_hour)}/GPU-hour × {inputs.gpus} "
                     f"GPU(s) × {_num(inputs.hours_per_month)} h = {fmt_usd(fixed)} per month")
    else:
        fixed = float(inputs.selfhost_usd_per_month or 0.0)
        lines.append(f"Self-hosting fixed cost F = {fmt_usd(fixed)} per month (given)")
    lines.append(f"API price A = {fmt_usd(A)} per 10 s ({inputs.api_label}); "
                 f"self-host variable cost v = {fmt_usd(v)} per 10 s")
    margin = A - v
    lines.append(f"Each 10 s made in-house instead of through the API saves A − v = {fmt_usd(A)} − {fmt_usd(v)} = "
                 f"{fmt_usd(margin)}")

    units_per_gpu_hour = capacity = None
    if inputs.videos_per_gpu_hour is not None:
        units_per_gpu_hour = inputs.videos_per_gpu_hour * inputs.video_seconds / 10.0
        capacity = units_per_gpu_hour * inputs.gpus * inputs.hours_per_month
        lines.append(f"Throughput T = {_num(inputs.videos_per_gpu_hour)} videos/GPU-hour × "
                     f"{_num(inputs.video_seconds)} s / 10 s = {_num(units_per_gpu_hour)} ten-second units per "
                     "GPU-hour")
        lines.append(f"Capacity C = T × {inputs.gpus} GPU(s) × {_num(inputs.hours_per_month)} h = "
                     f"{_num(capacity)} ten-second units per month")

    breakeven = util = None
    feasible = False
    if margin <= 0:
        verdict = (f"Self-hosting never breaks even: its variable cost {fmt_usd(v)} per 10 s is not below the API "
                   f"price {fmt_usd(A)} per 10 s, so every extra video widens the gap on top of the {fmt_usd(fixed)} "
                   "fixed cost.")
        lines.append("A − v ≤ 0, so F + v·V > A·V at every volume V > 0: there is no break-even volume.")
    else:
        breakeven = fixed / margin
        lines.append(f"Break-even V* = F / (A − v) = {fmt_usd(fixed)} / {fmt_usd(margin)} = {_num(breakeven)} "
                     f"ten-second units per month ({_num(breakeven * 10 / 60)} minutes of video)")
        if capacity is not None and capacity > 0:
            util = breakeven / capacity
            lines.append(f"Utilisation needed at V* = V* / C = {_num(breakeven)} / {_num(capacity)} = {util:.1%}")
        elif capacity == 0:
            util = math.inf
        feasible = util is None or util <= 1.0
        if fixed == 0:
            verdict = "Self-hosting is cheaper at every volume (no fixed cost and a lower variable cost)."
        elif util is None:
            verdict = (f"Self-hosting is cheaper above {_num(breakeven)} ten-second units per month; utilisation not "
                       "computed (give --videos-per-gpu-hour or --from-run with a local backend).")
        elif feasible:
            verdict = (f"Self-hosting is cheaper above {_num(breakeven)} ten-second units per month, which keeps the "
                       f"cluster {util:.1%} busy.")
        else:
            verdict = (f"Self-hosting would break even at {_num(breakeven)} ten-second units per month, but that needs "
                       f"{util:.0%} utilisation: more than the cluster can make, so at these prices it never breaks "
                       "even.")
            if inputs.gpu_usd_per_hour is not None and units_per_gpu_hour:
                full = inputs.gpu_usd_per_hour / units_per_gpu_hour + v
                lines.append(f"Even fully used, self-hosting costs {fmt_usd(inputs.gpu_usd_per_hour)} / "
                             f"{_num(units_per_gpu_hour)} + {fmt_usd(v)} = {fmt_usd(full)} per 10 s ≥ A = "
                             f"{fmt_usd(A)}; adding GPUs does not change this.")
    if volumes is None:
        # Without a break-even, span the volume where the API bill reaches the fixed cost, so the gap is visible.
        api_reaches_fixed = fixed / A if A > 0 else None
        top = max(x for x in (breakeven, capacity, api_reaches_fixed, 1.0)
                  if x is not None and math.isfinite(x)) * 2.0
        volumes = np.linspace(0.0, top, DEFAULT_TABLE_POINTS)
        if breakeven is not None and breakeven not in volumes:
            volumes = np.sort(np.append(volumes, breakeven))
    table = cost_table(inputs, fixed, np.asarray(volumes, dtype=np.float64), capacity)
    return BreakEven(inputs=inputs, fixed_usd_per_month=fixed, margin_usd_per_10s=margin,
                     units_per_gpu_hour=units_per_gpu_hour, capacity_per_month=capacity, breakeven_volume=breakeven,
                     utilisation_at_breakeven=util, feasible=feasible, verdict=verdict, arithmetic=lines, table=table)


@dataclass(frozen=True)
class RunEconomics:
    """Measured inputs taken from a run: API prices of paid remote backends and a local backend's throughput."""

    api_usd_per_10s: dict[str, float]
    """{backend label: measured cost per 10 s} for remote backends with a non-zero cost."""
    selfhost_backend: str | None
    videos_per_gpu_hour: float | None
    video_seconds: float | None
    gpu_usd_per_hour: float | None
    """Hardware price implied by the local backend's records (cost_usd / hardware_s × 3600), if it was priced."""


def economics_from_run(run: RunData, api_backend: str | None = None,
                       selfhost_backend: str | None = None) -> RunEconomics:
    """Measured prices and throughput from a run: every paid remote backend's cost per 10 s (or only `api_backend`'s)
    and the throughput of `selfhost_backend`, by default of the slowest local backend. Names that are not in the run
    raise `BreakEvenInputError`."""
    ops = operations_table(run)
    names = set(run.backends())
    for flag, name in (("--api-backend", api_backend), ("--selfhost-backend", selfhost_backend)):
        if name is not None and name not in names:
            raise BreakEvenInputError(f"{flag} '{name}' is not in run '{run.run_dir}'. Backends there: "
                                      f"{', '.join(sorted(names)) or 'none'}.")
    prices: dict[str, float] = {}
    for row in ops.itertuples(index=False):
        if api_backend is not None and row.backend != api_backend:
            continue
        if not row.local and np.isfinite(row.usd_per_10s) and row.usd_per_10s > 0:
            prices[row.label] = float(row.usd_per_10s)
    local = [r for r in ops.itertuples(index=False) if r.local and np.isfinite(r.videos_per_hw_hour)]
    if selfhost_backend is not None:
        local = [r for r in local if r.backend == selfhost_backend]
        if not local:
            raise BreakEvenInputError(f"--selfhost-backend '{selfhost_backend}' has no hardware seconds in the run, so "
                                      "its throughput is unknown; give --videos-per-gpu-hour.")
    if not local:
        return RunEconomics(prices, None, None, None, None)
    # Without a choice, the slowest local backend: the conservative break-even (and never a trivial renderer).
    best = min(local, key=lambda r: r.videos_per_hw_hour)
    hw_total = float(best.hardware_s_total)
    gpu_price = float(best.cost_usd_total) / hw_total * 3600.0 if best.cost_usd_total > 0 and hw_total > 0 else None
    return RunEconomics(prices, best.label, float(best.videos_per_hw_hour), float(best.video_seconds_mean), gpu_price)

