"""Stand-in for Open-Sora 2.0's scripts/diffusion/inference.py, for the `opensora` backend's tests (no model, no GPU).

Mimics what the harness depends on: the command line (a config file, then `--key value` pairs whose dotted keys
reach into the config's dicts and whose dashes read as underscores; the aliases `--resolution`, `--num_frames` and
`--aspect_ratio` for `sampling_option.*`; `--prompt` [+ `--ref`] or `--dataset.data-path FILE.csv` with columns
`text` [+ `ref`]; `--cond_type i2v_head`), a sampling seed of 0 or none meaning "random", only rank 0 saving, and
the output layout `<save_dir>/video_<resolution>/<csv stem>_<index:04d>.mp4` (H.264, CRF 23, at `fps_save`) with a
`.txt` of the prompt beside it. The video is drawn from (seed, prompt) and, for i2v_head, starts on the reference
image.

Test knobs (environment): FAKE_OPENSORA_BEHAVIOUR = ok | fail | nothing | hang | garbage; FAKE_OPENSORA_RECORD = a
file to write {argv, env} to; FAKE_OPENSORA_PIDFILE = where `hang` writes the pid of the child it starts.
"""
from __future__ import annotations

import csv
import json
import os
import runpy
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

# Frame sizes (width, height) Open-Sora 2.0 makes per resolution class and aspect ratio (from its
# opensora/datasets/aspect.py with training=False), written out here as a table on purpose: the backend computes them.
SIZES = {
    "256px": {"16:9": (336, 192), "9:16": (192, 336), "1:1": (256, 256), "2.39:1": (384, 160)},
    "768px": {"16:9": (1024, 576), "9:16": (576, 1024), "1:1": (768, 768), "2.39:1": (1184, 496)},
}
ALIASES = {"resolution": "sampling_option.resolution", "num_frames": "sampling_option.num_frames",
           "aspect_ratio": "sampling_option.aspect_ratio"}


def load_config(path: Path) -> dict:
    """The config's variables, its `_base_` files' first (mmengine style: the derived file wins, dicts merge)."""
    values = {k: v for k, v in runpy.run_path(str(path)).items() if not k.startswith("__")}
    merged: dict = {}
    for base in values.pop("_base_", []):
        merged = merge(merged, load_config(path.parent / base))
    return merge(merged, values)


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def convert(text: str):
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse(argv: list[str]) -> dict:
    cfg = load_config(Path(argv[0]))
    pairs = argv[1:]
    if len(pairs) % 2:
        sys.exit(f"odd number of arguments after the config: {pairs}")
    for key, value in zip(pairs[::2], pairs[1::2]):
        assert key.startswith("--"), f"Invalid argument: {key}"
        key = key[2:].replace("-", "_")
        key = ALIASES.get(key, key)
        *path, last = key.split(".")
        target = cfg
        for part in path:
            assert part in target, f"Key {part} not found in config"
            target = target[part]
        target[last] = convert(value)
    return cfg


def rows(cfg: dict) -> tuple[str, list[dict]]:
    """(csv stem, rows): from --prompt (written to save_dir/prompt.csv, as Open-Sora does) or the dataset CSV."""
    if cfg.get("prompt"):
        path = Path(cfg["save_dir"]) / "prompt.csv"
        ref = cfg.get("ref")
        path.write_text(f'text,ref\n"{cfg["prompt"]}","{ref}"' if ref else f'text\n"{cfg["prompt"]}"',
                        encoding="utf-8")
    else:
        path = Path(cfg["dataset"]["data_path"])
    with open(path, encoding="utf-8", newline="") as f:
        return path.stem, list(csv.DictReader(f))


def draw(prompt: str, seed: int, size: tuple[int, int], frames: int, ref: str | None) -> Any:
    """uint8 (T, H, W, 3): a square moving over a background, both chosen by (seed, prompt)."""
    import numpy as np  # imported here, so that `hang` starts hanging at once, well inside a short timeout
    from PIL import Image

    width, height = size
    rng = np.random.default_rng([seed, zlib.crc32(prompt.encode("utf-8"))])
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    video[:] = rng.integers(0, 256, size=3, dtype=np.uint8)
    colour = rng.integers(0, 256, size=3, dtype=np.uint8)
    side = max(8, min(width, height) // 4)
    for t in range(frames):
        x = int((width - side) * t / max(1, frames - 1))
        video[t, height // 2 - side // 2:height // 2 + side // 2, x:x + side] = colour
    if ref:
        with Image.open(ref) as img:
            video[0] = np.asarray(img.convert("RGB").resize((width, height)), dtype=np.uint8)
    return video


def save(video: Any, path: Path, fps: int) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast", "threads": "1"}
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> int:
    behaviour = os.environ.get("FAKE_OPENSORA_BEHAVIOUR", "ok")
    record = os.environ.get("FAKE_OPENSORA_RECORD")
    rank = int(os.environ.get("RANK", "0"))
    if record and rank == 0:
        Path(record).write_text(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}))
    if behaviour == "hang":
        child = subprocess.Popen(["sleep", "300"])
        pidfile = os.environ.get("FAKE_OPENSORA_PIDFILE")
        if pidfile and rank == 0:
            Path(pidfile).write_text(str(child.pid))
        time.sleep(300)
    if behaviour == "fail":
        print("Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory (stand-in)",
              file=sys.stderr)
        return 3
    cfg = parse(sys.argv[1:])
    opt = cfg["sampling_option"]
    save_dir = Path(cfg["save_dir"])
    save_dir.mkdir(parents=True, exist_ok=True)
    stem, items = rows(cfg)
    sub_dir = save_dir / f"video_{opt['resolution']}"
    sub_dir.mkdir(parents=True, exist_ok=True)
    if rank != 0 or behaviour == "nothing":
        return 0
    size = SIZES[opt["resolution"]][opt["aspect_ratio"]]
    frames = int(opt["num_frames"])
    assert (frames - 1) % 4 == 0 and frames <= 129, f"num_frames must be 4k+1 <= 129, got {frames}"
    cond = cfg.get("cond_type", "t2v")
    for index, row in enumerate(items):
        seed = opt.get("seed") or int.from_bytes(os.urandom(4), "little")  # Open-Sora: 0 / None -> random
        ref = row.get("ref") if cond == "i2v_head" else None
        path = sub_dir / f"{stem}_{index:04d}"
        path.with_suffix(".txt").write_text(row["text"], encoding="utf-8")
        if behaviour == "garbage":
            path.with_suffix(".mp4").write_bytes(b"not a video at all")
            continue
        save(draw(row["text"], int(seed), size, frames, ref), path.with_suffix(".mp4"), int(cfg["fps_save"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
