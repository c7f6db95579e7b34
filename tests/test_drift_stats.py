"""The permutation tests behind drift verdicts (`vbench_suite.drift.mmd`): size under the null and power under a known
shift, on synthetic features whose truth is known by construction; the printed threshold and the p-value agree."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vbench_suite.drift.mmd import (MAX_EXACT, PermutationTest, excess_test, gaussian_kernel, mmd2_of_labels,
                                    mmd_test)


def _prompts(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Per-prompt centres far apart (prompts give very different videos), (n, dim)."""
    return rng.normal(0.0, 5.0, (n, dim))


def _run(centres: np.ndarray, rng: np.random.Generator, shift: float = 0.0, noise: float = 1.0) -> np.ndarray:
    """One video per prompt: its centre + noise (+ a common shift along the first axis: a changed model)."""
    x = centres + rng.normal(0.0, noise, centres.shape)
    x[:, 0] += shift
    return x


def test_mmd_size_under_the_null_is_at_most_alpha():
    """200 null comparisons (12 prompts, 16-d, fresh noise per run): rejections at 0.05 and 0.01 stay within the
    binomial 99.9 % bound of the nominal rate (the test is exact, so it can only be smaller)."""
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(12)]
    p = []
    for _ in range(200):
        centres = _prompts(12, 16, rng)
        p.append(mmd_test(_run(centres, rng), ids, _run(centres, rng), ids, seed=1).p_value)
    p = np.array(p)
    for alpha in (0.05, 0.01):
        bound = alpha + 3.3 * math.sqrt(alpha * (1 - alpha) / len(p))
        assert (p < alpha).mean() <= bound, ((p < alpha).mean(), alpha)
    assert (p < 0.5).mean() > 0.35  # not degenerate: the p-values spread over (0, 1]


def test_mmd_power_under_a_known_shift():
    """A common shift of 3 noise sigmas (small next to the spread between prompts) is found in almost every
    comparison; a tenth of that is not distinguishable from nothing."""
    rng = np.random.default_rng(1)
    ids = [f"p{i}" for i in range(12)]
    big, tiny = [], []
    for _ in range(100):
        centres = _prompts(12, 16, rng)
        base = _run(centres, rng)
        big.append(mmd_test(base, ids, _run(centres, rng, shift=3.0), ids).p_value)
        tiny.append(mmd_test(base, ids, _run(centres, rng, shift=0.3), ids).p_value)
    assert np.mean(np.array(big) < 0.05) >= 0.9
    assert np.mean(np.array(tiny) < 0.05) <= 0.25


def test_stratification_keeps_prompts_apart():
    """An unstratified test would see a huge 'difference' when two runs cover different prompts; within prompts
    the null holds: each stratum has one video per side, so 2^12 assignments are enumerated exactly."""
    rng = np.random.default_rng(2)
    centres = _prompts(12, 8, rng)
    ids = [f"p{i}" for i in range(12)]
    t = mmd_test(_run(centres, rng), ids, _run(centres, rng), ids)
    assert t.exact and t.n == 2 ** 12
    # an assignment and its mirror (every pair swapped) give the same statistic: the smallest p is 2 / 4096
    assert t.p_value >= 2 / 4096


def test_identical_runs_give_p_one_and_a_huge_change_the_smallest_p():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 4))
    ids = list("abcdefghij")
    same = mmd_test(x, ids, x.copy(), ids)
    assert same.p_value == 1.0 and not same.rejects(0.5)
    moved = mmd_test(x, ids, x + 100.0, ids)
    assert moved.p_value == pytest.approx(2 / 2 ** 10)
    assert moved.rejects(0.01)


def test_random_assignments_when_enumeration_is_too_large():
    rng = np.random.default_rng(4)
    ids = [f"p{i}" for i in range(20)]  # 2^20 > MAX_EXACT
    centres = _prompts(20, 6, rng)
    t = mmd_test(_run(centres, rng), ids, _run(centres, rng, shift=3.0), ids, seed=5)
    assert not t.exact and 2 ** 20 > MAX_EXACT
    assert t.p_value == pytest.approx(1 / t.n)  # nothing random comes near the observed split
    again = mmd_test(_run(centres, rng), ids, _run(centres, rng), ids, seed=5)
    assert again.p_value > 1 / t.n


def test_threshold_and_p_value_agree_at_every_level():
    """The verdict read off the printed threshold is the verdict of p < level, for random tests and levels."""
    rng = np.random.default_rng(6)
    checked = rejected = 0
    for _ in range(200):
        n = int(rng.integers(2, 10))
        between = rng.exponential(1.0, n) + rng.choice([0.0, 1.0])
        floor = rng.exponential(1.0, int(rng.integers(1, 6)))
        t = excess_test(between, floor, seed=int(rng.integers(0, 100)))
        for level in (0.001, 0.0125, 0.05, 0.1, 0.3):
            assert t.rejects(level) == (t.p_value < level), (t.statistic, t.threshold(level), t.p_value, level)
            if t.rejects(level):
                assert t.statistic > t.threshold(level)
            else:
                assert t.statistic <= t.threshold(level) * (1 + 1e-6) + 1e-12
            checked += 1
            rejected += t.rejects(level)
    assert checked == 1000 and 50 < rejected < 950


def test_excess_test_size_and_power():
    """Replays and between-run pairs from one distribution: rejections at 0.05 within the binomial bound; between
    pairs 4x the replay noise: found nearly always with 12 pairs and 6 replays."""
    rng = np.random.default_rng(7)
    null = np.array([excess_test(rng.gamma(2, 0.01, 12), rng.gamma(2, 0.01, 6), seed=1).p_value
                     for _ in range(300)])
    assert (null < 0.05).mean() <= 0.05 + 3.3 * math.sqrt(0.05 * 0.95 / 300)
    power = np.array([excess_test(rng.gamma(2, 0.04, 12), rng.gamma(2, 0.01, 6)).p_value for _ in range(100)])
    assert (power < 0.05).mean() >= 0.9


def test_bit_exact_replays_and_pairs():
    """A bit-exact backend: every replay distance is 0. Unchanged outputs (all 0) give p = 1; any change gives
    the smallest p the split allows (1 / C(12 + 6, 6))."""
    assert excess_test([0.0] * 12, [0.0] * 6).p_value == 1.0
    t = excess_test([0.02] * 12, [0.0] * 6)
    assert t.p_value == pytest.approx(1 / math.comb(18, 6))


def test_kernel_and_statistic():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    k, h = gaussian_kernel(x)
    assert h == pytest.approx(4.0)  # squared distances 1, 4, 5: median 4
    assert k[0, 1] == pytest.approx(math.exp(-1 / 4)) and np.allclose(np.diag(k), 1.0)
    labels = np.array([[True, False, False]])
    mmd = mmd2_of_labels(k, labels)[0]
    want = k[0, 0] + (k[1, 1] + k[2, 2] + 2 * k[1, 2]) / 4 - (k[0, 1] + k[0, 2])
    assert mmd == pytest.approx(want)


def test_permutation_test_record():
    t = PermutationTest(3.0, np.array([3.0, 2.0, 1.0, 0.0]), "m", True)
    assert t.count == 1 and t.p_value == 0.25
    assert t.threshold(0.5) == 2.0 and t.rejects(0.5) and not t.rejects(0.25)
    with pytest.raises(ValueError):
        mmd_test(np.zeros((0, 3)), [], np.zeros((2, 3)), ["a", "b"])
