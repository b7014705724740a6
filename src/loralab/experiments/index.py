"""The results index: one SQLite database per grid folder (DIR/index.sqlite).

Every finished or failed run is a row: id, name, status, parameters, metrics, timings,
trainable parameters, error. The run folders stay the source of truth: `reindex` rebuilds the
database from them, so the index is never the only copy of a result.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_path
from loralab.errors import ConfigError, UserError
from loralab.experiments.records import RunRecord
from loralab.experiments.status import record_from_folder
from loralab.metrics.metric_registry import ALIASES, greater_is_better

INDEX_FILE = "index.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, variant TEXT, model TEXT, dataset TEXT, seed INTEGER,
    baseline INTEGER, status TEXT, metric TEXT, metric_value REAL, train_seconds REAL,
    trainable_parameters INTEGER, error TEXT, log_tail TEXT, started REAL, ended REAL,
    attempts INTEGER, path TEXT, params TEXT, config TEXT, metrics TEXT,
    chosen TEXT, updated REAL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    trial INTEGER, trial_state TEXT);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs(name);
"""
# columns added after the first release: an older index gains them when opened
ADDED_COLUMNS = {"trial": "INTEGER", "trial_state": "TEXT"}
# the folders of run folders: a grid's runs/, a study's trials/ (loralab tune)
RUNS_DIR = "runs"
RUN_FOLDERS = (RUNS_DIR, "trials")
WHERE = re.compile(r"^\s*([A-Za-z_][\w.@-]*)\s*(>=|<=|!=|==|=|>|<|~)\s*(.+?)\s*$")
PLAIN_COLUMNS = {"id", "name", "variant", "model", "dataset", "seed", "baseline", "status",
                 "metric", "metric_value", "train_seconds", "trainable_parameters", "attempts",
                 "trial", "trial_state"}


def index_path(grid_dir: Path) -> Path:
    return grid_dir / INDEX_FILE


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60)
    db.row_factory = sqlite3.Row
    db.executescript(SCHEMA)
    present = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
    for column, kind in ADDED_COLUMNS.items():
        if column not in present:
            db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    return db


def record_row(record: RunRecord) -> dict[str, Any]:
    metrics = record.metrics or {}
    metric = metrics.get("metric_for_best")
    chosen = record.chosen_metrics()
    return {
        "id": record.id, "name": record.name, "variant": record.variant,
        "model": record.model, "dataset": record.dataset, "seed": record.seed,
        "baseline": int(record.baseline), "status": record.status, "metric": metric,
        "metric_value": chosen.get(metric) if metric else None,
        "train_seconds": metrics.get("train_seconds"),
        "trainable_parameters": metrics.get("trainable_parameters"),
        "error": record.error, "log_tail": record.log_tail, "started": record.started,
        "ended": record.ended, "attempts": record.attempts, "path": str(record.path),
        "params": json.dumps(record.params), "config": json.dumps(record.config),
        "metrics": json.dumps(record.metrics) if record.metrics else None,
        "chosen": json.dumps(chosen), "trial": record.trial, "trial_state": record.trial_state,
    }


def upsert(db: sqlite3.Connection, record: RunRecord) -> None:
    row = record_row(record)
    keys = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    db.execute(f"INSERT OR REPLACE INTO runs ({keys}) VALUES ({marks})", row)  # noqa: S608


def record_run(grid_dir: Path, run_dir: Path) -> RunRecord | None:
    """Read the run folder and write its row (called after each run ends)."""
    record = record_from_folder(run_dir)
    if record is not None:
        with closing(connect(index_path(grid_dir))) as db, db:
            upsert(db, record)
    return record


def reindex(grid_dir: Path) -> int:
    """Rebuild the index from the run folders, atomically; returns the number of runs."""
    folders = [grid_dir / name for name in RUN_FOLDERS if (grid_dir / name).is_dir()]
    if not folders:
        raise UserError(f"{grid_dir} has no {RUNS_DIR}/ folder: not a grid output folder "
                        "(nor a tune folder with trials/)")
    count = 0
    with atomic_path(index_path(grid_dir)) as tmp:
        tmp.unlink()  # SQLite creates the file itself
        with closing(connect(tmp)) as db, db:
            for run_dir in sorted(p for f in folders for p in f.iterdir() if p.is_dir()):
                record = record_from_folder(run_dir)
                if record is not None:
                    upsert(db, record)
                    count += 1
    return count


