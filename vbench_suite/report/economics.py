"""Break-even economics: when does running our own GPUs beat paying an API per video?

Unit of volume throughout: **10-second units of video per month** (one unit = 10 s of delivered video), so API prices
quoted per 10 s apply directly. With API price A ($/10 s), self-hosting fixed cost F ($/month) and self-hosting
variable cost v ($/10 s):

    API(V) = A·V        self-host(V) = F + v·V        break-even V* = F / (A − v)   (only if A > v)

With a throughput T (10-s units per GPU-hour) and a cluster of G GPUs for H hours a month, capacity C = T·G·H and the
utilisation needed at break-even is V*/C. When F = price/hour × G × H this is (price/hour ÷ T) / (A − v), independent
of G: if it exceeds 100 %, no cluster size breaks even at that price.

Like for like: a price per 10 s says nothing about a clip of another size or length, so a break-even is given as a
plain verdict only when the API's clips and the self-hosted clips have the same resolution and duration class
(`compare_formats`). Otherwise the comparison is normalised per megapixel-second (labelled as such, with no verdict).
Every hourly rate carries the place it came from (`RunEconomics.rate_source`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vbench_suite.backends.hardware import ASSUMED_USD_PER_GPU_HOUR
from vbench_suite.errors import UserError
from vbench_suite.report.load import RunData
from vbench_suite.report.render import fmt_usd
from vbench_suite.report.tables import operations_table

HOURS_PER_MONTH = 730.0
"""Average hours in a month (8760 h / 12), the default for GPU price/hour × GPUs × hours."""
ASSUMED_GPU_USD_PER_HOUR = ASSUMED_USD_PER_GPU_HOUR
"""GPU price the comparison report assumes (and says so) when a run did not price its local hardware (the same
placeholder self-hosted backends price with when `usd_per_gpu_hour` is unset); the `breakeven` command always takes
the user's price instead."""
DEFAULT_TABLE_POINTS = 11
"""Volumes in the default break-even table (evenly spaced from 0)."""
DURATION_CLASS_EDGES_S = (4.0, 8.0, 16.0)
"""Upper edges of the clip-length classes (up to 4 s, 4-8 s, 8-16 s, longer): generation cost is not proportional
to length (attention spans all frames), so clips of different classes are not compared like for like."""
NORMALISATION_CAVEAT = ("assumes cost grows in proportion to pixels × seconds; generation compute grows faster, so "
                        "this favours the side making the smaller clips")
"""Said wherever a normalised (per megapixel-second) comparison is printed."""


@dataclass(frozen=True)
class VideoFormat:
    """Size and length of the clips a price or a throughput refers to."""

    width: int
    height: int
    seconds: float
    """Mean length in seconds of the delivered clips."""

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def duration_class(self) -> str:
        """'up to 4 s', '4-8 s', '8-16 s' or 'over 16 s' (edges `DURATION_CLASS_EDGES_S`, upper edge included)."""
        low = 0.0
        for edge in DURATION_CLASS_EDGES_S:
            if self.seconds <= edge + 1e-9:
                return f"up to {edge:g} s" if low == 0 else f"{low:g}-{edge:g} s"
            low = edge
        return f"over {low:g} s"

    def describe(self) -> str:
        """'1280x720 5 s clips'."""
        return f"{self.width}x{self.height} {self.seconds:.3g} s clips"


@dataclass(frozen=True)
class FormatComparison:
    """Whether an API price and a self-hosting throughput refer to the same kind of clip."""

    like_for_like: bool | None
    """True: same resolution (either orientation) and duration class; False: not; None: a format is unknown."""
    text: str
    """One sentence saying which, naming both formats."""
    throughput_scale: float = 1.0
    """Factor turning self-hosted 10-s units into 10-s units of the API's format per megapixel-second
    (self-host megapixels / API megapixels); 1 when like for like or unknown."""


