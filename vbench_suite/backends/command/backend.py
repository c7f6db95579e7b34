"""`command`: any script that turns (prompt, seed, image, frames, size, fps) into a video file, benchmarked through
a command template, e.g. Wan's or HunyuanVideo's own `generate.py`.

    --option command.template='python generate.py --task t2v-14B --prompt={prompt} --base_seed {seed}
                               --frame_num {frames} --size {width}*{height} --save_file {output}'
    --option command.workdir=/opt/Wan2.2

Placeholders: `template.PLACEHOLDERS`. The template is split once and filled in per argument, then run as an argv
list without a shell (`process.run_process`), so no prompt can inject anything. i2v / hybrid requests use
`i2v_template` when given (it must use `{image}`); keyframes requests `keyframes_template` (`{first_frame}` and
`{last_frame}`). The command writes `{output}`, or any file under `{tmpdir}` that `output_glob` matches.

What the script accepts is declared by options (the harness fits each request to it, recording every change):
`modes` (default t2v), `resolutions` ('1280x720,720x1280'; default any size that is a multiple of `size_multiple`,
16 by default), `frame_rule` ('4k+1'; default any count), `fps` (allowed rates; default any), `max_duration_s`
(default 60) and `default_resolution` / `default_fps` / `default_duration_s` (what `generate` uses when the user
gives none). Other options: `workdir` (where the command runs; default the folder the harness was started in),
`timeout_s`, `model` (a label for reports; default the script's file name), `pass_env` (credential-like
environment variables the script may see; none by default), and the accounting options of `script.ScriptBackend`
(`device`, `gpus`, `usd_per_gpu_hour`, `usd_per_cpu_hour`).

Fingerprint: the templates, the content hash of every file the templates name literally (the script,
a config; the program too when it is a file), and the output glob.
"""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vbench_suite.backends.command.script import (DEFAULT_TIMEOUT_S, Invocation, RequestError, ScriptBackend,
                                                  check_positive, combined_identity, file_identity, names_option,
                                                  refuse_secrets)
from vbench_suite.backends.command.template import CommandTemplate
from vbench_suite.errors import ConfigError, shown
from vbench_suite.types import MODES, Capabilities, GenerationRequest, ModeCapabilities

NEEDS: dict[str, frozenset[str]] = {"t2v": frozenset(), "i2v": frozenset({"image"}), "hybrid": frozenset({"image"}),
                                    "keyframes": frozenset({"first_frame", "last_frame"})}
"""Placeholders the template of each mode must use, so no conditioning input is silently dropped."""
CONDITIONING = frozenset({"image", "first_frame", "last_frame"})
DEFAULT_SIZE_MULTIPLE = 16
"""Most video models need sizes in multiples of 16 (an 8x autoencoder and 2x2 patches)."""


def parse_sizes(value: Any, option: str) -> tuple[tuple[int, int], ...]:
    """'1280x720,720x1280', ['1280x720'] or [[1280, 720]] -> ((1280, 720), (720, 1280))."""
    items: Sequence[Any] = value if isinstance(value, (list, tuple)) else names_option(value)
    sizes = []
    for item in items:
        try:
            w, h = (int(v) for v in (item if isinstance(item, (list, tuple)) else str(item).lower().split("x")))
        except (TypeError, ValueError):
            raise ConfigError(f"backend 'command': {option} takes WIDTHxHEIGHT sizes such as 1280x720, "
                              f"got {shown(item)}") from None
        if w < 1 or h < 1:
            raise ConfigError(f"backend 'command': {option} size {shown(item)} must be positive")
        sizes.append((w, h))
    return tuple(sizes)


def parse_frame_rule(text: str) -> tuple[int, int]:
    """'4k+1' -> (4, 1); '' -> (1, 0) (any count)."""
    text = str(text or "").replace(" ", "").lower()
    if not text:
        return 1, 0
    head, plus, rest = text.partition("k")
    try:
        multiple = int(head or "1")
        remainder = int(rest[1:]) if rest.startswith("+") else 0 if not rest else None
    except ValueError:
        remainder = None
    if not plus or remainder is None or multiple < 1 or not 0 <= remainder < max(multiple, 1):
        raise ConfigError(f"backend 'command': frame_rule takes the form Ak+B, e.g. 4k+1 or 8k, got {shown(text)}")
    return multiple, remainder


