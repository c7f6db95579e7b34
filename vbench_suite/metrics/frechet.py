"""Fréchet distance between Gaussians fitted to features, with its small-sample corrections. NumPy/SciPy only.

FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64.

The trace of the matrix square root is computed without `scipy.linalg.sqrtm(..., disp=False)` (deprecated, removed in
SciPy 1.18) and without the non-symmetric product: tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2), and
A S2 A is symmetric positive semi-definite, so its square root comes from a symmetric eigendecomposition. Eigenvalues
that are negative beyond round-off would make the trace complex: their contribution is reported as the imaginary
part (never silently dropped). When both sides are given as samples and are small (n <= dim), the same trace is the
nuclear norm of Xc1 Xc2^T / sqrt((n1-1)(n2-1)) (an SVD of an n1 x n2 matrix: exact, cheaper, never complex).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IMAG_RTOL = 1e-6
"""An imaginary part above this fraction of the real trace is 'non-negligible' and flagged in the result."""


@dataclass(frozen=True)
class FrechetResult:
    """One Fréchet distance and the pieces that explain it."""

    value: float
    """FD in feature units squared (float64 arithmetic)."""
    mean_term: float
    """|mu1 - mu2|^2."""
    trace_sqrt: float
    """Real part of tr((S1 S2)^(1/2))."""
    trace_sqrt_imag: float = 0.0
    """Imaginary part that numerical error would have produced (0.0 when none beyond round-off)."""

    @property
    def imag_significant(self) -> bool:
        return self.trace_sqrt_imag > IMAG_RTOL * max(abs(self.trace_sqrt), 1.0)


class FeatureStats:
    """Float64 sufficient statistics of feature vectors: count, sum and sum of outer products.

    Merging two is adding them, so mean and covariance do not depend on batch size, order or sharding (up to float64
    rounding of the sums). With `keep_features` the raw (float32) vectors are also kept, for the small-sample fit and
    the bootstrap, which need the samples.
    """

    def __init__(self, dim: int, keep_features: bool = True) -> None:
        self.dim = dim
        self.keep_features = keep_features
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.sum = np.zeros(self.dim, dtype=np.float64)                # (D,)
        self.sum_outer = np.zeros((self.dim, self.dim), np.float64)    # (D, D)
        self._features: list[np.ndarray] = []

    def update(self, feats: np.ndarray) -> None:
        """Add features (B, D)."""
        f = np.asarray(feats, dtype=np.float64).reshape(-1, self.dim)
        self.n += f.shape[0]
        self.sum += f.sum(axis=0)
        self.sum_outer += f.T @ f
        if self.keep_features:
            self._features.append(np.asarray(feats, dtype=np.float32).reshape(-1, self.dim))

    def merge(self, other: "FeatureStats") -> None:
        """Add another shard's statistics (features appended after ours)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dim {other.dim} into dim {self.dim}")
        self.n += other.n
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        if self.keep_features and other.keep_features:
            self._features.extend(other._features)
        else:
            self.keep_features, self._features = False, []

    @property
    def features(self) -> np.ndarray | None:
        """All kept features (n, D) float32, or None when not kept."""
        if not self.keep_features:
            return None
        return np.concatenate(self._features) if self._features else np.zeros((0, self.dim), np.float32)

    def mean(self) -> np.ndarray:
        return self.sum / self.n

    def cov(self) -> np.ndarray:
        """Unbiased sample covariance (D, D), float64; needs n >= 2."""
        if self.n < 2:
            raise ValueError(f"covariance needs at least 2 samples, have {self.n}")
        mu = self.mean()
        c = (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (c + c.T) / 2

    @classmethod
    def from_features(cls, feats: np.ndarray, keep_features: bool = True) -> "FeatureStats":
        s = cls(int(np.asarray(feats).shape[-1]), keep_features)
        s.update(feats)
        return s


def _roundoff(w: np.ndarray) -> float:
    """Eigenvalues of a symmetric matrix within this of 0 are round-off (backward error of eigh, with margin)."""
    return 100 * w.shape[0] * np.finfo(np.float64).eps * max(float(np.abs(w).max()), 1e-300)


def _psd_sqrt(c: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric square root of a PSD matrix, and the most negative eigenvalue beyond round-off (0.0 if none).

    Eigenvalues within round-off of 0 are set to 0: covariances of fewer samples than dimensions are singular, and
    the square root would otherwise turn their ~1e-16 noise into ~1e-8 per eigenvalue.
    """
    w, v = np.linalg.eigh(c)
    tol = _roundoff(w)
    worst = float(w.min()) if w.min() < -tol else 0.0
    return (v * np.sqrt(np.where(w > tol, w, 0.0))) @ v.T, worst


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> tuple[float, float]:
    """(real, imaginary) parts of tr((cov1 cov2)^(1/2)) for symmetric PSD inputs, float64."""
    a, neg1 = _psd_sqrt(np.asarray(cov1, np.float64))
    m = a @ np.asarray(cov2, np.float64) @ a
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    tol = _roundoff(lam)
    real = float(np.sqrt(lam[lam > tol]).sum())
    imag = float(np.sqrt(-lam[lam < -tol]).sum())
    if neg1 < 0:  # cov1 itself was not PSD beyond round-off: its square root would be complex too
        imag += float(np.sqrt(-neg1))
    return real, imag


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> FrechetResult:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2), float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    tr_sqrt, imag = trace_sqrt_product(cov1, cov2)
    value = mean_term + float(np.trace(cov1)) + float(np.trace(cov2)) - 2.0 * tr_sqrt
    return FrechetResult(value=value, mean_term=mean_term, trace_sqrt=tr_sqrt, trace_sqrt_imag=imag)


def frechet_from_stats(a: FeatureStats, b: FeatureStats) -> FrechetResult:
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())


def frechet_from_features(x: np.ndarray, y: np.ndarray) -> FrechetResult:
    """FD between two samples (n1, D) and (n2, D). Uses the SVD form when both are no larger than D."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n1, d = x.shape
    n2 = y.shape[0]
    if n1 < 2 or n2 < 2:
        raise ValueError(f"Fréchet distance needs at least 2 samples per side, have {n1} and {n2}")
    if max(n1, n2) > d:
        return frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    xc, yc = x - x.mean(0), y - y.mean(0)
    diff = x.mean(0) - y.mean(0)
    tr1 = float((xc * xc).sum()) / (n1 - 1)
    tr2 = float((yc * yc).sum()) / (n2 - 1)
    # tr((S1 S2)^(1/2)) = sum of singular values of Xc Yc^T / sqrt((n1-1)(n2-1)).
    tr_sqrt = float(np.linalg.svd(xc @ yc.T, compute_uv=False).sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    mean_term = float(diff @ diff)
    return FrechetResult(value=mean_term + tr1 + tr2 - 2.0 * tr_sqrt, mean_term=mean_term, trace_sqrt=tr_sqrt)


@dataclass(frozen=True)
class BiasFit:
    """FD(N) = fd_inf + slope / N fitted over subsets; N counts the first (generated) side."""

    fd_inf: float
    """Extrapolated FD at infinite N (both sides scaled together)."""
    slope: float
    """k in FD(N) = FD_inf + k/N."""
    points: tuple[tuple[int, float], ...] = field(default=())
    """(N, mean FD over repeats) used in the fit."""


def fit_fd_infinity(x: np.ndarray, y: np.ndarray, *, num_sizes: int = 6, repeats: int = 4, min_fraction: float = 0.25,
                    min_n: int = 8, seed: int = 0) -> BiasFit | None:
    """Fit FD(N) = FD_inf + k/N over random subsets of both samples (same fraction of each, without replacement).

    Returns None when a side has fewer than `min_n` samples (the fit would be meaningless). Deterministic in `seed`.
    """
    n1, n2 = len(x), len(y)
    if min(n1, n2) < min_n:
        return None
    rng = np.random.default_rng(seed)
    fractions = np.linspace(max(min_fraction, 2.0 * 4 / min(n1, n2)), 1.0, num_sizes)
    points: list[tuple[int, float]] = []
    for f in fractions:
        k1, k2 = max(4, int(round(f * n1))), max(4, int(round(f * n2)))
        reps = 1 if (k1 == n1 and k2 == n2) else repeats
        vals = [frechet_from_features(x[rng.choice(n1, k1, replace=False)],
                                      y[rng.choice(n2, k2, replace=False)]).value for _ in range(reps)]
        points.append((k1, float(np.mean(vals))))
    inv_n = np.array([1.0 / p[0] for p in points])
    fd = np.array([p[1] for p in points])
    if np.ptp(inv_n) == 0:
        return None
    slope, intercept = np.polyfit(inv_n, fd, 1)
    return BiasFit(fd_inf=float(intercept), slope=float(slope), points=tuple(points))


def bootstrap_ci(x: np.ndarray, y: np.ndarray, *, num: int = 200, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float] | None:
    """Bootstrap interval of the FD at this N, recentred on the point estimate; both samples resampled with
    replacement, `num` times.

    Resampling repeats samples, which by itself raises every replicate's FD, so plain percentiles would sit above the
    estimate. We keep the replicates' spread (their 2.5/97.5 % quantiles) and remove their mean shift:
    [q_lo − s, q_hi − s] with s = mean(replicates) − FD. The interval describes sampling variability at this N (for
    comparing generators at matched N), not the small-N bias (see `fit_fd_infinity`). Clipped at 0. None below 4
    per side.
    """
    n1, n2 = len(x), len(y)
    if num <= 0 or min(n1, n2) < 4:
        return None
    point = frechet_from_features(x, y).value
    rng = np.random.default_rng(seed)
    vals = np.array([frechet_from_features(x[rng.integers(0, n1, n1)], y[rng.integers(0, n2, n2)]).value
                     for _ in range(num)])
    alpha = (1.0 - level) / 2.0
    shift = float(vals.mean()) - point
    q_lo, q_hi = float(np.quantile(vals, alpha)), float(np.quantile(vals, 1.0 - alpha))
    return max(0.0, q_lo - shift), max(0.0, q_hi - shift)
