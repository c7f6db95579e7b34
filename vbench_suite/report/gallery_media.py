"""The media behind one gallery cell: a browser-playable video (embedded or linked), a poster and a contact sheet.

The embedding rule (stated in the report):
- the playable file is the recorded video when browsers play it as it is (`video.web.is_web_playable`), else a
  re-encoded copy (H.264 4:2:0, `video.web.WEB_CRF`) made in one decoding pass with the poster and contact sheet;
- it is embedded in report.html as a data: URI when it is at most `GalleryOptions.embed_max_bytes` and the videos
  embedded before it (in gallery order) leave room under `EMBED_TOTAL_MAX_BYTES`;
- otherwise it lies under `<report>/gallery/videos/` (re-encoded copies always; recorded files are copied there with
  `large_videos='copy'`, the default) and is linked by a relative path, so zipping the report folder keeps every
  link working. With `large_videos='link'` recorded files are linked where they are, relative to the report, and
  the report must travel together with the run folder, in the same relative place;
- posters (the middle frame) and contact sheets are always embedded; contact sheets are also written to
  `<report>/gallery/sheets/` for report.md.
File names under gallery/ derive from the source's sha256 and the recipe (`keys.gallery_filename`), so rebuilding a
report reuses re-encoded files and never a stale one.
"""
from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from vbench_suite.keys import file_sha256, gallery_filename
from vbench_suite.report import contact_sheet as cs
from vbench_suite.video.read import VIDEO_SUFFIXES, open_video
from vbench_suite.video.web import FALLBACK_FPS, WEB_PROFILE, WebVideoWriter, is_web_playable, mime_type, probe

EMBED_MAX_BYTES = 512 * 1024
"""Default per-video embedding threshold: 512 KiB (the smoke run's re-encoded videos are a few KiB each)."""
EMBED_TOTAL_MAX_BYTES = 32 * 1024 * 1024
"""At most this many bytes of video are embedded in one report (before base64's 4/3); later videos are linked."""
LARGE_VIDEO_MODES = ("copy", "link")
GALLERY_DIR = "gallery"
VIDEOS_DIR = f"{GALLERY_DIR}/videos"
SHEETS_DIR = f"{GALLERY_DIR}/sheets"
SHEET_RECIPE = f"sheet-{cs.SHEET_FRAMES}x{cs.SHEET_TILE_HEIGHT}-1"


@dataclass(frozen=True)
class GalleryOptions:
    """How the report's gallery treats videos."""

    enabled: bool = True
    embed_max_bytes: int = EMBED_MAX_BYTES
    """Videos whose playable file is at most this many bytes are embedded (0: link every video)."""
    large_videos: str = "copy"
    """'copy': videos that are not embedded are copied under gallery/videos/; 'link': recorded files that browsers
    play are linked where they are, relative to the report (re-encoded ones are always under gallery/videos/)."""

    def __post_init__(self) -> None:
        if self.large_videos not in LARGE_VIDEO_MODES:
            raise ValueError(f"large_videos must be one of {LARGE_VIDEO_MODES}, got {self.large_videos!r}")
        if self.embed_max_bytes < 0:
            raise ValueError(f"embed_max_bytes must be >= 0, got {self.embed_max_bytes}")


@dataclass
class EmbedBudget:
    """Bytes of video embedded so far in one report."""

    used: int = 0
    limit: int = EMBED_TOTAL_MAX_BYTES

    def take(self, size: int, per_video_max: int) -> bool:
        """Whether a playable file of `size` bytes is embedded (and count it if so)."""
        if size > per_video_max or self.used + size > self.limit:
            return False
        self.used += size
        return True


