"""The report's video gallery: one row per prompt and sample (grouped by category), one column per requested backend;
each cell a playable video with its poster, or the reason there is none, with the sample index, state and per-video
metric values. In report.html: filters by category, backend and sample (a few lines of inline script, no external
asset). In report.md: a contact sheet per video. Cells: `gallery_cells`; videos, posters, sheets: `gallery_media`.
"""
from __future__ import annotations

import dataclasses
import html
from collections import Counter
from pathlib import Path

from vbench_suite.errors import VideoError
from vbench_suite.report import contact_sheet as cs
from vbench_suite.report.gallery_cells import (BUDGET, NO_VIDEO, NOT_CONFIGURED, OK, STATES, GalleryCell, GalleryGrid,
                                               GalleryRow, gallery_grid)
from vbench_suite.report.gallery_media import (EMBED_TOTAL_MAX_BYTES, SHEETS_DIR, VIDEOS_DIR, CellMedia, EmbedBudget,
                                               GalleryOptions, data_uri, prepare_media, remove_stale)
from vbench_suite.report.load import RunData
from vbench_suite.report.render import Section
from vbench_suite.video.web import WEB_CRF

TITLE = "Gallery"
VIDEO_DISPLAY_WIDTH = 192
"""CSS width of each video in the gallery (small videos are scaled up with crisp pixels)."""


@dataclasses.dataclass
class Gallery:
    """The gallery of one report: the grid of cells and the media of each 'ok' cell."""

    grid: GalleryGrid
    media: dict[tuple[str, str, int], CellMedia]
    options: GalleryOptions

    def states(self) -> Counter:
        return Counter(c.state for c in self.grid.cells.values())


def build_gallery(run: RunData, out_dir: Path, options: GalleryOptions | None = None) -> Gallery:
    """Cells of `run` and their media, written under `out_dir/gallery/` (files of earlier builds that are no longer
    used are removed). A video that cannot be decoded turns its cell into 'no-video' with the reason."""
    options = options or GalleryOptions()
    grid = gallery_grid(run)
    budget = EmbedBudget()
    media: dict[tuple[str, str, int], CellMedia] = {}
    used: set[Path] = set()
    for row in grid.rows:
        for b in grid.backends:
            cell = grid.cell(b, row)
            if cell.state != OK or cell.video is None:
                continue
            try:
                m = prepare_media(cell.video, out_dir, options, budget)
            except VideoError as exc:
                grid.cells[(b, row.prompt_id, row.sample)] = dataclasses.replace(
                    cell, state=NO_VIDEO, text=f"video unreadable: {exc}")
                continue
            media[(b, row.prompt_id, row.sample)] = m
            used.update(m.written)
    remove_stale(out_dir, used)
    return Gallery(grid, media, options)


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):,.1f} MiB"


def summary_paragraphs(gallery: Gallery) -> list[str]:
    """The gallery's rules and counts, in words (shown in both report.md and report.html)."""
    opts, media = gallery.options, gallery.media.values()
    grid = gallery.grid
    out = [f"One row per prompt and sample ({len(grid.rows)} rows, {len(grid.categories)} categories), one column "
           f"per backend asked for ({len(grid.backends)}). Each cell shows the sample index, what happened and the "
           "per-video metric values recorded for it (↑ higher is better, ↓ lower is better); failed, refused, "
           "unsupported, not configured and budget-skipped cells say so."]
    counts = gallery.states()
    out.append("Cells: " + ", ".join(f"{s} {counts[s]}" for s in STATES if counts.get(s)) + ".")
    if not media:
        return out
    embedded = [m for m in media if m.embedded]
    linked = [m for m in media if not m.embedded]
    where = (f"linked under {VIDEOS_DIR}/ (zip the report folder to share it)" if opts.large_videos == "copy" else
             f"linked by relative paths (re-encoded ones under {VIDEOS_DIR}/, the others in the run folder: share the "
             "report folder together with the run folder, kept in the same relative place)")
    out.append(f"Videos: {len(embedded)} embedded in report.html ({_kib(sum(m.playable_bytes for m in embedded))}; "
               f"rule: a video is embedded when the file the browser plays is at most "
               f"{_kib(opts.embed_max_bytes)} and the videos embedded before it total at most "
               f"{_kib(EMBED_TOTAL_MAX_BYTES)}), {len(linked)} {where}. Posters (the middle frame) and contact "
               "sheets are always embedded.")
    reasons = Counter(m.reencoded for m in media if m.reencoded)
    if reasons:
        out.append(f"{sum(reasons.values())} video(s) re-encoded for browsers (H.264 High, 4:2:0, CRF {WEB_CRF}; "
                   "viewing copies only, every metric read the recorded file), because: "
                   + "; ".join(f"{why} ({n})" for why, n in reasons.most_common()) + ".")
    out.append(f"Contact sheets: {cs.SHEET_FRAMES} evenly spaced frames of each video ({SHEETS_DIR}/), shown in "
               "report.md, and in report.html when printed or with 'frame strips' ticked.")
    return out


