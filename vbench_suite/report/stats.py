"""Small statistics used by the reports: bootstrap intervals, rate intervals, and the tests behind regression verdicts
(each with the interval that inverts it) plus Holm's correction.

All resampling takes an explicit seed so a report is reproducible byte for byte. Intervals are two-sided 95 % unless
`level` says otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy import stats as sps

_NORMAL = NormalDist()

N_BOOTSTRAP = 2000
"""Bootstrap resamples for every interval (percentile method)."""
CI_LEVEL = 0.95
"""Confidence level of every interval in the reports."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an optional interval and the number of items behind it."""

    value: float
    ci_low: float | None
    ci_high: float | None
    n: int


def _as_array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def bootstrap_mean(values: Sequence[float] | np.ndarray, seed: int = 0, n_boot: int = N_BOOTSTRAP,
                   level: float = CI_LEVEL) -> Estimate:
    """Mean of `values` with a percentile bootstrap interval over items. NaNs are dropped; n=0 gives NaN, n=1 no CI."""
    arr = _as_array(values)
    n = int(arr.size)
    if n == 0:
        return Estimate(float("nan"), None, None, 0)
    mean = float(arr.mean())
    if n == 1:
        return Estimate(mean, None, None, 1)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    means = arr[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    return Estimate(mean, float(np.quantile(means, a)), float(np.quantile(means, 1 - a)), n)


def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Quantile with linear interpolation (numpy's default); NaN when empty."""
    arr = _as_array(values)
    return float(np.quantile(arr, q)) if arr.size else float("nan")


def wilson_interval(successes: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion (well behaved at 0 and 1, unlike the normal approximation)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = _z(level)
    if math.isinf(z):
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _z(level: float) -> float:
    """Two-sided normal quantile of `level` (pure Python: called thousands of times when inverting intervals)."""
    q = 1 - (1 - level) / 2
    if q >= 1:
        return math.inf
    return _NORMAL.inv_cdf(q) if level > 0 else 0.0


# --- Tests behind regression verdicts -------------------------------------------------------------------------------
# Every method below gives a point estimate, a p-value and an interval at any level, built so that the interval at
# level 1 - a excludes 0 exactly when p < a. A verdict is then read off the interval that is printed, and can never
# disagree with it (or with the p-value printed beside it).

P_BISECTION_STEPS = 60
"""Bisection steps when a p-value is found by inverting an interval (Newcombe): resolution far below any alpha."""


@dataclass(frozen=True)
class DeltaTest:
    """A two-sided test of `delta` = current − baseline, with the interval that inverts it.

    `se` and `df` describe a t (finite df) or normal (df = inf) pivot; rates use `rates` (k_c, n_c, k_b, n_b) and
    the Newcombe hybrid score interval instead. `p_value` is the smallest a at which `interval(a)` excludes 0.
    """

    delta: float
    p_value: float
    method: str
    se: float = 0.0
    df: float = math.inf
    rates: tuple[int, int, int, int] | None = None

    def interval(self, alpha: float) -> tuple[float, float]:
        """The (1 − alpha) two-sided interval for `delta` (degenerate [delta, delta] when there is no spread)."""
        if self.rates is not None:
            return newcombe_interval(*self.rates, level=1.0 - alpha)
        if self.se == 0:
            return self.delta, self.delta
        q = float(sps.t.ppf(1 - alpha / 2, self.df)) if math.isfinite(self.df) else float(sps.norm.ppf(1 - alpha / 2))
        return self.delta - q * self.se, self.delta + q * self.se


def _pivot_test(delta: float, se: float, df: float, method: str) -> DeltaTest:
    if se == 0 or not math.isfinite(se):
        return DeltaTest(delta, 1.0 if delta == 0 else 0.0, method, se=0.0, df=df)
    stat = abs(delta) / se
    p = float(2 * (sps.t.sf(stat, df) if math.isfinite(df) else sps.norm.sf(stat)))
    return DeltaTest(delta, min(1.0, p), method, se=se, df=df)


def paired_t(differences: Sequence[float] | np.ndarray) -> DeltaTest | None:
    """Paired t-test on per-item differences (current − baseline) with its t interval; None when n < 2."""
    d = _as_array(differences)
    if d.size < 2:
        return None
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    return _pivot_test(float(d.mean()), se, float(d.size - 1), f"paired t-test (n={d.size} pairs)")


def welch_t(current: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray) -> DeltaTest | None:
    """Welch's unequal-variance t-test of mean(current) − mean(baseline) with its interval; None if a side has < 2."""
    c, b = _as_array(current), _as_array(baseline)
    if c.size < 2 or b.size < 2:
        return None
    if np.all(c == c[0]) and np.all(b == b[0]):
        # Two constant sides (one price per second): the difference is exact; means and variances computed from
        # them carry float noise (6 x 0.4 / 6 != 0.4) that would make equal prices 'differ' at p < 0.1.
        return _pivot_test(float(c[0] - b[0]), 0.0, float(c.size + b.size - 2), f"Welch t-test (n={c.size} vs "
                           f"{b.size}; both sides constant)")
    vc, vb = float(c.var(ddof=1)) / c.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(vc + vb)
    # Welch-Satterthwaite degrees of freedom; with no spread at all the test is degenerate (se = 0) anyway.
    df = (vc + vb) ** 2 / (vc ** 2 / (c.size - 1) + vb ** 2 / (b.size - 1)) if se > 0 else float(c.size + b.size - 2)
    return _pivot_test(float(c.mean() - b.mean()), se, df, f"Welch t-test (n={c.size} vs {b.size})")


def normal_from_cis(value_c: float, lo_c: float, hi_c: float, value_b: float, lo_b: float, hi_b: float,
                    recorded_level: float = CI_LEVEL) -> DeltaTest:
    """z-test of value_c − value_b for estimates that carry only their own `recorded_level` intervals (SE = width / 2z)."""
    z = float(sps.norm.ppf(1 - (1 - recorded_level) / 2))
    se = math.sqrt(((hi_c - lo_c) / (2 * z)) ** 2 + ((hi_b - lo_b) / (2 * z)) ** 2)
    return _pivot_test(value_c - value_b, se, math.inf, "z-test from the recorded 95 % CIs")


def newcombe_interval(k_c: int, n_c: int, k_b: int, n_b: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for k_c/n_c − k_b/n_b, from the two Wilson intervals."""
    pc, pb = k_c / n_c, k_b / n_b
    lc, uc = wilson_interval(k_c, n_c, level)
    lb, ub = wilson_interval(k_b, n_b, level)
    d = pc - pb
    return d - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2), d + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)


def _excludes_zero(interval: tuple[float, float]) -> bool:
    return interval[0] > 0 or interval[1] < 0


def newcombe_test(k_c: int, n_c: int, k_b: int, n_b: int) -> DeltaTest | None:
    """Difference of two rates with the Newcombe interval; the p-value inverts that interval (the smallest alpha
    whose interval excludes 0, found by bisection), so p < alpha exactly when the printed interval excludes 0."""
    if n_c <= 0 or n_b <= 0:
        return None
    d = k_c / n_c - k_b / n_b
    method = f"Newcombe score interval, p by inversion ({k_c}/{n_c} vs {k_b}/{n_b})"
    if d == 0:
        return DeltaTest(0.0, 1.0, method, rates=(k_c, n_c, k_b, n_b))
    lo, hi = 0.0, 1.0  # excluded at alpha = hi, not at lo: the interval shrinks to the point d as alpha -> 1
    for _ in range(P_BISECTION_STEPS):
        mid = (lo + hi) / 2
        if _excludes_zero(newcombe_interval(k_c, n_c, k_b, n_b, level=1.0 - mid)):
            hi = mid
        else:
            lo = mid
    return DeltaTest(d, hi, method, rates=(k_c, n_c, k_b, n_b))


def holm_levels(p_values: Sequence[float], alpha: float) -> tuple[list[float], list[float]]:
    """Holm's step-down procedure over `p_values` (a family of m tests at family-wise error `alpha`).

    Returns (adjusted p-values, the level each test is decided at). A test is rejected exactly when its adjusted p is
    below `alpha`, and exactly when its p is below its level; its (1 − level) interval therefore excludes 0 exactly
    when it is rejected. Rejected tests get Holm's level alpha / (m − k + 1) at rank k; the others all get the level of
    the first test Holm did not reject (so their intervals, all at one level, include 0).
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, levels = [1.0] * m, [alpha] * m
    running, stop = 0.0, None
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
        if stop is None and not p_values[i] < alpha / (m - rank):
            stop = rank
        levels[i] = alpha / (m - (rank if stop is None else stop))
    return adjusted, levels
