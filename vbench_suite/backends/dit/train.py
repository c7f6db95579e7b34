"""Train the local video DiT pipeline on the shapes world: the autoencoder first, then the diffusion transformer.

One reproducible, resumable command (CPU by default; a CUDA GPU is used when present):

    python -m vbench_suite.backends.dit.train --out checkpoints/dit --export vbench_suite/backends/dit/weights

Everything random derives from `--seed`: training videos, prompts, noise and times. A checkpoint (config.json +
model.safetensors, usable by the backend, plus train_state.pt to resume) is written every `--save-every` seconds
and when `--max-minutes` or SIGTERM/SIGINT stops the run; running the same command again continues where it stopped.
Only prompt combinations of the training split are used (`enumerate_specs`/`sample_spec` split 'train'), so the
held-out (colour, shape, motion) triples stay unseen.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vbench_suite.backends.dit.autoencoder import VideoAutoencoder, autoencoder_loss, reconstruction_loss
from vbench_suite.backends.dit.config import (CONFIG_FILE, WEIGHTS_FILE, AutoencoderConfig, DiTConfig, PipelineConfig,
                                              TrainConfig, add_train_arguments)
from vbench_suite.backends.dit.model import VideoDiT
from vbench_suite.backends.dit.sampler import flow_matching_loss
from vbench_suite.backends.dit.text_encoder import TextEncoder
from vbench_suite.errors import ConfigError, UserError
from vbench_suite.shapes.grammar import COLOURS, SceneSpec, sample_spec, to_prompt, STYLES, MOTION_PHRASES
from vbench_suite.shapes.render import ObjectTrack, SceneLayout, draw, layout

log = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"
DECODER_STATE_FILE = "decoder_state.pt"
DATA_FILE = "dit_data.pt"
LOG_FILE = "train_log.jsonl"
DIT_ONLY_SETTINGS = {"dit_batch", "dit_lr", "warmup_steps", "ema_decay", "num_videos", "two_group_fraction",
                     "text_dropout", "image_fraction", "switch_fraction", "single_fraction", "object_weight",
                     "time_logit_mean", "time_logit_std", "image_batch"}


def pipeline_config(temporal_factor: int | None = None, latent_channels: int | None = None) -> PipelineConfig:
    """The shipped model's architecture (2 video frames per latent frame after frame 0, 8 latent channels);
    `temporal_factor` / `latent_channels` (None = shipped) change the autoencoder's packing for experiments
    (17 frames need a factor dividing 16). Packing 4 frames rounded moving diamonds in the autoencoder itself."""
    return PipelineConfig(
        num_frames=17,
        autoencoder=AutoencoderConfig(image_size=64, temporal_factor=temporal_factor or 2, channels=(32, 64, 96),
                                      latent_channels=latent_channels or 8),
        dit=DiTConfig(hidden_size=128, depth=4, num_heads=4, mlp_ratio=4.0, patch_size=2),
        max_text_tokens=32, default_steps=20, default_guidance=4.0)


# -- data ----------------------------------------------------------------------------------------------------------
def random_prompt(spec: SceneSpec, rng: np.random.Generator) -> str:
    """One of the grammar's wordings of `spec`, so paraphrases are learned."""
    style = STYLES[int(rng.integers(len(STYLES)))]
    variant = int(rng.integers(len(next(iter(MOTION_PHRASES.values())))))
    return to_prompt(spec, style=style, variant=variant)


def recolour(scene: SceneLayout, colour: str) -> SceneLayout:
    """The same scene with every object of the first group drawn in `colour` (for colour-switch samples)."""
    first = scene.tracks[0].spec
    new_spec = dataclasses.replace(first, colour=colour)
    rgb = tuple(float(c) for c in COLOURS[colour])
    tracks = tuple(ObjectTrack(new_spec, rgb, t.centres, t.sides) if t.spec == first else t for t in scene.tracks)
    return dataclasses.replace(scene, tracks=tracks)


