"""Report plots, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch).

Every function returns PNG bytes, or None when there is nothing to draw. Backend labels come from the tables, so
simulated backends carry ' (simulated)' in every plot; simulated points are drawn hollow as well.
"""
from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vbench_suite.report.economics import BreakEven

DPI = 96
MAX_PANELS = 6
"""At most this many metric panels per figure (the tables hold everything)."""


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _arrow(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


TITLE_WIDTH = 42
"""Characters per line of a panel title: long metric/profile names wrap instead of running into the next panel."""


def _metric_title(row: pd.Series) -> str:
    unit = f" [{row['unit']}]" if row["unit"] else ""
    other = f" vs {row['other']}" if row["other"] else ""
    first = textwrap.fill(f"{row['metric']}{unit}{other}", TITLE_WIDTH)
    second = textwrap.fill(f"({_arrow(bool(row['higher_is_better']))}; {row['profile'] or 'no profile'})",
                           TITLE_WIDTH)
    return f"{first}\n{second}"


def _new_figure(width: float, height: float) -> Figure:
    """A figure whose layout engine makes room for every panel's (multi-line) title, tick labels and the suptitle,
    so titles never overlap the panel above or beside them."""
    return Figure(figsize=(width, height), layout="constrained")


def title_overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of (panel title, other panel's title or tight box) that overlap once drawn; [] in a good figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    out: list[tuple[str, str]] = []
    for i, a in enumerate(axes):
        ta = a.title.get_window_extent(renderer)
        for j, b in enumerate(axes):
            if i == j:
                continue
            if ta.overlaps(b.get_tightbbox(renderer)):
                out.append((a.get_title(), b.get_title()))
    return out


def _unavailable_lines(quality: pd.DataFrame) -> list[str]:
    """'metric: unavailable: reason (backends)' for every overall cell without a value, grouped by reason."""
    rows = quality[(quality["category"] == "all") & (quality["status"] != "ok")]
    lines = []
    for (metric, status, reason), g in rows.groupby(["metric", "status", "reason"], sort=True):
        lines.append(f"{metric}: {status}: {reason} ({', '.join(sorted(g['label']))})")
    return lines


def _colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per backend label, the same in every panel and figure."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf"]
    return {label: palette[i % len(palette)] for i, label in enumerate(sorted(set(labels)))}


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, n)
    return math.ceil(n / cols), cols