class CommandBackend(ScriptBackend):
    """Runs a user's command template per request (see the module docstring)."""

    name = "command"

    def __init__(self, template: str | None = None, i2v_template: str | None = None,
                 keyframes_template: str | None = None, workdir: str | None = None,
                 output_glob: str | None = None, model: str | None = None, modes: str | Sequence[str] = "t2v",
                 resolutions: Any = "", size_multiple: int = DEFAULT_SIZE_MULTIPLE, frame_rule: str = "",
                 fps: Any = "", max_duration_s: float = 60.0, default_resolution: Any = "",
                 default_fps: int | None = None, default_duration_s: float | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, device: str = "auto", gpus: int = 1,
                 usd_per_gpu_hour: float | None = None, usd_per_cpu_hour: float | None = None,
                 pass_env: str | Sequence[str] = "") -> None:
        super().__init__(timeout_s=timeout_s, device=device, gpus=gpus, usd_per_gpu_hour=usd_per_gpu_hour,
                         usd_per_cpu_hour=usd_per_cpu_hour, pass_env=pass_env)
        self.modes = names_option(modes)
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"backend 'command': modes must name some of {', '.join(MODES)}, got {shown(modes)}")
        self.templates: dict[str, CommandTemplate] = {}
        if template is not None:
            self._set_templates(template, i2v_template, keyframes_template, output_glob)
        # Default: where the harness was started, so a template runs as it would in the user's shell.
        self.workdir = Path(workdir).expanduser().resolve() if workdir else Path.cwd()
        self.output_glob = output_glob
        self.model = model
        self.limits = self._limits(resolutions, size_multiple, frame_rule, fps, max_duration_s, default_resolution,
                                   default_fps, default_duration_s)

    def _set_templates(self, template: str, i2v_template: str | None, keyframes_template: str | None,
                       output_glob: str | None) -> None:
        for option, text in (("template", template), ("i2v_template", i2v_template),
                             ("keyframes_template", keyframes_template)):
            refuse_secrets(option, str(text or ""), self.name)
        base = CommandTemplate.parse(template, "template")
        special = {"i2v": i2v_template, "hybrid": i2v_template, "keyframes": keyframes_template}
        names = {"i2v": "i2v_template", "hybrid": "i2v_template", "keyframes": "keyframes_template"}
        for mode in self.modes:
            text = special.get(mode)
            chosen = CommandTemplate.parse(text, names[mode]) if text else base
            option = names[mode] if text else "template"
            missing = sorted(NEEDS[mode] - chosen.fields)
            if missing:
                raise ConfigError(f"backend 'command': mode {mode} needs {' and '.join('{' + m + '}' for m in missing)}"
                                  f" in its template, or the request's conditioning would be dropped; set "
                                  f"{names.get(mode, 'template')} (modes are {', '.join(self.modes)})")
            extra = sorted((chosen.fields & CONDITIONING) - NEEDS[mode])
            if extra:
                raise ConfigError(f"backend 'command': {option} uses {', '.join('{' + e + '}' for e in extra)}, which "
                                  f"a {mode} request has no value for; give mode {mode} its own template")
            if "output" not in chosen.fields and not output_glob:
                raise ConfigError(f"backend 'command': {option} has no {{output}} placeholder; add one, or set "
                                  "output_glob to a pattern (relative to {tmpdir}) matching the video it writes")
            self.templates[mode] = chosen

    def _limits(self, resolutions: Any, size_multiple: Any, frame_rule: str, fps: Any, max_duration_s: Any,
                default_resolution: Any, default_fps: Any, default_duration_s: Any) -> ModeCapabilities:
        sizes = parse_sizes(resolutions, "resolutions")
        multiple, remainder = parse_frame_rule(frame_rule)
        rates = tuple(check_positive("fps", f, self.name, int) for f in (
            fps if isinstance(fps, (list, tuple)) else names_option(fps)))
        default_size = parse_sizes(default_resolution, "default_resolution")
        return ModeCapabilities(
            resolutions=sizes, size_multiple=check_positive("size_multiple", size_multiple, self.name, int),
            frame_multiple=multiple, frame_remainder=remainder, fps=rates,
            max_duration_s=check_positive("max_duration_s", max_duration_s, self.name),
            default_resolution=default_size[0] if default_size else None,
            default_fps=None if default_fps is None else check_positive("default_fps", default_fps, self.name, int),
            default_duration_s=None if default_duration_s is None else check_positive(
                "default_duration_s", default_duration_s, self.name))

    # -- declared -------------------------------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        with_image = dataclasses.replace(self.limits, min_images=1, max_images=1)
        keyframes = dataclasses.replace(self.limits, keyframes="first_and_last")
        per_mode = {"t2v": self.limits, "i2v": with_image, "hybrid": with_image, "keyframes": keyframes}
        return Capabilities.of({m: per_mode[m] for m in self.modes})

    def not_configured_reason(self) -> str | None:
        if not self.templates:
            return ("no command template: set --option command.template='python gen.py --prompt={prompt} --seed "
                    "{seed} --frames {frames} --width {width} --height {height} --out {output}'")
        if not self.workdir.is_dir():
            return f"workdir {self.workdir} is not a folder; set --option command.workdir=PATH to an existing one"
        program = next(iter(self.templates.values())).parts[0]
        if self._program_path(program) is None:
            return (f"program {shown(program)} not found (neither on PATH nor a file in {self.workdir}); fix the "
                    "template's first word")
        return None

    def _program_path(self, program: str) -> Path | None:
        """The program's file: a path (relative to workdir) or a name on PATH; None when there is none."""
        if "/" in program:
            path = Path(program).expanduser()
            path = path if path.is_absolute() else self.workdir / path
            return path if path.is_file() else None
        found = shutil.which(program)
        return Path(found) if found else None

    # -- identity -------------------------------------------------------------------------------------------------
    def identity(self) -> tuple[str, str, dict[str, Any]]:
        """Model label, a version from the content of every file the templates name, and the templates."""
        files: dict[str, str] = {}
        for tpl in self.templates.values():
            program = self._program_path(tpl.parts[0])
            if program is not None:
                files[tpl.parts[0]] = file_identity(program)
            for part in tpl.parts[1:]:
                if "{" in part or part.startswith("-"):
                    continue
                path = Path(part).expanduser()
                path = path if path.is_absolute() else self.workdir / path
                if path.is_file():
                    files[part] = file_identity(path)
        script = next((p for tpl in self.templates.values() for p in tpl.parts[1:] if p in files), None)
        first = next(iter(self.templates.values()), None)
        model = self.model or Path(script or (first.parts[0] if first else "command")).name
        # The folder itself is left out (it differs between machines); the files the templates name identify it.
        settings: dict[str, Any] = {"templates": {m: t.text for m, t in self.templates.items()}, "files": files,
                                    "output_glob": self.output_glob or ""}
        return model, combined_identity({**files, **{f"template:{m}": t.text for m, t in self.templates.items()}}), \
            settings

    # -- request -> command ---------------------------------------------------------------------------------------
    def invocation(self, request: GenerationRequest, tmpdir: Path) -> Invocation:
        template = self.templates.get(request.mode)
        if template is None:
            raise RequestError(f"mode '{request.mode}' not supported (supports {', '.join(self.modes)})")
        output = tmpdir / "output.mp4"
        width, height = request.resolution
        values = {"prompt": request.prompt, "prompt_id": request.prompt_id, "seed": int(request.seed),
                  "mode": request.mode, "frames": request.num_frames, "fps": int(request.fps),
                  "duration": float(request.duration_s), "width": int(width), "height": int(height),
                  "image": _absolute(request.images[0]) if request.images else None,
                  "first_frame": _absolute(request.first_frame), "last_frame": _absolute(request.last_frame),
                  "output": str(output), "tmpdir": str(tmpdir)}
        argv = template.argv(values)
        program = self._program_path(argv[0])
        if program is not None and "/" in argv[0]:
            argv[0] = str(program)  # relative to workdir; absolute, as Popen resolves relative ones per platform
        return Invocation(argv=argv, cwd=self.workdir,
                          output=output if "output" in template.fields else None, glob=self.output_glob)


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())
