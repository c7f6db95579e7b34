"""Ratings from pairwise votes: a Bradley-Terry model with ties (Davidson, 1970), fitted by Newton's method with a
weak Gaussian prior, percentile-bootstrap intervals over votes, and the agreement of votes with per-video metrics.

Model. Backend k has strength θ_k (log scale). For a vote on i vs j, with ν = e^λ the tie parameter:

    P(i preferred) = e^θi / D,  P(j preferred) = e^θj / D,  P(tie) = ν e^((θi+θj)/2) / D,  D = the sum of the three

so among decisive votes P(i preferred | decisive) = 1 / (1 + e^(θj − θi)), exactly Bradley-Terry. 'tie' and
'both bad' votes are both ties (no preference between the two videos); the report counts them apart.

Regularisation. θ_k ~ N(0, `PRIOR_SD_STRENGTH`²) and λ ~ N(0, `PRIOR_SD_LOG_TIE`²): the fit maximises the posterior
(MAP). Without it a backend that never won has θ = −∞ (and with no ties ν = 0); with it every strength is finite
(two backends, one winning all n votes: a gap of 3.7, 4.8, 6.2, 8.3 for n = 5, 20, 100, 1000, growing like log n),
while the shrinkage is negligible once a backend has a few dozen votes (prior precision 1/9 against a Fisher
information of about n/4). The penalised log-likelihood is strictly concave in (θ, λ) (a log-sum-exp of affine
functions plus a quadratic), so the damped Newton iteration below finds its unique maximum. Strengths are
identified up to a common shift only; the prior centres them (at the maximum Σ θ_k = 0), so each θ_k is a
backend's strength relative to the average backend.

Intervals. Votes are resampled with replacement (`N_BOOTSTRAP` times, seeded), the model refitted on each resample,
and the percentile interval taken, for each θ_k and each difference θ_i − θ_j. This treats votes as independent;
repeated votes on one pair or by one rater are not, which can make intervals too narrow when few pairs or raters
dominate (docs/votes.md). The coverage is measured against known strengths in tests/test_vote_ratings.py.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vbench_suite.report.stats import wilson_interval

PRIOR_SD_STRENGTH = 3.0
"""Standard deviation of the Gaussian prior on each log-strength θ_k."""
PRIOR_SD_LOG_TIE = 3.0
"""Standard deviation of the Gaussian prior on λ = log ν (ties)."""
N_BOOTSTRAP = 2000
"""Bootstrap resamples of the votes for every interval."""
CI_LEVEL = 0.95
TIE_CHOICES = ("tie", "both_bad")
"""Choices that the model counts as ties."""
_NEWTON_TOL = 1e-9
"""Newton stops when the squared decrement is below 100 × this squared."""
_NEWTON_MAX_ITER = 100
_BATCH = 256
"""Bootstrap fits solved together (memory grows with batch × pairs × backends²)."""


@dataclass(frozen=True)
class Comparisons:
    """Vote counts per unordered pair of backends. `pairs[p] = (i, j)` indexes `backends` with i < j;
    `counts[p] = (i preferred, j preferred, ties)`; `both_bad[p]` is the part of the ties voted 'both bad'."""

    backends: tuple[str, ...]
    pairs: np.ndarray  # (P, 2) int
    counts: np.ndarray  # (P, 3) float
    both_bad: np.ndarray  # (P,) int

    @property
    def n_votes(self) -> int:
        return int(self.counts.sum())


def comparisons(votes: Sequence[tuple[str, str, str]]) -> Comparisons:
    """Count votes given as (left backend, right backend, choice) with choice in store.CHOICES."""
    backends = tuple(sorted({b for v in votes for b in v[:2]}))
    index = {b: k for k, b in enumerate(backends)}
    table: dict[tuple[int, int], list[int]] = {}
    for left, right, choice in votes:
        i, j = index[left], index[right]
        if i == j:
            raise ValueError(f"a vote compares two backends, got {left!r} twice")
        row = table.setdefault((min(i, j), max(i, j)), [0, 0, 0, 0])
        if choice in TIE_CHOICES:
            row[2] += 1
            row[3] += choice == "both_bad"
        elif choice in ("left", "right"):
            winner = i if choice == "left" else j
            row[0 if winner == min(i, j) else 1] += 1
        else:
            raise ValueError(f"unknown vote choice {choice!r}")
    keys = sorted(table)
    return Comparisons(backends, np.array(keys, dtype=np.int64).reshape(-1, 2),
                       np.array([table[k][:3] for k in keys], dtype=np.float64).reshape(-1, 3),
                       np.array([table[k][3] for k in keys], dtype=np.int64))


def _features(comp: Comparisons) -> np.ndarray:
    """(P, 3, K+1): the linear map from parameters (θ_1..θ_K, λ) to the three outcome logits of each pair."""
    k = len(comp.backends)
    f = np.zeros((len(comp.pairs), 3, k + 1))
    rows = np.arange(len(comp.pairs))
    i, j = comp.pairs[:, 0], comp.pairs[:, 1]
    f[rows, 0, i] = 1.0
    f[rows, 1, j] = 1.0
    f[rows, 2, i] = 0.5
    f[rows, 2, j] = 0.5
    f[:, 2, k] = 1.0
    return f


def _prior_precision(k: int) -> np.ndarray:
    return np.r_[np.full(k, 1.0 / PRIOR_SD_STRENGTH ** 2), 1.0 / PRIOR_SD_LOG_TIE ** 2]


def _objective(x: np.ndarray, feats: np.ndarray, counts: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """Negative log-posterior (up to a constant) for each row of x (B, K+1); counts (B, P, 3)."""
    z = np.einsum("pok,bk->bpo", feats, x)
    lse = _logsumexp(z)
    return (counts.sum(-1) * lse).sum(-1) - (counts * z).sum((-1, -2)) + 0.5 * (prec * x * x).sum(-1)


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(-1)
    return top + np.log(np.exp(z - top[..., None]).sum(-1))


def fit_map(comp: Comparisons, counts: np.ndarray | None = None) -> np.ndarray:
    """MAP parameters for `comp` (or for each row of `counts`, shape (B, P, 3), in the layout of `comp.counts`).

    Returns (B, K+1): θ_1..θ_K (Σ θ = 0 at the maximum) and λ = log ν; B = 1 without `counts`.
    """
    feats = _features(comp)
    c = comp.counts[None] if counts is None else np.asarray(counts, dtype=np.float64)
    k1 = len(comp.backends) + 1
    prec = _prior_precision(k1 - 1)
    ff = np.einsum("poi,poj->poij", feats, feats).reshape(-1, k1 * k1)  # (P*3, (K+1)^2)
    x = np.zeros((len(c), k1))
    n = c.sum(-1)  # (B, P)
    f_obs = np.einsum("bpo,pok->bk", c, feats)
    obj = _objective(x, feats, c, prec)
    todo = np.ones(len(c), dtype=bool)  # rows still iterating
    for _ in range(_NEWTON_MAX_ITER):
        r = np.flatnonzero(todo)
        z = np.einsum("pok,bk->bpo", feats, x[r])
        prob = np.exp(z - _logsumexp(z)[..., None])  # (R, P, 3)
        m = np.einsum("bpo,pok->bpk", prob, feats)  # expected features per pair
        grad = np.einsum("bp,bpk->bk", n[r], m) - f_obs[r] + prec * x[r]
        hess = ((n[r][..., None] * prob).reshape(len(r), -1) @ ff).reshape(-1, k1, k1)
        hess -= np.einsum("bpi,bpj->bij", n[r][..., None] * m, m)
        hess += np.diag(prec)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        slope = (grad * step).sum(-1)  # squared Newton decrement, > 0 (the Hessian is positive definite)
        # Converged: |x - optimum| <= sqrt(slope / smallest eigenvalue) <= 3 * 1e-8 (the prior bounds it below)
        done = slope < _NEWTON_TOL ** 2 * 1e2
        todo[r[done]] = False
        if done.all():
            break
        r, step, slope = r[~done], step[~done], slope[~done]
        t = np.ones(len(r))
        for _ in range(40):  # backtracking (Armijo) per row; rounding allowance near the optimum
            trial = x[r] - t[:, None] * step
            new = _objective(trial, feats, c[r], prec)
            bad = new > obj[r] - 1e-4 * t * slope + 1e-12 * np.abs(obj[r])
            if not bad.any():
                break
            t = np.where(bad, t / 2, t)
        x[r], obj[r] = trial, new
    return x


@dataclass(frozen=True)
class PairStat:
    """Votes on one pair of backends and the model's P(a preferred over b | decisive) with its interval."""

    a: str
    b: str
    n: int
    a_preferred: int
    b_preferred: int
    ties: int
    """'tie' and 'both bad' votes together (the model's ties)."""
    both_bad: int
    p_a_over_b: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Ratings:
    """A fitted model. `backends` best first; `strength` θ (log scale, mean 0 over the backends voted on) with
    percentile intervals at `level` from `n_boot` resamples of the votes (`seed`)."""

    backends: tuple[str, ...]
    strength: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    tie_nu: float
    pairs: tuple[PairStat, ...]
    n_votes: int
    connected: bool
    """Whether every backend is linked to every other by votes (directly or through others); if not, strengths
    of different groups are related only through the prior and must not be compared."""
    level: float
    n_boot: int
    seed: int

    def interval(self, backend: str) -> tuple[float, float, float]:
        k = self.backends.index(backend)
        return self.strength[k], self.ci_low[k], self.ci_high[k]