def to_model_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (3, F, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def vae_batch(cfg: PipelineConfig, rng: np.random.Generator, batch: int) -> torch.Tensor:
    """Random stacked groups (N, 3*tf, H, W) from freshly rendered training scenes (a third of them still groups)."""
    tf = cfg.autoencoder.temporal_factor
    groups = []
    for _ in range(batch):
        video = to_model_video(draw(random_scene(rng, cfg, 2)[1]))  # (3, F, H, W)
        kind = rng.random()
        if kind < 0.33:
            frame = video[:, int(rng.integers(video.shape[1]))]  # (3, H, W)
            groups.append(frame.repeat(tf, 1, 1))
        else:
            k = int(rng.integers(1, cfg.latent_frames))
            g = video[:, 1 + (k - 1) * tf: 1 + k * tf]  # (3, tf, H, W)
            groups.append(g.permute(1, 0, 2, 3).reshape(-1, *g.shape[2:]))
    return torch.stack(groups)  # (N, 3*tf, H, W)


def random_scene(rng: np.random.Generator, cfg: PipelineConfig, max_groups: int,
                 draw_spec: Callable[[np.random.Generator], SceneSpec] | None = None) -> tuple[SceneSpec, SceneLayout]:
    """A random training-split scene laid out for the model's frames and size (crowded draws are redrawn).

    `draw_spec` replaces the default spec draw (`sample_spec(rng, 'train', max_groups)`)."""
    while True:
        spec = draw_spec(rng) if draw_spec is not None else sample_spec(rng, "train", max_groups=max_groups)
        try:
            return spec, layout(spec, cfg.num_frames, cfg.autoencoder.image_size, int(rng.integers(2**31)))
        except RuntimeError:  # the renderer could not fit every object of a crowded two-group scene
            continue


def training_spec(rng: np.random.Generator, tcfg: TrainConfig) -> SceneSpec:
    """A training-split scene: with probability `single_fraction` one object, otherwise a random group count (one or
    two groups, 1-3 objects each). Single objects are the commonest request and the hardest to get exactly right."""
    if rng.random() < tcfg.single_fraction:
        spec = sample_spec(rng, "train", max_groups=1)
        return SceneSpec((dataclasses.replace(spec.objects[0], count=1),), spec.background)
    return sample_spec(rng, "train", max_groups=2 if rng.random() < tcfg.two_group_fraction else 1)


def object_mask(video: torch.Tensor, background: Sequence[float], cfg: PipelineConfig) -> torch.Tensor:
    """Which latent pixels an object touches: video (3, F, H, W) in [-1, 1], background RGB 0..255 ->
    bool (T, h, w), each latent frame the union over its pixel frames, grown by one latent pixel."""
    bg = torch.tensor([float(c) / 127.5 - 1.0 for c in background])[:, None, None, None]  # (3, 1, 1, 1)
    fg = ((video - bg).abs().amax(dim=0) > 0.1).float()  # (F, H, W)
    tf, s = cfg.autoencoder.temporal_factor, cfg.autoencoder.spatial_factor
    groups = torch.cat([fg[:1].expand(tf, -1, -1), fg[1:]]).reshape(-1, tf, *fg.shape[1:]).amax(dim=1)  # (T, H, W)
    small = torch.nn.functional.max_pool2d(groups[:, None], s)  # (T, 1, h, w)
    return torch.nn.functional.max_pool2d(small, 3, stride=1, padding=1)[:, 0] > 0  # (T, h, w)


@torch.no_grad()
def build_dit_data(cfg: PipelineConfig, tcfg: TrainConfig, vae: VideoAutoencoder, text: TextEncoder,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """Render `num_videos` training videos, encode them once (fp16 latents) and keep their object masks.
    Colour-switch videos get a second prompt and a switch latent frame (0 means no switch)."""
    rng = np.random.default_rng([tcfg.seed, 2])
    tf = cfg.autoencoder.temporal_factor
    latents, masks, prompts_a, prompts_b, switch = [], [], [], [], []
    videos = []
    for i in range(tcfg.num_videos):
        spec, scene = random_scene(rng, cfg, 2, lambda r: training_spec(r, tcfg))
        frames = draw(scene)
        prompt_a, prompt_b, k = random_prompt(spec, rng), "", 0
        if len(spec.objects) == 1 and rng.random() < tcfg.switch_fraction:
            choices = [c for c in COLOURS if c != spec.objects[0].colour and c != spec.background]
            colour = choices[int(rng.integers(len(choices)))]
            spec_b = SceneSpec((dataclasses.replace(spec.objects[0], colour=colour),), spec.background)
            if not spec_b.held_out:
                k = int(rng.integers(2, cfg.latent_frames))
                start = 1 + (k - 1) * tf
                frames = frames.copy()
                frames[start:] = draw(recolour(scene, colour))[start:]
                prompt_b = random_prompt(spec_b, rng)
            else:
                k = 0
        video = to_model_video(frames)  # (3, F, H, W)
        videos.append(video)
        masks.append(object_mask(video, scene.background_rgb, cfg))
        prompts_a.append(prompt_a)
        prompts_b.append(prompt_b)
        switch.append(k)
        if len(videos) == 64 or i == tcfg.num_videos - 1:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                latents.append(vae.encode(torch.stack(videos).to(device)).float().cpu().half())  # (64, C, T, h, w)
            videos = []
    z = torch.cat(latents)  # (N, C, T, h, w)
    table = [""] + sorted(set(prompts_a + prompts_b) - {""})  # row 0 is the null prompt
    row = {p: i for i, p in enumerate(table)}
    emb = encode_prompts(text, table)
    return {"latents": z, "masks": torch.stack(masks), "switch": torch.tensor(switch),
            "a_idx": torch.tensor([row[p] for p in prompts_a]),
            "b_idx": torch.tensor([row[p] for p in prompts_b]), **emb}


def encode_prompts(text: TextEncoder, prompts: Sequence[str], chunk: int = 256) -> dict[str, torch.Tensor]:
    """Token embeddings (fp16), masks and pooled vectors of `prompts`, in order."""
    tokens, masks, pooled = [], [], []
    for i in range(0, len(prompts), chunk):
        e = text.encode(prompts[i:i + chunk])
        tokens.append(e.tokens.half().cpu())  # the table lives on the CPU with the latents; batches move
        masks.append(e.mask.cpu())
        pooled.append(e.pooled.cpu())
    return {"tokens": torch.cat(tokens), "mask": torch.cat(masks), "pooled": torch.cat(pooled)}


def dit_batch(data: dict[str, torch.Tensor], idx: torch.Tensor, cfg: PipelineConfig, tcfg: TrainConfig,
              gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Assemble conditioning for a batch: two prompt slots of L tokens each, per-frame masks, dropouts."""
    b, frames = len(idx), cfg.latent_frames
    z = data["latents"][idx].float()  # (B, C, T, h, w)
    z = (z - cfg.latent_shift) * cfg.latent_scale
    drop = torch.rand(b, generator=gen) < tcfg.text_dropout  # (B,)
    a = torch.where(drop, 0, data["a_idx"][idx])  # (B,) row 0 = null prompt
    bb = data["b_idx"][idx]  # (B,)
    switch = data["switch"][idx]  # (B,)
    frame = torch.arange(frames)[None, :]  # (1, T)
    use_b = (switch[:, None] > 0) & (frame >= switch[:, None]) & ~drop[:, None]  # (B, T)
    text = torch.cat([data["tokens"][a], data["tokens"][bb]], dim=1).float()  # (B, 2L, 384)
    mask = torch.cat([data["mask"][a][:, None, :] & ~use_b[:, :, None],
                      data["mask"][bb][:, None, :] & use_b[:, :, None]], dim=2)  # (B, T, 2L)
    pooled = torch.where(use_b[:, :, None], data["pooled"][bb][:, None, :], data["pooled"][a][:, None, :])  # (B, T, 384)
    image_flag = (torch.rand(b, generator=gen) < tcfg.image_fraction).float()  # (B,)
    image = z[:, :, 0] * image_flag[:, None, None, None]  # (B, C, h, w)
    weight = 1.0 + tcfg.object_weight * data["masks"][idx][:, None].float()  # (B, 1, T, h, w)
    return {"x0": z, "text": text, "text_mask": mask, "pooled": pooled, "image": image, "image_flag": image_flag,
            "weight": weight}


def first_frames(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A `dit_batch` cut to latent frame 0 (a still image): one-frame clips for joint image-video training.

    No image conditioning (it would be the answer); per-frame text masks and pooled text keep frame 0's prompt.
    """
    out = {"x0": batch["x0"][:, :, :1], "text": batch["text"], "text_mask": batch["text_mask"][:, :1],
           "pooled": batch["pooled"][:, :1], "image": torch.zeros_like(batch["image"]),
           "image_flag": torch.zeros_like(batch["image_flag"])}
    if "weight" in batch:
        out["weight"] = batch["weight"][:, :, :1]
    return out


# -- checkpoints ---------------------------------------------------------------------------------------------------
def save_weights(out: Path, cfg: PipelineConfig, vae: VideoAutoencoder, dit: VideoDiT | None) -> None:
    """config.json + model.safetensors ('vae.*', 'dit.*'), written atomically."""
    from safetensors.torch import save_file

    tensors = {f"vae.{k}": v.detach().cpu().contiguous() for k, v in vae.state_dict().items()}
    if dit is not None:
        tensors.update({f"dit.{k}": v.detach().cpu().contiguous() for k, v in dit.state_dict().items()})
    tmp = out / f".{WEIGHTS_FILE}.{os.getpid()}.tmp"  # per process: a decoder-only run may write beside a DiT run
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    tmp.replace(out / WEIGHTS_FILE)
    cfg.save(out)


def write_usable_weights(out: Path) -> None:
    """Rebuild out/model.safetensors from train_state.pt (autoencoder + EMA DiT) and decoder_state.pt (sharpened
    decoder), whichever exist."""
    state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    cfg = PipelineConfig.from_dict(state["pipeline"])
    a = cfg.autoencoder
    vae = VideoAutoencoder(a)
    vae.load_state_dict(state["vae"])
    if (out / DECODER_STATE_FILE).is_file():
        vae.decoder.load_state_dict(torch.load(out / DECODER_STATE_FILE, map_location="cpu", weights_only=True)["decoder"])
    dit = None
    if state["dit_step"] > 0:
        dit = VideoDiT(cfg.dit, a.latent_channels, cfg.latent_frames, a.latent_size)
        dit.load_state_dict(state["ema"])
    save_weights(out, cfg, vae, dit)


def lr_at(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up then cosine decay to 10%."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """Holds models, optimisers and counters; `run` trains until done, out of time, or signalled."""

    def __init__(self, out: Path, tcfg: TrainConfig, device: torch.device, cfg: PipelineConfig | None = None) -> None:
        self.out, self.tcfg, self.device = out, tcfg, device
        out.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg or pipeline_config()
        torch.manual_seed(tcfg.seed)
        self.vae = VideoAutoencoder(self.cfg.autoencoder).to(device)
        a = self.cfg.autoencoder
        self.dit = VideoDiT(self.cfg.dit, a.latent_channels, self.cfg.latent_frames, a.latent_size).to(device)
        self.ema = copy.deepcopy(self.dit).requires_grad_(False)
        self.vae_opt = torch.optim.AdamW(self.vae.parameters(), lr=tcfg.vae_lr, weight_decay=0.0)
        self.dit_opt = torch.optim.AdamW(self.dit.parameters(), lr=tcfg.dit_lr, weight_decay=0.0)
        self.vae_step = 0
        self.dit_step = 0
        self.stop = False
        self.autocast = dict(device_type=device.type, dtype=torch.bfloat16)

    # state -----------------------------------------------------------------------------------------------------
    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        state = {"train_config": dataclasses.asdict(self.tcfg), "pipeline": self.cfg.to_dict(),
                 "vae": self.vae.state_dict(), "dit": self.dit.state_dict(), "ema": self.ema.state_dict(),
                 "vae_opt": self.vae_opt.state_dict(), "dit_opt": self.dit_opt.state_dict(),
                 "vae_step": self.vae_step, "dit_step": self.dit_step}
        torch.save(state, self.out / (STATE_FILE + ".tmp"))
        (self.out / (STATE_FILE + ".tmp")).replace(self.out / STATE_FILE)
        write_usable_weights(self.out)
        log.info("saved checkpoint (vae step %d, dit step %d) to %s", self.vae_step, self.dit_step, self.out)

    def load(self) -> bool:
        path = self.out / STATE_FILE
        if not path.is_file():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        # Step counts may change to continue training; DiT settings may change until the DiT stage has started.
        ignore = {"vae_steps", "dit_steps", "decoder_steps", "decoder_lr", "decoder_latent_noise"}
        if state["dit_step"] == 0 and not (self.out / DATA_FILE).is_file():
            ignore |= DIT_ONLY_SETTINGS
        # Settings added after a checkpoint was written take their defaults (which reproduce the old behaviour).
        written = {**dataclasses.asdict(TrainConfig()), **state["train_config"]}
        now = dataclasses.asdict(self.tcfg)
        changed = {k: (v, now[k]) for k, v in written.items() if k not in ignore and k in now and now[k] != v}
        if changed:
            listed = ", ".join(f"{k} {old!r} (now {new!r})" for k, (old, new) in sorted(changed.items()))
            raise ConfigError(f"{path} was written with different training settings: {listed}; resume with the "
                              "settings it was started with, or train into another --out")
        saved = PipelineConfig.from_dict(state["pipeline"])
        if saved.autoencoder != self.cfg.autoencoder:
            raise ConfigError(f"{path} holds an autoencoder of another architecture ({saved.autoencoder}); pass the "
                              "same --temporal-factor/--latent-channels as when it was started, or another --out")
        self.vae.load_state_dict(state["vae"])
        self.vae_opt.load_state_dict(state["vae_opt"])
        if state["dit_step"] > 0:
            self.cfg = saved
            self.dit.load_state_dict(state["dit"])
            self.ema.load_state_dict(state["ema"])
            self.dit_opt.load_state_dict(state["dit_opt"])
        else:  # the DiT has not started: its architecture may still change; keep the autoencoder's calibration
            self.cfg = dataclasses.replace(self.cfg, latent_shift=saved.latent_shift, latent_scale=saved.latent_scale)
        self.vae_step, self.dit_step = state["vae_step"], state["dit_step"]
        log.info("resumed from %s (vae step %d, dit step %d)", path, self.vae_step, self.dit_step)
        return True

    def log(self, record: dict[str, Any]) -> None:
        with open(self.out / LOG_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")

    # stages ----------------------------------------------------------------------------------------------------
    def train_vae(self, deadline: float, save_every: float) -> None:
        last_save = time.time()
        self.vae.train()
        while self.vae_step < self.tcfg.vae_steps and not self.stop and time.time() < deadline:
            step = self.vae_step
            rng = np.random.default_rng([self.tcfg.seed, 1, step])  # data depends only on (seed, step): resumable
            gen = torch.Generator(self.device).manual_seed(self.tcfg.seed * 1_000_003 + step)
            groups = vae_batch(self.cfg, rng, self.tcfg.vae_batch).to(self.device)
            for g in self.vae_opt.param_groups:
                g["lr"] = lr_at(step, self.tcfg.vae_lr, 50, self.tcfg.vae_steps)
            with torch.autocast(**self.autocast):
                loss, parts = autoencoder_loss(self.vae, groups, generator=gen)
            self.vae_opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.vae.parameters(), 1.0)
            self.vae_opt.step()
            self.vae_step += 1
            if self.vae_step % 25 == 0 or self.vae_step == 1:
                self.log({"stage": "vae", "step": self.vae_step, "loss": float(loss.detach()), **parts, "time": time.time()})
                log.info("vae step %d loss %.4f %s", self.vae_step, float(loss.detach()), parts)
            if time.time() - last_save > save_every:
                self.save()
                last_save = time.time()
        if self.vae_step >= self.tcfg.vae_steps:
            self.calibrate_latents()
        self.save()

    @torch.no_grad()
    def calibrate_latents(self) -> None:
        """Set latent shift/scale so the DiT sees zero-mean, unit-variance latents."""
        self.vae.eval()
        rng = np.random.default_rng([self.tcfg.seed, 3])
        videos = [to_model_video(draw(random_scene(rng, self.cfg, 2)[1])) for _ in range(128)]
        z = self.vae.encode(torch.stack(videos).to(self.device))  # (128, C, T, h, w)
        shift, std = float(z.mean()), float(z.std())
        self.cfg = dataclasses.replace(self.cfg, latent_shift=round(shift, 6), latent_scale=round(1.0 / std, 6))
        log.info("latent shift %.4f scale %.4f", shift, 1.0 / std)

    def dit_data(self) -> dict[str, torch.Tensor]:
        path = self.out / DATA_FILE
        if path.is_file():
            return torch.load(path, weights_only=True)
        t0 = time.time()
        text = TextEncoder(self.cfg.max_text_tokens, self.device)
        self.vae.eval()
        data = build_dit_data(self.cfg, self.tcfg, self.vae, text, self.device)
        torch.save(data, path)
        log.info("built %d training latents in %.0f s", len(data["latents"]), time.time() - t0)
        return data

    def train_dit(self, deadline: float, save_every: float) -> None:
        data = self.dit_data()
        last_save = time.time()
        self.vae.eval()
        self.dit.train()
        n = len(data["latents"])
        while self.dit_step < self.tcfg.dit_steps and not self.stop and time.time() < deadline:
            step = self.dit_step
            gen = torch.Generator().manual_seed(self.tcfg.seed * 1_000_003 + 7 * step + 1)
            idx = torch.randint(0, n, (self.tcfg.dit_batch,), generator=gen)
            batch = {k: v.to(self.device) for k, v in dit_batch(data, idx, self.cfg, self.tcfg, gen).items()}
            for g in self.dit_opt.param_groups:
                g["lr"] = lr_at(step, self.tcfg.dit_lr, self.tcfg.warmup_steps, self.tcfg.dit_steps)
            frames = None
            if self.tcfg.image_batch > 0:
                idx = torch.randint(0, n, (self.tcfg.image_batch,), generator=gen)
                frames = {k: v.to(self.device)
                          for k, v in first_frames(dit_batch(data, idx, self.cfg, self.tcfg, gen)).items()}
            with torch.autocast(**self.autocast):
                loss = flow_matching_loss(self.dit, batch, gen, self.tcfg.time_logit_mean, self.tcfg.time_logit_std)
                if frames is not None:
                    loss = loss + flow_matching_loss(self.dit, frames, gen, self.tcfg.time_logit_mean,
                                                     self.tcfg.time_logit_std)
            self.dit_opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.dit.parameters(), 1.0)
            self.dit_opt.step()
            decay = min(self.tcfg.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(self.ema.parameters(), self.dit.parameters()):
                    pe.lerp_(p, 1 - decay)
            self.dit_step += 1
            if self.dit_step % 25 == 0 or self.dit_step == 1:
                self.log({"stage": "dit", "step": self.dit_step, "loss": float(loss.detach()), "time": time.time()})
                log.info("dit step %d loss %.4f", self.dit_step, float(loss.detach()))
            if time.time() - last_save > save_every:
                self.save()
                last_save = time.time()
        self.save()

    def run(self, max_minutes: float, save_every: float, stage: str = "all") -> None:
        deadline = time.time() + 60 * max_minutes
        if stage == "all" and self.vae_step < self.tcfg.vae_steps:
            self.train_vae(deadline, save_every)
        if stage == "all" and self.vae_step >= self.tcfg.vae_steps and not self.stop and time.time() < deadline:
            self.train_dit(deadline, save_every)
        if self.vae_step >= self.tcfg.vae_steps and not self.stop and time.time() < deadline and (
                stage == "decoder" or self.dit_step >= self.tcfg.dit_steps):
            self.train_decoder(deadline, save_every)

    # decoder sharpening ----------------------------------------------------------------------------------------
    def load_decoder_state(self) -> tuple[int, dict[str, Any] | None]:
        path = self.out / DECODER_STATE_FILE
        if not path.is_file():
            return 0, None
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.vae.decoder.load_state_dict(state["decoder"])
        return state["step"], state["opt"]

    def save_decoder_state(self, step: int, opt: torch.optim.Optimizer) -> None:
        state = {"decoder": self.vae.decoder.state_dict(), "opt": opt.state_dict(), "step": step}
        torch.save(state, self.out / (DECODER_STATE_FILE + ".tmp"))
        (self.out / (DECODER_STATE_FILE + ".tmp")).replace(self.out / DECODER_STATE_FILE)
        write_usable_weights(self.out)
        log.info("saved decoder state (step %d)", step)

    def train_decoder(self, deadline: float, save_every: float) -> None:
        """Fine-tune the decoder alone on (noisy) latents of the frozen encoder: sharper edges, same latent space.

        Its state lives in its own file, so this stage can run beside a DiT run writing train_state.pt.
        """
        step, opt_state = self.load_decoder_state()
        opt = torch.optim.AdamW(self.vae.decoder.parameters(), lr=self.tcfg.decoder_lr, weight_decay=0.0)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        self.vae.encoder.eval().requires_grad_(False)
        self.vae.decoder.train()
        scale = self.cfg.latent_scale
        last_save = time.time()
        while step < self.tcfg.decoder_steps and not self.stop and time.time() < deadline:
            rng = np.random.default_rng([self.tcfg.seed, 4, step])
            # A CPU generator (as for the DiT): noise is drawn on the CPU and moved, so CPU and CUDA runs agree.
            gen = torch.Generator().manual_seed(self.tcfg.seed * 1_000_003 + 11 * step + 5)
            groups = vae_batch(self.cfg, rng, self.tcfg.vae_batch).to(self.device)
            with torch.no_grad():
                mean, _ = self.vae.encode_groups(groups)  # (N, C, h, w)
            noise = torch.randn(mean.shape, generator=gen).to(self.device)
            z = mean + self.tcfg.decoder_latent_noise / scale * noise  # noise of std `decoder_latent_noise` after normalising
            for g in opt.param_groups:
                g["lr"] = lr_at(step, self.tcfg.decoder_lr, 20, self.tcfg.decoder_steps)
            with torch.autocast(**self.autocast):
                recon = self.vae.decoder(z)  # (N, 3*tf, H, W)
            loss, parts = reconstruction_loss(recon.float(), groups)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.vae.decoder.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 25 == 0 or step == 1:
                self.log({"stage": "decoder", "step": step, "loss": float(loss.detach()), **parts, "time": time.time()})
                log.info("decoder step %d loss %.4f %s", step, float(loss.detach()), parts)
            if time.time() - last_save > save_every:
                self.save_decoder_state(step, opt)
                last_save = time.time()
        self.save_decoder_state(step, opt)


def export(out: Path, dest: Path) -> None:
    """Copy the usable checkpoint (config.json + model.safetensors) to `dest` (e.g. the package's weights/)."""
    write_usable_weights(out)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        shutil.copy2(out / name, dest / name)


def run_from_args(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tcfg = TrainConfig(seed=args.seed, vae_steps=args.vae_steps, dit_steps=args.dit_steps, num_videos=args.num_videos,
                       decoder_steps=args.decoder_steps, object_weight=args.object_weight,
                       image_batch=args.image_batch)
    args.out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(args.out, tcfg, device, pipeline_config(args.temporal_factor, args.latent_channels))
    trainer.load()

    def _stop(signum: int, frame: Any) -> None:
        log.warning("signal %d: saving and stopping", signum)
        trainer.stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    trainer.run(args.max_minutes, args.save_every, args.stage)
    if args.export is not None and (args.out / WEIGHTS_FILE).is_file():
        export(args.out, args.export)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vbench_suite.backends.dit.train", description=__doc__.split("\n")[0])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return run_from_args(args)
    except UserError as exc:  # one line and exit 2, as `vbench-suite train-dit` does
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
