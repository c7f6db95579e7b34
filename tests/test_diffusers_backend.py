"""The `diffusers` backend on tiny random-weight pipelines built offline and loaded from disk (Wan t2v, Wan 2.2-style
i2v and first+last frame, TI2V, Wan 2.1 FLF2V with a CLIP image encoder; LTX t2v / i2v / keyframes; CogVideoX t2v;
an unknown class): every mode's video has the fitted frame count and size, the conditioning images reach the model,
videos are deterministic and independent of their batch, the fingerprint follows weights and output-changing
options, stage latencies add up, prices are stated, and a missing model is one actionable line. Offline, CPU."""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra (pip install 'vbench-suite[diffusers]')")

import tiny_diffusers  # noqa: E402
from vbench_suite.backends import backend_class  # noqa: E402
from vbench_suite.backends.base import GenerationContext  # noqa: E402
from vbench_suite.backends.diffusers.backend import (DEFAULT_USD_PER_CPU_HOUR, DiffusersBackend,  # noqa: E402
                                                     RequestError)
from vbench_suite.backends.diffusers.families import (PIPELINE_DEFAULTS, ModelConfigs, plan_family)  # noqa: E402
from vbench_suite.backends.diffusers.fingerprint import HASH_TABLE, model_digest  # noqa: E402
from vbench_suite.backends.diffusers.loading import ModelNotFound, resolve_model  # noqa: E402
from vbench_suite.errors import ConfigError  # noqa: E402
from vbench_suite.types import GenerationRequest, make_extra  # noqa: E402

TESTS = Path(__file__).resolve().parent
MODELS = ("wan_t2v", "wan_i2v", "wan_ti2v", "wan_flf2v", "ltx", "cogvideox")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny pipeline, saved once per session with `save_pretrained`."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-diffusers")
    return {name: tiny_diffusers.save_tiny(name, root / name) for name in MODELS}


@pytest.fixture(scope="session")
def backends(tiny_models: dict[str, Path]) -> dict[str, DiffusersBackend]:
    """One backend per tiny model (2 steps, CPU, 1 thread, a stated CPU price), loaded once per session."""
    out = {name: DiffusersBackend(model=str(folder), steps=2, device="cpu", threads=1, usd_per_cpu_hour=3.6,
                                  batch_size=3) for name, folder in tiny_models.items()}
    yield out
    for b in out.values():
        b.close()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two different 32x32 RGB conditioning images (and one of another size, resized by the backend)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("cond-images")
    out = {}
    for name, seed, size in (("a", 0, 32), ("b", 1, 32), ("big", 2, 48)):
        pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
        out[name] = str(folder / f"{name}.png")
        Image.fromarray(pixels).save(out[name])
    return out


def request(mode: str = "t2v", prompt: str = "a red fox runs through snow", seed: int = 1, **fields: object
            ) -> GenerationRequest:
    base = {"duration_s": 0.5, "fps": 16, "resolution": (32, 32)}
    return GenerationRequest(prompt_id="p", prompt=prompt, mode=mode, seed=seed, **{**base, **fields})  # type: ignore


def run(backend: DiffusersBackend, req: GenerationRequest, out: Path) -> tuple[object, np.ndarray | None]:
    """Generate `req` into `out` (.npy); return (result, video or None)."""
    result = backend.generate(req, GenerationContext(out_path=out))
    return result, (np.load(result.video_path) if result.status == "ok" else None)


def fitted(backend: DiffusersBackend, req: GenerationRequest) -> GenerationRequest:
    fit, _ = backend.capabilities().fit(req)
    return fit


