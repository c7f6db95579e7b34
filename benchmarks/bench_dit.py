"""Speed of the dit-local pipeline on this machine: seconds per video and per denoising step, and the achieved
fp32 matmul throughput of the denoiser against the peak fp32 matmul throughput measured in the same run; seconds
per DiT training step (the recipe's batch, bf16 autocast), which sets how many steps fit the 3 h training budget;
and both again with PyTorch's fused attention kernel instead of the model's default written-out attention.

    python benchmarks/bench_dit.py [--weights DIR] [--steps 20] [--videos 3] [--threads N] [--train-steps 8]

Target (issue 4): a 16-frame 64x64 video at default settings in under 10 s on the 2-core CPU. Printed, never asserted.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from vbench_suite.backends.dit import model as dit_model
from vbench_suite.backends.dit.config import TrainConfig
from vbench_suite.backends.dit.model import VideoDiT
from vbench_suite.backends.dit.pipeline import DiTPipeline, single_prompt
from vbench_suite.backends.dit.sampler import flow_matching_loss
from vbench_suite.backends.dit.text_encoder import TEXT_DIM


def peak_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best of `repeats` fp32 (n x n) @ (n x n) products, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def dit_forward_flops(model: VideoDiT, batch: int, frames: int, tokens_per_frame: int, text_tokens: int) -> float:
    """Multiply-add FLOPs (x2) of one denoiser call: every Linear/Conv on its rows, plus attention score/value products."""
    d = model.cfg.hidden_size
    n = batch * frames * tokens_per_frame
    per_block = 0
    per_block += 2 * n * (d * d * 3 + d * d)  # spatial attn qkv + proj
    per_block += 2 * n * (d * d * 3 + d * d)  # temporal attn qkv + proj
    per_block += 2 * n * (d * d * 2) + 2 * batch * text_tokens * d * 2 * d  # cross q + proj, kv over text
    per_block += 2 * n * 2 * d * int(d * model.cfg.mlp_ratio)  # MLP
    per_block += 2 * 2 * n * tokens_per_frame * d  # spatial scores + values
    per_block += 2 * 2 * n * frames * d  # temporal scores + values
    per_block += 2 * 2 * n * text_tokens * d  # cross scores + values
    per_block += 2 * batch * frames * d * 9 * d  # adaLN
    patch_in = model.x_embedder.weight[0].numel()
    patch_out = model.final_layer.linear.out_features
    return model.cfg.depth * per_block + 2 * n * d * (patch_in + patch_out)


def training_step_seconds(pipe: DiTPipeline, steps: int, batch: int = TrainConfig.dit_batch) -> float:
    """Median seconds of one DiT optimiser step (forward, backward, AdamW) on random latents of the model's shape,
    bf16 autocast and training-time sampling as in the recipe, on a copy of the model so the loaded weights stay
    untouched."""
    model = copy.deepcopy(pipe.dit).train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    c, frames, h, w = pipe.cfg.latent_shape
    length = 2 * pipe.cfg.max_text_tokens
    gen = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, frames, length, dtype=torch.bool)
    mask[:, :, :12] = True  # a typical prompt's tokens in the first slot
    data = {"x0": torch.randn(batch, c, frames, h, w, generator=gen), "text": torch.randn(batch, length, TEXT_DIM, generator=gen),
            "text_mask": mask, "pooled": torch.randn(batch, frames, TEXT_DIM, generator=gen),
            "image": torch.zeros(batch, c, h, w), "image_flag": torch.zeros(batch),
            "weight": torch.ones(batch, 1, frames, h, w)}
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = flow_matching_loss(model, data, gen, TrainConfig.time_logit_mean, TrainConfig.time_logit_std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:  # the first two warm up allocators and kernels
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--train-steps", type=int, default=8, help="timed training steps per attention kernel (0: skip)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = peak_matmul_gflops()
    pipe = DiTPipeline.load(args.weights, device="cpu")
    steps = args.steps or pipe.cfg.default_steps
    prompts = ["a red circle moves left on a black background", "two blue squares move up on a white background",
               "a yellow triangle grows on a gray background"]
    pipe.generate([single_prompt(prompts[0], pipe.cfg.num_frames, seed=0, steps=2)])  # warm-up, loads the text encoder

    def time_videos() -> tuple[list[float], list[float]]:
        per_video, per_step = [], []
        for i in range(args.videos):
            spec = single_prompt(prompts[i % len(prompts)], pipe.cfg.num_frames, seed=i, steps=steps,
                                 guidance=pipe.cfg.default_guidance)
            t0 = time.perf_counter()
            pipe.encode_text([spec.segments[0].prompt, ""])
            t1 = time.perf_counter()
            latents = pipe.sample_latents([spec])
            t2 = time.perf_counter()
            pipe.decode(latents)
            t3 = time.perf_counter()
            per_video.append(t3 - t0)
            per_step.append((t2 - t1) / steps)
        return per_video, per_step

    per_video, per_step = time_videos()
    train_s = training_step_seconds(pipe, args.train_steps) if args.train_steps else None
    dit_model.FUSED_ATTENTION = True  # the baseline: PyTorch's fused kernel, same weights, same inputs
    try:
        _, fused_step = time_videos()
        fused_train_s = training_step_seconds(pipe, args.train_steps) if args.train_steps else None
    finally:
        dit_model.FUSED_ATTENTION = False
    c, frames, h, _ = pipe.cfg.latent_shape
    tokens = (h // pipe.cfg.dit.patch_size) ** 2
    flops = dit_forward_flops(pipe.dit, 2, frames, tokens, 2 * pipe.cfg.max_text_tokens)  # guided pair
    step_s = min(per_step)
    achieved = flops / step_s / 1e9
    result = {
        "device": "cpu", "threads": torch.get_num_threads(), "steps": steps, "frames": pipe.cfg.num_frames,
        "seconds_per_video": round(min(per_video), 3), "seconds_per_video_all": [round(x, 3) for x in per_video],
        "seconds_per_step": round(step_s, 4), "denoiser_gflop_per_step": round(flops / 1e9, 3),
        "achieved_gflops": round(achieved, 2), "peak_fp32_matmul_gflops": round(peak, 1),
        "fraction_of_peak": round(achieved / peak, 4), "target_met_under_10s": min(per_video) < 10.0,
        "fused_attention_seconds_per_step": round(min(fused_step), 4),
        "sampling_speedup_vs_fused_attention": round(min(fused_step) / step_s, 3),
    }
    if train_s is not None and fused_train_s is not None:
        result.update({"train_batch": TrainConfig.dit_batch, "train_seconds_per_step": round(train_s, 3),
                       "fused_attention_train_seconds_per_step": round(fused_train_s, 3),
                       "training_speedup_vs_fused_attention": round(fused_train_s / train_s, 3)})
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