_CSS = """
.gal-filters{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;margin:.5em 0;font-size:.9em}
.gal-filters fieldset{border:1px solid #ccc;padding:.2em .6em;margin:0}
.gal-filters label{margin-right:.6em;white-space:nowrap}
table.gal td,table.gal th{vertical-align:top}
table.gal tr.gal-cat th{background:#e8eef8;font-size:1.05em}
th.gal-prompt{max-width:16em;font-weight:normal}th.gal-prompt code{font-weight:bold}
.gal-text{color:#444;font-size:.9em}.gal-meta{font-size:.8em;color:#555;margin-top:.2em}
.gal-cell video{width:%dpx;height:auto;image-rendering:pixelated;background:#000;display:block}
.gal-sheet{display:none;max-width:100%%;image-rendering:pixelated;border:0;margin:.2em 0}
.gal-strips .gal-sheet{display:block}
ul.gal-metrics{margin:.2em 0 0;padding-left:1.1em;font-size:.8em}
.gal-state{font-style:italic;font-size:.85em;max-width:%dpx;overflow-wrap:anywhere}
td.gal-failed,td.gal-refused,td.gal-no-video,td.gal-outcome-unknown{background:#fbe9e9}
td.gal-unsupported,td.gal-not-configured,td.gal-budget,td.gal-no-record{background:#f4f4f4;color:#666}
[hidden]{display:none!important}
@media print{.gal-filters{display:none}.gal-cell video{display:none}.gal-sheet{display:block}}
""" % (VIDEO_DISPLAY_WIDTH, VIDEO_DISPLAY_WIDTH)

# Filters: rows by category and sample, columns by backend. Runs after the table exists; no globals, no network.
_SCRIPT = """
(function () {
  var g = document.getElementById('gallery');
  if (!g) { return; }
  function chosen(kind) {
    var out = {};
    g.querySelectorAll('input[data-filter="' + kind + '"]').forEach(function (i) { out[i.value] = i.checked; });
    return out;
  }
  function apply() {
    var cats = chosen('category'), backends = chosen('backend');
    var sample = g.querySelector('select[data-filter="sample"]').value;
    var strips = g.querySelector('input[data-filter="strips"]').checked;
    var rows = 0, shown = {};
    g.querySelectorAll('tr.gal-row').forEach(function (tr) {
      var on = cats[tr.dataset.category] && (sample === 'all' || tr.dataset.sample === sample);
      tr.hidden = !on;
      if (on) { rows += 1; shown[tr.dataset.category] = true; }
    });
    g.querySelectorAll('tr.gal-cat').forEach(function (tr) { tr.hidden = !shown[tr.dataset.category]; });
    var cols = 0;
    g.querySelectorAll('[data-backend]').forEach(function (el) { el.hidden = !backends[el.dataset.backend]; });
    Object.keys(backends).forEach(function (b) { if (backends[b]) { cols += 1; } });
    g.querySelectorAll('tr.gal-row[hidden] video').forEach(function (v) { v.pause(); });
    g.classList.toggle('gal-strips', strips);
    g.querySelector('.gal-count').textContent = 'showing ' + rows + ' row(s) x ' + cols + ' backend(s)';
  }
  g.addEventListener('change', apply);
  apply();
})();
"""


