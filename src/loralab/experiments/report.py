"""The comparison report of a hyper-parameter grid (`loralab compare DIR`).

Finished runs are grouped (by default model x dataset). Within a group the runs of one
configuration (one variant, several seeds) become one row: the chosen metric as mean ± std over
seeds, the gain over the no-LoRA baseline, and the cost (trainable parameters, seconds).
The tables go to summary.csv / summary.md, the winner per group with a reason in plain words to
best.json, a terminal digest to sweep_summary.txt, plots to plots/ and everything on one
self-contained page to report.html.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json, atomic_write_text
from loralab.experiments import report_html
from loralab.experiments.records import FINISHED, RunRecord
from loralab.experiments.report_model import (
    Group,
    check_group_by,
    check_metric,
    error_line,
    failed_runs,
    main_metric,
    status_counts,
)
from loralab.experiments.report_ranking import build_groups
from loralab.experiments.report_text import (
    GAIN_NOTE,
    STD_NOTE,
    csv_text,
    direction_note,
    markdown,
    summary_row,
    sweep_summary,
    table,
)

# files this module writes; those of an earlier report that are not rewritten are removed
TABLE_FILES = ("summary.csv", "summary.md", "best.json")
PLOT_PATTERNS = ("learning_curves_*.png", "metric_vs_*.png", "pareto_*.png")


@dataclass
class ReportResult:
    out_dir: Path
    metric: str                   # the metric of most groups ("" when no run finished)
    rows: list[dict[str, Any]]    # the summary.csv rows, raw numbers
    files: list[Path]             # everything written, plots included
    best: list[dict[str, Any]] = field(default_factory=list)    # the best.json entries
    counts: dict[str, int] = field(default_factory=dict)        # runs per status


def write_report(records: list[RunRecord], out_dir: Path, *, metric: str | None = None,
                 group_by: tuple[str, ...] = ("model", "dataset")) -> ReportResult:
    """Write the tables, best.json, plots, sweep_summary.txt and report.html into out_dir.

    metric=None takes, per group, the `metric_for_best` most of its runs share (a sweep over
    a classification and a regression dataset then ranks by f1 and pearson respectively).
    Raises UserError for a metric no finished run records or an unknown group-by key.
    With no finished run, only sweep_summary.txt and report.html are written.
    """
    from loralab.experiments.plots import write_plots

    out_dir = Path(out_dir)
    group_by = tuple(group_by)
    check_group_by(records, group_by)
    finished = [r for r in records if r.status == FINISHED and r.metrics]
    if metric is not None and finished:
        check_metric(finished, metric)
    counts = status_counts(records)
    groups = build_groups(finished, metric, group_by) if finished else []
    files: list[Path] = []
    plots: dict[str, list[Path]] = {}
    rows = [summary_row(g, c, group_by) for g in groups for c in g.configs]
    if groups:
        files += write_tables(groups, rows, group_by, out_dir)
        plots = write_plots(groups, out_dir / "plots")
        files += [path for paths in plots.values() for path in paths]
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    failures = failed_runs(records)
    atomic_write_text(out_dir / "sweep_summary.txt",
                      sweep_summary(groups, counts, failures, group_by, generated))
    files.append(out_dir / "sweep_summary.txt")
    atomic_write_text(out_dir / "report.html",
                      html_page(groups, counts, failures, group_by, generated, plots))
    files.append(out_dir / "report.html")
    remove_stale(out_dir, files)
    return ReportResult(out_dir=out_dir, metric=main_metric(groups, metric), rows=rows,
                        files=files, best=[g.best for g in groups if g.best], counts=counts)


def remove_stale(out_dir: Path, written: list[Path]) -> None:
    """Drop files of an earlier report that this one did not rewrite (they would mislead)."""
    keep = {p.resolve() for p in written}
    candidates = [out_dir / name for name in TABLE_FILES]
    for pattern in PLOT_PATTERNS:
        candidates += (out_dir / "plots").glob(pattern)
    for path in candidates:
        if path.is_file() and path.resolve() not in keep:
            path.unlink(missing_ok=True)


def write_tables(groups: list[Group], rows: list[dict[str, Any]], group_by: tuple[str, ...],
                 out_dir: Path) -> list[Path]:
    atomic_write_text(out_dir / "summary.csv", csv_text(rows))
    atomic_write_text(out_dir / "summary.md", markdown(groups, group_by))
    atomic_write_json(out_dir / "best.json", {
        "group_by": list(group_by), "groups": [g.best for g in groups if g.best]})
    return [out_dir / name for name in TABLE_FILES]


def html_page(groups: list[Group], counts: dict[str, int], failures: list[RunRecord],
              group_by: tuple[str, ...], generated: str,
              images: dict[str, list[Path]]) -> str:
    sections = []
    for group in groups:
        headers, rows, numeric = table(group)
        best = group.best
        sections.append(report_html.Section(
            title=group.label, note=f"{direction_note(group)}; {STD_NOTE}",
            headers=headers, rows=rows, numeric=numeric,
            best_row=0 if best else None,
            why=f"Best: {best['variant']} — {best['why']}." if best else "",
            images=images.get(group.slug, [])))
    summary = [f"{sum(counts.values())} runs: "
               + ", ".join(f"{n} {status}" for status, n in counts.items()),
               f"Grouped by {', '.join(group_by)}. {GAIN_NOTE}."]
    failed = [(run.name, run.status, error_line(run)) for run in failures]
    return report_html.render(title="LoRA sweep comparison", generated=generated,
                              summary=summary, sections=sections, failures=failed)