def compare_formats(selfhost: VideoFormat | None, api: VideoFormat | None, selfhost_name: str = "self-host",
                    api_name: str = "the API") -> FormatComparison:
    """Like for like when both formats are known, have the same resolution (either orientation) and the same
    duration class; else not (normalised per megapixel-second), or unknown when a format is missing."""
    if selfhost is None or api is None or not selfhost.megapixels or not api.megapixels:
        return FormatComparison(None, "Formats not checked: the clip size or length of "
                                f"{'the API price' if api is None else 'the self-hosted throughput'} is not known; "
                                "make sure both refer to the same resolution and clip length.")
    same_size = sorted((selfhost.width, selfhost.height)) == sorted((api.width, api.height))
    same_class = selfhost.duration_class() == api.duration_class()
    if same_size and same_class:
        return FormatComparison(True, f"Like for like: {selfhost_name} makes {selfhost.describe()}, {api_name} "
                                      f"{api.describe()} (same resolution, duration class {api.duration_class()}).")
    scale = selfhost.megapixels / api.megapixels
    return FormatComparison(False, f"Not like for like: {selfhost_name} makes {selfhost.describe()} (duration class "
                                   f"{selfhost.duration_class()}), {api_name} {api.describe()} (duration class "
                                   f"{api.duration_class()}). Normalised per megapixel-second ("
                                   f"{NORMALISATION_CAVEAT}).", scale)


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
    """Price of one hour of one `machine` (a GPU by default); monthly cost = this × `gpus` × `hours_per_month`."""
    gpus: int = 1
    """Machines (GPUs by default) in the self-hosted cluster."""
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
    machine: str = "GPU"
    """What one hour of `gpu_usd_per_hour` buys and what `videos_per_gpu_hour` was measured on (e.g. 'GPU',
    'CPU: 1 vCPU')."""
    selfhost_label: str = "self-host"
    """Name of the self-hosted option in the format comparison (e.g. 'dit-local')."""
    api_format: VideoFormat | None = None
    """Clips the API price is for; None: unknown (the comparison says it was not checked)."""
    selfhost_format: VideoFormat | None = None
    """Clips the self-hosted throughput counts; None: unknown."""

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
    """A plain verdict only when `comparison.like_for_like` is not False; otherwise it says 'No verdict'."""
    arithmetic: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: FormatComparison = field(default_factory=lambda: FormatComparison(None, ""))
    """Like for like or not; when not, volumes are 10-s units of the API's format, normalised per
    megapixel-second."""


def _pct(x: float) -> str:
    """A share as a percentage, with enough digits that a tiny one does not read 0.0%."""
    return f"{x * 100:.2g}%" if 0 < x < 0.001 else f"{x:.1%}"


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:,.4g}"


def cost_table(inputs: BreakEvenInputs, fixed: float, volumes: np.ndarray, capacity: float | None,
               normalised: bool = False) -> pd.DataFrame:
    """Monthly cost of both options at each volume (10-s units/month), the cheaper one ('api', 'self-host', 'equal',
    or 'over capacity' where the cluster cannot make that volume; suffixed ' (normalised)' when `normalised`) and the
    utilisation needed."""
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
        if normalised:
            cheaper += " (normalised)"  # not a verdict: the two sides make different clips
        rows.append({"volume_10s_units": float(v), "video_minutes": float(v) * 10.0 / 60.0, "api_usd": api,
                     "selfhost_usd": own, "cheaper": cheaper, "utilisation": util, "over_capacity": over})
    return pd.DataFrame(rows)


def _fixed_cost_line(inputs: BreakEvenInputs) -> tuple[float, str]:
    if inputs.gpu_usd_per_hour is not None:
        fixed = inputs.gpu_usd_per_hour * inputs.gpus * inputs.hours_per_month
        return fixed, (f"Self-hosting fixed cost F = {fmt_usd(inputs.gpu_usd_per_hour)} per machine-hour "
                       f"({inputs.machine}) × {inputs.gpus} machine(s) × {_num(inputs.hours_per_month)} h = "
                       f"{fmt_usd(fixed)} per month")
    fixed = float(inputs.selfhost_usd_per_month or 0.0)
    return fixed, f"Self-hosting fixed cost F = {fmt_usd(fixed)} per month (given)"


