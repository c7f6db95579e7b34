"""Permutation tests behind the drift verdicts (numpy only: the report imports this module).

Two one-sided tests, each exact under its null hypothesis whenever every assignment is enumerated (and valid, with
p = (1 + count) / (1 + B), when B random assignments are drawn instead):

- `mmd_test`: two samples of feature vectors (I3D logits of two runs' videos), stratified by prompt. The statistic is
  the biased kernel MMD² with a Gaussian kernel whose bandwidth is the median squared distance of the pooled sample
  (a function of the pooled sample only, so every permutation sees the same kernel). Labels are permuted only within
  a prompt: under "for every prompt, the backend's output distribution is the same in both runs" each such
  assignment is equally likely, even though different prompts give very different videos.
- `excess_test`: per-pair distances between two runs' same-seed outputs against replay distances from the
  reproducibility probe. Under "nothing changed" a between-run pair is just another replay, so the pooled values
  are exchangeable; the statistic is mean(between) − mean(replays).

`PermutationTest` keeps the whole null distribution, so the verdict at any level is read off a printed threshold:
p < level exactly when the statistic exceeds `threshold(level)`.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_EXACT = 20_000
"""Enumerate every assignment when there are at most this many; otherwise draw `N_RANDOM` at random."""
N_RANDOM = 9_999
"""Random assignments drawn when enumeration is too large (p-values then have resolution 1 / 10,000)."""
_BATCH = 2_048
"""Assignments whose statistics are computed at once (bounds memory at about batch × samples floats)."""
KERNEL_ATOL = 1e-12
"""Absolute tie tolerance of MMD² values (kernel values lie in [0, 1])."""
TIE_RTOL = 1e-9
"""Statistics within this fraction of the largest one count as equal (an assignment and its mirror image give the
same MMD² up to round-off)."""


@dataclass(frozen=True)
class PermutationTest:
    """A one-sided permutation test: large `statistic` is evidence against the null.

    `null` holds the statistic under every assignment considered, the observed one included, sorted in descending
    order; `p_value` = (number of them >= the statistic) / len(null).
    """

    statistic: float
    null: np.ndarray
    method: str
    exact: bool
    atol: float = 0.0
    """Statistics closer than this to the observed one also count as ties (round-off in a kernel's zeros)."""

    @property
    def n(self) -> int:
        """Assignments behind the null distribution (the observed one included)."""
        return int(self.null.size)

    def _tol(self) -> float:
        return self.atol + TIE_RTOL * max(float(np.abs(self.null).max()) if self.null.size else 0.0,
                                          abs(self.statistic))

    @property
    def count(self) -> int:
        """Assignments whose statistic is at least the observed one (ties within `TIE_RTOL` included)."""
        return int(np.count_nonzero(self.null >= self.statistic - self._tol()))

    @property
    def p_value(self) -> float:
        return self.count / self.n

    def threshold(self, level: float) -> float:
        """The value the statistic must exceed for p < `level`: the (ceil(level × n))-th largest null value."""
        k = math.ceil(level * self.n) - 1
        return float(self.null[min(max(k, 0), self.n - 1)])

    def rejects(self, level: float) -> bool:
        """p < `level`, decided by comparing the statistic with `threshold(level)` (the same decision)."""
        if math.ceil(level * self.n) - 1 >= self.n:
            return True
        return self.statistic - self._tol() > self.threshold(level)


def _finish(stats: np.ndarray, method: str, exact: bool, atol: float = 0.0) -> PermutationTest:
    """`stats[0]` is the observed assignment's statistic."""
    return PermutationTest(float(stats[0]), np.sort(stats)[::-1].copy(), method, exact, atol)


# ---- assignments ----------------------------------------------------------------------------------------------

def _n_assignments(sizes: Sequence[int], firsts: Sequence[int]) -> int:
    return math.prod(math.comb(s, a) for s, a in zip(sizes, firsts))


def _stratified_labels(strata: np.ndarray, is_a: np.ndarray, seed: int) -> tuple[np.ndarray, bool]:
    """Boolean (P, N) assignments (True = side A) that keep each stratum's count of A; row 0 is the observed one.

    Every assignment when there are at most `MAX_EXACT`, else the observed one plus `N_RANDOM` random ones."""
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    firsts = [int(is_a[g].sum()) for g in groups]
    total = _n_assignments([len(g) for g in groups], firsts)
    n = len(strata)
    if total <= MAX_EXACT:
        # Each stratum's choices as a boolean (C(n_s, a_s), n_s) table, combined over strata by a product grid.
        tables = []
        for g, a in zip(groups, firsts):
            combos = np.array(list(itertools.combinations(range(len(g)), a)), dtype=np.int64).reshape(-1, a)
            table = np.zeros((len(combos), len(g)), dtype=bool)
            table[np.arange(len(combos))[:, None], combos] = True
            tables.append(table)
        grid = np.stack(np.meshgrid(*[np.arange(len(t)) for t in tables], indexing="ij"), -1).reshape(-1, len(groups))
        labels = np.zeros((len(grid), n), dtype=bool)
        for j, (g, table) in enumerate(zip(groups, tables)):
            labels[:, g] = table[grid[:, j]]
        observed = int(np.flatnonzero((labels == is_a).all(axis=1))[0])
        labels[[0, observed]] = labels[[observed, 0]]
        return labels, True
    rng = np.random.default_rng(seed)
    labels = np.empty((N_RANDOM + 1, n), dtype=bool)
    labels[0] = is_a
    for g in groups:
        block = np.broadcast_to(is_a[g], (N_RANDOM, len(g)))
        labels[1:, g] = rng.permuted(block, axis=1)
    return labels, False


# ---- kernel MMD ------------------------------------------------------------------------------------------------

def gaussian_kernel(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(N, D) features -> (N, N) Gaussian kernel exp(-|xi - xj|² / h) with h the median off-diagonal squared
    distance (1 when all points coincide), and h."""
    x = np.asarray(x, dtype=np.float64)
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)      # (N, N)
    off = d2[np.triu_indices(len(x), 1)]
    h = float(np.median(off)) if off.size else 0.0
    h = h if h > 0 else 1.0
    return np.exp(-d2 / h), h


def mmd2_of_labels(kernel: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Biased MMD² for each assignment row of `labels` (P, N) over a fixed (N, N) kernel -> (P,)."""
    out = np.empty(len(labels))
    for start in range(0, len(labels), _BATCH):
        lab = labels[start:start + _BATCH]
        n_a = lab.sum(axis=1, keepdims=True)
        n_b = lab.shape[1] - n_a
        w = np.where(lab, 1.0 / n_a, -1.0 / n_b)                           # (P, N): mean(A) - mean(B) weights
        out[start:start + len(lab)] = np.einsum("pi,pi->p", w @ kernel, w)
    return np.maximum(out, 0.0)   # MMD² >= 0 (the kernel is positive definite): below 0 is round-off


def mmd_test(a: np.ndarray, a_strata: Sequence[str], b: np.ndarray, b_strata: Sequence[str],
             seed: int = 0) -> PermutationTest:
    """Stratified permutation test of MMD²(a, b): `a` (n_a, D) and `b` (n_b, D) features, each row labelled with
    its stratum (the prompt). Needs at least one sample on each side; strata present on one side only keep their
    labels in every assignment (they cannot inform the test, only dilute it, so callers should leave them out)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 1 or len(b) < 1:
        raise ValueError("MMD test needs at least one sample on each side")
    x = np.concatenate([a, b])
    strata = np.array([str(s) for s in a_strata] + [str(s) for s in b_strata])
    is_a = np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)]
    kernel, h = gaussian_kernel(x)
    labels, exact = _stratified_labels(strata, is_a, seed)
    how = f"all {len(labels)} assignments" if exact else f"{len(labels) - 1} random assignments"
    method = (f"kernel MMD² permutation test within prompts (Gaussian kernel, median bandwidth; {how}; "
              f"n={len(a)} vs {len(b)})")
    # kernel values are at most 1, so MMD² is at most 4: round-off below 1e-12 is no difference
    return _finish(mmd2_of_labels(kernel, labels), method, exact, atol=KERNEL_ATOL)


# ---- excess over a noise floor ---------------------------------------------------------------------------------

def excess_test(between: Sequence[float], floor: Sequence[float], seed: int = 0) -> PermutationTest:
    """Permutation test of mean(between) − mean(floor) (one-sided: is `between` larger?). Both need >= 1 value."""
    x = np.asarray(list(between), np.float64)
    y = np.asarray(list(floor), np.float64)
    if x.size < 1 or y.size < 1:
        raise ValueError("excess test needs at least one value on each side")
    pooled = np.concatenate([x, y])
    is_x = np.r_[np.ones(x.size, bool), np.zeros(y.size, bool)]
    labels, exact = _stratified_labels(np.zeros(pooled.size, dtype=int), is_x, seed)
    n_x = x.size
    stats = labels @ pooled / n_x - (~labels) @ pooled / y.size
    how = f"all {len(labels)} splits" if exact else f"{len(labels) - 1} random splits"
    method = f"permutation test of mean excess over the replay floor ({how}; {x.size} pairs vs {y.size} replays)"
    return _finish(stats, method, exact)
