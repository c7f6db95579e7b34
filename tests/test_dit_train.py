"""The training command end to end on the tiny configuration: every stage runs, checkpoints load in the pipeline,
and a stopped run resumes where it stopped."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from vbench_suite.backends.dit.config import TrainConfig, tiny_config
from vbench_suite.backends.dit.pipeline import DiTPipeline
from vbench_suite.backends.dit.train import LOG_FILE, Trainer, export


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

    export(out, tmp_path / "weights")
    pipe = DiTPipeline.load(tmp_path / "weights", device="cpu")
    assert pipe.cfg.num_frames == 9 and pipe.cfg.latent_scale != 1.0
    torch.testing.assert_close(pipe.dit.state_dict()["final_layer.linear.weight"],
                               second.ema.state_dict()["final_layer.linear.weight"])
