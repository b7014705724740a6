"""run.json: a grid run's status, written atomically next to the run folder's own files.

    status   pending | running | finished | failed | killed
    error    the exception's message, or the signal that killed the process
    log_tail the last lines of log.txt (the run's stdout and stderr), for failed runs
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json
from loralab.experiments.expand import PlannedRun
from loralab.experiments.records import FINISHED, PENDING, RunRecord

STATUS_FILE = "run.json"
LOG_FILE = "log.txt"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"


def read_status(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATUS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    atomic_write_json(run_dir / STATUS_FILE, status)


def planned_status(run: PlannedRun, grid: Path) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "variant": run.variant, "model": run.model,
            "dataset": run.dataset, "seed": run.seed, "baseline": run.baseline,
            "params": run.params, "grid": str(grid), "status": PENDING, "attempts": 0}


def mark(run_dir: Path, status: str, **fields: Any) -> dict[str, Any]:
    """Update run.json's status (and other fields) and return it."""
    current = read_status(run_dir)
    current.update(status=status, **fields)
    if status == "running":
        current.update(host=socket.gethostname(), started=time.time(), ended=None,
                       error=None, log_tail=None, attempts=current.get("attempts", 0) + 1)
    elif status != PENDING:
        current["ended"] = time.time()
    write_status(run_dir, current)
    return current


def log_tail(run_dir: Path, lines: int = 40) -> str:
    path = run_dir / LOG_FILE
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(handle.tell() - 64_000, 0))
        text = handle.read().decode("utf-8", errors="replace")
    # progress bars rewrite one line with carriage returns: keep the last state of each line
    cleaned = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join([line for line in cleaned if line.strip()][-lines:])


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """A finished run's metrics; None before it finishes and for a run that diverged."""
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return None if isinstance(metrics, dict) and metrics.get("status") == "diverged" \
        else metrics


def read_config(run_dir: Path) -> dict[str, Any]:
    from loralab.config import parse_yaml

    try:
        return parse_yaml((run_dir / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    except OSError:
        return {}


def record_from_folder(run_dir: Path) -> RunRecord | None:
    """The run as its folder tells it (None when the folder is not a grid run)."""
    status = read_status(run_dir)
    if not status.get("id"):
        return None
    metrics = read_metrics(run_dir)
    state = FINISHED if metrics is not None else status.get("status", PENDING)
    return RunRecord(
        id=status["id"], name=status.get("name", run_dir.name), status=state, path=run_dir,
        model=status.get("model", ""), dataset=status.get("dataset", ""),
        seed=int(status.get("seed", 0)), baseline=bool(status.get("baseline")),
        variant=status.get("variant", ""), params=status.get("params") or {},
        config=read_config(run_dir), metrics=metrics,
        error=None if metrics is not None else status.get("error"),
        log_tail=None if metrics is not None else status.get("log_tail"),
        started=status.get("started"), ended=status.get("ended"),
        attempts=int(status.get("attempts", 0)), trial=status.get("trial"),
        trial_state=status.get("trial_state"))