def _throughput_lines(inputs: BreakEvenInputs, comp: FormatComparison) -> tuple[float | None, float | None,
                                                                                list[str]]:
    """(10-s units per machine-hour, in the API's format when normalised; capacity per month; arithmetic lines)."""
    if inputs.videos_per_gpu_hour is None:
        return None, None, []
    units = inputs.videos_per_gpu_hour * inputs.video_seconds / 10.0
    lines = [f"Throughput T = {_num(inputs.videos_per_gpu_hour)} videos per machine-hour ({inputs.machine}) × "
             f"{_num(inputs.video_seconds)} s / 10 s = {_num(units)} ten-second units per machine-hour"]
    if comp.like_for_like is False and inputs.api_format is not None and inputs.selfhost_format is not None:
        normalised = units * comp.throughput_scale
        lines.append(f"Normalised per megapixel-second: T × {inputs.selfhost_format.megapixels:.6g} MP / "
                     f"{inputs.api_format.megapixels:.6g} MP = {_num(normalised)} ten-second units of "
                     f"{inputs.api_format.width}x{inputs.api_format.height} per machine-hour "
                     f"({NORMALISATION_CAVEAT})")
        units = normalised
    capacity = units * inputs.gpus * inputs.hours_per_month
    lines.append(f"Capacity C = T × {inputs.gpus} machine(s) × {_num(inputs.hours_per_month)} h = "
                 f"{_num(capacity)} ten-second units per month")
    return units, capacity, lines


def _per_megapixel_second_lines(inputs: BreakEvenInputs) -> list[str]:
    """Both prices per megapixel-second of video (the self-hosted one at full use, when rate and throughput are
    known): the normalised comparison in its plainest form."""
    api_fmt, own_fmt = inputs.api_format, inputs.selfhost_format
    if api_fmt is None or own_fmt is None:
        return []
    api_mps = inputs.api_usd_per_10s / (10.0 * api_fmt.megapixels)
    line = f"Per megapixel-second: API {fmt_usd(inputs.api_usd_per_10s)} / (10 s × {api_fmt.megapixels:.6g} MP) = " \
           f"${api_mps:.4g}"
    if inputs.gpu_usd_per_hour is not None and inputs.videos_per_gpu_hour:
        mps_per_hour = inputs.videos_per_gpu_hour * inputs.video_seconds * own_fmt.megapixels
        own_mps = inputs.gpu_usd_per_hour / mps_per_hour + inputs.selfhost_usd_per_10s / (10.0 * own_fmt.megapixels)
        line += (f"; self-host fully used {fmt_usd(inputs.gpu_usd_per_hour)}/h / {_num(mps_per_hour)} MP·s per hour"
                 f" = ${own_mps:.4g}")
    return [line + " (normalised, not like for like)"]


def _plain_verdict(breakeven: float, fixed: float, util: float | None, feasible: bool) -> str:
    if fixed == 0:
        return "Self-hosting is cheaper at every volume (no fixed cost and a lower variable cost)."
    if util is None:
        return (f"Self-hosting is cheaper above {_num(breakeven)} ten-second units per month; utilisation not "
                "computed (give --videos-per-gpu-hour or --from-run with a local backend).")
    if feasible:
        return (f"Self-hosting is cheaper above {_num(breakeven)} ten-second units per month, which keeps the "
                f"cluster {_pct(util)} busy.")
    return (f"Self-hosting would break even at {_num(breakeven)} ten-second units per month, but that needs "
            f"{util:.0%} utilisation: more than the cluster can make, so at these prices it never breaks even.")