# -- registry, listing, family tables -------------------------------------------------------------------------------
def test_registered_and_listing_stays_light(tiny_models: dict[str, Path]) -> None:
    assert backend_class("diffusers") is DiffusersBackend
    # Capabilities and readiness of a configured model read JSON only: no torch, no diffusers.
    code = ("import sys; from vbench_suite.backends import create_backend; "
            f"b = create_backend('diffusers', model={str(tiny_models['ltx'])!r}); "
            "print(b.capabilities().modes, b.readiness()); "
            "b = create_backend('diffusers'); print(b.readiness()); "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "('t2v', 'i2v', 'hybrid', 'keyframes') None"
    assert "--option diffusers.model=PATH_OR_REPO_ID" in out[1]
    assert out[2] == "False False"


def test_family_defaults_match_installed_diffusers() -> None:
    import diffusers

    for cls_name, (steps, guidance) in PIPELINE_DEFAULTS.items():
        params = inspect.signature(getattr(diffusers, cls_name).__call__).parameters
        assert params["num_inference_steps"].default == steps, cls_name
        assert params["guidance_scale"].default == guidance, cls_name
    # native size / length / rate declared by each family = the pipeline's own defaults
    for cls_name, native, frames in (("WanPipeline", (832, 480), 81), ("LTXPipeline", (704, 512), 161),
                                     ("HunyuanVideoPipeline", (1280, 720), 129)):
        params = inspect.signature(getattr(diffusers, cls_name).__call__).parameters
        plan = plan_family(ModelConfigs({"_class_name": cls_name}, {}, {}))
        limits = plan.modes[0].limits
        assert (params["width"].default, params["height"].default) == native == limits.default_resolution
        assert params["num_frames"].default == frames == round(limits.default_duration_s * limits.default_fps)
    assert inspect.signature(diffusers.LTXPipeline.__call__).parameters["frame_rate"].default == 25


REAL_CONFIGS = {
    # (model_index, transformer config, vae config) as published for each checkpoint (the keys that matter)
    "wan21_t2v": ({"_class_name": "WanPipeline"}, {"patch_size": [1, 2, 2]},
                  {"z_dim": 16, "scale_factor_temporal": 4, "scale_factor_spatial": 8}),
    "wan21_i2v": ({"_class_name": "WanImageToVideoPipeline"}, {"patch_size": [1, 2, 2], "image_dim": 1280},
                  {"z_dim": 16}),
    "wan21_flf2v": ({"_class_name": "WanImageToVideoPipeline"},
                    {"patch_size": [1, 2, 2], "image_dim": 1280, "pos_embed_seq_len": 514}, {"z_dim": 16}),
    "wan22_i2v": ({"_class_name": "WanImageToVideoPipeline", "boundary_ratio": 0.9}, {"patch_size": [1, 2, 2]},
                  {"z_dim": 16}),
    "wan22_ti2v": ({"_class_name": "WanPipeline", "expand_timesteps": True}, {"patch_size": [1, 2, 2]},
                   {"z_dim": 48, "scale_factor_temporal": 4, "scale_factor_spatial": 16}),
    "ltx": ({"_class_name": "LTXPipeline"}, {"patch_size": 1, "patch_size_t": 1},
            {"patch_size": 4, "patch_size_t": 1, "spatio_temporal_scaling": [True, True, True, False]}),
    "cogvideox_2b": ({"_class_name": "CogVideoXPipeline"},
                     {"sample_width": 90, "sample_height": 60, "sample_frames": 49, "patch_size": 2},
                     {"block_out_channels": [128, 256, 256, 512], "temporal_compression_ratio": 4}),
    "cogvideox_5b_i2v": ({"_class_name": "CogVideoXImageToVideoPipeline"},
                         {"sample_width": 90, "sample_height": 60, "sample_frames": 49, "patch_size": 2,
                          "use_learned_positional_embeddings": True},
                         {"block_out_channels": [128, 256, 256, 512], "temporal_compression_ratio": 4}),
    "cogvideox15": ({"_class_name": "CogVideoXPipeline"},
                    {"sample_width": 170, "sample_height": 96, "sample_frames": 81, "patch_size": 2,
                     "patch_size_t": 2}, {"block_out_channels": [128, 256, 256, 512]}),
    "hunyuan_i2v": ({"_class_name": "HunyuanVideoImageToVideoPipeline"}, {"patch_size": 2},
                    {"spatial_compression_ratio": 8, "temporal_compression_ratio": 4}),
    "mochi": ({"_class_name": "MochiPipeline"}, {}, {}),
}


@pytest.mark.parametrize("name,modes,size_multiple,frame_rule,native,fps", [
    ("wan21_t2v", ("t2v",), 16, (4, 1), (832, 480), 16),
    ("wan21_i2v", ("i2v", "hybrid"), 16, (4, 1), (832, 480), 16),
    ("wan21_flf2v", ("keyframes",), 16, (4, 1), (832, 480), 16),
    ("wan22_i2v", ("i2v", "hybrid", "keyframes"), 16, (4, 1), (832, 480), 16),
    ("wan22_ti2v", ("t2v", "i2v", "hybrid"), 32, (4, 1), (1280, 704), 24),
    ("ltx", ("t2v", "i2v", "hybrid", "keyframes"), 32, (8, 1), (704, 512), 25),
    ("cogvideox_2b", ("t2v",), 16, (4, 1), (720, 480), 8),
    ("cogvideox_5b_i2v", ("i2v", "hybrid"), 16, (4, 1), (720, 480), 8),
    ("cogvideox15", ("t2v",), 16, (4, 1), (1360, 768), 16),
    ("hunyuan_i2v", ("i2v", "hybrid"), 16, (4, 1), (1280, 720), 24),
])
def test_family_rules_from_real_configs(name: str, modes: tuple[str, ...], size_multiple: int,
                                        frame_rule: tuple[int, int], native: tuple[int, int], fps: int) -> None:
    plan = plan_family(ModelConfigs(*REAL_CONFIGS[name]))
    caps = plan.capabilities()
    assert caps.modes == modes
    for mode in modes:
        limits = caps.for_mode(mode)
        assert limits is not None
        assert (limits.size_multiple, (limits.frame_multiple, limits.frame_remainder)) == (size_multiple, frame_rule)
        assert (limits.default_resolution, limits.fps) == (native, (fps,))
    # a 64x64, 2 s, 8 fps suite request is fitted to the model's rate, frame rule and sizes, each change noted
    fit, notes = caps.fit(request(modes[0], duration_s=2.0, fps=8, resolution=(64, 64),
                                  images=("x.png",) if modes[0] == "i2v" else (),
                                  first_frame="x.png" if modes[0] == "keyframes" else None))
    assert fit.fps == fps and (fit.num_frames - 1) % frame_rule[0] == 0 and notes
    if name == "cogvideox_5b_i2v":  # learned positions: only the trained size
        assert fit.resolution == (720, 480)
    else:
        assert fit.resolution[0] % size_multiple == 0 and fit.resolution[1] % size_multiple == 0


def test_wan_first_and_last_frame_needs_the_first() -> None:
    caps = plan_family(ModelConfigs(*REAL_CONFIGS["wan22_i2v"])).capabilities()
    only_last = request("keyframes", last_frame="b.png")
    assert "needs a first_frame" in (caps.check(fitted_to(caps, only_last)) or "")
    ltx = plan_family(ModelConfigs(*REAL_CONFIGS["ltx"])).capabilities()
    assert ltx.check(fitted_to(ltx, only_last)) is None  # LTX pins a keyframe anywhere, the last alone too
    flf2v = plan_family(ModelConfigs(*REAL_CONFIGS["wan21_flf2v"])).capabilities()
    only_first = request("keyframes", first_frame="a.png")
    assert "needs both a first_frame and a last_frame" in (flf2v.check(fitted_to(flf2v, only_first)) or "")


def fitted_to(caps: object, req: GenerationRequest) -> GenerationRequest:
    return caps.fit(req)[0]  # type: ignore[attr-defined]


def test_unknown_pipeline_is_text_to_video_with_a_note() -> None:
    plan = plan_family(ModelConfigs(*REAL_CONFIGS["mochi"]))
    assert plan.family == "generic" and plan.capabilities().modes == ("t2v",)
    assert "MochiPipeline is not a pipeline family the diffusers backend knows" in plan.note
    assert plan.modes[0].steps is None and plan.modes[0].guidance is None  # the pipeline's own defaults


def test_an_unknown_pipeline_class_runs_as_text_to_video(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    # SkyReelsV2Pipeline is a diffusers text-to-video pipeline the family table does not list; it takes Wan's parts.
    folder = tmp_path / "skyreels"
    shutil.copytree(tiny_models["wan_t2v"], folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "SkyReelsV2Pipeline"}))
    backend = DiffusersBackend(model=str(folder), device="cpu", threads=1)
    assert backend.capabilities().modes == ("t2v",) and backend.not_configured_reason() is None
    req = dataclasses.replace(fitted(backend, request(fps=8, duration_s=1.0)), extra=make_extra({"steps": 2}))
    assert req.num_frames == 9  # 4k+1 from the VAE's temporal compression
    result, video = run(backend, req, tmp_path / "v.npy")
    assert result.status == "ok", result.error
    assert video.shape == (9, 32, 32, 3)
    info = dict(result.info)
    assert info["pipeline_class"] == "SkyReelsV2Pipeline" and "not a pipeline family" in info["note"]
    assert info["steps"] == 2 and info["guidance"] is None  # the pipeline's own guidance
    backend.close()