@dataclass(frozen=True)
class CellMedia:
    """What the gallery shows for one video."""

    src: str
    """data: URI (embedded) or a path relative to the report folder (linked), POSIX separators."""
    embedded: bool
    mime: str
    poster_uri: str
    """data: URI of the poster image (the middle frame)."""
    sheet_png: bytes
    """Contact sheet (PNG)."""
    sheet_file: str
    """The contact sheet's path relative to the report folder."""
    sheet_frames: tuple[int, ...]
    """0-based indices of the frames the contact sheet shows."""
    num_frames: int
    fps: float
    width: int
    height: int
    reencoded: str
    """'' when the recorded file plays as it is, else why it was re-encoded."""
    playable_bytes: int
    """Size of the file the browser plays."""
    written: tuple[Path, ...] = ()
    """Files under the report's gallery/ folder this cell uses (the rest are removed as stale)."""

    @property
    def duration_s(self) -> float:
        """num_frames / fps (0.0 when the source declares no frame rate)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _relative(path: Path, out_dir: Path) -> str:
    """`path` relative to the report folder, as a URL path (POSIX separators, '%', '#', '?' and spaces escaped)."""
    return quote(Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix(), safe="/")


def prepare_media(video: Path, out_dir: Path, options: GalleryOptions, budget: EmbedBudget) -> CellMedia:
    """Decode `video` once (streamed) into a poster, a contact sheet and, when browsers cannot play the file as it
    is, a re-encoded copy; decide embed vs link (module docstring). Raises `VideoError` when the file cannot be read.
    """
    info = probe(video) if video.suffix.lower() in VIDEO_SUFFIXES else None
    playable, why = is_web_playable(video, info)
    sha = file_sha256(video)
    videos_dir, sheets_dir = out_dir / VIDEOS_DIR, out_dir / SHEETS_DIR
    target = videos_dir / gallery_filename(sha, WEB_PROFILE, ".mp4")
    sampler = cs.FrameSampler()
    encode = not playable and not target.is_file()
    with open_video(video) as stream:
        fps = stream.fps
        writer = WebVideoWriter(target, fps) if encode else None
        try:
            for frame in stream.frames():
                sampler.add(frame)
                if writer is not None:
                    writer.add(frame)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
        width, height, num_frames = stream.width, stream.height, stream.num_frames
    written: list[Path] = []
    if not playable and fps <= 0:
        fps = FALLBACK_FPS  # the re-encoded copy plays at this rate
    if playable:
        source, mime = video, mime_type(video)
    else:
        source, mime = target, "video/mp4"
        written.append(target)
    size = source.stat().st_size
    if budget.take(size, options.embed_max_bytes):
        src, embedded = data_uri(source.read_bytes(), mime), True
        written = []  # an embedded re-encoded copy need not stay on disk
    elif playable and options.large_videos == "link":
        src, embedded = _relative(video, out_dir), False
    else:
        if playable:
            copy = videos_dir / gallery_filename(sha, "copy", video.suffix.lower())
            if not copy.is_file():
                videos_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(video, copy)
            source = copy
            written.append(copy)
        src, embedded = _relative(source, out_dir), False
    poster_bytes, poster_mime = cs.poster(sampler)
    sheet_png, shown = cs.contact_sheet(sampler)
    sheet = sheets_dir / gallery_filename(sha, SHEET_RECIPE, ".png")
    sheets_dir.mkdir(parents=True, exist_ok=True)
    if not sheet.is_file() or sheet.read_bytes() != sheet_png:
        sheet.write_bytes(sheet_png)
    written.append(sheet)
    return CellMedia(src=src, embedded=embedded, mime=mime, poster_uri=data_uri(poster_bytes, poster_mime),
                     sheet_png=sheet_png, sheet_file=_relative(sheet, out_dir), sheet_frames=tuple(shown),
                     num_frames=num_frames, fps=fps, width=width, height=height, reencoded=why,
                     playable_bytes=size, written=tuple(written))


def remove_stale(out_dir: Path, keep: set[Path]) -> list[Path]:
    """Delete files under the report's gallery/videos/ and gallery/sheets/ that this build did not use (earlier
    builds' copies), and those folders when left empty; returns the files. Those folders belong to the gallery
    alone."""
    removed = []
    keep_resolved = {p.resolve() for p in keep}
    for sub in (VIDEOS_DIR, SHEETS_DIR):
        folder = out_dir / sub
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and p.resolve() not in keep_resolved:
                p.unlink()
                removed.append(p)
        if not any(folder.iterdir()):
            folder.rmdir()  # e.g. every video embedded: no empty folder left behind
    return removed