def _unlike_verdict(comp: FormatComparison, inputs: BreakEvenInputs, breakeven: float | None,
                    util: float | None, feasible: bool) -> str:
    """No verdict, only the labelled normalised figure: the two sides make different clips."""
    fmt_api = inputs.api_format.describe() if inputs.api_format else "the API's clips"
    if breakeven is None:
        figure = "even normalised, self-hosting never breaks even"
    elif util is None:
        figure = f"normalised, the break-even would be {_num(breakeven)} ten-second units per month"
    else:
        figure = (f"normalised, the break-even would be {_num(breakeven)} ten-second units per month at "
                  f"{_pct(util)} utilisation" + ("" if feasible else ", more than the cluster can make"))
    return (f"No verdict: {comp.text} {figure[0].upper()}{figure[1:]}. Measure self-hosting on "
            f"{fmt_api} to decide.")


def compute_breakeven(inputs: BreakEvenInputs, volumes: np.ndarray | None = None) -> BreakEven:
    """Break-even volume, utilisation, verdict, the written-out arithmetic and a cost table.

    `volumes` (10-s units/month) defaults to 11 evenly spaced points from 0 to 2 × max(break-even, capacity).
    When the formats are not like for like (`compare_formats`), throughput is normalised per megapixel-second to
    the API's format and the verdict says 'No verdict'. Raises `BreakEvenInputError` on invalid inputs.
    """
    inputs.validate()
    A, v = inputs.api_usd_per_10s, inputs.selfhost_usd_per_10s
    comp = compare_formats(inputs.selfhost_format, inputs.api_format, inputs.selfhost_label, inputs.api_label)
    lines: list[str] = list(inputs.sources) + [comp.text]
    fixed, line = _fixed_cost_line(inputs)
    lines.append(line)
    lines.append(f"API price A = {fmt_usd(A)} per 10 s ({inputs.api_label}); "
                 f"self-host variable cost v = {fmt_usd(v)} per 10 s")
    margin = A - v
    lines.append(f"Each 10 s made in-house instead of through the API saves A − v = {fmt_usd(A)} − {fmt_usd(v)} = "
                 f"{fmt_usd(margin)}")
    units_per_gpu_hour, capacity, tput_lines = _throughput_lines(inputs, comp)
    lines += tput_lines
    if comp.like_for_like is False:
        lines += _per_megapixel_second_lines(inputs)

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
            lines.append(f"Utilisation needed at V* = V* / C = {_num(breakeven)} / {_num(capacity)} = {_pct(util)}")
        elif capacity == 0:
            util = math.inf
        feasible = util is None or util <= 1.0
        verdict = _plain_verdict(breakeven, fixed, util, feasible)
        if not feasible and inputs.gpu_usd_per_hour is not None and units_per_gpu_hour:
            full = inputs.gpu_usd_per_hour / units_per_gpu_hour + v
            lines.append(f"Even fully used, self-hosting costs {fmt_usd(inputs.gpu_usd_per_hour)} / "
                         f"{_num(units_per_gpu_hour)} + {fmt_usd(v)} = {fmt_usd(full)} per 10 s ≥ A = "
                         f"{fmt_usd(A)}; adding machines does not change this.")
    if comp.like_for_like is False:
        verdict = _unlike_verdict(comp, inputs, breakeven, util, feasible)
    elif comp.like_for_like is None:
        verdict += (" Clip formats not checked: make sure the API price and the throughput are for the same "
                    "resolution and clip length (--api-resolution, --api-video-seconds, --selfhost-resolution).")
    if volumes is None:
        # Without a break-even, span the volume where the API bill reaches the fixed cost, so the gap is visible.
        api_reaches_fixed = fixed / A if A > 0 else None
        top = max(x for x in (breakeven, capacity, api_reaches_fixed, 1.0)
                  if x is not None and math.isfinite(x)) * 2.0
        volumes = np.linspace(0.0, top, DEFAULT_TABLE_POINTS)
        if breakeven is not None and breakeven not in volumes:
            volumes = np.sort(np.append(volumes, breakeven))
    table = cost_table(inputs, fixed, np.asarray(volumes, dtype=np.float64), capacity,
                       normalised=comp.like_for_like is False)
    return BreakEven(inputs=inputs, fixed_usd_per_month=fixed, margin_usd_per_10s=margin,
                     units_per_gpu_hour=units_per_gpu_hour, capacity_per_month=capacity, breakeven_volume=breakeven,
                     utilisation_at_breakeven=util, feasible=feasible, verdict=verdict, arithmetic=lines, table=table,
                     comparison=comp)


