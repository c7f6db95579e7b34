"""Scenarios for the fake vendors: per vendor (and optionally per model) true failure and refusal rates, latency
distributions, prices and output quality, declared in a YAML file so that tests know the right answer by construction.

File format (every key optional except `vendors`; unknown keys are an error naming the key):

```yaml
seed: 7                        # all draws derive from (seed, request fingerprint)
vendors:
  runway:                      # one of: runway, fal, synthesia, heygen, veo
    failure_rate: 0.10         # true probability that an accepted job ends FAILED
    refusal_rate: 0.05         # true probability that it is refused by moderation
    queue_s: {median: 0.05, spread: 0.3}   # lognormal: median seconds, sigma of log(seconds)
    run_s: {median: 0.10, spread: 0.3}
    price: {credits_per_s: 12} # Runway reports credits; others: {usd_per_s: 0.04}
    quality: {noise: 8, blur: 0.0, dropped_frames: 0.0, frozen_frames: 0.0}
    models:                    # overrides for one model name (Runway `model`, fal app path, Veo model id)
      gen4_turbo: {quality: {noise: 20}}
```

Outcome draw per request: u ~ U(0,1) from (seed, fingerprint); u < failure_rate -> failed, u < failure_rate +
refusal_rate -> refused, else succeeded. Quality is applied to a shapes-world render of the prompt (see `media`).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vbench_suite.errors import ConfigError

SCENARIO_VENDORS: tuple[str, ...] = ("runway", "fal", "synthesia", "heygen", "veo")
RUNWAY_CREDIT_USD = 0.01
"""Runway's documented price of one credit in US dollars (what the fake bills per credit)."""


@dataclass(frozen=True)
class Latency:
    """A lognormal duration: `median` seconds, `spread` = sigma of log(seconds) (0 = always the median)."""

    median: float
    spread: float = 0.0

    def draw(self, z: float) -> float:
        """The duration for a standard-normal deviate `z`."""
        return self.median * math.exp(self.spread * z)


@dataclass(frozen=True)
class Quality:
    """Corruption applied to the clean shapes-world render of the prompt. All zero = the clean render."""

    noise: float = 0.0
    """Gaussian noise sigma in uint8 levels (0..255 scale), independent per pixel of the drawing (which is at most
    240 px on its short side and then scaled up to the requested size: see `media.RENDER_SHORT_SIDE`)."""
    blur: float = 0.0
    """Gaussian blur sigma as a fraction of the frame's short side (0.02 = 2 %), spatial only."""
    dropped_frames: float = 0.0
    """Probability that a frame is missing from the file (the clip gets shorter; motion jumps)."""
    frozen_frames: float = 0.0
    """Probability that a frame repeats the previous output frame instead of advancing."""

    def key(self) -> tuple[float, float, float, float]:
        return (self.noise, self.blur, self.dropped_frames, self.frozen_frames)


@dataclass(frozen=True)
class Price:
    """What the fake bills per second of output video. Runway reports it (credits) in the task's `cost`."""

    usd_per_s: float = 0.0
    credits_per_s: float | None = None
    """Runway only: credits per second (1 credit = RUNWAY_CREDIT_USD); wins over usd_per_s."""

    def billed_usd(self, seconds: float) -> float:
        per_s = self.credits_per_s * RUNWAY_CREDIT_USD if self.credits_per_s is not None else self.usd_per_s
        return per_s * seconds


@dataclass(frozen=True)
class VendorTruth:
    """The true behaviour of one vendor (or one model of it)."""

    failure_rate: float = 0.0
    refusal_rate: float = 0.0
    queue_s: Latency = Latency(0.05)
    run_s: Latency = Latency(0.1)
    price: Price = Price()
    quality: Quality = Quality()