def _groups(quality: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    keys = ["metric", "profile", "scope", "other"]
    return [(k, g) for k, g in quality.groupby(keys, sort=True) if (g["status"] == "ok").any()][:MAX_PANELS]


def quality_vs_cost(quality: pd.DataFrame, operations: pd.DataFrame) -> bytes | None:
    """One panel per metric: overall value (95 % CI bars) against cost per 10 s of video, one point per backend."""
    fig = quality_vs_cost_figure(quality, operations)
    return None if fig is None else _png(fig)


def quality_vs_cost_figure(quality: pd.DataFrame, operations: pd.DataFrame) -> Figure | None:
    """The figure behind `quality_vs_cost` (None when there is nothing to draw)."""
    overall = quality[quality["category"] == "all"]
    groups = _groups(overall)
    notes = _unavailable_lines(quality)
    if not groups and not notes:
        return None
    cost = dict(zip(operations["backend"], operations["usd_per_10s"])) if len(operations) else {}
    rows, cols = _grid(max(1, len(groups)))
    fig = _new_figure(4.6 * cols, 3.6 * rows + 0.3 * len(notes))
    colour = _colours(quality["label"])
    for i, (_, g) in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        for r in g[g["status"] == "ok"].itertuples(index=False):
            x = cost.get(r.backend, float("nan"))
            if not np.isfinite(x):
                continue
            if r.ci_low is not None and r.ci_high is not None and np.isfinite(r.ci_low):
                # Drawn as its own segment: a bias-corrected interval (FVD) need not contain the point estimate.
                ax.vlines(x, r.ci_low, r.ci_high, color=colour[r.label], linewidth=1.2)
            ax.plot([x], [r.value], "o", color=colour[r.label],
                    mfc="none" if r.simulated else colour[r.label], label=r.label)
            ax.annotate(r.label, (x, r.value), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_title(_metric_title(g.iloc[0]), fontsize=9)
        ax.set_xlabel("cost per 10 s of video (USD)")
        ax.grid(alpha=0.3)
    if not groups:
        fig.add_subplot(1, 1, 1).axis("off")
    if notes:
        fig.text(0.01, 0.0, "\n".join(textwrap.shorten(n, 150) for n in notes), fontsize=7, va="top", color="#a33")
    fig.suptitle("Quality vs cost per 10 s (hollow markers: simulated)", fontsize=11)
    return fig


def latency(generations: pd.DataFrame, labels: dict[str, str], stage_names: Sequence[str]) -> bytes | None:
    """Left: distribution of end-to-end latency per backend (box plot, ok generations). Right: median of each
    latency component, stacked (queued/generating/downloading for remote, stages for local backends)."""
    ok = generations[generations["status"] == "ok"]
    backends = sorted(ok["backend"].unique())
    if not backends:
        return None
    fig = Figure(figsize=(11, 0.5 * len(backends) + 2.5))
    ax = fig.add_subplot(1, 2, 1)
    data = [ok.loc[ok["backend"] == b, "total_s"].to_numpy(dtype=float) for b in backends]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(np.arange(1, len(backends) + 1), [labels.get(b, b) for b in backends], rotation=20, fontsize=8)
    ax.set_ylabel("end-to-end latency per video (s)")
    ax.set_title("Latency distribution", fontsize=10)
    ax.grid(alpha=0.3)
    ax2 = fig.add_subplot(1, 2, 2)
    parts: list[tuple[str, str]] = [("queued", "queued_s"), ("generating", "generating_s"),
                                     ("downloading", "downloading_s")]
    parts += [(s, f"stage_{s}") for s in stage_names]
    left = np.zeros(len(backends))
    for name, col in parts:
        if col not in ok:
            continue
        med = []
        for b in backends:
            sub = ok.loc[ok["backend"] == b]
            has_stages = any(f"stage_{s}" in sub and sub[f"stage_{s}"].notna().any() for s in stage_names)
            # A local backend's 'generating' span is the sum of its stages: draw stages instead of double counting.
            if (col == "generating_s" and has_stages) or (col.startswith("stage_") and not has_stages):
                med.append(0.0)
                continue
            vals = sub[col].to_numpy(dtype=float)
            vals = vals[np.isfinite(vals)]
            med.append(float(np.median(vals)) if vals.size else 0.0)
        if not any(med):
            continue
        ax2.barh([labels.get(b, b) for b in backends], med, left=left, label=name)
        left += np.asarray(med)
    ax2.set_xlabel("median seconds per component")
    ax2.set_title("Where the time goes (medians)", fontsize=10)
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.subplots_adjust(wspace=0.45)
    ax2.grid(alpha=0.3)
    return _png(fig)


def per_category(quality: pd.DataFrame) -> bytes | None:
    """One panel per metric: value per prompt category, one bar per backend, 95 % CI error bars. Metrics without
    values get a panel that says 'unavailable: <reason>'."""
    fig = per_category_figure(quality)
    return None if fig is None else _png(fig)


def per_category_figure(quality: pd.DataFrame) -> Figure | None:
    """The figure behind `per_category` (None when there is nothing to draw)."""
    keys = ["metric", "profile", "scope", "other"]
    groups = list(quality.groupby(keys, sort=True))[:MAX_PANELS]
    if not groups:
        return None
    rows, cols = _grid(len(groups))
    fig = _new_figure(5.2 * cols, 3.8 * rows)
    for i, (_, g) in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_title(_metric_title(g.iloc[0]), fontsize=9)
        ok = g[g["status"] == "ok"]
        if not len(ok):
            reasons = sorted({f"{r.status}: {r.reason}" for r in g.itertuples(index=False)})
            ax.text(0.5, 0.5, "\n".join(textwrap.fill(r, 50) for r in reasons), ha="center", va="center",
                    fontsize=8, color="#a33", transform=ax.transAxes)
            ax.axis("off")
            continue
        cats = ["all"] + sorted(c for c in g["category"].unique() if c != "all")
        backends = list(dict.fromkeys(g.sort_values("label")["label"]))
        colour = _colours(quality["label"])
        width = 0.8 / max(1, len(backends))
        for j, label in enumerate(backends):
            vals, lo, hi = [], [], []
            for c in cats:
                cell = ok[(ok["label"] == label) & (ok["category"] == c)]
                v = float(cell["value"].iloc[0]) if len(cell) else float("nan")
                cl = cell["ci_low"].iloc[0] if len(cell) else None
                ch = cell["ci_high"].iloc[0] if len(cell) else None
                vals.append(v)
                lo.append(cl if cl is not None and np.isfinite(cl) else np.nan)
                hi.append(ch if ch is not None and np.isfinite(ch) else np.nan)
            hatch = "//" if "(simulated)" in label else None
            x = np.arange(len(cats)) + j * width
            ax.bar(x, vals, width, label=label, hatch=hatch, alpha=0.85, color=colour[label])
            # Intervals drawn as segments: a bias-corrected interval (FVD) need not contain the point estimate.
            ax.vlines(x, lo, hi, color="#333", linewidth=1.0)
        ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2, cats, rotation=30, fontsize=7)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Metrics by prompt category (hatched: simulated)", fontsize=11)
    return fig


def breakeven(results: Sequence[BreakEven]) -> bytes | None:
    """Monthly cost against volume: one self-hosting line (shared inputs; dotted beyond the cluster's capacity) and
    one line per API option (dashed when simulated), with each break-even point and the capacity marked."""
    if not results:
        return None
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    top = max(float(r.table["volume_10s_units"].max()) for r in results)
    x = np.linspace(0.0, top, 200)
    first = results[0]
    own = first.fixed_usd_per_month + first.inputs.selfhost_usd_per_10s * x
    cap = first.capacity_per_month
    inside = x <= cap if cap else np.ones_like(x, dtype=bool)
    ax.plot(x[inside], own[inside], lw=2.2, color="k", label="self-host")
    if not inside.all():
        ax.plot(x[~inside], own[~inside], lw=1.2, color="k", ls=":", label="self-host (over capacity)")
    for i, r in enumerate(results):
        simulated = "(simulated)" in r.inputs.api_label
        ax.plot(x, r.inputs.api_usd_per_10s * x, lw=1.6, ls="--" if simulated else "-",
                label=f"API: {r.inputs.api_label}")
        if r.breakeven_volume is not None and r.breakeven_volume <= top:
            y = r.inputs.api_usd_per_10s * r.breakeven_volume
            ax.plot([r.breakeven_volume], [y], "o", color="#c00")
            ax.annotate(f"{r.breakeven_volume:,.0f}", (r.breakeven_volume, y), textcoords="offset points",
                        xytext=(6, 8 + 12 * i), fontsize=7, color="#c00")
    if first.capacity_per_month:
        ax.axvline(first.capacity_per_month, ls=":", color="gray", label="cluster capacity")
    ax.set_xlabel("monthly volume (10-second units of video)")
    ax.set_ylabel("monthly cost (USD)")
    ax.set_title("Break-even: API vs self-hosting", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)
