"""`opensora`: Open-Sora 2.0 (github.com/hpcaitech/Open-Sora) through its own inference script, per request:

    <torchrun> --nproc_per_node <gpus> --standalone scripts/diffusion/inference.py <config>
        --save-dir <tmp>/samples --dataset.data-path <tmp>/prompts.csv --resolution 256px --aspect_ratio 16:9
        --num_frames 49 --seed S --sampling_option.seed S [--cond_type i2v_head] [<args>]

run in the checkout (`repo`), through the machinery of `command.script.ScriptBackend` (temporary folder inside the
run folder, no shell, own process group, timeout, no credentials, the video checked and renamed into place).

- Prompts travel in a CSV the harness writes (column `text`, and `ref` for image-to-video), not in `--prompt`:
  Open-Sora writes a `--prompt` into its own CSV between quotes without escaping (a prompt holding `"` breaks it) and
  its option parser converts values ('none' becomes None, '42' a number); a properly quoted CSV carries any text.
  The reference image is copied to a plain name first (Open-Sora splits `ref` at ';').
- Seeds: Open-Sora samples from a random seed when `sampling_option.seed` is 0 or unset, so the harness passes
  seed + 1 (recorded as `opensora_seed`): the same request gives the same video.
- Output: `<save-dir>/video_<resolution>/prompts_0000.mp4` (`save_sample` names it after the CSV's stem and row),
  at the config's `fps_save` (24 in the shipped configs).
- What it accepts: frame counts 4k+1 up to 129, at the config's `fps_save`; sizes of the config's resolution class
  (`256px` or `768px`, read from the config and its `_base_` files, or the `resolution` option) in the aspect ratios
  `aspect_ratios` names (default the four Open-Sora documents), computed the way Open-Sora computes them
  (`opensora_size`).
- Cost: GPU-seconds = wall time x `gpus` (the model loads on every call: the script is started per video), at
  `usd_per_gpu_hour` (an assumption when unset; the records and the break-even say which).

Options (`--option opensora.KEY=VALUE`): `repo` (the checkout), `config` (default `configs/diffusion/inference/
256px.py`), `torchrun` (the launcher of the environment Open-Sora is installed in, as a command line, e.g.
`/opt/os/bin/torchrun` or `/opt/os/bin/python -m torch.distributed.run`; default `torchrun` on PATH), `gpus`
(`--nproc_per_node`, default 1), `resolution`, `aspect_ratios`, `args` (more flags, e.g. `--num_steps 30 --offload
True`; in the fingerprint), `timeout_s`, `device`, `usd_per_gpu_hour`, `usd_per_cpu_hour`, `pass_env`.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vbench_suite.backends.command.script import (DEFAULT_TIMEOUT_S, Invocation, RequestError, ScriptBackend,
                                                  combined_identity, file_identity, names_option, refuse_secrets)
from vbench_suite.errors import ConfigError, shown
from vbench_suite.types import Capabilities, GenerationRequest, ModeCapabilities

SCRIPT = "scripts/diffusion/inference.py"
"""Open-Sora 2.0's inference script, relative to the checkout."""
DEFAULT_CONFIG = "configs/diffusion/inference/256px.py"
CHECKPOINTS = "ckpts"
"""Where Open-Sora's configs read the weights from (relative to the checkout)."""
WEIGHTS_REPO = "hpcai-tech/Open-Sora-v2"
"""Hugging Face repository of the weights."""
RESOLUTIONS = ("256px", "768px")
"""Resolution classes of Open-Sora 2.0's video configs."""
DOCUMENTED_RATIOS = ("16:9", "9:16", "1:1", "2.39:1")
"""Aspect ratios Open-Sora 2.0's README names for `--aspect_ratio`."""
KNOWN_RATIOS = ("2.39:1", "2:1", "16:9", "1.85:1", "9:16", "5:8", "3:2", "4:3", "1:1")
"""Ratios Open-Sora 2.0 defines (width:height; each also turned upright, e.g. 1:2.39)."""
MAX_FRAMES = 129
"""Longest clip (frames) Open-Sora 2.0 makes; counts are 4k+1."""
DEFAULT_FPS = 24
"""`fps_save` of the shipped configs, used when the config does not say."""
LATENT_DOWNSAMPLE = 16
"""Open-Sora's sizes are multiples of the autoencoder's spatial compression (16)."""
RESERVED_FLAGS = frozenset({"save_dir", "dataset.data_path", "prompt", "ref", "num_frames", "resolution",
                            "aspect_ratio", "seed", "sampling_option.seed", "cond_type", "fps_save", "num_sample",
                            "sampling_option.num_frames", "sampling_option.resolution",
                            "sampling_option.aspect_ratio", "start_index", "end_index", "batch_size"})
