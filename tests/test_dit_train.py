"""The training command end to end on the tiny configuration: every stage runs, checkpoints load in the pipeline,
and a stopped run resumes where it stopped."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from vbench_suite.backends.dit.config import TrainConfig, tiny_config
from vbench_suite.backends.dit.pipeline import DiTPipeline
from vbench_suite.backends.dit.train import LOG_FILE, Trainer, export
from vbench_suite.errors import ConfigError


def test_train_resume_and_load(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    tcfg = TrainConfig(vae_steps=2, vae_batch=2, dit_steps=1, dit_batch=2, num_videos=6, decoder_steps=1)
    first = Trainer(out, tcfg, torch.device("cpu"), tiny_config())
    first.run(max_minutes=5, save_every=1e9)
    assert (first.vae_step, first.dit_step) == (2, 1)

    more = TrainConfig(**{**tcfg.__dict__, "dit_steps": 3, "decoder_steps": 2})
    second = Trainer(out, more, torch.device("cpu"), tiny_config())
    assert second.load() and second.dit_step == 1
    second.run(max_minutes=5, save_every=1e9)
    assert second.dit_step == 3
    stages = [json.loads(line)["stage"] for line in (out / LOG_FILE).read_text().splitlines()]
    assert {"vae", "dit", "decoder"} <= set(stages)
    # resuming with another autoencoder packing is refused by name, not with a tensor-shape error
    cfg = tiny_config()
    other = dataclasses.replace(cfg, autoencoder=dataclasses.replace(cfg.autoencoder, latent_channels=6))
    with pytest.raises(ConfigError, match="another architecture.*--latent-channels"):
        Trainer(out, more, torch.device("cpu"), other).load()

    export(out, tmp_path / "weights")
    pipe = DiTPipeline.load(tmp_path / "weights", device="cpu")
    assert pipe.cfg.num_frames == 9 and pipe.cfg.latent_scale != 1.0
    torch.testing.assert_close(pipe.dit.state_dict()["final_layer.linear.weight"],
                               second.ema.state_dict()["final_layer.linear.weight"])


def test_object_mask_marks_the_object_in_each_latent_frame() -> None:
    from vbench_suite.backends.dit.train import object_mask, pipeline_config, to_model_video
    from vbench_suite.shapes.grammar import single
    from vbench_suite.shapes.render import draw, layout

    cfg = pipeline_config()
    scene = layout(single("red", "circle", "right", background="gray"), cfg.num_frames, 64, seed=1)
    mask = object_mask(to_model_video(draw(scene)), scene.background_rgb, cfg)  # (T, h, w)
    assert mask.shape == (cfg.latent_frames, 16, 16)
    track = scene.tracks[0]
    a = cfg.autoencoder
    for k, frame in enumerate(range(0, cfg.num_frames, a.temporal_factor)):  # each latent frame's last pixel frame
        x, y = track.centres[frame]
        assert mask[k, int(y) // a.spatial_factor, int(x) // a.spatial_factor], k
    # an object of side <= 16 px moving right covers a small part of each latent frame, and moves right over time
    assert 0.0 < mask.float().mean() < 0.3
    cols = [float(torch.nonzero(mask[k])[:, 1].float().mean()) for k in range(cfg.latent_frames)]
    assert cols == sorted(cols) and cols[-1] > cols[0]


def test_weighted_flow_matching_loss_reduces_to_plain_mse_with_unit_weights() -> None:
    from vbench_suite.backends.dit.model import VideoDiT
    from vbench_suite.backends.dit.sampler import flow_matching_loss

    cfg = tiny_config()
    a = cfg.autoencoder
    torch.manual_seed(0)
    model = VideoDiT(cfg.dit, a.latent_channels, cfg.latent_frames, a.latent_size)
    for p in model.parameters():  # leave the zero initialisation so the prediction depends on the input
        torch.nn.init.normal_(p, std=0.05)
    b, t = 3, cfg.latent_frames
    batch = {"x0": torch.randn(b, a.latent_channels, t, a.latent_size, a.latent_size),
             "text": torch.randn(b, 4, 384), "text_mask": torch.ones(b, t, 4, dtype=torch.bool),
             "pooled": torch.randn(b, t, 384), "image": torch.zeros(b, a.latent_channels, a.latent_size, a.latent_size),
             "image_flag": torch.zeros(b)}
    plain = flow_matching_loss(model, batch, torch.Generator().manual_seed(1))
    ones = flow_matching_loss(model, {**batch, "weight": torch.ones(b, 1, t, a.latent_size, a.latent_size)},
                              torch.Generator().manual_seed(1))
    torch.testing.assert_close(plain, ones)
    heavy = torch.ones(b, 1, t, a.latent_size, a.latent_size)
    heavy[:, :, :, :2] = 9.0
    weighted = flow_matching_loss(model, {**batch, "weight": heavy}, torch.Generator().manual_seed(1))
    assert not torch.allclose(plain, weighted)


def test_joint_image_video_training_runs_and_an_older_checkpoint_still_resumes(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    tcfg = TrainConfig(vae_steps=1, vae_batch=2, dit_steps=2, dit_batch=2, num_videos=4, decoder_steps=0,
                       image_batch=3)
    trainer = Trainer(out, tcfg, torch.device("cpu"), tiny_config())
    trainer.run(max_minutes=5, save_every=1e9)
    assert trainer.dit_step == 2
    losses = [json.loads(line)["loss"] for line in (out / LOG_FILE).read_text().splitlines()
              if json.loads(line)["stage"] == "dit"]
    assert losses and all(loss == loss and loss > 0 for loss in losses)  # finite, positive (not NaN)

    # A checkpoint written before `image_batch` existed resumes with the default (videos only) ...
    state = torch.load(out / "train_state.pt", weights_only=True)
    del state["train_config"]["image_batch"]
    torch.save(state, out / "train_state.pt")
    old = TrainConfig(**{**tcfg.__dict__, "image_batch": 0})
    assert Trainer(out, old, torch.device("cpu"), tiny_config()).load()
    # ... and refuses a changed DiT setting once the DiT has started.
    changed = TrainConfig(**{**tcfg.__dict__, "image_batch": 5})
    with pytest.raises(ConfigError, match=r"different training settings: image_batch 0 \(now 5\);.*another --out"):
        Trainer(out, changed, torch.device("cpu"), tiny_config()).load()


def test_first_frames_cuts_a_batch_to_latent_frame_zero() -> None:
    from vbench_suite.backends.dit.train import first_frames

    b, c, t, h, w, length = 3, 4, 5, 6, 6, 7
    batch = {"x0": torch.randn(b, c, t, h, w), "text": torch.randn(b, 2 * length, 384),
             "text_mask": torch.rand(b, t, 2 * length) > 0.5, "pooled": torch.randn(b, t, 384),
             "image": torch.randn(b, c, h, w), "image_flag": torch.ones(b), "weight": torch.rand(b, 1, t, h, w)}
    frames = first_frames(batch)
    assert frames["x0"].shape == (b, c, 1, h, w) and torch.equal(frames["x0"][:, :, 0], batch["x0"][:, :, 0])
    assert torch.equal(frames["text_mask"][:, 0], batch["text_mask"][:, 0]) and frames["pooled"].shape == (b, 1, 384)
    assert frames["weight"].shape == (b, 1, 1, h, w)
    assert not frames["image"].any() and not frames["image_flag"].any()  # the answer is never given as the condition


def test_module_entry_reports_a_bad_packing_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vbench_suite.backends.dit.train import main

    assert main(["--out", str(tmp_path / "run"), "--temporal-factor", "3"]) == 2
    err = capsys.readouterr().err
    assert "num_frames must be 1 + 3*k" in err and "Traceback" not in err


def test_training_defaults_build_the_shipped_architecture() -> None:
    """`make train-dit` with no flags must train the model that ships (same autoencoder, DiT and frame count)."""
    from vbench_suite.backends.dit.config import PipelineConfig
    from vbench_suite.backends.dit.pipeline import WEIGHTS_DIR
    from vbench_suite.backends.dit.train import pipeline_config

    shipped = PipelineConfig.from_dict(json.loads((WEIGHTS_DIR / "config.json").read_text()))
    default = pipeline_config()
    assert default.autoencoder == shipped.autoencoder and default.dit == shipped.dit
    assert default.num_frames == shipped.num_frames and default.max_text_tokens == shipped.max_text_tokens
