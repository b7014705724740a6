"""report.html: the whole comparison on one self-contained page.

CSS is inline and the plots are embedded as base64 data URIs, so the single file can be mailed
or archived and still shows everything. All text from runs (names, errors) is escaped.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { background: #e6f4ea; font-weight: 600; }
.why { background: #f7f7fb; border-left: 4px solid #5b6abf; padding: 0.5em 0.8em; }
.note { color: #555; font-size: 0.9em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.85em; }
.failed td { background: #fdecea; }
"""


# what each plot shows, by file name prefix
CAPTIONS = {
    "learning_curves": "Validation metric by epoch and training loss by step, mean over seeds.",
    "metric_vs_rank": "Metric (mean ± std over seeds) against the LoRA rank r; dashed: the "
                      "no-LoRA baseline.",
    "metric_vs_alpha": "Metric (mean ± std over seeds) against LoRA alpha; dashed: the no-LoRA "
                       "baseline.",
    "metric_vs_layers": "Metric (mean ± std over seeds) against the number of adapted encoder "
                        "layers; dashed: the no-LoRA baseline.",
    "pareto": "Metric against trainable parameters (log scale); the step line is the Pareto "
              "front: the best metric reachable with at most that many parameters.",
}


def caption(path: Path) -> str:
    kind = next((k for k in CAPTIONS if path.name.startswith(k + "_")), None)
    return CAPTIONS[kind] if kind else path.name


@dataclass
class Section:
    """One group of the report: its table, the reason for the best, its plots."""

    title: str
    note: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    best_row: int | None = None
    why: str = ""
    images: list[Path] = field(default_factory=list)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_table(headers: list[str], rows: list[list[str]], numeric: list[bool],
                 best_row: int | None = None, row_class: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = "best" if index == best_row else row_class
        cells = "".join(f'<td class="num">{escape(c)}</td>' if n else f"<td>{escape(c)}</td>"
                        for c, n in zip(row, numeric))
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_section(section: Section) -> str:
    parts = [f"<section><h2>{escape(section.title)}</h2>",
             f'<p class="note">{escape(section.note)}</p>',
             render_table(section.headers, section.rows, section.numeric, section.best_row)]
    if section.why:
        parts.append(f'<p class="why">{escape(section.why)}</p>')
    for path in section.images:
        parts.append(f'<figure><img src="{data_uri(path)}" alt="{escape(path.stem)}">'
                     f"<figcaption>{escape(caption(path))} ({escape(path.name)})"
                     "</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def render_failures(failures: list[tuple[str, str, str]]) -> str:
    if not failures:
        return "<h2>Runs without results</h2><p>None.</p>"
    rows = [list(item) for item in failures]
    table = render_table(["run", "status", "error"], rows, [False] * 3, row_class="failed")
    return f"<h2>Runs without results</h2>{table}"


def render(*, title: str, generated: str, summary: list[str], sections: list[Section],
           failures: list[tuple[str, str, str]]) -> str:
    """The page; `failures` are (run name, status, first line of the error)."""
    body = [f"<h1>{escape(title)}</h1>", f'<p class="meta">generated {escape(generated)}</p>',
            *[f"<p>{escape(line)}</p>" for line in summary]]
    if not sections:
        body.append("<p><strong>No finished runs</strong>: no tables or plots yet.</p>")
    body += [render_section(section) for section in sections]
    body.append(render_failures(failures))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