@dataclass(frozen=True)
class RunEconomics:
    """Measured inputs taken from a run: API prices of paid remote backends and a local backend's throughput."""

    api_usd_per_10s: dict[str, float]
    """{backend label: measured cost per 10 s} for remote backends with a non-zero cost (at the self-hosted clips'
    resolution when the backend made clips of that size too; see `api_notes`)."""
    selfhost_backend: str | None
    videos_per_gpu_hour: float | None
    """Videos per hour of the machine the local backend ran on (`machine`), from its hardware seconds."""
    video_seconds: float | None
    gpu_usd_per_hour: float | None
    """Hourly rate implied by the local backend's records (cost_usd / hardware_s × 3600), if it was priced."""
    api_formats: dict[str, VideoFormat | None] = field(default_factory=dict)
    """{backend label: the clips its price is for} (same keys as `api_usd_per_10s`)."""
    selfhost_format: VideoFormat | None = None
    machine: str = "machine of unrecorded kind"
    """What the local backend ran on, e.g. 'CPU: 1 vCPU' or 'GPU (cuda, NVIDIA H200)'."""
    rate_source: str = ""
    """Where `gpu_usd_per_hour` came from, said with the rate (e.g. the backend's default, an assumption)."""
    device: str = ""
    """Device recorded in the local backend's fingerprint ('cpu', 'cuda', ...; '' when not recorded)."""
    gpus: int | None = None
    """GPUs one generation of the local backend held (its records' `device_count`), on a GPU; None on a CPU or
    when not recorded. The measured deployment: the default cluster size of the break-even."""
    hardware_s_per_10s: float | None = None
    """The local backend's measured hardware seconds (GPU-seconds on a GPU) per 10 s of delivered video."""
    api_notes: dict[str, str] = field(default_factory=dict)
    """{backend label: how its price was chosen} when only part of its records priced it (matching resolution)."""


def run_format(generations: pd.DataFrame) -> VideoFormat | None:
    """The clips a backend delivered: its most common requested resolution and the mean delivered length of its ok
    generations; None when the records do not say (no ok video, or no resolution recorded)."""
    ok = generations[generations["status"] == "ok"]
    if not len(ok) or "width" not in ok or not (ok["width"] > 0).any():
        return None
    sizes = ok.loc[ok["width"] > 0, ["width", "height"]].value_counts()
    width, height = sizes.index[0]
    seconds = float(ok["video_seconds"].mean())
    return VideoFormat(int(width), int(height), seconds) if seconds > 0 else None