def open_index(grid_dir: Path) -> sqlite3.Connection:
    """The grid folder's index; built from the run folders when it is missing."""
    if not grid_dir.is_dir():
        raise UserError(f"{grid_dir}: no such folder")
    if not index_path(grid_dir).is_file():
        reindex(grid_dir)
    return connect(index_path(grid_dir))


def where_clause(conditions: list[str]) -> tuple[str, list[Any]]:
    """`lora.r>=8`, `status=failed`, `f1>0.85`, `name~r8` (substring) -> SQL + parameters.

    A key is a column (status, model, dataset, seed, ...), a metric of the saved weights
    (f1, pearson, ...) or a dotted config key (lora.r, training.learning_rate).
    """
    parts, params = [], []
    for text in conditions:
        match = WHERE.match(text)
        if not match:
            raise UserError(f"--where {text!r}: expected KEY OP VALUE with OP one of "
                            ">=, <=, >, <, =, !=, ~ (contains), e.g. 'lora.r>=8'")
        key, op, value = match.groups()
        expression = key_expression(key)
        if op == "~":
            parts.append(f"CAST({expression} AS TEXT) LIKE ?")
            params.append(f"%{value}%")
            continue
        parts.append(f"{expression} {'=' if op == '==' else op} ?")
        params.append(sql_value(value))
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def key_expression(key: str) -> str:
    if key in PLAIN_COLUMNS:
        return key
    if key.startswith("lora.") and key != "lora.enabled":  # a baseline has no rank, alpha, ...
        return f"(CASE WHEN baseline THEN NULL ELSE json_extract(config, '$.{key}') END)"
    if "." in key:
        return f"json_extract(config, '$.{key}')"
    names = [key, *ALIASES.get(key, ())]  # `f1` also finds f1_binary, entity_f1, ...
    found = ", ".join(f"json_extract(chosen, '$.\"{name}\"')" for name in names)
    return f"COALESCE({found})" if len(names) > 1 else found


def best_first_descending(key: str) -> bool:
    """Metrics sort best first (their direction is the registry's); other columns descend,
    except times and parameter counts (least first)."""
    try:
        return greater_is_better(key)
    except ConfigError:
        return not key.endswith(("seconds", "parameters"))


def sql_value(text: str) -> Any:
    text = text.strip().strip("'\"")
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": 1, "false": 0}.get(text, text)


def query(grid_dir: Path, where: list[str] | None = None, sort: str | None = None,
          descending: bool | None = None) -> list[sqlite3.Row]:
    clause, params = where_clause(where or [])
    order = " ORDER BY dataset, model, name"
    if sort:
        if not re.fullmatch(r"[A-Za-z_][\w.]*", sort):
            raise UserError(f"--sort {sort!r}: give a column, metric or dotted config key")
        desc = best_first_descending(sort) if descending is None else descending
        order = f" ORDER BY {key_expression(sort)} IS NULL, {key_expression(sort)} " \
                f"{'DESC' if desc else 'ASC'}"
    with closing(open_index(grid_dir)) as db:
        try:
            return db.execute(f"SELECT * FROM runs{clause}{order}", params).fetchall()  # noqa: S608
        except sqlite3.OperationalError as exc:
            raise UserError(f"cannot query the index: {exc}") from None


def row_to_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], name=row["name"], status=row["status"], path=Path(row["path"]),
        model=row["model"], dataset=row["dataset"], seed=row["seed"],
        baseline=bool(row["baseline"]), variant=row["variant"],
        params=json.loads(row["params"] or "{}"), config=json.loads(row["config"] or "{}"),
        metrics=json.loads(row["metrics"]) if row["metrics"] else None, error=row["error"],
        log_tail=row["log_tail"], started=row["started"], ended=row["ended"],
        attempts=row["attempts"] or 0, trial=row["trial"], trial_state=row["trial_state"])
