"""Ratings from votes against known truth: votes simulated from known Davidson-Bradley-Terry strengths are fitted
back (order, values, tie parameter), the bootstrap intervals cover the true strengths at their stated level over
repeated simulations (measured), a backend that never wins stays finite, and the metric agreement is checked on
constructed votes."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from vbench_suite.report.stats import wilson_interval
from vbench_suite.votes import ratings as R

TRUE_THETA = np.array([0.8, 0.3, -0.2, -0.9])  # sums to 0: the model's centring
TRUE_NU = 0.5
NAMES = [f"b{k}" for k in range(len(TRUE_THETA))]


def simulate(theta: np.ndarray, nu: float, n: int, rng: np.random.Generator,
             both_bad_share: float = 0.3) -> list[tuple[str, str, str]]:
    """n votes from the Davidson model, cycling through all pairs (as the vote page's balancing does), each pair
    shown in a random order; a tie is voted 'both bad' with probability `both_bad_share`."""
    pairs = np.array(list(itertools.combinations(range(len(theta)), 2)))
    i, j = pairs[np.arange(n) % len(pairs)].T
    logits = np.stack([theta[i], theta[j], math.log(nu) + (theta[i] + theta[j]) / 2], axis=1)
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    outcome = (rng.random(n)[:, None] > np.cumsum(prob, 1)).sum(1)  # 0: i preferred, 1: j preferred, 2: tie
    swap = rng.random(n) < 0.5
    left, right = np.where(swap, j, i), np.where(swap, i, j)
    bad = rng.random(n) < both_bad_share
    votes = []
    for o, lft, rgt, ii, b in zip(outcome, left, right, i, bad):
        if o == 2:
            choice = "both_bad" if b else "tie"
        else:
            winner = ii if o == 0 else (rgt if lft == ii else lft)
            choice = "left" if winner == lft else "right"
        votes.append((NAMES[lft], NAMES[rgt], choice))
    return votes


def _theta(r: R.Ratings) -> np.ndarray:
    return np.array([r.interval(b)[0] for b in NAMES])


def test_fit_recovers_true_strengths_order_and_tie_parameter() -> None:
    votes = simulate(TRUE_THETA, TRUE_NU, 6000, np.random.default_rng(0))
    r = R.fit_ratings(votes, seed=0, n_boot=300)
    assert r is not None and r.backends == tuple(NAMES) and r.n_votes == 6000 and r.connected
    assert np.abs(_theta(r) - TRUE_THETA).max() < 0.1
    assert abs(sum(r.strength)) < 1e-6  # centred by the prior
    assert r.tie_nu == pytest.approx(TRUE_NU, rel=0.15)
    for k, b in enumerate(NAMES):
        _, lo, hi = r.interval(b)
        assert lo <= TRUE_THETA[k] <= hi and hi - lo < 0.3


def test_newton_fit_equals_a_general_purpose_optimiser() -> None:
    """The batched Newton solver against scipy's BFGS on the same penalised likelihood (written out here)."""
    votes = simulate(TRUE_THETA, TRUE_NU, 300, np.random.default_rng(1))
    comp = R.comparisons(votes)
    k = len(comp.backends)

    def neg_log_posterior(x: np.ndarray) -> float:
        theta, lam = x[:k], x[k]
        total = 0.5 * (theta ** 2).sum() / R.PRIOR_SD_STRENGTH ** 2 + 0.5 * lam ** 2 / R.PRIOR_SD_LOG_TIE ** 2
        for (i, j), (wi, wj, t) in zip(comp.pairs, comp.counts):
            a, b, c = theta[i], theta[j], lam + (theta[i] + theta[j]) / 2
            d = np.logaddexp(np.logaddexp(a, b), c)
            total -= wi * (a - d) + wj * (b - d) + t * (c - d)
        return float(total)

    ref = minimize(neg_log_posterior, np.zeros(k + 1), method="BFGS", options={"gtol": 1e-10}).x
    assert np.allclose(R.fit_map(comp)[0], ref, atol=1e-5)


def test_a_backend_that_never_wins_gets_a_finite_strength() -> None:
    votes = [("b0", "b1", "left")] * 20 + [("b1", "b0", "right")] * 20 + [("b1", "b2", "tie")] * 10 \
        + [("b2", "b0", "right")] * 15 + [("b1", "b2", "left")] * 5
    r = R.fit_ratings(votes, seed=0, n_boot=500)
    assert r.backends[0] == "b0"
    theta, lo, hi = r.interval("b0")
    assert all(math.isfinite(v) for v in (theta, lo, hi)) and 1.0 < theta < 10.0
    # With 2 backends and n one-sided votes the strength grows only like log n (the prior at work), never to inf.
    growth = [R.fit_ratings([("x", "y", "left")] * n, n_boot=50).interval("x")[0] for n in (5, 20, 100, 1000)]
    assert growth == sorted(growth) and growth[-1] < 5.0
    assert growth[-1] - growth[-2] < 1.5  # x10 votes: +1.0 (about log(10) / 2 per backend at large n)


def test_ties_and_both_bad_are_the_same_evidence() -> None:
    base = simulate(TRUE_THETA, TRUE_NU, 400, np.random.default_rng(2), both_bad_share=0.0)
    renamed = [(a, b, "both_bad" if c == "tie" else c) for a, b, c in base]
    r1, r2 = R.fit_ratings(base, n_boot=200), R.fit_ratings(renamed, n_boot=200)
    assert r1.strength == pytest.approx(r2.strength) and r1.ci_low == pytest.approx(r2.ci_low)
    both_bad = sum(p.both_bad for p in r2.pairs)
    assert both_bad == sum(c == "tie" for _, _, c in base) and sum(p.both_bad for p in r1.pairs) == 0


def test_only_ties_means_equal_strengths() -> None:
    r = R.fit_ratings([("a", "b", "tie")] * 30 + [("b", "c", "both_bad")] * 30, n_boot=200)
    assert np.allclose(r.strength, 0.0, atol=1e-9) and r.tie_nu > 10


def test_display_order_does_not_matter() -> None:
    votes = simulate(TRUE_THETA, TRUE_NU, 300, np.random.default_rng(3))
    mirrored = [(b, a, {"left": "right", "right": "left"}.get(c, c)) for a, b, c in votes]
    assert R.fit_ratings(votes, n_boot=100).strength == pytest.approx(R.fit_ratings(mirrored, n_boot=100).strength)


def test_pair_counts_and_model_probability() -> None:
    r = R.fit_ratings([("a", "b", "left")] * 6 + [("b", "a", "left")] * 2 + [("a", "b", "tie")] * 3
                      + [("b", "a", "both_bad")], n_boot=400)
    (p,) = r.pairs
    assert (p.a, p.b, p.n, p.a_preferred, p.b_preferred, p.ties, p.both_bad) == ("a", "b", 12, 6, 2, 4, 1)
    theta_a, theta_b = r.interval("a")[0], r.interval("b")[0]
    assert p.p_a_over_b == pytest.approx(1 / (1 + math.exp(theta_b - theta_a)))
    assert 0.5 < p.p_a_over_b < 6 / 8 + 1e-9  # the prior pulls it slightly towards 1/2 from the raw 6/8
    assert p.ci_low < p.p_a_over_b < p.ci_high


def test_disconnected_comparisons_are_flagged() -> None:
    r = R.fit_ratings([("a", "b", "left")] * 5 + [("c", "d", "right")] * 5, n_boot=50)
    assert not r.connected
    assert R.fit_ratings([("a", "b", "left"), ("b", "c", "tie")], n_boot=50).connected


def test_no_votes_gives_no_ratings() -> None:
    assert R.fit_ratings([]) is None


def _coverage(n_votes: int, reps: int, n_boot: int, seed: int) -> tuple[float, float, int, int]:
    """Share of true strengths (and of true pairwise P(i over j)) inside their 95 % intervals over `reps`
    simulated vote sets; also how often the fitted order was the true order."""
    rng = np.random.default_rng(seed)
    hits = pair_hits = pair_total = order_ok = 0
    for rep in range(reps):
        r = R.fit_ratings(simulate(TRUE_THETA, TRUE_NU, n_votes, rng), seed=rep, n_boot=n_boot)
        for k, b in enumerate(NAMES):
            _, lo, hi = r.interval(b)
            hits += lo <= TRUE_THETA[k] <= hi
        for p in r.pairs:
            i, j = NAMES.index(p.a), NAMES.index(p.b)
            pair_hits += p.ci_low <= 1 / (1 + math.exp(TRUE_THETA[j] - TRUE_THETA[i])) <= p.ci_high
            pair_total += 1
        order_ok += r.backends == tuple(NAMES)
    return hits / (reps * len(NAMES)), pair_hits / pair_total, order_ok, reps


def test_bootstrap_intervals_cover_true_strengths() -> None:
    """60 simulated vote sets of 240 votes: the 95 % intervals must hold the true strengths about 95 % of the time
    (bounds: 3 binomial standard errors of 240 draws below, and not far above: not uselessly wide)."""
    cover, pair_cover, order_ok, reps = _coverage(240, 60, 400, seed=10)
    assert 0.95 - 3 * math.sqrt(0.95 * 0.05 / 240) <= cover <= 0.99, cover
    assert 0.95 - 3 * math.sqrt(0.95 * 0.05 / 360) <= pair_cover <= 0.99, pair_cover
    assert order_ok >= 0.8 * reps


@pytest.mark.slow
@pytest.mark.parametrize("n_votes", [60, 240, 1000])
def test_bootstrap_coverage_measured(n_votes: int) -> None:
    """The measurement quoted in docs/votes.md: 400 simulated vote sets per size, 2000 resamples each."""
    reps = 400
    cover, pair_cover, order_ok, _ = _coverage(n_votes, reps, R.N_BOOTSTRAP, seed=100 + n_votes)
    se = math.sqrt(0.95 * 0.05 / (reps * len(NAMES)))
    print(f"\nn_votes={n_votes}: strength coverage {cover:.3f} (target 0.95, binomial SE {se:.3f}), pairwise "
          f"P coverage {pair_cover:.3f}, true order recovered {order_ok}/{reps}")
    assert cover >= 0.95 - 4 * se - (0.03 if n_votes < 100 else 0.0), cover


# --- agreement with per-video metrics --------------------------------------------------------------------------

def test_agreement_counts_on_constructed_votes() -> None:
    values = {"k1": 0.9, "k2": 0.1, "k3": 0.5, "k4": 0.5, "k5": float("nan")}
    decisive = [("k1", "k2")] * 7 + [("k2", "k1")] * 3 + [("k3", "k4")] * 2 + [("k1", "k5"), ("k1", "missing")]
    a = R.agreement(decisive, values, higher_is_better=True)
    assert (a.agree, a.n, a.n_metric_tied, a.n_missing) == (7, 10, 2, 2)
    assert a.rate == pytest.approx(0.7) and (a.ci_low, a.ci_high) == pytest.approx(wilson_interval(7, 10))
    flipped = R.agreement(decisive, values, higher_is_better=False)  # lower is better: the other 3 agree
    assert (flipped.agree, flipped.n) == (3, 10)


def test_agreement_is_one_for_a_metric_that_always_sides_with_raters_and_zero_for_the_reverse() -> None:
    rng = np.random.default_rng(4)
    quality = {f"v{i}": float(q) for i, q in enumerate(rng.normal(size=200))}
    keys = list(quality)
    # raters always prefer the higher-quality video of a random pair
    pairs = [tuple(rng.choice(keys, 2, replace=False)) for _ in range(300)]
    decisive = [(a, b) if quality[a] > quality[b] else (b, a) for a, b in pairs]
    assert R.agreement(decisive, quality, True).rate == 1.0
    assert R.agreement(decisive, {k: -v for k, v in quality.items()}, True).rate == 0.0
    noise = {k: float(v) for k, v in zip(keys, rng.normal(size=200))}  # unrelated metric: about chance
    a = R.agreement(decisive, noise, True)
    assert a.ci_low < 0.5 < a.ci_high


def test_agreement_without_values_is_empty() -> None:
    a = R.agreement([("a", "b")], {}, True)
    assert a.n == 0 and a.n_missing == 1 and math.isnan(a.rate)