def _json_column(generations: pd.DataFrame, column: str) -> list[dict]:
    """The JSON objects of a text column ('settings', 'info'), newest record last; unreadable ones left out."""
    import json

    out = []
    for text in generations[column] if column in generations else ():
        try:
            value = json.loads(text or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _device(generations: pd.DataFrame) -> str:
    """The device recorded in a backend's fingerprint settings (else in its records' info; '' when none)."""
    for record in _json_column(generations, "settings") + _json_column(generations, "info"):
        if record.get("device"):
            return str(record["device"])
    return ""


def recorded_accounting(generations: pd.DataFrame) -> dict:
    """How a self-hosted backend's ok records say they were priced and what they ran on: the most common value of
    each of `rate_source`, `rate_option`, `device_name`, `device_count`, `hardware_usd_per_hour` (fields of
    `vbench_suite.backends.hardware`; keys absent when no record has them)."""
    from collections import Counter

    ok = generations[generations["status"] == "ok"]
    infos = _json_column(ok, "info")
    out = {}
    for key in ("rate_source", "rate_option", "device_name", "device_count", "hardware_usd_per_hour"):
        values = Counter(str(i[key]) for i in infos if i.get(key) not in (None, ""))
        if values:
            text = values.most_common(1)[0][0]
            out[key] = int(text) if key == "device_count" and text.isdigit() else text
    return out


def local_rate_source(backend: str, rate: float, device: str, recorded: dict | None = None) -> tuple[str, str]:
    """(machine, source) for a local backend's hourly rate as implied by its records.

    `recorded` is `recorded_accounting` of its records. Their `rate_source` says whether the user set the price
    ('option') or the backend priced with its stated default ('default', an assumption, named as one with the way to
    change it). dit-local's records predate that field: its default `price_per_hour` is recognised by value (a
    2-vCPU on-demand cloud instance, see `vbench_suite.backends.dit_local.DEFAULT_PRICE_PER_HOUR`). Other records
    that say nothing are named as the backend's own cost records.
    """
    recorded = recorded or {}
    name = "" if recorded.get("device_name") in (None, "unknown") else recorded["device_name"]
    kind = {"cpu": "CPU", "": "machine of unrecorded kind"}.get(device, f"GPU ({device}{', ' + name if name else ''})")
    change = "`vbench-suite breakeven --gpu-usd-per-hour USD`"
    if recorded.get("rate_source") in ("option", "default"):
        option = recorded.get("rate_option") or ("usd_per_cpu_hour" if device == "cpu" else "usd_per_gpu_hour")
        machine = "CPU: 1 vCPU" if device == "cpu" else kind
        if recorded["rate_source"] == "option":
            return machine, f"source: {backend}'s {option} option, set for this run"
        return machine, (f"assumed, source: {backend}'s default {option} (${rate:.4g}/h, a placeholder, not a quote), "
                         f"not a measured bill; set the real price with `--option {backend}.{option}=USD` when "
                         f"running, or {change}")
    if backend == "dit-local":
        # constants only; no torch import
        from vbench_suite.backends.dit_local import DEFAULT_PRICE_PER_HOUR, DEFAULT_PRICE_VCPUS

        fix = f"set the real price with `--option dit-local.price_per_hour=USD` when running, or {change}"
        # On a CPU dit-local charges each CPU-second at a vCPU's share of the machine's hourly price.
        per_vcpu = DEFAULT_PRICE_PER_HOUR / DEFAULT_PRICE_VCPUS
        if device == "cpu" and math.isclose(rate, per_vcpu, rel_tol=1e-6):
            return "CPU: 1 vCPU", (f"assumed, source: dit-local's default price_per_hour (${DEFAULT_PRICE_PER_HOUR:g}/h "
                                   f"for an on-demand {DEFAULT_PRICE_VCPUS}-vCPU cloud instance such as AWS c6i.large, "
                                   f"so ${per_vcpu:g} per CPU-hour of measured compute), not a measured bill; {fix}")
        if device != "cpu" and math.isclose(rate, DEFAULT_PRICE_PER_HOUR, rel_tol=1e-6):
            return kind, (f"assumed, source: dit-local's default price_per_hour (${DEFAULT_PRICE_PER_HOUR:g}/h), "
                          f"which prices a {DEFAULT_PRICE_VCPUS}-vCPU CPU instance, not the {kind} this run used; {fix}")
        return kind, "source: dit-local's price_per_hour option set for this run"
    return kind, f"source: {backend}'s own cost records (cost_usd / hardware_s)"


def _same_size(generations: pd.DataFrame, fmt: VideoFormat) -> pd.Series:
    """Records whose requested resolution is `fmt`'s, in either orientation."""
    w, h = generations["width"], generations["height"]
    return ((w == fmt.width) & (h == fmt.height)) | ((w == fmt.height) & (h == fmt.width))


def _api_prices(run: RunData, ops: pd.DataFrame, api_backend: str | None,
                own: VideoFormat | None) -> tuple[dict[str, float], dict[str, VideoFormat | None], dict[str, str]]:
    """Each paid remote backend's cost per 10 s, its clips and a note when it was priced from part of its records:
    at the self-hosted clips' resolution (`own`) when the backend delivered clips of that size, since a vendor's
    price per 10 s differs between resolutions; else from all its records."""
    gens = run.generations
    prices: dict[str, float] = {}
    formats: dict[str, VideoFormat | None] = {}
    notes: dict[str, str] = {}
    for row in ops.itertuples(index=False):
        if (api_backend is not None and row.backend != api_backend) or row.local:
            continue
        if not (np.isfinite(row.usd_per_10s) and row.usd_per_10s > 0):
            continue
        mine = gens[gens["backend"] == row.backend]
        mine = mine[~mine["unsupported"].astype(bool)] if "unsupported" in mine else mine
        price, chosen = float(row.usd_per_10s), mine
        if own is not None:
            match = mine[_same_size(mine, own)]
            delivered = float(match.loc[match["status"] == "ok", "video_seconds"].sum())
            if delivered > 0 and len(match) < len(mine):
                price, chosen = float(match["cost_usd"].sum()) / delivered * 10.0, match
                notes[row.label] = (f"{row.label}'s price is from its {own.width}x{own.height} clips only "
                                    f"({len(match)} of its {len(mine)} requests), the resolution the self-hosted "
                                    f"backend made: ${price:.4g} per 10 s (all its clips: ${row.usd_per_10s:.4g})")
        prices[row.label] = price
        formats[row.label] = run_format(chosen)
    return prices, formats, notes


def economics_from_run(run: RunData, api_backend: str | None = None,
                       selfhost_backend: str | None = None) -> RunEconomics:
    """Measured prices, clip formats and throughput from a run: every paid remote backend's cost per 10 s (or only
    `api_backend`'s; at the self-hosted clips' resolution where it made such clips) and the throughput of
    `selfhost_backend`, by default of the slowest local backend. Names that are not in the run raise
    `BreakEvenInputError`."""
    ops = operations_table(run)
    names = set(run.backends())
    for flag, name in (("--api-backend", api_backend), ("--selfhost-backend", selfhost_backend)):
        if name is not None and name not in names:
            raise BreakEvenInputError(f"{flag} '{name}' is not in run '{run.run_dir}'. Backends there: "
                                      f"{', '.join(sorted(names)) or 'none'}.")
    gens = run.generations
    local = [r for r in ops.itertuples(index=False) if r.local and np.isfinite(r.videos_per_hw_hour)]
    if selfhost_backend is not None:
        local = [r for r in local if r.backend == selfhost_backend]
        if not local:
            raise BreakEvenInputError(f"--selfhost-backend '{selfhost_backend}' has no hardware seconds in the run, so "
                                      "its throughput is unknown; give --videos-per-gpu-hour.")
    if not local:
        prices, formats, notes = _api_prices(run, ops, api_backend, None)
        return RunEconomics(prices, None, None, None, None, api_formats=formats, api_notes=notes)
    # Without a choice, the slowest local backend: the conservative break-even (and never a trivial renderer).
    best = min(local, key=lambda r: r.videos_per_hw_hour)
    own = gens[gens["backend"] == best.backend]
    own_format = run_format(own)
    prices, formats, notes = _api_prices(run, ops, api_backend, own_format)
    device = _device(own)
    recorded = recorded_accounting(own)
    hw_total = float(best.hardware_s_total)
    rate = float(best.cost_usd_total) / hw_total * 3600.0 if best.cost_usd_total > 0 and hw_total > 0 else None
    machine, source = local_rate_source(best.backend, rate if rate is not None else 0.0, device, recorded)
    count = recorded.get("device_count")
    gpus = int(count) if device not in ("", "cpu") and isinstance(count, int) and count >= 1 else None
    per_10s = float(best.hardware_s_per_10s) if np.isfinite(best.hardware_s_per_10s) else None
    return RunEconomics(prices, best.label, float(best.videos_per_hw_hour), float(best.video_seconds_mean), rate,
                        api_formats=formats, selfhost_format=own_format, machine=machine,
                        rate_source=source if rate is not None else "", device=device, gpus=gpus,
                        hardware_s_per_10s=per_10s, api_notes=notes)
