"""Rendering: a report is a list of sections holding paragraphs, tables of text cells and PNG figures; this module
writes them as Markdown (figures as files beside it) and as one self-contained HTML page (figures as base64 PNG,
inline CSS, no external URLs; scripts only inline, inside the report's own HTML blocks such as the gallery)."""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

CELL_CLASSES = ("best", "unavailable", "simulated", "regressed", "improved", "callout", "")
"""CSS classes a cell may carry; 'best' is also bold in Markdown."""


@dataclass
class Cell:
    """One table cell: the text shown, and how to style it."""

    text: str
    css: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Cell text must be str, got {type(self.text).__name__}: {self.text!r}")


@dataclass
class Table:
    """A titled table of text cells; `rows` are lists as long as `columns`."""

    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Plot:
    """A PNG figure: `name` is its file stem under plots/ for the Markdown copy."""

    name: str
    png: bytes
    alt: str


@dataclass
class Section:
    """A report section: paragraphs first, then callouts (warnings), tables and figures, in that order."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    callouts: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Plot] = field(default_factory=list)
    preformatted: list[str] = field(default_factory=list)
    html_blocks: list[str] = field(default_factory=list)
    """Markup the report's own modules made (e.g. the gallery), placed after the figures in report.html as is:
    never put user text here unescaped."""
    markdown_blocks: list[str] = field(default_factory=list)
    """Markdown the report's own modules made, placed after the figures in report.md as is."""


def fmt(x: float | None, digits: int = 4) -> str:
    """A number with `digits` significant digits; '—' for None/NaN (only used where no value is the right answer,
    e.g. a remote backend's local stage, never for an unavailable metric)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def fmt_usd(x: float | None) -> str:
    """Dollars: 4 decimals below $1 (prices per 10 s are often cents), else 2 decimals with thousands separators."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    sign = "−" if x < 0 else ""
    return f"{sign}${abs(x):,.4f}" if abs(x) < 1 else f"{sign}${abs(x):,.2f}"


def fmt_ci(value: float, low: float | None, high: float | None, n: int | None = None) -> str:
    """'value [low, high] n=N' (interval and N omitted when absent)."""
    text = fmt(value)
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{fmt(low)}, {fmt(high)}]"
    if n is not None:
        text += f" n={n}"
    return text


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(t: Table) -> str:
    """A Markdown pipe table (best cells in bold); title and note are not included."""
    lines = ["| " + " | ".join(_md_escape(c) for c in t.columns) + " |", "|" + "---|" * len(t.columns)]
    for row in t.rows:
        cells = [f"**{_md_escape(c.text)}**" if c.css == "best" and c.text else _md_escape(c.text) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(title: str, sections: list[Section], out_dir: Path) -> str:
    """Markdown for the whole report; writes each figure to `out_dir/plots/<name>.png` and links it."""
    lines = [f"# {title}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for c in sec.callouts:
            lines += [f"> **Warning:** {c}", ""]
        for p in sec.paragraphs:
            lines += [p, ""]
        for block in sec.preformatted:
            lines += ["```", block, "```", ""]
        for t in sec.tables:
            if t.title:
                lines += [f"### {t.title}", ""]
            lines += [table_markdown(t), ""]
            if t.note:
                lines += [t.note, ""]
        for fig in sec.figures:
            plots = out_dir / "plots"
            plots.mkdir(parents=True, exist_ok=True)
            (plots / f"{fig.name}.png").write_bytes(fig.png)
            lines += [f"![{fig.alt}](plots/{fig.name}.png)", ""]
        for block in sec.markdown_blocks:
            lines += [block, ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.best{font-weight:bold;background:#e3f6e3}td.unavailable{color:#a33;font-style:italic}
td.simulated{color:#7a5b00}td.regressed{background:#fbe3e3;font-weight:bold}td.improved{background:#e3f6e3}
.callout{border-left:4px solid #d80;background:#fff6e0;padding:.5em 1em;margin:.5em 0}
pre{background:#f7f7f7;padding:.7em;overflow-x:auto;font-size:.85em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}p.note{font-size:.85em;color:#555}
"""


def to_html(title: str, sections: list[Section]) -> str:
    """One self-contained HTML page (figures inline as base64 PNG, no external URLs; sections' HTML blocks as is)."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<link rel="icon" href="data:,">', f"<title>{esc(title)}</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", f"<h1>{esc(title)}</h1>"]
    for sec in sections:
        out.append(f"<section><h2>{esc(sec.title)}</h2>")
        for c in sec.callouts:
            out.append(f'<div class="callout"><strong>Warning:</strong> {esc(c)}</div>')
        for p in sec.paragraphs:
            out.append(f"<p>{esc(p)}</p>")
        for block in sec.preformatted:
            out.append(f"<pre>{esc(block)}</pre>")
        for t in sec.tables:
            if t.title:
                out.append(f"<h3>{esc(t.title)}</h3>")
            out.append("<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in t.columns) + "</tr></thead><tbody>")
            for row in t.rows:
                tds = "".join((f'<td class="{c.css}">' if c.css else "<td>") + esc(c.text) + "</td>" for c in row)
                out.append(f"<tr>{tds}</tr>")
            out.append("</tbody></table>")
            if t.note:
                out.append(f'<p class="note">{esc(t.note)}</p>')
        for fig in sec.figures:
            data = base64.b64encode(fig.png).decode("ascii")
            out.append(f'<figure><img alt="{esc(fig.alt)}" src="data:image/png;base64,{data}"></figure>')
        out.extend(sec.html_blocks)
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