# -- each mode produces the fitted video -----------------------------------------------------------------------------
CASES = [("wan_t2v", "t2v", {}), ("wan_i2v", "i2v", {"images": ("a",)}), ("wan_i2v", "hybrid", {"images": ("a",)}),
         ("wan_i2v", "keyframes", {"first_frame": "a", "last_frame": "b"}), ("wan_ti2v", "i2v", {"images": ("a",)}),
         ("wan_flf2v", "keyframes", {"first_frame": "a", "last_frame": "b"}),
         ("ltx", "t2v", {}), ("ltx", "i2v", {"images": ("a",)}),
         ("ltx", "keyframes", {"first_frame": "a", "last_frame": "b"}), ("cogvideox", "t2v", {})]


def _with_images(req_fields: dict[str, object], images: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in req_fields.items():
        out[key] = tuple(images[v] for v in value) if isinstance(value, tuple) else images[str(value)]
    return out


def _spy_vae_encode(backend: DiffusersBackend, monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Record every video the pipeline's VAE encodes (B, C, F, H, W), as float arrays."""
    vae = backend._load().vae  # shared by every pipeline derived for a mode
    seen: list[np.ndarray] = []
    encode = vae.encode

    def spy(x, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(x.detach().float().cpu().numpy())
        return encode(x, *args, **kwargs)

    monkeypatch.setattr(vae, "encode", spy)
    return seen


def _as_model_input(path: str) -> np.ndarray:
    """An image as diffusers' video processor hands it to the VAE: (3, H, W) in [-1, 1]."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0


@pytest.mark.parametrize("model,mode,inputs", CASES, ids=[f"{m}-{k}" for m, k, _ in CASES])
def test_each_mode_makes_the_fitted_video(backends: dict[str, DiffusersBackend], images: dict[str, str],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, mode: str,
                                          inputs: dict[str, object]) -> None:
    backend = backends[model]
    asked = request(mode, fps=8, **_with_images(inputs, images))
    req, notes = backend.capabilities().fit(asked)
    assert notes and req.fps == (25 if model == "ltx" else 8 if model == "cogvideox" else 16)
    assert backend.unsupported_reason(req) is None
    encoded = _spy_vae_encode(backend, monkeypatch)
    result, video = run(backend, req, tmp_path / "v.npy")
    assert result.status == "ok", result.error
    assert video.shape == (req.num_frames, 32, 32, 3) and video.dtype == np.uint8
    assert result.video_seconds == pytest.approx(req.num_frames / req.fps)
    info = dict(result.info)
    assert info["pipeline_class"] == backend.fingerprint().to_dict()["settings"]["mode_pipelines"][mode]
    if mode == "t2v":
        assert not encoded
        return
    # The conditioning images reach the model where they belong: the first as frame 0 of a video the VAE encodes,
    # the last (keyframes) as the final frame of one.
    first = _as_model_input(images["a"])
    assert any(np.allclose(x[0, :, 0], first, atol=1e-5) for x in encoded)
    if mode == "keyframes":
        assert any(np.allclose(x[0, :, -1], _as_model_input(images["b"]), atol=1e-5) for x in encoded)
    else:
        # and they change the video: another image gives another one
        other, other_video = run(backend, dataclasses.replace(req, images=(images["b"],)), tmp_path / "w.npy")
        assert other.status == "ok", other.error
        assert not np.array_equal(video, other_video)


def test_ltx_keyframe_at_any_frame(backends: dict[str, DiffusersBackend], images: dict[str, str],
                                   tmp_path: Path) -> None:
    backend = backends["ltx"]
    base = fitted(backend, request("keyframes", first_frame=images["a"], last_frame=images["b"]))
    at_end, end_video = run(backend, base, tmp_path / "end.npy")
    middle = dataclasses.replace(base, extra=make_extra({"last_frame_index": 4}))
    assert backend.unsupported_reason(middle) is None
    at_4, mid_video = run(backend, middle, tmp_path / "mid.npy")
    assert at_end.status == at_4.status == "ok"
    assert mid_video.shape == end_video.shape and not np.array_equal(mid_video, end_video)
    bad = dataclasses.replace(base, extra=make_extra({"last_frame_index": base.num_frames}))
    assert run(backend, bad, tmp_path / "bad.npy")[0].status == "failed"
    wan = backends["wan_i2v"]
    wan_req = dataclasses.replace(fitted(wan, request("keyframes", first_frame=images["a"], last_frame=images["b"])),
                                  extra=make_extra({"last_frame_index": 4}))
    assert "LTX family only" in (wan.unsupported_reason(wan_req) or "")


def test_requests_outside_the_model_are_unsupported(backends: dict[str, DiffusersBackend],
                                                    images: dict[str, str]) -> None:
    wan = backends["wan_t2v"]
    assert "mode 'i2v' not supported (supports t2v)" in (wan.unsupported_reason(request("i2v", images=(images["a"],)))
                                                         or "")
    assert "uses at most 0 conditioning images" in (wan.unsupported_reason(request(images=(images["a"],))) or "")
    talking = dataclasses.replace(fitted(wan, request()), extra=make_extra({"presenter": "anna"}))
    assert "presenter not taken by the diffusers backend" in (wan.unsupported_reason(talking) or "")
    assert "not a multiple of 16" in (wan.unsupported_reason(request(resolution=(40, 32))) or "")


def test_a_bad_request_value_is_a_failed_result(backends: dict[str, DiffusersBackend], tmp_path: Path) -> None:
    backend = backends["cogvideox"]
    req = dataclasses.replace(fitted(backend, request(fps=8)), extra=make_extra({"steps": 0}))
    result = backend.generate(req, GenerationContext(out_path=tmp_path / "x.npy"))
    assert result.status == "failed" and "steps must be a positive integer" in (result.error or "")
    with pytest.raises(RequestError):
        backend._translate(0, req, GenerationContext(out_path=tmp_path / "x.npy"))


# -- determinism and batches -----------------------------------------------------------------------------------------
def test_same_request_same_video_and_seed_matters(backends: dict[str, DiffusersBackend], tmp_path: Path) -> None:
    backend = backends["wan_t2v"]
    req = fitted(backend, request())
    first = run(backend, req, tmp_path / "1.npy")[0]
    again = run(backend, req, tmp_path / "2.npy")[0]
    other = run(backend, dataclasses.replace(req, seed=2), tmp_path / "3.npy")[0]
    assert first.video_sha256 == again.video_sha256
    assert other.video_sha256 != first.video_sha256


@pytest.mark.parametrize("model", ["cogvideox", "wan_t2v"])
def test_a_video_does_not_depend_on_its_batch(backends: dict[str, DiffusersBackend], tmp_path: Path,
                                              model: str) -> None:
    backend = backends[model]  # batch_size=3
    base = fitted(backend, request(fps=8))
    reqs = [dataclasses.replace(base, prompt=p, seed=s) for p, s in
            (("a red circle moves left", 5), ("a blue square", 6), ("a cat runs", 7), ("a dog", 8))]
    results = backend.generate_batch(reqs, [GenerationContext(out_path=tmp_path / f"b{i}.npy") for i in range(4)])
    assert [r.status for r in results] == ["ok"] * 4
    assert [dict(r.info)["batch_size"] for r in results] == [3, 3, 3, 1]
    for i in (1, 3):
        alone, video = run(backend, reqs[i], tmp_path / f"alone{i}.npy")
        batched = np.load(results[i].video_path)
        # batched kernels may round differently in the last bits; a level of 1 out of 255 at most
        assert np.abs(video.astype(int) - batched.astype(int)).max() <= 1
    assert not np.array_equal(np.load(results[0].video_path), np.load(results[1].video_path))


# -- fingerprint -----------------------------------------------------------------------------------------------------
def test_fingerprint_records_what_changes_the_output(backends: dict[str, DiffusersBackend]) -> None:
    fp = backends["wan_t2v"].fingerprint()
    s = fp.to_dict()["settings"]
    assert fp.backend == "diffusers" and fp.model == "wan_t2v" and fp.version == s["model_digest"][:16]
    assert s["pipeline_class"] == "WanPipeline" and s["family"] == "wan" and s["model_source"] == "folder"
    assert s["dtype"] == "fp32" and s["device"] == "cpu" and s["diffusers"] and s["torch"]
    assert s["scheduler"]["_class_name"] == "FlowMatchEulerDiscreteScheduler"
    assert s["default_steps"] == {"t2v": 2} and s["default_guidance"] == {"t2v": 5.0}


def test_fingerprint_follows_options(tiny_models: dict[str, Path]) -> None:
    folder = str(tiny_models["cogvideox"])
    base = DiffusersBackend(model=folder, device="cpu").fingerprint()
    for changed in ({"steps": 3}, {"guidance": 2.5}, {"dtype": "bf16"}, {"negative_prompt": "blurry"},
                    {"vae_tiling": True}):
        assert DiffusersBackend(model=folder, device="cpu", **changed).fingerprint() != base, changed
    for same in ({"batch_size": 4}, {"threads": 1}, {"usd_per_cpu_hour": 9.0}, {"usd_per_gpu_hour": 3.0},
                 {"max_frames": 9}):
        assert DiffusersBackend(model=folder, device="cpu", **same).fingerprint() == base, same


def test_fingerprint_follows_a_weight_file(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "cogvideox"
    shutil.copytree(tiny_models["cogvideox"], copy)
    before = DiffusersBackend(model=str(copy), device="cpu").fingerprint()
    assert dict(before.settings)["model_digest"] == model_digest(tiny_models["cogvideox"])  # content, not place
    weights = next((copy / "transformer").glob("*.safetensors"))
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, weights, metadata={"format": "pt"})
    after = DiffusersBackend(model=str(copy), device="cpu").fingerprint()
    assert dict(after.settings)["model_digest"] != dict(before.settings)["model_digest"]
    assert after.version != before.version


def test_large_files_are_hashed_once_and_rehashed_when_changed(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    (folder / "README.md").write_text("docs do not count")
    weights = folder / "big.safetensors"
    weights.write_bytes(np.random.default_rng(0).bytes(3 << 20))
    first = model_digest(folder)
    table = Path(os.environ["VBENCH_CACHE_DIR"]) / HASH_TABLE
    assert str(weights.resolve()) in table.read_text()
    (folder / "README.md").write_text("changed docs")
    assert model_digest(folder) == first
    data = bytearray(weights.read_bytes())
    data[1 << 20] ^= 1  # one bit, same size
    time.sleep(0.01)
    weights.write_bytes(bytes(data))
    assert model_digest(folder) != first


def test_a_model_in_the_hugging_face_cache(tiny_models: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = tiny_diffusers.to_hub_cache(tiny_models["ltx"], cache, "tiny-org/tiny-ltx")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    source = resolve_model("tiny-org/tiny-ltx")
    assert source.folder == snapshot and source.commit == snapshot.name and source.repo_id == "tiny-org/tiny-ltx"
    backend = DiffusersBackend(model="tiny-org/tiny-ltx", steps=2, device="cpu", threads=1)
    fp = backend.fingerprint()
    assert (fp.model, fp.version) == ("tiny-org/tiny-ltx", snapshot.name)
    assert dict(fp.settings)["model_source"] == "hf-cache" and dict(fp.settings)["revision"] == snapshot.name
    result = backend.generate(fitted(backend, request()), GenerationContext(out_path=tmp_path / "v.npy"))
    assert result.status == "ok", result.error
    backend.close()
    with pytest.raises(ModelNotFound, match="at revision v2"):
        resolve_model("tiny-org/tiny-ltx", revision="v2")


# -- accounting ------------------------------------------------------------------------------------------------------
def test_stage_latencies_add_up_and_compute_is_priced(backends: dict[str, DiffusersBackend], images: dict[str, str],
                                                      tmp_path: Path) -> None:
    backend = backends["wan_i2v"]
    req = fitted(backend, request("i2v", images=(images["big"],)))
    start = time.perf_counter()
    result = backend.generate(req, GenerationContext(out_path=tmp_path / "v.npy"))
    wall = time.perf_counter() - start
    assert result.status == "ok", result.error
    stages = dict(result.latency.stages)
    assert list(stages) == ["text_encoding", "conditioning", "denoising", "decoding", "writing"]
    assert all(v > 0 for v in stages.values())
    assert sum(stages.values()) == pytest.approx(result.latency.total_s)
    # the stages tile the pipeline call: together they are most of the wall time around generate() and never more
    assert 0.5 * wall < result.latency.total_s <= wall
    info = dict(result.info)
    assert len(info["step_s"]) == 2 and sum(info["step_s"]) == pytest.approx(stages["denoising"], rel=1e-3)
    assert info["device"] == "cpu" and info["device_count"] == 1 and info["hardware_measure"]
    assert result.hardware_s > 0 and result.peak_memory_mb > 0
    assert result.cost_usd == pytest.approx(result.hardware_s / 3600 * 3.6)
    assert (info["usd_per_cpu_hour"], info["hardware_usd_per_hour"], info["price_assumed"]) == (3.6, 3.6, False)
    assert "usd_per_gpu_hour" not in info


def test_an_unpriced_run_says_its_price_is_assumed(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    backend = DiffusersBackend(model=str(tiny_models["cogvideox"]), steps=2, device="cpu", threads=1)
    result = backend.generate(fitted(backend, request(fps=8)), GenerationContext(out_path=tmp_path / "v.npy"))
    info = dict(result.info)
    assert info["price_assumed"] is True and info["usd_per_cpu_hour"] == DEFAULT_USD_PER_CPU_HOUR
    assert "assumed" in info["price_source"] and "--option diffusers.usd_per_cpu_hour=USD" in info["price_source"]
    assert result.cost_usd == pytest.approx(result.hardware_s / 3600 * DEFAULT_USD_PER_CPU_HOUR)
    backend.close()


def test_model_is_loaded_once(backends: dict[str, DiffusersBackend], images: dict[str, str], tmp_path: Path) -> None:
    backend = backends["ltx"]
    pipe = backend._load()
    run(backend, fitted(backend, request()), tmp_path / "a.npy")
    run(backend, fitted(backend, request("i2v", images=(images["a"],))), tmp_path / "b.npy")
    assert backend._load() is pipe
    derived = backend._mode_pipes["LTXImageToVideoPipeline"]
    assert derived.transformer is pipe.transformer  # the i2v pipeline shares the loaded weights


# -- errors ----------------------------------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "vbench_suite", *args], capture_output=True, text=True, timeout=300,
                          env=full, cwd=cwd)


def test_missing_model_is_one_line_naming_repo_command_and_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from huggingface_hub import constants

    from vbench_suite.cli import main

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    repo = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
    for args in (["generate", "diffusers", "a fox", "--option", f"model={repo}", "--out", str(tmp_path / "x.mp4")],
                 ["run", "--suite", "smoke", "--backend", "diffusers", "--option", f"diffusers.model={repo}",
                  "--out", str(tmp_path / "r"), "--no-progress"]):
        assert main(args) == 2
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr
        # `run` also logs the backend it skipped before the error line
        err = [line for line in stderr.splitlines() if line.startswith("vbench-suite: error:")]
        assert len(err) == 1 and len(stderr.strip().splitlines()) <= 2, stderr
        assert f"'{repo}'" in err[0] and f"`hf download {repo}` (`huggingface-cli download` before" in err[0]
        assert "--option diffusers.model=DIR (or HF_HUB_CACHE) at a local copy" in err[0] and "HF_HUB_OFFLINE" in err[0]
        assert " … " not in err[0]  # short enough never to lose its middle to the CLI's one-line limit
    assert not (tmp_path / "empty-hub").exists()  # nothing was fetched or written to the cache


def test_bad_paths_and_options_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "no-index").mkdir()
    for spec, text in ((str(tmp_path / "nowhere"), "does not exist"), (str(tmp_path / "no-index"), "no model_index")):
        with pytest.raises(ModelNotFound, match=text):
            resolve_model(spec)
    for bad, text in (({"dtype": "fp8"}, "dtype must be one of"), ({"cpu_offload": "maybe"}, "true or false"),
                      ({"steps": 0}, "steps must be >= 1"), ({"usd_per_gpu_hour": "x"}, "must be a number")):
        with pytest.raises(ConfigError, match=text):
            DiffusersBackend(model="x/y", **bad)
    from vbench_suite.runner import check_backend_options

    with pytest.raises(ConfigError, match="has no option 'stepz'. Did you mean 'steps'"):
        check_backend_options("diffusers", {"stepz": 2})
    check_backend_options("diffusers", {"model": "x", "usd_per_gpu_hour": 2.5, "cpu_offload": True})


def test_a_damaged_weight_file_is_one_reason_not_a_crash(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "damaged"
    shutil.copytree(tiny_models["cogvideox"], copy)
    weights = next((copy / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    reason = DiffusersBackend(model=str(copy), device="cpu").not_configured_reason() or ""
    assert reason.startswith(f"cannot load diffusers model {copy} from {copy}: ") and "\n" not in reason


def test_cpu_offload_without_a_gpu_is_reported(tiny_models: dict[str, Path]) -> None:
    backend = DiffusersBackend(model=str(tiny_models["cogvideox"]), device="cpu", cpu_offload=True)
    assert "cpu_offload streams the model onto a GPU" in (backend.not_configured_reason() or "")


# -- end to end ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_end_to_end_writes_records_and_a_report(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    res = _cli("run", "--suite", "smoke", "--limit", "2", "--backend", "diffusers", "--option",
               f"diffusers.model={tiny_models['cogvideox']}", "--option", "diffusers.steps=2", "--option",
               "diffusers.usd_per_cpu_hour=0.5", "--metrics", "shapes_adherence", "--out", str(tmp_path / "r"),
               "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in (tmp_path / "r" / "generations.jsonl").read_text().splitlines()]
    ours = [r for r in records if r["backend"] == "diffusers"]
    assert len(ours) == 2 and all(r["result"]["status"] == "ok" for r in ours)
    for r in ours:
        assert r["adjustments"] and r["result"]["fingerprint"]["settings"]["family"] == "cogvideox"
        assert r["result"]["info"]["usd_per_cpu_hour"] == 0.5 and r["result"]["hardware_s"] > 0
        assert (tmp_path / "r" / r["result"]["video_path"]).stat().st_size > 0
    report = (tmp_path / "reports" / "r" / "report.md").read_text()
    assert "| diffusers | cogvideox@" in report
