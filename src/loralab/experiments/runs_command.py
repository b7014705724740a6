"""`loralab runs list|show|reindex`: query the results index of a grid folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from loralab.errors import UserError
from loralab.experiments.index import INDEX_FILE, query, reindex, row_to_record
from loralab.experiments.status import STATUS_FILE, log_tail, record_from_folder
from loralab.metrics.metric_registry import find_metric


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def list_runs(grid_dir: str, where: list[str], sort: str | None, as_json: bool) -> int:
    rows = query(Path(grid_dir), where, sort)
    if as_json:
        for row in rows:
            record = row_to_record(row)
            print(json.dumps({"id": record.id, "name": record.name, "status": record.status,
                              "params": record.params, "metrics": record.chosen_metrics(),
                              "seconds": row["train_seconds"], "error": record.error}))
        return 0
    shown_metric = sort if sort and sort not in ("name", "status", "seed") else None
    table = [table_row(row, shown_metric) for row in rows]
    header = ["id", "name", "status", "metric", "value", "train s", "trainable"]
    if shown_metric:
        header.append(shown_metric)
    print(format_table(table, header) if table else "no runs match")
    return 0


def table_row(row: sqlite3.Row, extra: str | None) -> list[str]:
    cells = [row["id"], row["name"], row["status"], row["metric"] or "-",
             number(row["metric_value"]), number(row["train_seconds"], 1),
             number(row["trainable_parameters"])]
    if extra:
        chosen = json.loads(row["chosen"] or "{}")
        name = find_metric(extra, chosen) or extra  # `f1` shows the f1_binary / entity_f1 value
        value = chosen.get(name, row[extra] if extra in row.keys() else None)
        if value is None and "." in extra:
            node: Any = json.loads(row["config"] or "{}")
            for part in extra.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            value = node
        cells.append(number(value))
    return cells


def find_run(run: str, grid_dir: str | None) -> dict[str, Any]:
    """A run folder path, or an id / id prefix / name looked up in the grid folder's index."""
    path = Path(run)
    if (path / STATUS_FILE).is_file():
        record = record_from_folder(path)
        if record is None:
            raise UserError(f"{path}: run.json has no run id")
        return record_view(record)
    if grid_dir is None:
        raise UserError(f"{run} is not a run folder; give --dir GRID_DIR to look it up by id "
                        "or name")
    rows = [r for r in query(Path(grid_dir)) if r["id"].startswith(run) or r["name"] == run]
    if not rows:
        raise UserError(f"no run {run!r} in {Path(grid_dir) / INDEX_FILE}")
    if len(rows) > 1:
        names = ", ".join(f"{r['id']} ({r['name']})" for r in rows[:5])
        raise UserError(f"{run!r} matches {len(rows)} runs: {names}; give more of the id")
    return record_view(row_to_record(rows[0]))


def record_view(record) -> dict[str, Any]:
    metrics = record.metrics or {}
    view = {"id": record.id, "name": record.name, "status": record.status,
            "path": str(record.path), "model": record.model, "dataset": record.dataset,
            "seed": record.seed, "baseline": record.baseline, "params": record.params,
            "metric_for_best": metrics.get("metric_for_best"),
            "metrics": record.chosen_metrics(), "test": metrics.get("test"),
            "train_seconds": metrics.get("train_seconds"),
            "trainable_parameters": metrics.get("trainable_parameters"),
            "adapter": str(record.path / metrics["adapter"]) if metrics.get("adapter") else None,
            "attempts": record.attempts, "error": record.error}
    if record.status != "finished":
        view["log_tail"] = record.log_tail or log_tail(record.path)
    return view


def show_run(run: str, grid_dir: str | None) -> int:
    view = find_run(run, grid_dir)
    tail = view.pop("log_tail", None)
    print(json.dumps(view, indent=2))
    if tail:
        print("--- log tail ---\n" + tail)
    return 0


def reindex_runs(grid_dir: str) -> int:
    count = reindex(Path(grid_dir))
    print(f"indexed {count} runs -> {Path(grid_dir) / INDEX_FILE}")
    return 0
