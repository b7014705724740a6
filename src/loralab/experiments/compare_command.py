"""`loralab compare DIR`: the comparison report of a grid folder's runs."""

from __future__ import annotations

import json
from pathlib import Path

from loralab.errors import UserError
from loralab.experiments.grid_command import PLAN_FILE
from loralab.experiments.index import query, reindex, row_to_record
from loralab.experiments.records import RunRecord


def load_records(grid_dir: Path, include_all: bool) -> list[RunRecord]:
    """The runs of the latest grid (plan.json), or every run in the folder with --all."""
    reindex(grid_dir)  # the run folders are the truth; a shard elsewhere may have added runs
    records = [row_to_record(row) for row in query(grid_dir)]
    plan = grid_dir / PLAN_FILE
    if not include_all and plan.is_file():
        current = {run["id"] for run in json.loads(plan.read_text(encoding="utf-8"))["runs"]}
        records = [r for r in records if r.id in current]
    return records


def report_folder(folder: Path, output: str | None) -> Path:
    """--output, else the grid folder; a tune study's folder keeps its own report.html and
    plots (the study's page), so its comparison goes to DIR/compare."""
    from loralab.experiments.tune.layout import SETTINGS_FILE

    if output:
        return Path(output)
    return folder / "compare" if (folder / SETTINGS_FILE).is_file() else folder


def compare(grid_dir: str, output: str | None, metric: str | None, group_by: str,
            include_all: bool) -> int:
    from loralab.experiments.report import write_report

    folder = Path(grid_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    records = load_records(folder, include_all)
    if not records:
        raise UserError(f"{folder} holds no grid runs (run `loralab grid` first)")
    groups = tuple(g.strip() for g in group_by.split(",") if g.strip())
    result = write_report(records, report_folder(folder, output), metric=metric,
                          group_by=groups)
    summary = result.out_dir / "sweep_summary.txt"
    if summary.is_file():
        print(summary.read_text(encoding="utf-8"), end="")
    print(f"report: {result.out_dir / 'report.html'}")
    return 0