def _arrow(hib: bool | None) -> str:
    return "" if hib is None else (" ↑" if hib else " ↓")


def _cell_html(gallery: Gallery, cell: GalleryCell, n_samples: int) -> str:
    esc = html.escape
    b = esc(cell.backend, quote=True)
    meta = f"sample {cell.sample}" + (f" of {n_samples}" if n_samples > 1 else "")
    parts = [f'<td class="gal-cell gal-{cell.state}" data-backend="{b}" data-state="{cell.state}">']
    m = gallery.media.get((cell.backend, cell.prompt_id, cell.sample))
    if m is not None:
        label = esc(f"{cell.backend}, {cell.prompt_id}, sample {cell.sample}", quote=True)
        preload = "auto" if m.embedded else "metadata"
        parts.append(f'<video controls muted loop playsinline preload="{preload}" aria-label="{label}" '
                     f'data-frames="{m.num_frames}" data-fps="{m.fps:g}" poster="{m.poster_uri}" '
                     f'src="{esc(m.src, quote=True)}"></video>')
        frames = ", ".join(str(i) for i in m.sheet_frames)
        parts.append(f'<img class="gal-sheet" alt="contact sheet of {label}: frames {frames}" '
                     f'src="{data_uri(m.sheet_png, "image/png")}">')
        dur = f"{m.duration_s:.3g} s" if m.fps > 0 else "no frame rate"
        meta += f" · ok · {m.width}×{m.height} · {m.num_frames} frames @ {m.fps:g} fps ({dur})"
        if m.reencoded:
            meta += " · re-encoded for browsers"
        if not m.embedded:
            meta += " · linked"
    else:
        parts.append(f'<div class="gal-state">{esc(cell.text)}</div>')
    if cell.reused_from:
        meta += f" · reused from {cell.reused_from}"
    parts.append(f'<div class="gal-meta">{esc(meta)}</div>')
    if cell.metrics:
        parts.append('<ul class="gal-metrics">' + "".join(
            f"<li>{esc(x.name)}{_arrow(x.higher_is_better)}: {esc(x.text)}</li>" for x in cell.metrics) + "</ul>")
    parts.append("</td>")
    return "".join(parts)


def _row_head(row: GalleryRow, n_samples: int) -> str:
    esc = html.escape
    text = f'<div class="gal-text">{esc(row.prompt)}</div>' if row.prompt else ""
    sample = f'<div class="gal-meta">sample {row.sample}</div>' if n_samples > 1 else ""
    return f'<th class="gal-prompt" scope="row"><code>{esc(row.prompt_id)}</code>{text}{sample}</th>'


def _checkboxes(kind: str, values: list[str], labels: dict[str, str] | None = None) -> str:
    esc = html.escape
    return "".join(f'<label><input type="checkbox" data-filter="{kind}" value="{esc(v, quote=True)}" checked> '
                   f"{esc((labels or {}).get(v, v))}</label>" for v in values)


