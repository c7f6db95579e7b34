"""The DiT pipeline on a tiny random configuration (2 layers, 16x16, 9 frames, 2 steps): recorded outputs, shapes,
per-request determinism, conditioning plumbing and interpolation. Offline, CPU, a few seconds."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vbench_suite.backends.dit.autoencoder import VideoAutoencoder
from vbench_suite.backends.dit.config import PipelineConfig, tiny_config
from vbench_suite.backends.dit.pipeline import DiTPipeline, SampleSpec, Segment, latent_frame_of_pixels, segment_for, single_prompt
from vbench_suite.backends.dit.sampler import LatentShapeError, interpolate_latents, time_grid
from vbench_suite.errors import ConfigError

PROMPT = "a red circle moves left on a black background"

# Recorded once from this configuration (seed 0 weights, request seed 1, 2 steps, guidance 2).
RECORDED_LATENT_HEAD = [-1.732895, -0.962437, -0.830293, -1.737485, -0.28883, -0.736851, -1.113141, -1.820809]
RECORDED_UPDATE_HEAD = [-0.207299, -0.212205, -0.176312, -0.128, -0.188663, -0.127662, -0.133369, -0.211713]
"""What the two guided Euler steps added to the initial noise: the model's own contribution."""
RECORDED_VIDEO_MEAN = 128.530527


@pytest.fixture(scope="module")
def pipe() -> DiTPipeline:
    torch.set_num_threads(1)
    return DiTPipeline.random(tiny_config(), seed=0)


def spec(prompt: str = PROMPT, seed: int = 1, **kw: object) -> SampleSpec:
    return single_prompt(prompt, 9, seed=seed, steps=2, guidance=2.0, **kw)


def test_tiny_config_shapes() -> None:
    cfg = tiny_config()
    assert cfg.latent_shape == (4, 3, 4, 4)
    assert cfg.dit.depth == 2 and cfg.num_frames == 9 and cfg.autoencoder.image_size == 16
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg


def test_config_rejects_unknown_key() -> None:
    d = tiny_config().to_dict()
    d["dit"]["hiden_size"] = 3
    with pytest.raises(ConfigError, match="dit.hiden_size"):
        PipelineConfig.from_dict(d)


def test_config_rejects_bad_frame_count() -> None:
    with pytest.raises(ConfigError, match="1 \\+ 4\\*k"):
        PipelineConfig(num_frames=16)


def test_recorded_output(pipe: DiTPipeline) -> None:
    latents = pipe.sample_latents([spec()])
    assert latents.shape == (1, 4, 3, 4, 4)
    np.testing.assert_allclose(latents.flatten()[:8].numpy(), RECORDED_LATENT_HEAD, atol=1e-4)
    update = (latents - pipe.noise(1)).flatten()[:8].numpy()
    np.testing.assert_allclose(update, RECORDED_UPDATE_HEAD, atol=1e-4)
    video = pipe.decode(latents)
    assert video.shape == (1, 9, 16, 16, 3) and video.dtype == np.uint8
    assert abs(float(video.mean()) - RECORDED_VIDEO_MEAN) < 0.05


def test_same_seed_same_video_whatever_the_batch(pipe: DiTPipeline) -> None:
    alone = pipe.generate([spec()])[0]
    batched = pipe.generate([spec("two blue squares move up on a white background", seed=5), spec(),
                             spec(seed=9)])[1]
    assert np.abs(alone.astype(int) - batched.astype(int)).max() <= 1


def test_seed_and_prompt_change_the_output(pipe: DiTPipeline) -> None:
    a = pipe.sample_latents([spec()])
    assert not torch.allclose(a, pipe.sample_latents([spec(seed=2)]))
    assert not torch.allclose(a, pipe.sample_latents([spec("a green square grows on a gray background")]))


def test_autoencoder_round_trip_shapes() -> None:
    vae = VideoAutoencoder(tiny_config().autoencoder)
    video = torch.rand(2, 3, 9, 16, 16) * 2 - 1
    z = vae.encode(video)
    assert z.shape == (2, 4, 3, 4, 4)
    assert vae.decode(z).shape == (2, 3, 9, 16, 16)
    groups = vae.to_groups(video)
    assert groups.shape == (6, 12, 16, 16)
    assert torch.equal(vae.from_groups(groups, 2), video)  # the still group of frame 0 averages to frame 0


