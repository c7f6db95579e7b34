"""Small statistics used by the reports: bootstrap intervals, rate intervals and the tests behind regression verdicts.

All resampling takes an explicit seed so a report is reproducible byte for byte. Intervals are two-sided 95 % unless
`level` says otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

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


def bootstrap_diff(current: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray, seed: int = 0,
                   statistic: str = "mean", n_boot: int = N_BOOTSTRAP, level: float = CI_LEVEL) -> Estimate:
    """stat(current) − stat(baseline) for independent samples, each resampled on its own (`statistic`: 'mean' or
    'median'). Needs n ≥ 2 on both sides for a CI; `n` of the result is the smaller side."""
    fn = {"mean": np.mean, "median": np.median}[statistic]
    c, b = _as_array(current), _as_array(baseline)
    if c.size == 0 or b.size == 0:
        return Estimate(float("nan"), None, None, 0)
    delta = float(fn(c) - fn(b))
    if c.size < 2 or b.size < 2:
        return Estimate(delta, None, None, int(min(c.size, b.size)))
    rng = np.random.default_rng(seed)
    dc = fn(c[rng.integers(0, c.size, size=(n_boot, c.size))], axis=1)
    db = fn(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
    a = (1.0 - level) / 2.0
    diffs = dc - db
    return Estimate(delta, float(np.quantile(diffs, a)), float(np.quantile(diffs, 1 - a)), int(min(c.size, b.size)))


def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Quantile with linear interpolation (numpy's default); NaN when empty."""
    arr = _as_array(values)
    return float(np.quantile(arr, q)) if arr.size else float("nan")


def wilson_interval(successes: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion (well behaved at 0 and 1, unlike the normal approximation)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = float(sps.norm.ppf(1 - (1 - level) / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_wilcoxon(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value for paired differences. All-zero differences give p = 1, n < 2 NaN."""
    d = _as_array(differences)
    if d.size < 2:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def unpaired_mannwhitney(current: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value; NaN when either side has fewer than 2 values."""
    c, b = _as_array(current), _as_array(baseline)
    if c.size < 2 or b.size < 2:
        return float("nan")
    if np.all(c == c[0]) and np.all(b == c[0]):
        return 1.0
    return float(sps.mannwhitneyu(c, b, alternative="two-sided").pvalue)


def normal_diff_from_cis(value_c: float, lo_c: float, hi_c: float, value_b: float, lo_b: float, hi_b: float,
                         level: float = CI_LEVEL) -> tuple[float, float, float]:
    """Difference of two estimates whose intervals are given, by the normal approximation (SE = width / 2z).

    Returns (ci_low, ci_high, two-sided p-value) for value_c − value_b. Used for set-level metrics (FVD) whose records
    carry their own interval but no per-item values.
    """
    z = float(sps.norm.ppf(1 - (1 - level) / 2))
    se = math.sqrt(((hi_c - lo_c) / (2 * z)) ** 2 + ((hi_b - lo_b) / (2 * z)) ** 2)
    delta = value_c - value_b
    if se == 0:
        return delta, delta, (1.0 if delta == 0 else 0.0)
    p = float(2 * (1 - sps.norm.cdf(abs(delta) / se)))
    return delta - z * se, delta + z * se, p


def fisher_exact(k_c: int, n_c: int, k_b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value for rates k_c/n_c vs k_b/n_b; NaN when either n is 0."""
    if n_c <= 0 or n_b <= 0:
        return float("nan")
    return float(sps.fisher_exact([[k_c, n_c - k_c], [k_b, n_b - k_b]]).pvalue)