def _connected(comp: Comparisons) -> bool:
    k = len(comp.backends)
    parent = list(range(k))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in comp.pairs:
        parent[root(int(i))] = root(int(j))
    return len({root(a) for a in range(k)}) <= 1


def bootstrap_fits(comp: Comparisons, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, K+1) MAP fits of vote resamples (with replacement, same total), seeded."""
    rng = np.random.default_rng(seed)
    cells = comp.counts.reshape(-1)
    n = int(cells.sum())
    draws = rng.multinomial(n, cells / n, size=n_boot).astype(np.float64).reshape(n_boot, *comp.counts.shape)
    return np.concatenate([fit_map(comp, draws[s:s + _BATCH]) for s in range(0, n_boot, _BATCH)])


def fit_ratings(votes: Sequence[tuple[str, str, str]], seed: int = 0, n_boot: int = N_BOOTSTRAP,
                level: float = CI_LEVEL) -> Ratings | None:
    """Fit the model to votes given as (left backend, right backend, choice); None when there are none."""
    if not votes:
        return None
    comp = comparisons(votes)
    x = fit_map(comp)[0]
    boot = bootstrap_fits(comp, n_boot, seed)
    a = (1.0 - level) / 2.0
    theta, theta_b = x[:-1], boot[:, :-1]
    lo, hi = np.quantile(theta_b, a, axis=0), np.quantile(theta_b, 1 - a, axis=0)
    order = sorted(range(len(comp.backends)), key=lambda k: (-theta[k], comp.backends[k]))
    pairs = []
    for (i, j), c, bb in zip(comp.pairs, comp.counts, comp.both_bad):
        diff = theta_b[:, i] - theta_b[:, j]
        d_lo, d_hi = np.quantile(diff, a), np.quantile(diff, 1 - a)
        pairs.append(PairStat(comp.backends[i], comp.backends[j], int(c.sum()), int(c[0]), int(c[1]), int(c[2]),
                              int(bb), _sigmoid(theta[i] - theta[j]), _sigmoid(d_lo), _sigmoid(d_hi)))
    return Ratings(tuple(comp.backends[k] for k in order), tuple(float(theta[k]) for k in order),
                   tuple(float(lo[k]) for k in order), tuple(float(hi[k]) for k in order),
                   float(math.exp(x[-1])), tuple(pairs), comp.n_votes, _connected(comp), level, n_boot, seed)


def _sigmoid(d: float) -> float:
    return float(1.0 / (1.0 + math.exp(-d)))


@dataclass(frozen=True)
class Agreement:
    """How often a per-video metric prefers the video the rater preferred, over decisive votes.

    `n`: decisive votes where both videos have a value and the values differ; `agree`: those where the preferred
    video has the better value (by `higher_is_better`). `rate` = agree / n with a Wilson interval at `level`
    (votes treated as independent). Votes with equal values (`n_metric_tied`) or a missing value (`n_missing`) are
    left out. 0.5 is chance; 1.0 means the metric always sides with the raters.
    """

    higher_is_better: bool
    n: int
    agree: int
    n_metric_tied: int
    n_missing: int
    rate: float
    ci_low: float
    ci_high: float
    level: float


def agreement(decisive: Sequence[tuple[str, str]], values: Mapping[str, float], higher_is_better: bool,
              level: float = CI_LEVEL) -> Agreement:
    """Agreement over decisive votes given as (preferred video's key, other video's key); `values`: key -> metric
    value (missing or non-finite: no value)."""
    agree = n = tied = missing = 0
    for win, lose in decisive:
        vw, vl = values.get(win), values.get(lose)
        if vw is None or vl is None or not (math.isfinite(vw) and math.isfinite(vl)):
            missing += 1
        elif vw == vl:
            tied += 1
        else:
            n += 1
            agree += (vw > vl) == higher_is_better
    lo, hi = wilson_interval(agree, n, level)
    return Agreement(higher_is_better, n, agree, tied, missing, agree / n if n else float("nan"), lo, hi, level)