def test_keyframe_constraints_pin_the_latent(pipe: DiTPipeline) -> None:
    rng = np.random.default_rng(0)
    first, last = (rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2))
    z = pipe.sample_latents([spec(first_frame=first, last_frame=last)])
    torch.testing.assert_close(z[0, :, 0], pipe.encode_still(first))
    torch.testing.assert_close(z[0, :, -1], pipe.encode_still(last))


def test_image_conditioning_changes_the_output(pipe: DiTPipeline) -> None:
    image = np.full((16, 16, 3), 200, np.uint8)
    plain = pipe.sample_latents([spec()])
    cond = pipe.conditioning([spec(image=image)])
    assert float(cond.image_flag[0]) == 1.0 and cond.image.abs().sum() > 0
    assert not torch.allclose(plain, pipe.sample_latents([spec(image=image)]))


def test_token_masking_routes_frames_to_their_prompt(pipe: DiTPipeline) -> None:
    two = SampleSpec(segments=(Segment(0, 4, PROMPT), Segment(5, 8, "a blue circle moves left on a black background")),
                     seed=1, steps=2, guidance=2.0)
    cond = pipe.conditioning([two])
    length = pipe.cfg.max_text_tokens
    # latent frames 0 ({0}) and 1 ({1..4}) read slot 0; latent frame 2 ({5..8}) reads slot 1
    assert cond.text_mask[0, :2, :length].any() and not cond.text_mask[0, :2, length:].any()
    assert cond.text_mask[0, 2, length:].any() and not cond.text_mask[0, 2, :length].any()
    assert not torch.allclose(pipe.sample_latents([two]), pipe.sample_latents([spec()]))


def test_segment_mapping() -> None:
    groups = latent_frame_of_pixels(17, 4)
    assert groups[0] == [0] and groups[1] == [1, 2, 3, 4] and groups[4] == [13, 14, 15, 16]
    segs = (Segment(0, 7, "a"), Segment(8, 16, "b"))
    assert [segment_for(segs, g) for g in groups] == [0, 0, 0, 1, 1]


def test_interpolation_linear_and_slerp() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 3, 4, 4, generator=gen), torch.randn(4, 3, 4, 4, generator=gen)
    for method in ("linear", "slerp"):
        torch.testing.assert_close(interpolate_latents(a, b, 0.0, method), a)
        torch.testing.assert_close(interpolate_latents(a, b, 1.0, method), b)
    mid_lin, mid_slerp = interpolate_latents(a, b, 0.5, "linear"), interpolate_latents(a, b, 0.5, "slerp")
    assert mid_slerp.norm() > mid_lin.norm()  # SLERP keeps the norm of Gaussian latents, linear shrinks it


def test_interpolation_refuses_different_shapes() -> None:
    with pytest.raises(LatentShapeError, match="different shapes"):
        interpolate_latents(torch.zeros(4, 3, 4, 4), torch.zeros(4, 5, 4, 4), 0.5)


def test_time_grid() -> None:
    t = time_grid(4, shift=3.0)
    assert float(t[0]) == 1.0 and float(t[-1]) == 0.0 and bool((t[1:] < t[:-1]).all())


def test_written_out_attention_matches_the_fused_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default attention (matmuls + softmax, faster on CPU) computes what F.scaled_dot_product_attention does,
    with and without a per-query mask, forward and backward."""
    from vbench_suite.backends.dit import model as dit_model

    torch.manual_seed(0)
    attn = dit_model.Attention(16, 4)
    x = torch.randn(3, 7, 16, requires_grad=True)
    ctx = torch.randn(3, 5, 16)
    mask = torch.rand(3, 7, 5) > 0.5
    mask[..., 0] = True  # every query keeps at least one key, as the pipeline guarantees

    def run(fused: bool) -> tuple[torch.Tensor, ...]:
        monkeypatch.setattr(dit_model, "FUSED_ATTENTION", fused)
        x.grad = None
        self_out = attn(x)
        cross_out = attn(x, ctx, mask)
        (self_out.sum() + cross_out.square().sum()).backward()
        return self_out.detach(), cross_out.detach(), x.grad.clone()

    for written, fused in zip(run(False), run(True)):
        torch.testing.assert_close(written, fused, atol=1e-5, rtol=1e-5)