@dataclass(frozen=True)
class Draw:
    """What the scenario decided for one accepted request."""

    outcome: str
    """'succeeded' | 'failed' | 'refused'."""
    queue_s: float
    run_s: float
    truth: VendorTruth
    noise_seed: int


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario file. `truth(vendor, model)` is what the fake behaves like for that request."""

    seed: int = 0
    vendors: dict[str, VendorTruth] = field(default_factory=dict)
    models: dict[tuple[str, str], VendorTruth] = field(default_factory=dict)
    source: str = "<inline>"

    def truth(self, vendor: str, model: str = "") -> VendorTruth:
        return self.models.get((vendor, model)) or self.vendors.get(vendor) or VendorTruth()

    def draw(self, vendor: str, model: str, fingerprint: str) -> Draw:
        """Deterministic in (seed, vendor, fingerprint): the same request always gets the same answer."""
        truth = self.truth(vendor, model)
        u = _uniforms(f"{self.seed}\x1f{vendor}\x1f{fingerprint}", 4)
        if u[0] < truth.failure_rate:
            outcome = "failed"
        elif u[0] < truth.failure_rate + truth.refusal_rate:
            outcome = "refused"
        else:
            outcome = "succeeded"
        return Draw(outcome=outcome, queue_s=truth.queue_s.draw(_normal(u[1], u[2])),
                    run_s=truth.run_s.draw(_normal(u[2], u[1])), truth=truth,
                    noise_seed=int(u[3] * 2**31))


def _uniforms(text: str, n: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(int.from_bytes(digest[8 * i:8 * i + 8], "big") + 0.5) / 2**64 for i in range(n)]


def _normal(u1: float, u2: float) -> float:
    """Box-Muller: a standard-normal deviate from two uniforms in (0, 1)."""
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


# ---- parsing ------------------------------------------------------------------------------------------------
def _check_keys(where: str, data: Any, allowed: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (valid: {', '.join(sorted(allowed))})")
    return data


def _number(where: str, value: Any, lo: float = 0.0, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        bound = f"between {lo:g} and {hi:g}" if hi != math.inf else f">= {lo:g}"
        raise ConfigError(f"{where}: must be a number {bound}, got {value!r}")
    return float(value)


def _latency(where: str, data: Any, default: Latency) -> Latency:
    if data is None:
        return default
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return Latency(_number(where, data))
    d = _check_keys(where, data, {"median", "spread"})
    return Latency(_number(f"{where}.median", d.get("median", default.median)),
                   _number(f"{where}.spread", d.get("spread", default.spread)))


def _dataclass_from(where: str, cls: type, data: Any, default: Any, bounds: dict[str, tuple[float, float]]) -> Any:
    names = {f.name for f in fields(cls)}
    d = _check_keys(where, data, names)
    values = {k: _number(f"{where}.{k}", v, *bounds.get(k, (0.0, math.inf))) for k, v in d.items() if v is not None}
    return replace(default, **values)


def _truth(where: str, data: Any, base: VendorTruth, vendor: str) -> VendorTruth:
    d = _check_keys(where, data, {"failure_rate", "refusal_rate", "queue_s", "run_s", "price", "quality", "models"})
    price = _dataclass_from(f"{where}.price", Price, d.get("price"), base.price, {})
    if price.credits_per_s is not None and vendor != "runway":
        raise ConfigError(f"{where}.price.credits_per_s: only Runway bills in credits; use usd_per_s")
    truth = VendorTruth(
        failure_rate=_number(f"{where}.failure_rate", d.get("failure_rate", base.failure_rate), 0, 1),
        refusal_rate=_number(f"{where}.refusal_rate", d.get("refusal_rate", base.refusal_rate), 0, 1),
        queue_s=_latency(f"{where}.queue_s", d.get("queue_s"), base.queue_s),
        run_s=_latency(f"{where}.run_s", d.get("run_s"), base.run_s),
        price=price,
        quality=_dataclass_from(f"{where}.quality", Quality, d.get("quality"), base.quality,
                                {"blur": (0.0, 0.5), "dropped_frames": (0.0, 0.9), "frozen_frames": (0.0, 1.0)}))
    if truth.failure_rate + truth.refusal_rate > 1:
        raise ConfigError(f"{where}: failure_rate + refusal_rate must be at most 1")
    return truth


def scenario_from_dict(data: Any, source: str = "<inline>") -> Scenario:
    """Validate a parsed scenario (see the module docstring); raises ConfigError naming the bad key and the file."""
    d = _check_keys(source, data, {"seed", "vendors", "description"})
    seed = d.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{source}: seed must be an integer, got {seed!r}")
    vendors_data = _check_keys(f"{source}: vendors", d.get("vendors"), set(SCENARIO_VENDORS))
    vendors: dict[str, VendorTruth] = {}
    models: dict[tuple[str, str], VendorTruth] = {}
    for vendor, vd in vendors_data.items():
        where = f"{source}: vendors.{vendor}"
        vendors[vendor] = _truth(where, vd, VendorTruth(), vendor)
        model_data = (vd or {}).get("models") or {}
        if not isinstance(model_data, dict):
            raise ConfigError(f"{where}.models: expected a mapping of model name to overrides")
        for model, md in model_data.items():
            if md is not None and "models" in md:
                raise ConfigError(f"{where}.models.{model}: models cannot be nested")
            models[(vendor, str(model))] = _truth(f"{where}.models.{model}", md, vendors[vendor], vendor)
    return Scenario(seed=seed, vendors=vendors, models=models, source=source)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; a missing file or bad YAML is a ConfigError with the fix."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scenario file {p} does not exist; pass an existing YAML file to --scenario")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        # the context mark is where the broken construct starts (e.g. the unclosed quote), which is what to fix;
        # the problem mark is often just the end of the file
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        what = " ".join(x for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x) or str(exc)
        raise ConfigError(f"scenario file {p}: not valid YAML{where}: {what}") from None
    return scenario_from_dict(data, source=str(p))