"""Flags the harness sets per request (or whose change would break finding the video); `args` may not set them."""


def opensora_size(resolution: str, ratio: str) -> tuple[int, int]:
    """(width, height) Open-Sora 2.0 makes at `resolution` ('256px') and aspect ratio `ratio` ('16:9').

    Its arithmetic: the pixel budget is side x side; width = floor(sqrt(budget x w/h) / 16) x 16, height =
    floor(budget / width / 16) x 16; an upright ratio whose landscape twin is listed takes the twin's size turned
    round."""
    side = int(resolution.removesuffix("px"))
    w_ratio, h_ratio = (float(v) for v in ratio.split(":"))
    twin = ":".join(ratio.split(":")[::-1])
    if w_ratio < h_ratio and twin in KNOWN_RATIOS:
        width, height = opensora_size(resolution, twin)
        return height, width
    budget = side * side
    d = LATENT_DOWNSAMPLE
    width = int(math.sqrt(budget * w_ratio / h_ratio) // d) * d
    return width, int((budget / width) // d) * d


def _config_chain(path: Path, depth: int = 0) -> list[Path]:
    """The config file and the `_base_` files it inherits (mmengine style), derived first; missing ones skipped."""
    if depth > 8 or not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    chain = [path]
    base = re.search(r"_base_\s*=\s*\[(.*?)\]", text, re.S)
    for name in re.findall(r"[\"']([^\"']+\.py)[\"']", base.group(1) if base else ""):
        chain += _config_chain(path.parent / name, depth + 1)
    return chain


def config_value(path: Path, pattern: str) -> str | None:
    """First match of `pattern` (one group) in the config or, failing that, in the files it inherits from."""
    for file in _config_chain(path):
        found = re.search(pattern, file.read_text(encoding="utf-8", errors="replace"), re.M)
        if found:
            return found.group(1)
    return None


def _git_commit(repo: Path) -> str:
    """The checkout's commit, read from .git without running git ('' when unknown)."""
    head = repo / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (repo / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return ""


class OpenSoraBackend(ScriptBackend):
    """Open-Sora 2.0 via its inference script (see the module docstring)."""

    name = "opensora"

    def __init__(self, repo: str | None = None, config: str = DEFAULT_CONFIG, torchrun: str = "torchrun",
                 gpus: int = 1, resolution: str | None = None, aspect_ratios: str | Sequence[str] = DOCUMENTED_RATIOS,
                 args: str = "", timeout_s: float = DEFAULT_TIMEOUT_S, device: str = "auto",
                 usd_per_gpu_hour: float | None = None, usd_per_cpu_hour: float | None = None,
                 pass_env: str | Sequence[str] = "") -> None:
        super().__init__(timeout_s=timeout_s, device=device, gpus=gpus, usd_per_gpu_hour=usd_per_gpu_hour,
                         usd_per_cpu_hour=usd_per_cpu_hour, pass_env=pass_env)
        self.repo = Path(repo).expanduser().resolve() if repo else None
        self.config = str(config)
        for option, text in (("torchrun", torchrun), ("args", args), ("config", config)):
            refuse_secrets(option, str(text or ""), self.name)
        try:
            self.launcher = shlex.split(str(torchrun))
            self.extra_args = shlex.split(str(args or ""))
        except ValueError as exc:
            raise ConfigError(f"backend 'opensora': torchrun / args cannot be split into words ({exc})") from None
        if not self.launcher:
            raise ConfigError("backend 'opensora': torchrun must name the launcher, e.g. torchrun")
        self._check_extra_args()
        if resolution is not None and resolution not in RESOLUTIONS:
            raise ConfigError(f"backend 'opensora': resolution must be one of {', '.join(RESOLUTIONS)}, "
                              f"got {shown(resolution)}")
        self.resolution_option = resolution
        self.aspect_ratios = names_option(aspect_ratios)
        unknown = [r for r in self.aspect_ratios if r not in KNOWN_RATIOS
                   and ":".join(r.split(":")[::-1]) not in KNOWN_RATIOS]
        if unknown or not self.aspect_ratios:
            raise ConfigError(f"backend 'opensora': aspect_ratios must name some of {', '.join(KNOWN_RATIOS)} (or "
                              f"their upright forms), got {shown(aspect_ratios)}")

    def _check_extra_args(self) -> None:
        for word in self.extra_args:
            if word.startswith("--") and word[2:].split("=")[0].replace("-", "_") in RESERVED_FLAGS:
                raise ConfigError(f"backend 'opensora': args may not set {word.split('=')[0]}: the harness sets it "
                                  "per request (use the request's settings, or the resolution / aspect_ratios "
                                  "options)")

    # -- the checkout ---------------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path | None:
        if self.repo is None:
            return None
        path = Path(self.config).expanduser()
        return path if path.is_absolute() else self.repo / path

    @property
    def resolution(self) -> str:
        """The resolution class: the option, else the config's `resolution="..."`, else its file name, else 256px."""
        if self.resolution_option:
            return self.resolution_option
        path = self.config_path
        found = config_value(path, r"(?<![\w.])resolution\s*=\s*[\"'](\d+px)[\"']") if path else None
        if found in RESOLUTIONS:
            return found
        return "768px" if "768px" in Path(self.config).name else "256px"

    @property
    def fps(self) -> int:
        path = self.config_path
        found = config_value(path, r"^fps_save\s*=\s*(\d+)") if path else None
        return int(found) if found else DEFAULT_FPS

    def _launcher_path(self) -> Path | None:
        program = self.launcher[0]
        if "/" in program:
            path = Path(program).expanduser()
            path = path if path.is_absolute() or self.repo is None else self.repo / path
            return path if path.is_file() else None
        found = shutil.which(program)
        return Path(found) if found else None

    def not_configured_reason(self) -> str | None:
        if self.repo is None:
            return ("no Open-Sora checkout: set --option opensora.repo=PATH (git clone "
                    "https://github.com/hpcaitech/Open-Sora, install it, and put the weights in its ckpts/ with "
                    f"`huggingface-cli download {WEIGHTS_REPO} --local-dir PATH/{CHECKPOINTS}`)")
        if not (self.repo / SCRIPT).is_file():
            return (f"{self.repo} is not an Open-Sora 2.0 checkout (no {SCRIPT}); set --option opensora.repo to the "
                    "folder of `git clone https://github.com/hpcaitech/Open-Sora`")
        if self.config_path is None or not self.config_path.is_file():
            return f"config {self.config} not found in {self.repo}; set --option opensora.config=PATH"
        if not (self.repo / CHECKPOINTS).is_dir():
            return (f"no weights: {self.repo / CHECKPOINTS} does not exist; download them with `huggingface-cli "
                    f"download {WEIGHTS_REPO} --local-dir {self.repo / CHECKPOINTS}` (nothing is downloaded "
                    "during a run)")
        if self._launcher_path() is None:
            return (f"launcher {shown(self.launcher[0])} not found; set --option opensora.torchrun=PATH to the "
                    "torchrun of the environment Open-Sora is installed in")
        return None

    # -- declared -------------------------------------------------------------------------------------------------
    def sizes(self) -> dict[tuple[int, int], str]:
        """{(width, height): aspect ratio} this backend makes."""
        return {opensora_size(self.resolution, r): r for r in self.aspect_ratios}

    def capabilities(self) -> Capabilities:
        """Reads at most the config files (cheap): sizes of the resolution class, 4k+1 frames, the saving fps."""
        fps = self.fps
        sizes = tuple(self.sizes())
        limits = ModeCapabilities(max_duration_s=MAX_FRAMES / fps, resolutions=sizes, fps=(fps,), frame_multiple=4,
                                  frame_remainder=1, default_duration_s=MAX_FRAMES / fps, default_resolution=sizes[0],
                                  default_fps=fps)
        with_image = dataclasses.replace(limits, min_images=1, max_images=1)
        return Capabilities.of({"t2v": limits, "i2v": with_image})

    # -- identity -------------------------------------------------------------------------------------------------
    def identity(self) -> tuple[str, str, dict[str, Any]]:
        """Version from the script, the config chain, the checkout's commit and the weights' names and sizes."""
        parts: dict[str, str] = {}
        if self.repo is not None:
            script = self.repo / SCRIPT
            if script.is_file():
                parts[SCRIPT] = file_identity(script)
            for file in _config_chain(self.config_path) if self.config_path else []:
                parts[str(file.relative_to(self.repo)) if file.is_relative_to(self.repo) else str(file)] = \
                    file_identity(file)
            parts["commit"] = _git_commit(self.repo)
            ckpts = self.repo / CHECKPOINTS
            if ckpts.is_dir():
                # Names and sizes only: hashing tens of gigabytes of weights per run would take minutes.
                for file in sorted(p for p in ckpts.rglob("*") if p.is_file())[:10000]:
                    parts[f"ckpts/{file.relative_to(ckpts)}"] = f"size:{file.stat().st_size}"
        settings = {"config": self.config, "resolution": self.resolution, "fps": self.fps, "gpus": self.gpus,
                    "args": self.extra_args}
        return f"open-sora-2.0:{Path(self.config).stem}", combined_identity(parts), settings

    # -- request -> command ---------------------------------------------------------------------------------------
    def invocation(self, request: GenerationRequest, tmpdir: Path) -> Invocation:
        assert self.repo is not None and self.config_path is not None  # generate() checked readiness
        ratio = self.sizes().get(tuple(request.resolution))  # type: ignore[arg-type]
        if ratio is None:
            raise RequestError(f"resolution {request.resolution[0]}x{request.resolution[1]} is not one Open-Sora "
                               f"makes at {self.resolution} (makes {', '.join(f'{w}x{h}' for w, h in self.sizes())})")
        if request.mode not in ("t2v", "i2v"):
            raise RequestError(f"mode '{request.mode}' not supported (supports t2v, i2v)")
        row = {"text": request.prompt}
        if request.mode == "i2v":
            source = Path(request.images[0])
            ref = tmpdir / f"ref{source.suffix.lower() or '.png'}"
            shutil.copyfile(source, ref)
            row["ref"] = str(ref)
        prompts = tmpdir / "prompts.csv"
        with open(prompts, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row), quoting=csv.QUOTE_ALL)
            writer.writeheader()
            writer.writerow(row)
        seed = int(request.seed) + 1  # 0 would mean "random" to Open-Sora
        save_dir = tmpdir / "samples"
        argv = [*self.launcher, "--nproc_per_node", str(self.gpus), "--standalone", SCRIPT, str(self.config_path),
                "--save-dir", str(save_dir), "--dataset.data-path", str(prompts), "--resolution", self.resolution,
                "--aspect_ratio", ratio, "--num_frames", str(request.num_frames), "--seed", str(seed),
                "--sampling_option.seed", str(seed)]
        if request.mode == "i2v":
            argv += ["--cond_type", "i2v_head"]
        launcher = self._launcher_path()
        if launcher is not None and "/" in argv[0]:
            argv[0] = str(launcher)
        argv += self.extra_args
        return Invocation(argv=argv, cwd=self.repo,
                          output=save_dir / f"video_{self.resolution}" / f"{prompts.stem}_0000.mp4",
                          glob=f"samples/video_{self.resolution}/*.mp4",
                          info={"opensora_seed": seed, "aspect_ratio": ratio, "resolution_class": self.resolution,
                                "gpus": self.gpus})