def gallery_html(gallery: Gallery) -> str:
    """The gallery's HTML block: style, filters, the table and the filter script (self-contained)."""
    esc = html.escape
    grid = gallery.grid
    samples = grid.samples
    n_samples = len(samples)
    options = "".join(f'<option value="{s}"{" selected" if i == 0 else ""}>{s}</option>'
                      for i, s in enumerate(samples))
    out = [f"<style>{_CSS}</style>", '<div id="gallery" class="gal-wrap">',
           '<form class="gal-filters" onsubmit="return false">',
           f"<fieldset><legend>Category</legend>{_checkboxes('category', grid.categories)}</fieldset>",
           f"<fieldset><legend>Backend</legend>{_checkboxes('backend', grid.backends, grid.labels)}</fieldset>",
           f'<label>Sample <select data-filter="sample"><option value="all">all</option>{options}</select></label>',
           '<label><input type="checkbox" data-filter="strips"> frame strips</label>',
           '<span class="gal-count"></span></form>',
           '<table class="gal"><thead><tr><th>prompt</th>'
           + "".join(f'<th data-backend="{esc(b, quote=True)}">{esc(grid.labels[b])}</th>' for b in grid.backends)
           + "</tr></thead><tbody>"]
    for cat in grid.categories:
        out.append(f'<tr class="gal-cat" data-category="{esc(cat, quote=True)}">'
                   f'<th colspan="{len(grid.backends) + 1}">{esc(cat or "(no category)")}</th></tr>')
        for row in (r for r in grid.rows if r.category == cat):
            cells = "".join(_cell_html(gallery, grid.cell(b, row), n_samples) for b in grid.backends)
            out.append(f'<tr class="gal-row" data-category="{esc(cat, quote=True)}" data-sample="{row.sample}" '
                       f'data-prompt="{esc(row.prompt_id, quote=True)}">{_row_head(row, n_samples)}{cells}</tr>')
    out += ["</tbody></table>", f"<script>{_SCRIPT}</script>", "</div>"]
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("[", "\\[").replace("]", "\\]")


def gallery_markdown(gallery: Gallery) -> str:
    """The gallery for report.md: per category and prompt, one line per backend and sample with its contact sheet."""
    grid = gallery.grid
    lines: list[str] = []
    # A backend with no record anywhere (not configured, or stopped by the budget cap) is said once, not per cell.
    absent = [b for b in grid.backends
              if len({grid.cell(b, r).text for r in grid.rows}) == 1
              and grid.cell(b, grid.rows[0]).state in (NOT_CONFIGURED, BUDGET)]
    for b in absent:
        lines.append(f"- **{_md(grid.labels[b])}**, every prompt and sample: {_md(grid.cell(b, grid.rows[0]).text)}")
    if absent:
        lines.append("")
    shown = [b for b in grid.backends if b not in absent]
    for cat in grid.categories:
        lines += [f"### Gallery: {_md(cat or '(no category)')}", ""]
        for pid in dict.fromkeys(r.prompt_id for r in grid.rows if r.category == cat):
            rows = [r for r in grid.rows if r.category == cat and r.prompt_id == pid]
            lines += [f"#### `{pid}`" + (f": {_md(rows[0].prompt)}" if rows[0].prompt else ""), ""]
            for row in rows:
                for b in shown:
                    cell = grid.cell(b, row)
                    m = gallery.media.get((b, row.prompt_id, row.sample))
                    metrics = "; ".join(f"{x.name}{_arrow(x.higher_is_better)} {x.text}" for x in cell.metrics)
                    what = (f"ok, {m.width}×{m.height}, {m.num_frames} frames @ {m.fps:g} fps" if m is not None
                            else cell.text)
                    lines.append(f"- **{_md(grid.labels[b])}**, sample {row.sample}: {_md(what)}"
                                 + (f" ({_md(metrics)})" if metrics else ""))
                    if m is not None:
                        lines.append(f"  ![{_md(b)} {_md(pid)} sample {row.sample}]({m.sheet_file})")
            lines.append("")
    return "\n".join(lines).rstrip()


def gallery_section(run: RunData, out_dir: Path, options: GalleryOptions | None = None) -> Section:
    """The report's Gallery section (paragraphs for both formats, plus an HTML and a Markdown block)."""
    gallery = build_gallery(run, out_dir, options)
    sec = Section(TITLE, paragraphs=summary_paragraphs(gallery))
    if not gallery.grid.rows:
        sec.paragraphs = ["No generation records in this run: nothing to show."]
        return sec
    sec.html_blocks.append(gallery_html(gallery))
    sec.markdown_blocks.append(gallery_markdown(gallery))
    return sec
